import Foundation
import Testing
import TestSupport
import TroncalMedia
import TroncalMonitor
import TroncalProtocol
import TroncalRuntime
import TroncalStore

/// The voice rules: call quality stored and summed per window (SQLite and PostgreSQL), the per-customer notice with
/// its diagnosis and hysteresis, and each trunk's MOS.
@Suite("Monitor: voice quality")
struct VoiceQualityTests {
    let t0 = Date(timeIntervalSince1970: 1_800_057_600)
    func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    /// A call measured by the SBC with the E-model's verdict on each direction's loss and jitter.
    static func call(
        _ id: String, customer: String = "acme", carrier: String = "carrier-a", trunk: String = "main", end: Date,
        customerLoss: Double = 0, carrierLoss: Double = 0, jitter: Double = 2, codec: String = "PCMU", caller: String = "441632960001",
        callee: String = "34910000001"
    ) -> CallQuality {
        func stream(_ direction: CallQuality.Direction, loss: Double) -> CallQuality.Stream {
            let delay = 20 + 2 * jitter + 20
            let mos = EModel(codec: CodecImpairment.forEncoding(codec), oneWayDelayMilliseconds: delay, packetLossPercent: loss).rating().mos
            return CallQuality.Stream(
                direction: direction, codec: codec, packets: 150, lost: Int(loss * 1.5), lossPercent: loss, jitterMilliseconds: jitter,
                roundTripMilliseconds: nil, delayMilliseconds: delay, mos: mos)
        }
        return CallQuality(
            callID: id, source: .sbc, customer: customer, carrier: carrier, trunk: trunk, caller: caller, callee: callee, site: "lab",
            instance: "sbc-1", endAt: end, durationMilliseconds: 3000,
            streams: [stream(.customerToSBC, loss: customerLoss), stream(.carrierToSBC, loss: carrierLoss)])
    }

    static var settings: VoiceSettings {
        var settings = VoiceSettings()
        settings.windowSeconds = 600
        settings.minimumCalls = 20
        settings.carrierWindowSeconds = 600
        settings.carrierMinimumCalls = 5
        return settings
    }

    @Test(arguments: TestBackend.allCases)
    func qualityIsStoredSummedPerWindowSearchedAndPrunedByDay(backend: TestBackend) async throws {
        try await withMigratedDatabase(backend, service: "monitor", migrations: MonitorStore.migrations) { store in
            let quality = QualityStore(store: store)
            var calls: [CallQuality] = []
            for index in 0..<30 {
                calls.append(Self.call("lossy-\(index)", end: at(Double(index)), customerLoss: 5))
                calls.append(Self.call("clean-\(index)", customer: "beta", carrier: "carrier-b", end: at(Double(index))))
            }
            try await quality.ingest(calls)
            let window = try await quality.aggregates(from: at(0), to: at(60))
            let acme = try #require(window.first { $0.customer == "acme" })
            #expect(acme.calls == 30)
            #expect(acme.carrier == "carrier-a" && acme.trunk == "main" && acme.codec == "PCMU")
            #expect(abs(acme.fromCustomer.loss - 5) < 1e-9)
            #expect(acme.fromCarrier.loss == 0)
            #expect(abs(acme.mos - calls[0].mos!) < 1e-9)
            // A window that ends before the calls: none.
            #expect(try await quality.aggregates(from: at(-60), to: at(0)).isEmpty)

            let found = try await quality.search("+441632960001")
            #expect(found.count == 60)
            #expect(try await quality.search("lossy-3").map(\.callID) == ["lossy-3"])
            #expect(try await quality.search("lossy-3").first == calls[6])

            #expect(try await quality.prune(keepDays: 31, at: at(10 * 86_400)) == 0)
            #expect(try await quality.prune(keepDays: 31, at: at(33 * 86_400)) == 60)
            #expect(try await quality.search("lossy-3").isEmpty)
        }
    }

    @Test
    func aCustomerWhoseCallsLoseOnTheirAccessGetsOneNoticeNamingTheDirectionAndLossAndItClearsAfterTwoCleanWindows() throws {
        // G.729 (Ie 11, Bpl 19): 5 % random loss rates about 3.3. (G.711 with concealment, Bpl 25.1, rates 3.9 at 5 %:
        // above the 3.6 default, as the E-model says such calls still sound fair.)
        var analyzer = VoiceAnalyzer(settings: Self.settings)
        let lossy = (0..<30).map { Self.call("l\($0)", end: at(Double($0)), customerLoss: 5, codec: "G729") }
        let clean = (0..<30).map { Self.call("c\($0)", end: at(Double($0)), codec: "G729") }
        #expect((3.2...3.4).contains(lossy[0].mos!), "\(lossy[0].mos!)")
        #expect(Self.call("g711", end: at(0), customerLoss: 5).mos! > 3.6)
        let window = [Self.aggregate(lossy)]

        // 19 calls are too few to judge.
        #expect(analyzer.evaluate([Self.aggregate(Array(lossy.prefix(19)))], at: at(30)).isEmpty)
        let notices = analyzer.evaluate(window, at: at(40))
        #expect(notices.count == 1)
        guard case .raise(let diagnosis) = notices.first else { Issue.record("no notice: \(notices)"); return }
        #expect(diagnosis.customer == "acme")
        #expect(diagnosis.direction == .customerToSBC)
        #expect(diagnosis.term == .loss)
        #expect(diagnosis.carriers == ["carrier-a"])
        #expect(diagnosis.cause.contains("customer → SBC") && diagnosis.cause.contains("loss"), "\(diagnosis.cause)")
        // Still bad: no second notice, its MOS now (for the notice's severity).
        #expect(analyzer.evaluate(window, at: at(50)) == [.still(customer: "acme", mos: diagnosis.mos)])
        // Good from t = 700 on: clears only once two whole windows (1,200 s) have been good.
        #expect(Self.changes(analyzer.evaluate([Self.aggregate(clean)], at: at(700))).isEmpty)
        #expect(Self.changes(analyzer.evaluate([Self.aggregate(clean)], at: at(1500))).isEmpty)
        // A bad round in between starts the count again.
        #expect(Self.changes(analyzer.evaluate(window, at: at(1600))).isEmpty)
        #expect(Self.changes(analyzer.evaluate([Self.aggregate(clean)], at: at(1700))).isEmpty)
        #expect(Self.changes(analyzer.evaluate([Self.aggregate(clean)], at: at(2800))).isEmpty)
        let cleared = analyzer.evaluate([Self.aggregate(clean)], at: at(2900))
        #expect(cleared.count == 1)
        guard case .clear(let customer, let mos) = cleared.first else { Issue.record("not cleared: \(cleared)"); return }
        #expect(customer == "acme")
        #expect((mos ?? 0) > 4)
        #expect(analyzer.customersWithNotice.isEmpty)
    }

    @Test
    func lossFromTheCarrierNamesTheCarrierSideAndTheWorstCarrierFirst() {
        let calls = (0..<20).map { Self.call("a\($0)", end: at(Double($0)), carrierLoss: 8) }
            + (0..<10).map { Self.call("b\($0)", carrier: "carrier-b", end: at(Double($0)), carrierLoss: 1) }
        let diagnosis = VoiceAnalyzer.diagnose(
            customer: "acme", [Self.aggregate(Array(calls.prefix(20))), Self.aggregate(Array(calls.suffix(10)))])
        #expect(diagnosis.direction == .carrierToSBC)
        #expect(diagnosis.term == .loss)
        #expect(diagnosis.carriers == ["carrier-a", "carrier-b"])
        #expect(diagnosis.calls == 30)
    }

    @Test
    func theDominantTermIsTheOneThatTakesMostOffR() {
        #expect(VoiceAnalyzer.dominantTerm(codec: "PCMU", lossPercent: 5, jitterMilliseconds: 2, delayMilliseconds: 44) == .loss)
        #expect(VoiceAnalyzer.dominantTerm(codec: "PCMU", lossPercent: 0, jitterMilliseconds: 120, delayMilliseconds: 280) == .jitter)
        #expect(VoiceAnalyzer.dominantTerm(codec: "PCMU", lossPercent: 0, jitterMilliseconds: 1, delayMilliseconds: 400) == .delay)
        #expect(VoiceAnalyzer.dominantTerm(codec: "G729", lossPercent: 0, jitterMilliseconds: 1, delayMilliseconds: 42) == .codec)
    }

    @Test
    func aQuietCustomerWithANoticeIsClearedAfterTwoWindowsWithoutCalls() {
        var analyzer = VoiceAnalyzer(settings: Self.settings, firing: ["acme"])
        #expect(analyzer.evaluate([], at: at(0)).isEmpty)
        #expect(analyzer.evaluate([], at: at(1199)).isEmpty)
        #expect(analyzer.evaluate([], at: at(1200)) == [.clear(customer: "acme", mos: nil)])
    }

    @Test
    func eachTrunksMOSIsWhatTheSBCReceivedFromItAndNeedsEnoughCalls() {
        let bad = (0..<6).map { Self.call("a\($0)", end: at(Double($0)), carrierLoss: 5) }
        let few = (0..<4).map { Self.call("b\($0)", carrier: "carrier-b", end: at(Double($0)), carrierLoss: 5) }
        let inbound = (0..<6).map { Self.call("d\($0)", carrier: "upstream", trunk: "on-net", end: at(Double($0)), carrierLoss: 5) }
        let trunks = VoiceAnalyzer.trunks([Self.aggregate(bad), Self.aggregate(few), Self.aggregate(inbound)], minimumCalls: 5)
        #expect(trunks.map(\.carrier) == ["carrier-a"])
        #expect(abs(trunks[0].mos - bad[0].stream(.carrierToSBC)!.mos) < 1e-9)
        #expect(trunks[0].calls == 6)
        let series = VoiceAnalyzer.series(trunks: trunks, customerWindow: [Self.aggregate(bad)], site: "lab")
        #expect(series.contains { $0.name == "troncal_carrier_mos" && $0.labels["carrier"] == "carrier-a" && $0.labels["trunk"] == "main" })
        #expect(series.contains { $0.name == "troncal_customer_mos" && $0.labels["customer"] == "acme" })
        #expect(series.contains { $0.name == "troncal_customer_calls" && $0.value == 6 })
    }

    /// What an evaluation raised or cleared (not the figures of notices still open).
    static func changes(_ notices: [VoiceNotice]) -> [VoiceNotice] {
        notices.filter { if case .still = $0 { return false } else { return true } }
    }

    /// The sums the store would give for these calls (one customer, carrier and trunk).
    static func aggregate(_ calls: [CallQuality]) -> QualityAggregate {
        func direction(_ which: CallQuality.Direction) -> QualityAggregate.Direction {
            calls.compactMap { $0.stream(which) }.reduce(QualityAggregate.Direction()) { sum, stream in
                sum + QualityAggregate.Direction(
                    streams: 1, lossSum: stream.lossPercent, jitterSum: stream.jitterMilliseconds, delaySum: stream.delayMilliseconds,
                    mosSum: stream.mos)
            }
        }
        return QualityAggregate(
            customer: calls[0].customer, carrier: calls[0].carrier, trunk: calls[0].trunk, codec: calls[0].streams[0].codec, calls: calls.count,
            mosSum: calls.reduce(0) { $0 + ($1.mos ?? 0) }, fromCustomer: direction(.customerToSBC), fromCarrier: direction(.carrierToSBC))
    }
}
