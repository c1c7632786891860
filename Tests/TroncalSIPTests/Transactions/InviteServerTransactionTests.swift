import Testing
import TroncalSIP

@Suite("INVITE server transaction: 100 Trying (RFC 3261 §17.2.1, §8.2.6)")
struct InviteServerTransactionTests {
    func sentResponses(_ actions: [TransactionAction]) -> [SIPResponse] {
        actions.compactMap { if case .send(.response(let response)) = $0 { response } else { nil } }
    }

    @Test(arguments: TestTransport.allCases)
    func hundredTryingGoesOutAtOnceCopyingTheRequestIdentityWithoutAToTag(transport: TestTransport) throws {
        let invite = try TransactionFixtures.request(.invite)
        var transaction = InviteServerTransaction(invite: invite, reliable: transport.isReliable)
        let actions = transaction.start()
        let trying = try #require(sentResponses(actions).first)

        #expect(trying.statusCode == 100)
        #expect(try trying.headers.via() == (try invite.headers.via()))
        #expect(try trying.headers.from() == (try invite.headers.from()))
        #expect(try trying.headers.to() == (try invite.headers.to()))
        #expect(try trying.headers.to()?.tag == nil)
        #expect(try trying.headers.callID() == (try invite.headers.callID()))
        #expect(try trying.headers.cseq() == (try invite.headers.cseq()))
        #expect(actions.contains(.deliver(.request(invite))))
        #expect(transaction.state == .proceeding)
        // No timers while the TU thinks: the INVITE server transaction has none in Proceeding.
        #expect(!actions.contains { if case .startTimer = $0 { true } else { false } })
    }

    /// RFC 3261 §8.2.6.1: a Timestamp in the request is copied into the 100 (Trying).
    @Test func hundredTryingCopiesTheTimestamp() throws {
        let invite = try TransactionFixtures.request(.invite)
        var transaction = InviteServerTransaction(invite: invite, reliable: false)
        let trying = try #require(sentResponses(transaction.start()).first)
        #expect(trying.headers.first(.timestamp)?.valueString == "54")
    }

    @Test(arguments: [180, 183], TestTransport.allCases)
    func retransmittedInviteResendsTheExactLastProvisional(status: Int, transport: TestTransport) throws {
        let invite = try TransactionFixtures.request(.invite)
        var transaction = InviteServerTransaction(invite: invite, reliable: transport.isReliable)
        _ = transaction.start()
        let provisional = try TransactionFixtures.response(status, to: invite)
        _ = transaction.send(provisional)
        #expect(transaction.receive(invite) == [.send(.response(provisional))])
    }

    @Test(arguments: [300, 404, 486, 500, 603], TestTransport.allCases)
    func retransmittedInviteInCompletedResendsTheExactFinal(status: Int, transport: TestTransport) throws {
        let invite = try TransactionFixtures.request(.invite)
        var transaction = InviteServerTransaction(invite: invite, reliable: transport.isReliable)
        _ = transaction.start()
        let final = try TransactionFixtures.response(status, to: invite)
        _ = transaction.send(final)
        #expect(transaction.state == .completed)
        #expect(transaction.receive(invite) == [.send(.response(final))])
    }

    @Test(arguments: TestTransport.allCases)
    func ackBeforeAnyFinalIsIgnored(transport: TestTransport) throws {
        let invite = try TransactionFixtures.request(.invite)
        var transaction = InviteServerTransaction(invite: invite, reliable: transport.isReliable)
        _ = transaction.start()
        #expect(transaction.receive(try TransactionFixtures.ack(for: invite)).isEmpty)
        #expect(transaction.state == .proceeding)
    }
}
