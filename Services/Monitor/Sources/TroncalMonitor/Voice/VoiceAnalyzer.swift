public import Foundation
public import TroncalProtocol
public import TroncalRuntime
internal import TroncalMedia

/// Why a customer's calls sound bad: the direction that is worse, the E-model term that costs it most, and the
/// carriers the calls went through.
public struct VoiceDiagnosis: Sendable, Hashable {
    public enum Term: String, Sendable, Hashable, CaseIterable { case loss, jitter, delay, codec }

    public var customer: String
    public var calls: Int
    public var mos: Double
    public var direction: CallQuality.Direction
    public var term: Term
    public var lossPercent: Double
    public var jitterMilliseconds: Double
    public var delayMilliseconds: Double
    /// The carriers of the window's calls, worst first.
    public var carriers: [String]

    public var summary: String {
        "customer \(customer): MOS \(Self.rounded(mos)) over \(calls) calls: contact the customer"
    }

    public var cause: String {
        let measure: String = switch term {
        case .loss: "\(Self.rounded(lossPercent)) % of packets lost"
        case .jitter: "jitter \(Self.rounded(jitterMilliseconds)) ms"
        case .delay: "one-way delay \(Self.rounded(delayMilliseconds)) ms"
        case .codec: "a low-bitrate codec"
        }
        let through = carriers.isEmpty ? "" : "; carriers involved: \(carriers.joined(separator: ", "))"
        return "Likely cause: the \(direction.meaning) direction is worse, mostly \(term.rawValue) (\(measure))\(through)."
    }

    static func rounded(_ value: Double) -> String {
        let rounded = (value * 100).rounded() / 100
        return rounded == rounded.rounded() ? "\(Int(rounded))" : "\(rounded)"
    }
}

/// What one evaluation decided about the per-customer notices.
public enum VoiceNotice: Sendable, Hashable {
    case raise(VoiceDiagnosis)
    /// A customer with a notice, still judged this round (enough calls): its MOS now, for the notice's severity.
    case still(customer: String, mos: Double)
    case clear(customer: String, mos: Double?)
}

/// The voice rules as a pure state machine over windows of summed call quality (no clock, no I/O):
/// - a customer whose calls' mean MOS over the window is below `customerMOS`, with at least `minimumCalls` calls,
///   gets a notice with its diagnosis; it clears after two whole windows above the threshold (hysteresis), or after
///   two windows without a call (nothing left to judge);
/// - each carrier trunk's MOS is the mean MOS of what the SBC received from it over the carrier window, with at
///   least `carrierMinimumCalls` calls.
public struct VoiceAnalyzer: Sendable {
    public let settings: VoiceSettings
    struct Watch: Sendable, Hashable {
        var aboveSince: Date?
        var quietSince: Date?
    }

    /// Customers with a notice, and since when they look good again (or have been quiet).
    private(set) var watched: [String: Watch] = [:]

    /// `firing`: the customers whose notice a previous run left firing.
    public init(settings: VoiceSettings, firing: [String] = []) {
        self.settings = settings
        for customer in firing { watched[customer] = Watch() }
    }

    public var customersWithNotice: [String] { watched.keys.sorted() }

    /// One evaluation at `now` of the customer window (the sums per customer, carrier and trunk).
    public mutating func evaluate(_ window: [QualityAggregate], at now: Date) -> [VoiceNotice] {
        let byCustomer = Dictionary(grouping: window, by: \.customer)
        let span = 2 * Double(settings.windowSeconds)
        var notices: [VoiceNotice] = []
        for (customer, var watch) in watched.sorted(by: { $0.key < $1.key }) {
            let groups = byCustomer[customer] ?? []
            let calls = groups.calls
            let mos = groups.mos
            if calls == 0 {
                watch.aboveSince = nil
                watch.quietSince = watch.quietSince ?? now
            } else {
                watch.quietSince = nil
                if calls >= settings.minimumCalls, let mos {
                    watch.aboveSince = mos >= settings.customerMOS ? (watch.aboveSince ?? now) : nil
                }
            }
            let cleared = watch.aboveSince.map { now.timeIntervalSince($0) >= span } ?? false
            let quiet = watch.quietSince.map { now.timeIntervalSince($0) >= span } ?? false
            if cleared || quiet {
                watched[customer] = nil
                notices.append(.clear(customer: customer, mos: mos))
            } else {
                watched[customer] = watch
                if calls >= settings.minimumCalls, let mos { notices.append(.still(customer: customer, mos: mos)) }
            }
        }
        for (customer, groups) in byCustomer.sorted(by: { $0.key < $1.key }) where watched[customer] == nil {
            guard groups.calls >= settings.minimumCalls, let mos = groups.mos else { continue }
            guard mos < settings.customerMOS, !notices.contains(.clear(customer: customer, mos: mos)) else { continue }
            watched[customer] = Watch()
            notices.append(.raise(Self.diagnose(customer: customer, groups)))
        }
        return notices
    }

    /// The worse direction of a customer's calls, the E-model term that costs it most, and the carriers.
    public static func diagnose(customer: String, _ groups: [QualityAggregate]) -> VoiceDiagnosis {
        let calls = groups.calls
        let mos = groups.mos ?? 0
        let fromCustomer = groups.reduce(QualityAggregate.Direction()) { $0 + $1.fromCustomer }
        let fromCarrier = groups.reduce(QualityAggregate.Direction()) { $0 + $1.fromCarrier }
        let worse: (CallQuality.Direction, QualityAggregate.Direction) =
            (fromCarrier.mos ?? 5) < (fromCustomer.mos ?? 5) ? (.carrierToSBC, fromCarrier) : (.customerToSBC, fromCustomer)
        let codec = groups.max { $0.calls < $1.calls }?.codec ?? "PCMU"
        let term = dominantTerm(codec: codec, lossPercent: worse.1.loss, jitterMilliseconds: worse.1.jitter, delayMilliseconds: worse.1.delay)
        var carrierMOS: [(carrier: String, mos: Double)] = []
        for (carrier, rows) in Dictionary(grouping: groups, by: \.carrier) {
            carrierMOS.append((carrier, rows.mos ?? 0))
        }
        let carriers = carrierMOS.sorted { $0.mos == $1.mos ? $0.carrier < $1.carrier : $0.mos < $1.mos }.map(\.carrier)
        return VoiceDiagnosis(
            customer: customer, calls: calls, mos: mos, direction: worse.0, term: term, lossPercent: worse.1.loss,
            jitterMilliseconds: worse.1.jitter, delayMilliseconds: worse.1.delay, carriers: carriers)
    }

    /// Which E-model term takes most off R for a stream: the codec's own impairment (Ie), what loss adds to it
    /// (Ie,eff − Ie), the delay impairment of the network and packetization (Id), or what the jitter buffer adds
    /// to that delay (twice the jitter).
    public static func dominantTerm(codec: String, lossPercent: Double, jitterMilliseconds: Double, delayMilliseconds: Double) -> VoiceDiagnosis.Term {
        let impairment = CodecImpairment.forEncoding(codec)
        let fixedDelay = max(0, delayMilliseconds - 2 * jitterMilliseconds)
        let clean = EModel(codec: impairment, oneWayDelayMilliseconds: fixedDelay, packetLossPercent: 0).rating()
        let lossy = EModel(codec: impairment, oneWayDelayMilliseconds: fixedDelay, packetLossPercent: lossPercent).rating()
        let jittery = EModel(codec: impairment, oneWayDelayMilliseconds: delayMilliseconds, packetLossPercent: 0).rating()
        let terms: [(VoiceDiagnosis.Term, Double)] = [
            (.loss, lossy.effectiveEquipmentImpairment - clean.effectiveEquipmentImpairment),
            (.jitter, jittery.delayImpairment - clean.delayImpairment),
            (.delay, clean.delayImpairment),
            (.codec, clean.effectiveEquipmentImpairment),
        ]
        return terms.max { $0.1 < $1.1 }!.0
    }

    /// Each carrier trunk's MOS over the carrier window (calls from carriers to our numbers, and calls between two
    /// customers on the platform, are left out: no carrier trunk carried them).
    public static func trunks(_ window: [QualityAggregate], minimumCalls: Int) -> [TrunkQualityReport.Trunk] {
        let byTrunk = Dictionary(grouping: window.filter { $0.trunk != "on-net" && $0.carrier != "on-net" }) { "\($0.carrier)\u{1F}\($0.trunk)" }
        return byTrunk.values.compactMap { groups -> TrunkQualityReport.Trunk? in
            let received = groups.reduce(QualityAggregate.Direction()) { $0 + $1.fromCarrier }
            guard received.streams >= minimumCalls, let mos = received.mos else { return nil }
            return TrunkQualityReport.Trunk(carrier: groups[0].carrier, trunk: groups[0].trunk, mos: mos, calls: received.streams, lossPercent: received.loss)
        }.sorted { ($0.carrier, $0.trunk) < ($1.carrier, $1.trunk) }
    }

    /// The series the rules and the dashboard read: `troncal_carrier_mos{carrier,trunk}` and
    /// `troncal_carrier_calls`, `troncal_customer_mos{customer}` and `troncal_customer_calls` (customers with at least
    /// one call in the window).
    public static func series(trunks: [TrunkQualityReport.Trunk], customerWindow: [QualityAggregate], site: String) -> [MetricSample] {
        var samples: [MetricSample] = []
        for trunk in trunks {
            let labels = ["carrier": trunk.carrier, "trunk": trunk.trunk, "site": site]
            samples.append(MetricSample("troncal_carrier_mos", labels, trunk.mos))
            samples.append(MetricSample("troncal_carrier_calls", labels, Double(trunk.calls)))
            samples.append(MetricSample("troncal_carrier_loss_percent", labels, trunk.lossPercent))
        }
        for (customer, groups) in Dictionary(grouping: customerWindow, by: \.customer).sorted(by: { $0.key < $1.key }) {
            guard let mos = groups.mos else { continue }
            let labels = ["customer": customer, "site": site]
            samples.append(MetricSample("troncal_customer_mos", labels, mos))
            samples.append(MetricSample("troncal_customer_calls", labels, Double(groups.calls)))
        }
        return samples
    }
}

extension [QualityAggregate] {
    /// The calls of these groups together.
    var calls: Int { reduce(0) { $0 + $1.calls } }
    /// Their mean MOS (each call's worse direction); nil without calls.
    var mos: Double? {
        let calls = self.calls
        return calls > 0 ? reduce(0) { $0 + $1.mosSum } / Double(calls) : nil
    }
}
