import Foundation
import Logging
import TestSupport
import Testing
import TroncalCatalog
import TroncalProtocol
import TroncalRuntime
import TroncalStore

@testable import TroncalBilling

/// Billing on both store backends: authorisation with reservations that parallel calls cannot overspend, grants and
/// renewals, CDRs stored once and charged in the same transaction, unrated CDRs kept, the prepaid cap, postpaid
/// credit, the ledger, CDR pages, and the fraud guard.
@Suite struct BillingStoreTests {
    static let start = try! Date("2026-12-01T10:00:00Z", strategy: .iso8601)

    static func withBilling(
        _ backend: TestBackend, grantSeconds: Int = 300, customers: String = Self.customers, rates: String = Self.rates,
        _ body: (Billing) async throws -> Void
    ) async throws {
        try await withMigratedDatabase(backend, service: "billing", migrations: BillingStore.migrations) { store in
            var settings = BillingSettings()
            settings.grantSeconds = grantSeconds
            let billing = try await Billing(store: BillingStore(store: store), settings: settings, logger: Logger(label: "test.billing"))
            _ = try await billing.apply(.customers, csv: customers)
            _ = try await billing.apply(.rates, csv: rates)
            _ = try await billing.apply(.carrierRates, csv: "carrier,prefix,rate\nalpha,34,0.01\n")
            try await body(billing)
        }
    }

    static let customers = """
        customer,type,credit_limit,rate_plan,max_calls
        pre,prepaid,,retail,0
        post,postpaid,5,retail,2
        """
    /// 0.06 per minute: a millionth per millisecond… one 0.001 per second.
    static let rates = "plan,prefix,rate\nretail,34,0.06\nretail,3480,3\n"

    static func topUp(_ billing: Billing, _ customer: String, _ amount: String) async throws {
        _ = try await billing.adjust(BalanceAdjustment(customer: customer, kind: .topup, amountMicros: MicroAmount.parse(amount)!, reason: "test", by: "tests"))
    }

    static func summary(_ id: String, customer: String = "pre", callID: String? = nil, seconds: Double, at start: Date = Self.start) -> CallSummary {
        let answer = start.addingTimeInterval(2)
        return CallSummary(
            id: id, callID: callID ?? "call-\(id)", customer: customer, caller: "100", callee: "34911234567", site: "a", instance: "sbc-1",
            attempts: [CallSummary.Attempt(carrier: "alpha", trunk: "alpha", result: seconds > 0 ? .answered : .failed, status: seconds > 0 ? 200 : 486,
                                           startedAt: start, postDialDelayMilliseconds: 100)],
            setupAt: start, answerAt: seconds > 0 ? answer : nil, endAt: answer.addingTimeInterval(seconds),
            durationMilliseconds: Int(seconds * 1000), disconnect: CallSummary.Disconnect(by: .caller, status: seconds > 0 ? 200 : 486, reason: "x"),
            streams: [])
    }

    @Test(arguments: TestBackend.allCases)
    func aPrepaidBalanceForNinetySecondsIsAuthorisedForNinetySecondsAndEndsAtZero(backend: TestBackend) async throws {
        try await Self.withBilling(backend) { billing in
            try await Self.topUp(billing, "pre", "0.09")
            let grant = try await billing.authorize(AuthorizeRequest(customer: "pre", callee: "34911234567", callID: "c1"), now: Self.start)
            #expect(grant.allowed && grant.maximumDurationSeconds == 90 && !grant.renewable)
            // While it runs, nothing is left for a second call.
            let second = try await billing.authorize(AuthorizeRequest(customer: "pre", callee: "34911234567", callID: "c2"), now: Self.start)
            #expect(!second.allowed && second.status == 402)
            // The SBC cut it at 90 s; it reports 90.04 s: the prepaid charge stops at the grant.
            _ = try await billing.ingest(Self.summary("s1", callID: "c1", seconds: 90.04), now: Self.start.addingTimeInterval(100))
            let account = try await billing.account("pre")
            #expect(account.balanceMicros == 0)
            #expect(account.reservedMicros == 0)
            let refused = try await billing.authorize(AuthorizeRequest(customer: "pre", callee: "34911234567", callID: "c3"), now: Self.start)
            #expect(!refused.allowed && refused.status == 402)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func tenParallelCallsNeverHoldMoreThanTheBalanceCovers(backend: TestBackend) async throws {
        try await Self.withBilling(backend, grantSeconds: 600) { billing in
            // 60 minutes at 0.06/min.
            try await Self.topUp(billing, "pre", "3.6")
            let grants = try await withThrowingTaskGroup(of: Authorization.self) { group in
                for index in 0..<10 {
                    group.addTask {
                        try await billing.authorize(AuthorizeRequest(customer: "pre", callee: "34911234567", callID: "p\(index)"), now: Self.start)
                    }
                }
                return try await group.reduce(into: [Authorization]()) { $0.append($1) }
            }
            let total = grants.compactMap { $0.allowed ? $0.maximumDurationSeconds : nil }.reduce(0, +)
            #expect(total <= 3600)
            #expect(total == 3600, "the whole balance is handed out: \(grants.map { $0.maximumDurationSeconds ?? 0 })")
            #expect(grants.filter(\.allowed).count == 6)
            // Renewals cannot overspend either: every grant is spent already.
            let renewal = try await billing.renew(RenewRequest(customer: "pre", callID: "p0", elapsedSeconds: 500), now: Self.start.addingTimeInterval(500))
            #expect(!renewal.allowed && renewal.maximumDurationSeconds == 600)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func aRenewalExtendsTheGrantWhileTheBalanceLastsThenStops(backend: TestBackend) async throws {
        try await Self.withBilling(backend, grantSeconds: 60) { billing in
            try await Self.topUp(billing, "pre", "0.15")  // 150 s
            let first = try await billing.authorize(AuthorizeRequest(customer: "pre", callee: "34911234567", callID: "r1"), now: Self.start)
            #expect(first.maximumDurationSeconds == 60 && first.renewable)
            let second = try await billing.renew(RenewRequest(customer: "pre", callID: "r1", elapsedSeconds: 45), now: Self.start.addingTimeInterval(47))
            #expect(second.allowed && second.maximumDurationSeconds == 120 && second.renewable)
            let third = try await billing.renew(RenewRequest(customer: "pre", callID: "r1", elapsedSeconds: 100), now: Self.start.addingTimeInterval(102))
            #expect(third.allowed && third.maximumDurationSeconds == 150 && !third.renewable)
            let fourth = try await billing.renew(RenewRequest(customer: "pre", callID: "r1", elapsedSeconds: 140), now: Self.start.addingTimeInterval(142))
            #expect(!fourth.allowed && fourth.maximumDurationSeconds == 150)
            _ = try await billing.ingest(Self.summary("r1", callID: "r1", seconds: 150.2), now: Self.start.addingTimeInterval(160))
            #expect(try await billing.account("pre").balanceMicros == 0)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func aCDRSentTwiceIsStoredAndChargedOnce(backend: TestBackend) async throws {
        try await Self.withBilling(backend) { billing in
            try await Self.topUp(billing, "pre", "10")
            let first = try await billing.ingest(Self.summary("dup", seconds: 61))
            let again = try await billing.ingest(Self.summary("dup", seconds: 61))
            #expect(!first.duplicate && again.duplicate)
            let account = try await billing.account("pre")
            #expect(account.balanceMicros == 10_000_000 - 61_000)
            let page = try await billing.cdrs(CDRQuery(from: "2026-12-01T00:00:00.000Z", to: "2026-12-02T00:00:00.000Z", customer: nil, after: nil, limit: 10))
            #expect(page.cdrs.count == 1)
            let cdr = try #require(page.cdrs.first)
            #expect(cdr.sellMicros == 61_000 && cdr.buyMicros == 10_167 && cdr.marginMicros == 61_000 - 10_167)
            #expect(cdr.billedSeconds == 61 && cdr.rated && cdr.ratePrefix == "34" && cdr.carrier == "alpha")
            // The ledger holds the top-up and the call.
            #expect(account.ledger.map(\.kind) == ["call", "topup"])
            #expect(account.ledger.first?.reference == "dup")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func aBatchIsStoredOnceWithItsDuplicatesAndEachCustomerChargedTheSumOfItsCalls(backend: TestBackend) async throws {
        try await Self.withBilling(backend) { billing in
            try await Self.topUp(billing, "pre", "10")
            _ = try await billing.ingest(Self.summary("old", seconds: 10))
            var batch: [CallSummary] = []
            for index in 0..<120 {
                let customer = index % 3 == 0 ? "post" : "pre"
                batch.append(Self.summary("b\(index)", customer: customer, seconds: Double(index % 7 + 1)))
            }
            batch.append(Self.summary("old", seconds: 10))
            batch.append(Self.summary("b5", seconds: 2))
            batch.append(Self.summary("stranger", customer: "nobody", seconds: 5))
            let acknowledgements = try await billing.ingest(batch)
            #expect(acknowledgements.map(\.id) == batch.map(\.id))
            #expect(acknowledgements.filter(\.duplicate).map(\.id) == ["old", "b5"])
            func expected(_ customer: String) -> Int64 {
                var total: Int64 = 0
                for index in 0..<120 where (index % 3 == 0) == (customer == "post") { total += Int64(index % 7 + 1) * 1_000 }
                return total
            }
            #expect(try await billing.account("pre").balanceMicros == 10_000_000 - 10_000 - expected("pre"))
            #expect(try await billing.account("post").balanceMicros == -expected("post"))
            // One ledger row per charged CDR.
            let ledger = try await billing.store.store.query("SELECT COUNT(*) AS n FROM billing_ledger WHERE kind = 'call'")
            #expect(try ledger[0].int("n") == 121)
            // Sent again whole: nothing changes.
            #expect(try await billing.ingest(batch).allSatisfy(\.duplicate))
            #expect(try await billing.account("post").balanceMicros == -expected("post"))
        }
    }

    @Test(arguments: TestBackend.allCases)
    func concurrentResendsOfOneCDRChargeOnce(backend: TestBackend) async throws {
        try await Self.withBilling(backend) { billing in
            try await Self.topUp(billing, "pre", "10")
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<8 { group.addTask { _ = try? await billing.ingest(Self.summary("race", seconds: 30)) } }
            }
            // Whatever raced, a final resend is acknowledged as stored and the charge was made once.
            #expect(try await billing.ingest(Self.summary("race", seconds: 30)).duplicate)
            #expect(try await billing.account("pre").balanceMicros == 10_000_000 - 30_000)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func unratedAndUnansweredCallsAreKeptAndChargeNothing(backend: TestBackend) async throws {
        try await Self.withBilling(backend, rates: "plan,prefix,rate\nretail,44,0.06\n") { billing in
            try await Self.topUp(billing, "pre", "10")
            _ = try await billing.ingest(Self.summary("unrated", seconds: 30))
            _ = try await billing.ingest(Self.summary("busy", seconds: 0))
            _ = try await billing.ingest(Self.summary("stranger", customer: "nobody", seconds: 30))
            let page = try await billing.cdrs(CDRQuery(from: "2026-12-01T00:00:00.000Z", to: "2026-12-02T00:00:00.000Z", customer: nil, after: nil, limit: 10))
            let byID = Dictionary(uniqueKeysWithValues: page.cdrs.map { ($0.id, $0) })
            #expect(byID["unrated"]?.rated == false && byID["unrated"]?.note == "no rate in plan retail for +34911234567" && byID["unrated"]?.sellMicros == 0)
            #expect(byID["busy"]?.rated == true && byID["busy"]?.note == "not answered" && byID["busy"]?.billedSeconds == 0)
            #expect(byID["stranger"]?.rated == false && byID["stranger"]?.buyMicros == 5_000)
            #expect(try await billing.account("pre").balanceMicros == 10_000_000)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func postpaidGoesBelowZeroDownToItsCreditLimitAndNoFurther(backend: TestBackend) async throws {
        try await Self.withBilling(backend, grantSeconds: 86400) { billing in
            // Credit 5.00 at 0.06/min: 5,000 s.
            let grant = try await billing.authorize(AuthorizeRequest(customer: "post", callee: "34911234567", callID: "q1"), now: Self.start)
            #expect(grant.maximumDurationSeconds == 5000)
            _ = try await billing.ingest(Self.summary("q1", customer: "post", callID: "q1", seconds: 4000), now: Self.start.addingTimeInterval(4100))
            #expect(try await billing.account("post").balanceMicros == -4_000_000)
            let next = try await billing.authorize(AuthorizeRequest(customer: "post", callee: "34911234567", callID: "q2"), now: Self.start)
            #expect(next.maximumDurationSeconds == 1000)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func refusalsSayWhyWithTheRightStatus(backend: TestBackend) async throws {
        try await Self.withBilling(backend) { billing in
            let unknown = try await billing.authorize(AuthorizeRequest(customer: "ghost", callee: "34911234567", callID: "x"))
            #expect(unknown.status == 403 && unknown.reason == "customer ghost has no billing account")
            let noRate = try await billing.authorize(AuthorizeRequest(customer: "post", callee: "4420794600", callID: "x"))
            #expect(noRate.status == 403 && noRate.reason == "rate plan retail has no rate for +4420794600")
            let empty = try await billing.authorize(AuthorizeRequest(customer: "pre", callee: "34911234567", callID: "x"))
            #expect(empty.status == 402)
            // post allows 2 calls in progress.
            for id in ["a", "b"] {
                #expect(try await billing.authorize(AuthorizeRequest(customer: "post", callee: "34911234567", callID: id)).allowed)
            }
            let third = try await billing.authorize(AuthorizeRequest(customer: "post", callee: "34911234567", callID: "c"))
            #expect(third.status == 403 && third.reason == "2 calls in progress: the account's limit")
            // An import that suspends: refused at once; adjustments keep an audit trail.
            _ = try await billing.apply(.customers, csv: "customer,type,status\npre,prepaid,suspended\n")
            #expect(try await billing.authorize(AuthorizeRequest(customer: "pre", callee: "34911234567", callID: "y")).status == 403)
            await #expect(throws: ProtocolError.self) { try await billing.adjust(BalanceAdjustment(customer: "pre", kind: .topup, amountMicros: -5, reason: "x", by: "t")) }
            await #expect(throws: ProtocolError.self) { try await billing.adjust(BalanceAdjustment(customer: "pre", kind: .adjustment, amountMicros: 5, reason: " ", by: "t")) }
            let adjusted = try await billing.adjust(BalanceAdjustment(customer: "pre", kind: .adjustment, amountMicros: -2_500_000, reason: "goodwill reversal", by: "ana"))
            #expect(adjusted.balanceMicros == -2_500_000 && adjusted.ledger.first?.by == "ana" && adjusted.ledger.first?.reference == "goodwill reversal")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func theFraudGuardSuspendsOnSpendPerHourAndOnHighCostCallRate(backend: TestBackend) async throws {
        let customers = """
            customer,type,rate_plan,max_spend_per_hour,max_high_cost_calls_per_minute,high_cost_rate
            spender,prepaid,retail,1,0,0
            dialler,prepaid,retail,0,3,1
            """
        try await Self.withBilling(backend, customers: customers) { billing in
            try await Self.topUp(billing, "spender", "100")
            try await Self.topUp(billing, "dialler", "100")
            let now = Date()
            _ = try await billing.ingest(Self.summary("f1", customer: "spender", seconds: 600, at: now.addingTimeInterval(-700)), now: now)
            #expect(try await billing.account("spender").status == "active")
            _ = try await billing.ingest(Self.summary("f2", customer: "spender", seconds: 600, at: now.addingTimeInterval(-650)), now: now)
            let spender = try await billing.account("spender")
            #expect(spender.status == "suspended")
            #expect(spender.statusReason?.hasPrefix("spent 1.2 EUR in an hour (limit 1)") == true)
            // High-cost (3.00/min ≥ 1.00): three a minute are allowed, the fourth suspends.
            for index in 0..<3 {
                #expect(try await billing.authorize(AuthorizeRequest(customer: "dialler", callee: "34801234567", callID: "h\(index)"), now: now).allowed)
            }
            let fourth = try await billing.authorize(AuthorizeRequest(customer: "dialler", callee: "34801234567", callID: "h3"), now: now)
            #expect(!fourth.allowed && fourth.status == 403)
            #expect(try await billing.account("dialler").status == "suspended")
            // A normal destination is refused too now: the account is suspended.
            #expect(try await billing.authorize(AuthorizeRequest(customer: "dialler", callee: "34911234567", callID: "n"), now: now).status == 403)
            let events = try await billing.store.store.query("SELECT kind FROM billing_events ORDER BY kind")
            #expect(try events.map { try $0.string("kind") } == ["high_cost_calls", "spend_per_hour"])
        }
    }

    /// Two billing instances of a site on one database: the high-cost window is counted in the store, so calls
    /// authorised by either count, and a resent authorisation (the same call id) counts once.
    @Test(arguments: TestBackend.allCases)
    func twoBillingInstancesCountOneHighCostWindowAndAResentAuthorisationOnce(backend: TestBackend) async throws {
        let customers = "customer,type,rate_plan,max_spend_per_hour,max_high_cost_calls_per_minute,high_cost_rate\ndialler,prepaid,retail,0,3,1\n"
        try await Self.withBilling(backend, customers: customers) { first in
            let second = try await Billing(store: first.store, settings: BillingSettings(), logger: Logger(label: "test.billing-2"))
            try await Self.topUp(first, "dialler", "100")
            let now = Date()
            func authorize(_ billing: Billing, _ callID: String) async throws -> Authorization {
                try await billing.authorize(AuthorizeRequest(customer: "dialler", callee: "34801234567", callID: callID), now: now)
            }
            #expect(try await authorize(first, "h0").allowed)
            #expect(try await authorize(second, "h1").allowed)
            // h1 again, on the other instance (the SBC's link resent it): still two calls in the window.
            #expect(try await authorize(first, "h1").allowed)
            #expect(try await authorize(second, "h2").allowed)
            let fourth = try await authorize(first, "h3")
            #expect(!fourth.allowed && fourth.status == 403, "the fourth high-cost call in a minute, over both instances")
            #expect(try await first.account("dialler").status == "suspended")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func cdrPagesCoverTheRangeOnceInOrderAndFilterByCustomer(backend: TestBackend) async throws {
        try await Self.withBilling(backend) { billing in
            for index in 0..<25 {
                _ = try await billing.ingest(Self.summary("p\(index)", customer: index % 2 == 0 ? "pre" : "post", seconds: 1, at: Self.start.addingTimeInterval(Double(index / 3))))
            }
            var seen: [String] = []
            var after: String?
            repeat {
                let page = try await billing.cdrs(CDRQuery(from: "2026-12-01T00:00:00.000Z", to: "2026-12-02T00:00:00.000Z", customer: nil, after: after, limit: 4))
                seen += page.cdrs.map(\.id)
                after = page.next
            } while after != nil
            #expect(seen.count == 25 && Set(seen).count == 25)
            let post = try await billing.cdrs(CDRQuery(from: "2026-12-01T00:00:00.000Z", to: "2026-12-02T00:00:00.000Z", customer: "post", after: nil, limit: 100))
            #expect(post.cdrs.count == 12 && post.cdrs.allSatisfy { $0.customer == "post" })
            let none = try await billing.cdrs(CDRQuery(from: "2026-12-02T00:00:00.000Z", to: "2026-12-03T00:00:00.000Z", customer: nil, after: nil, limit: 100))
            #expect(none.cdrs.isEmpty && none.next == nil)
        }
    }
}
