import Testing
import TroncalSIP

/// Every timer and retransmission path of the four transaction machines, on UDP and on the reliable transports,
/// checked as timelines on a virtual clock (see `TransactionTimeline` for the table).
@Suite("Transaction timers and retransmissions (RFC 3261 §17, RFC 6026)")
struct TransactionTimelineTests {
    @Test(arguments: TransactionTimeline.all)
    func transactionSendsDeliversAndEndsExactlyWhenTheRFCSays(_ timeline: TransactionTimeline) throws {
        let simulator = try timeline.run()
        #expect(simulator.log.sorted() == timeline.expectedLog)
    }

    @Test(arguments: TransactionTimeline.all.filter(\.transport.isReliable))
    func reliableTransportsNeverStartRetransmissionTimersAEOrG(_ timeline: TransactionTimeline) throws {
        let simulator = try timeline.run()
        let retransmissionTimers: Set<TransactionTimer> = [.a, .e, .g]
        #expect(simulator.timerStarts.filter { retransmissionTimers.contains($0.timer) }.isEmpty)
    }

    @Test(arguments: TransactionTimeline.all)
    func transactionIsSilentOnceTerminated(_ timeline: TransactionTimeline) throws {
        let simulator = try timeline.run()
        #expect(simulator.actionsAfterTermination.isEmpty)
        #expect(simulator.log.filter { $0.event == .terminated }.count <= 1)
        #expect(simulator.transaction.isTerminated == simulator.isTerminated)
    }
}
