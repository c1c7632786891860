import Foundation
import TestSupport
import Testing
import TroncalProtocol
import TroncalStore

@testable import TroncalBilling

/// The calls of a lost SBC: its heartbeats (`billing.calls`) carry a checkpoint of each answered call; when they stop
/// for the silence, or the instance starts again, billing makes each call's CDR itself (ended at the last heartbeat),
/// charges it once and releases its reservation. A call whose CDR came from the SBC is never recorded twice.
@Suite struct BillingCheckpointTests {
    static let start = BillingStoreTests.start

    /// An answered call as the SBC checkpoints it: as if it ended at `at`.
    static func checkpoint(_ id: String, callID: String, answeredAt answer: Date, at: Date) -> CallSummary {
        var summary = BillingStoreTests.summary(id, callID: callID, seconds: 1, at: answer.addingTimeInterval(-2))
        summary.endAt = at
        summary.durationMilliseconds = Int(at.timeIntervalSince(answer) * 1000)
        summary.disconnect = CallSummary.Disconnect(by: .sbc, status: 200, reason: "SBC lost: ended at its last heartbeat")
        return summary
    }

    static func reservations(_ billing: Billing) async throws -> Int {
        Int(try await billing.store.store.query("SELECT COUNT(*) AS n FROM billing_reservations")[0].int("n"))
    }

    @Test(arguments: TestBackend.allCases)
    func theCallsOfAnSBCWhoseHeartbeatsStopAreEndedAtTheLastHeartbeatChargedOnceAndReleased(backend: TestBackend) async throws {
        try await BillingStoreTests.withBilling(backend) { billing in
            try await BillingStoreTests.topUp(billing, "pre", "10")
            let grant = try await billing.authorize(AuthorizeRequest(customer: "pre", callee: "34911234567", callID: "k1"), now: Self.start)
            #expect(grant.allowed)
            let answer = Self.start.addingTimeInterval(2)
            let report = CallCheckpoints(
                instance: "sbc-1", boot: "run-1", startedAt: Self.start.addingTimeInterval(-3600),
                answered: [Self.checkpoint("k1-summary", callID: "k1", answeredAt: answer, at: answer)])
            #expect(try await billing.record(report, now: answer).stored == 1)
            // Heartbeats go on for 60 s: the call is up, nothing is closed while they come.
            for second in stride(from: 1, through: 60, by: 1) {
                _ = try await billing.record(
                    CallCheckpoints(instance: "sbc-1", boot: "run-1", startedAt: report.startedAt), now: answer.addingTimeInterval(Double(second)))
                #expect(try await billing.closeLostCalls(silence: 3, now: answer.addingTimeInterval(Double(second) + 0.5)) == 0)
            }
            #expect(try await Self.reservations(billing) == 1)
            // Then silence: 3 s after the last heartbeat the call is closed at that heartbeat (60 s after its answer).
            #expect(try await billing.closeLostCalls(silence: 3, now: answer.addingTimeInterval(62.9)) == 0)
            #expect(try await billing.closeLostCalls(silence: 3, now: answer.addingTimeInterval(63.1)) == 1)
            let page = try await billing.cdrs(CDRQuery(from: "2026-12-01T00:00:00.000Z", to: "2026-12-02T00:00:00.000Z", customer: nil, after: nil, limit: 10))
            let cdr = try #require(page.cdrs.first)
            #expect(page.cdrs.count == 1)
            #expect(cdr.id == "k1-summary" && cdr.durationMilliseconds == 60_000 && cdr.disconnectBy == "sbc")
            #expect(cdr.billedSeconds == 60 && cdr.sellMicros == 60_000)
            let account = try await billing.account("pre")
            #expect(try await Self.reservations(billing) == 0, "the reservation is released with the CDR")
            #expect(account.balanceMicros == 10_000_000 - 60_000)
            // Nothing is closed twice; the SBC's own CDR, if it ever comes, is a duplicate; a late checkpoint is not kept.
            #expect(try await billing.closeLostCalls(silence: 3, now: answer.addingTimeInterval(120)) == 0)
            #expect(try await billing.ingest(BillingStoreTests.summary("k1-summary", callID: "k1", seconds: 61), now: answer.addingTimeInterval(121)).duplicate)
            let late = CallCheckpoints(
                instance: "sbc-1", boot: "run-1", startedAt: report.startedAt, ended: [BillingStoreTests.summary("k1-summary", callID: "k1", seconds: 61)])
            #expect(try await billing.record(late, now: answer.addingTimeInterval(122)).stored == 0)
            #expect(try await billing.account("pre").balanceMicros == 10_000_000 - 60_000)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func anSBCStartedAgainHasItsPreviousRunsCallsClosedAtOnceAndItsEndedCallsKeptAsTheyWere(backend: TestBackend) async throws {
        try await BillingStoreTests.withBilling(backend) { billing in
            try await BillingStoreTests.topUp(billing, "pre", "10")
            let answer = Self.start.addingTimeInterval(2)
            let old = Self.start.addingTimeInterval(-3600)
            // Run 1: one call up, one ended whose CDR is still in the SBC's spool.
            let ended = BillingStoreTests.summary("e1", callID: "e1", seconds: 30)
            _ = try await billing.record(
                CallCheckpoints(
                    instance: "sbc-1", boot: "run-1", startedAt: old, answered: [Self.checkpoint("u1", callID: "u1", answeredAt: answer, at: answer)],
                    ended: [ended]), now: answer.addingTimeInterval(1))
            // An answered checkpoint arriving after the final one does not replace it.
            _ = try await billing.record(
                CallCheckpoints(instance: "sbc-1", boot: "run-1", startedAt: old, answered: [Self.checkpoint("e1", callID: "e1", answeredAt: answer, at: answer)]),
                now: answer.addingTimeInterval(10))
            // The process is killed and started again at once: its new run's first heartbeat, well inside the silence.
            _ = try await billing.record(CallCheckpoints(instance: "sbc-1", boot: "run-2", startedAt: Self.start.addingTimeInterval(15)), now: answer.addingTimeInterval(14))
            #expect(try await billing.closeLostCalls(silence: 3, now: answer.addingTimeInterval(14.5)) == 2)
            let page = try await billing.cdrs(CDRQuery(from: "2026-12-01T00:00:00.000Z", to: "2026-12-02T00:00:00.000Z", customer: nil, after: nil, limit: 10))
            let byID = Dictionary(uniqueKeysWithValues: page.cdrs.map { ($0.id, $0) })
            #expect(byID["e1"]?.durationMilliseconds == 30_000, "the ended call's own summary: \(page.cdrs)")
            #expect(byID["u1"]?.durationMilliseconds == 10_000, "the call that was up ends at run 1's last heartbeat (10 s after its answer): \(page.cdrs)")
            // Run 2 is alive: another SBC's silence does not touch it.
            #expect(try await billing.closeLostCalls(silence: 3, now: answer.addingTimeInterval(15)) == 0)
        }
    }

    /// A call still ringing on an SBC that dies has no checkpoint and is owed no CDR; its reservation, made with the
    /// SBC's run named (from `routing.route`), is released as soon as the run is lost, once its answered calls have
    /// their CDRs. A live run's reservations and one made without a run are kept.
    @Test(arguments: TestBackend.allCases)
    func theReservationOfACallStillRingingOnALostSBCIsReleasedAtOnceAndALiveRunsAreKept(backend: TestBackend) async throws {
        try await BillingStoreTests.withBilling(backend) { billing in
            try await BillingStoreTests.topUp(billing, "pre", "10")
            let old = Self.start.addingTimeInterval(-3600)
            let answer = Self.start.addingTimeInterval(2)
            for (callID, sbc, boot) in [("up", "site-a/sbc-1", "run-1"), ("ringing", "site-a/sbc-1", "run-1"), ("other", "site-a/sbc-2", "run-9")] {
                let grant = try await billing.authorize(
                    AuthorizeRequest(customer: "pre", callee: "34911234567", callID: callID, sbc: sbc, sbcBoot: boot), now: Self.start)
                #expect(grant.allowed)
            }
            #expect(try await billing.authorize(AuthorizeRequest(customer: "pre", callee: "34911234567", callID: "anonymous"), now: Self.start).allowed)
            _ = try await billing.record(
                CallCheckpoints(instance: "site-a/sbc-1", boot: "run-1", startedAt: old, answered: [Self.checkpoint("up-summary", callID: "up", answeredAt: answer, at: answer)]),
                now: answer)
            _ = try await billing.record(CallCheckpoints(instance: "site-a/sbc-2", boot: "run-9", startedAt: old), now: answer.addingTimeInterval(5))
            // A renewal keeps the run with the reservation.
            #expect(try await billing.renew(RenewRequest(customer: "pre", callID: "up", elapsedSeconds: 1), now: answer).allowed)
            // While sbc-1 beats, nothing is released.
            #expect(try await billing.closeLostCalls(silence: 3, now: answer.addingTimeInterval(2)) == 0)
            #expect(try await Self.reservations(billing) == 4)
            var amounts: [String: Int64] = [:]
            for row in try await billing.store.store.query("SELECT call_id, amount_micros FROM billing_reservations") {
                amounts[try row.string("call_id")] = try row.int("amount_micros")
            }
            // sbc-1 falls silent: the answered call gets its CDR, the ringing one's reservation is released, in one pass.
            #expect(try await billing.closeLostCalls(silence: 3, now: answer.addingTimeInterval(3.5)) == 1)
            let left = try await billing.store.store.query("SELECT call_id FROM billing_reservations ORDER BY call_id").map { try $0.string("call_id") }
            #expect(left == ["anonymous", "other"], "sbc-2 is alive; a reservation without a run waits for its expiry")
            let account = try #require(try await billing.store.account("pre", now: answer.addingTimeInterval(4)))
            #expect(account.reservedMicros == (amounts["anonymous"] ?? -1) + (amounts["other"] ?? -1), "\(amounts)")
            let page = try await billing.cdrs(CDRQuery(from: "2026-12-01T00:00:00.000Z", to: "2026-12-02T00:00:00.000Z", customer: nil, after: nil, limit: 10))
            #expect(page.cdrs.map(\.callID) == ["up"], "only the answered call has a CDR")
            #expect(account.balanceMicros == 10_000_000 - (page.cdrs.first?.sellMicros ?? 0))
            // Released once: the next pass finds nothing.
            #expect(try await billing.store.releaseLostReservations(silentSince: answer.addingTimeInterval(1)).isEmpty)
        }
    }
}
