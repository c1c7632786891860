import Foundation
import Logging
import TestSupport
import Testing
import TroncalProtocol
import TroncalRuntime
import TroncalStore

/// Billing end to end with sipp: SBC → routing → billing authorises a prepaid call for what its balance covers and
/// the SBC cuts it there; CDRs survive `kill -9` of billing or of the SBC in the middle of 1,000 calls, each stored
/// once in PostgreSQL, the balance equal to the sum of the rated CDRs.
@Suite("Billing with sipp", .serialized, .startsProcesses)
struct BillingCallTests {
    static let customers = "customer,type,rate_plan\nacme,prepaid,retail\n"
    static let rates = "plan,prefix,rate\nretail,34,0.06\n"

    static func site(postgres: TestPostgresDatabase? = nil, adjust: @escaping (inout SiteConfig) -> Void = { _ in }) async throws -> CallSite {
        try await CallSite(billing: true) { config, offset in
            config.sbc.customers = [CallSite.customer()]
            config.routing.routes = [
                RouteSettings(prefix: "34", targets: [RouteTargetSettings(carrier: "carrier-a", host: CallSite.carrierAddress, port: 9000 + offset)])
            ]
            // One busy customer address: keep the flood guard out of the way of 50 calls a second.
            config.sip.requestsPerWindow = 1_000_000
            config.sip.authenticatedRequestsPerWindow = 1_000_000
            config.sip.requestsPerWindowPerAddress = 1_000_000
            if let postgres, let components = postgres.components {
                config.store.backend = "postgres"
                config.store.postgres.host = components.host ?? "127.0.0.1"
                config.store.postgres.port = components.port ?? 5432
                config.store.postgres.user = components.user ?? "postgres"
                config.store.postgres.database = postgres.name
            }
            adjust(&config)
        }
    }

    static func prepare(_ site: CallSite, topUp amount: String) async throws {
        let customers = site.directory.url.appendingPathComponent("customers.csv")
        let rates = site.directory.url.appendingPathComponent("rates.csv")
        try Data(Self.customers.utf8).write(to: customers)
        try Data(Self.rates.utf8).write(to: rates)
        for (kind, file) in [("customers", customers), ("rates", rates)] {
            let (status, output) = try await site.troncal(["billing", "import", kind, file.path])
            #expect(status == 0, "\(output)")
        }
        let (status, output) = try await site.troncal(["billing", "topup", "acme", amount, "--reason", "test credit", "--by", "tests"])
        #expect(status == 0, "\(output)")
    }

    static func account(_ site: CallSite) async throws -> AccountState {
        let (status, output) = try await site.troncal(["billing", "account", "acme", "--json"])
        guard status == 0 else { throw CallSiteError("troncal billing account failed: \(output)") }
        return try JSONDecoder().decode(AccountState.self, from: Data(output.utf8))
    }

    static func cdrs(_ site: CallSite) async throws -> [RatedCDR] {
        let (status, output) = try await site.troncal(["cdr", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--format", "json"])
        guard status == 0 else { throw CallSiteError("troncal cdr export failed: \(output)") }
        return try JSONDecoder().decode([RatedCDR].self, from: Data(output.utf8))
    }

    /// Waits until the SBC's spool is empty: every summary acknowledged by billing.
    static func drained(_ site: CallSite, timeout: Duration = .seconds(60)) async -> Bool {
        await eventually(timeout: timeout, interval: .milliseconds(200)) { (try? site.summaries())?.isEmpty ?? false }
    }

    // Before the other tests of this serialized suite: it needs the whole machine (every process slot), which the
    // slots give first, at the start of the run (ProcessSlots).
    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"), .startsProcessesAlone)
    func everyCompletedCallHasOneCDRWhenBillingIsKilledInTheMiddle() async throws {
        try await runThousandCalls(killing: "billing-1")
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"), .startsProcessesAlone)
    func everyCompletedCallHasOneCDRWhenTheSBCIsKilledInTheMiddleAndReplaysItsSpool() async throws {
        try await runThousandCalls(killing: "sbc-1")
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aPrepaidCallIsCutWhenItsBalanceRunsOutAndTheBalanceEndsAtZero() async throws {
        let site = try await Self.site()
        defer { site.remove() }
        // 0.09 at 0.06 a minute: 90 seconds.
        try await Self.prepare(site, topUp: "0.09")
        // sipp's own 90 s limit (CallSite's default) would end this 90 s call first: both get 150 s.
        let longer = ["-timeout", "150s"]
        let carrier = try SBCCallTests.carrier(site, "carrier", scenario: SippScenarios.carrier(), port: site.carrierPort(0), calls: 1, extra: longer)
        try await carrier.listening()
        let caller = try SBCCallTests.caller(
            site, "caller", scenario: SippScenarios.caller(callerHangsUp: false), slot: 1, calls: 1, rate: 1, limit: 1, extra: longer)
        #expect(await caller.finish(timeout: .seconds(120)) == 0, "\(caller.report)\n\(site.logs)")
        #expect(await carrier.finish(timeout: .seconds(10)) == 0, "\(carrier.report)")
        #expect(await Self.drained(site))
        let cdr = try #require(try await Self.cdrs(site).first { $0.answerAt != nil })
        #expect(cdr.disconnectBy == "sbc")
        #expect((89_500...91_500).contains(cdr.durationMilliseconds), "\(cdr.durationMilliseconds) ms")
        #expect(cdr.billedSeconds == 90 && cdr.sellMicros == 90_000)
        let account = try await Self.account(site)
        #expect(account.balanceMicros == 0)
        #expect(account.reservedMicros == 0)
        // Nothing left: the next call is refused (402) and makes no call leg.
        let refused = try SBCCallTests.caller(site, "refused", scenario: SippScenarios.caller(holdMilliseconds: 100), slot: 2, calls: 1, rate: 1, limit: 1)
        _ = await refused.finish(timeout: .seconds(20))
        #expect(refused.messageText.contains("SIP/2.0 402"), "\(refused.report)")
        await caller.stop()
        await carrier.stop()
        await refused.stop()
        await site.stop()
    }

    /// A counter of an instance's `/metrics` (0 when absent).
    static func counter(_ site: CallSite, _ instance: String, _ name: String) async -> Double {
        guard let port = site.config.instance(named: instance)?.adminPort,
            let text = try? await httpGet(port: port, path: "/metrics")
        else { return 0 }
        return text.split(separator: "\n").filter { $0.hasPrefix(name) }.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func callsUpOnAnSBCKilledWithSIGKILLGetTheirCDRsAtItsLastHeartbeatAndTheirReservationsBackAsDoesACallStillRinging() async throws {
        let site = try await Self.site()
        defer { site.remove() }
        try await Self.prepare(site, topUp: "100")
        let longer = ["-timeout", "150s"]
        let carrier = try SBCCallTests.carrier(site, "carrier", scenario: SippScenarios.carrier(), port: site.carrierPort(0), calls: 5, extra: longer)
        try await carrier.listening()
        let caller = try SBCCallTests.caller(
            site, "caller", scenario: SippScenarios.caller(holdMilliseconds: 120_000), slot: 1, calls: 5, rate: 5, limit: 5, extra: longer)
        // Five calls up, and billing has their checkpoints.
        let up = await eventually(timeout: .seconds(60), interval: .milliseconds(250)) {
            let answered = caller.messageText.components(separatedBy: "SIP/2.0 200 OK").count - 1
            return answered >= 5 ? await Self.counter(site, "billing-1", "troncal_billing_checkpoints_total") >= 5 : false
        }
        #expect(up, "\(caller.report)\n\(site.logs)")
        #expect(try await Self.account(site).callsInProgress == 5)
        // A sixth call only rings: the carrier that answered the five gives its port to one that never answers.
        await carrier.stop()
        let ringingCarrier = try SBCCallTests.carrier(
            site, "ringing-carrier", scenario: SippScenarios.carrier(answerAfterMilliseconds: 120_000), port: site.carrierPort(0), calls: 1, extra: longer)
        try await ringingCarrier.listening()
        let ringingCaller = try SBCCallTests.caller(
            site, "ringing-caller", scenario: SippScenarios.caller(holdMilliseconds: 1000), slot: 2, calls: 1, rate: 1, limit: 1, extra: longer)
        #expect(await eventually(timeout: .seconds(30)) { ringingCaller.messageText.contains("SIP/2.0 180") }, "\(ringingCaller.report)\n\(site.logs)")
        #expect(try await Self.account(site).callsInProgress == 6, "the ringing call holds a reservation")
        kill(site.sbc.pid, SIGKILL)
        site.sbc.process.waitUntilExit()
        let killed = ContinuousClock.now
        var cdrs: [RatedCDR] = []
        let recorded = await eventually(timeout: .seconds(60), interval: .milliseconds(200)) {
            cdrs = ((try? await Self.cdrs(site)) ?? []).filter { $0.answerAt != nil }
            return cdrs.count >= 5
        }
        let elapsed = ContinuousClock.now - killed
        Logger(label: "test.billing").notice("calls of a killed SBC: CDRs after \(elapsed) (billing.sbcSilenceSeconds 3)")
        #expect(recorded, "\(cdrs)\n\(site.logs)")
        // The figure the two-site issue asks for is 5 s; the bound here leaves room for a loaded machine and the CLI's polls.
        #expect(elapsed < .seconds(20), "the CDRs came \(elapsed) after the kill")
        #expect(cdrs.count == 5 && Set(cdrs.map(\.id)).count == 5 && Set(cdrs.map(\.callID)).count == 5, "\(cdrs)")
        #expect(cdrs.allSatisfy { $0.disconnectBy == "sbc" && $0.durationMilliseconds > 0 && $0.sellMicros > 0 }, "\(cdrs)")
        // The answered calls' reservations go with their CDRs, the ringing call's (no CDR is owed) right after.
        let released = await eventually(timeout: .seconds(10)) {
            guard let account = try? await Self.account(site) else { return false }
            return account.reservedMicros == 0 && account.callsInProgress == 0
        }
        let account = try await Self.account(site)
        #expect(released, "reservations left after the SBC's death: \(account)\n\(site.logs)")
        #expect(await Self.counter(site, "billing-1", "troncal_billing_lost_sbc_calls_total{kind=\"unanswered\"}") == 1)
        #expect(account.balanceMicros == 100_000_000 - cdrs.map(\.sellMicros).reduce(0, +))
        await caller.stop()
        await ringingCaller.stop()
        await ringingCarrier.stop()
        await site.stop()
    }

    /// 1,000 short calls at 50 a second; `kill -9` of `instance` after 6 s, started again 2 s later.
    func runThousandCalls(killing instance: String) async throws {
        guard let database = try await TestPostgresDatabase.create(prefix: "billing_e2e") else { return }
        let site: CallSite
        do {
            site = try await Self.site(postgres: database)
        } catch {
            await database.drop()
            throw error
        }
        defer { site.remove() }
        try await Self.prepare(site, topUp: "1000")
        let carrier = try SBCCallTests.carrier(site, "carrier", scenario: SippScenarios.carrier(), port: site.carrierPort(0), calls: 100_000)
        try await carrier.listening()
        let caller = try SBCCallTests.caller(
            site, "caller", scenario: SippScenarios.caller(holdMilliseconds: 100), slot: 1, calls: 1000, rate: 50, limit: 60,
            extra: ["-recv_timeout", "6000"])
        // Kill the instance in the middle of the run: once a hundred calls have been answered (whatever the machine's speed).
        #expect(await eventually(timeout: .seconds(60), interval: .milliseconds(250)) {
            caller.messageText.components(separatedBy: "SIP/2.0 200 OK").count > 200
        }, "\(caller.report)\n\(site.logs)")
        try await site.restart(instance, signal: SIGKILL, after: .seconds(2))
        _ = await caller.finish(timeout: .seconds(150))
        let successful = try #require(caller.successfulCalls, "\(caller.report)")
        #expect(successful >= 700, "\(caller.report)\n\(site.logs)")
        #expect(await Self.drained(site), "\(site.logs)")
        let store = try await openStore(.postgres(try PostgresConfiguration(url: database.url)), logger: Logger(label: "test"))
        let counts = try await store.query(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS ids, COUNT(DISTINCT call_id) AS calls, COALESCE(SUM(sell_micros), 0) AS sold FROM billing_cdrs WHERE answer_at IS NOT NULL")
        try await store.close()
        let answered = Int(try counts[0].int("n"))
        // Every completed call has its CDR, and only one. A call sipp counted as failed may have one too: its summary was durable
        // when the kill came, before the 200 to its BYE left (the SBC answers a BYE once its summary is on disk, and a loaded
        // machine can hold several such calls in one fsync). Never more CDRs than calls sipp made.
        let failed = caller.failedCalls ?? 0
        #expect(answered >= successful && answered <= successful + failed, "\(answered) answered CDRs, sipp completed \(successful), failed \(failed)")
        #expect(try counts[0].int("ids") == Int64(answered))
        #expect(try counts[0].int("calls") == Int64(answered))
        let account = try await Self.account(site)
        #expect(account.balanceMicros == 1_000_000_000 - (try counts[0].int("sold")))
        if instance == "sbc-1" {
            // The calls the SBC had in progress died with it, without summaries: their grants (300 s, 0.30 each) stay
            // reserved until they expire, ten minutes after the grant.
            // At most sipp's limit of 60 calls at once were in progress.
            #expect(account.reservedMicros % 300_000 == 0 && account.reservedMicros <= 60 * 300_000, "\(account.reservedMicros)")
        } else {
            #expect(account.reservedMicros == 0)
        }
        await carrier.stop()
        await caller.stop()
        await site.stop()
        await database.drop()
    }
}
