import Testing
import TroncalSIP

@Suite("INVITE client transaction: ACK, 2xx and CANCEL (RFC 3261 §17.1.1, §9.1, RFC 6026)")
struct InviteClientTransactionTests {
    static let nonSuccessFinals = [300, 302, 404, 486, 487, 503, 603, 699]

    func sentRequests(_ actions: [TransactionAction]) -> [SIPRequest] {
        actions.compactMap { if case .send(.request(let request)) = $0 { request } else { nil } }
    }

    @Test(arguments: nonSuccessFinals, TestTransport.allCases)
    func ackForNonSuccessFinalFollowsSection17_1_1_3(status: Int, transport: TestTransport) throws {
        let invite = try TransactionFixtures.request(.invite)
        var transaction = InviteClientTransaction(invite: invite, reliable: transport.isReliable)
        _ = transaction.start()
        let response = try TransactionFixtures.response(status, to: invite)
        let acks = sentRequests(transaction.receive(response))
        // An ACK even on a reliable transport.
        let ack = try #require(acks.count == 1 ? acks.first : nil)

        #expect(ack.method == .ack)
        #expect(ack.uri == invite.uri)
        let vias = try ack.headers.via()
        #expect(vias.count == 1)
        #expect(vias.first == (try invite.headers.topVia()))
        #expect(try ack.headers.callID() == (try invite.headers.callID()))
        #expect(try ack.headers.from() == (try invite.headers.from()))
        #expect(try ack.headers.to() == (try response.headers.to()))
        #expect(try ack.headers.to()?.tag == TransactionFixtures.responseTag)
        #expect(try ack.headers.cseq() == SIPCSeq(314_159, .ack))
        #expect(try ack.headers.route() == (try invite.headers.route()))
        #expect(ack.body.isEmpty)
        #expect(try ack.headers.contentLength() ?? 0 == 0)
        #expect(!ack.headers.contains(.contentType))
        // The ACK lands in the INVITE's server transaction at the next hop.
        #expect(TransactionKey.server(for: ack) == TransactionKey.server(for: invite))
    }

    @Test(arguments: nonSuccessFinals)
    func retransmittedFinalIsAckedAgainWithTheSameAck(status: Int) throws {
        let invite = try TransactionFixtures.request(.invite)
        var transaction = InviteClientTransaction(invite: invite, reliable: false)
        _ = transaction.start()
        let response = try TransactionFixtures.response(status, to: invite)
        let first = sentRequests(transaction.receive(response))
        let again = transaction.receive(response)
        #expect(sentRequests(again) == first)
        #expect(!again.contains { if case .deliver = $0 { true } else { false } })
    }

    @Test(arguments: [200, 202, 299], TestTransport.allCases)
    func successIsLeftToTheTransactionUserToAcknowledge(status: Int, transport: TestTransport) throws {
        let invite = try TransactionFixtures.request(.invite)
        var transaction = InviteClientTransaction(invite: invite, reliable: transport.isReliable)
        _ = transaction.start()
        let response = try TransactionFixtures.response(status, to: invite)
        let actions = transaction.receive(response)
        #expect(sentRequests(actions).isEmpty)
        #expect(actions.contains(.deliver(.response(response))))
        #expect(transaction.state == .accepted)
        // A 2xx from another branch of a fork, with another To tag, reaches the TU too.
        let forked = try TransactionFixtures.response(status, to: invite, toTag: "fork2")
        #expect(transaction.receive(forked) == [.deliver(.response(forked))])
    }

    struct StateRule: Sendable, CustomTestStringConvertible {
        var status: Int
        var transport: TestTransport
        var state: InviteClientTransaction.State
        var testDescription: String { "\(status) over \(transport.rawValue) → \(state)" }
    }

    static let stateTable: [StateRule] = TestTransport.allCases.flatMap { transport in
        [
            StateRule(status: 100, transport: transport, state: .proceeding),
            StateRule(status: 180, transport: transport, state: .proceeding),
            StateRule(status: 199, transport: transport, state: .proceeding),
            StateRule(status: 200, transport: transport, state: .accepted),
            StateRule(status: 299, transport: transport, state: .accepted),
            StateRule(status: 300, transport: transport, state: transport.isReliable ? .terminated : .completed),
            StateRule(status: 486, transport: transport, state: transport.isReliable ? .terminated : .completed),
            StateRule(status: 699, transport: transport, state: transport.isReliable ? .terminated : .completed),
        ]
    }

    @Test(arguments: stateTable)
    func responseClassDecidesTheNextStateFromCalling(_ rule: StateRule) throws {
        let invite = try TransactionFixtures.request(.invite)
        var transaction = InviteClientTransaction(invite: invite, reliable: rule.transport.isReliable)
        _ = transaction.start()
        _ = transaction.receive(try TransactionFixtures.response(rule.status, to: invite))
        #expect(transaction.state == rule.state)
    }

    @Test func cancelCarriesTheInviteIdentityAndTargetsItsServerTransaction() throws {
        let invite = try TransactionFixtures.request(.invite)
        var transaction = InviteClientTransaction(invite: invite, reliable: false)
        _ = transaction.start()
        let cancel = transaction.cancel()

        #expect(cancel.method == .cancel)
        #expect(cancel.uri == invite.uri)
        #expect(try cancel.headers.via() == [try #require(try invite.headers.topVia())])
        #expect(try cancel.headers.callID() == (try invite.headers.callID()))
        #expect(try cancel.headers.from() == (try invite.headers.from()))
        #expect(try cancel.headers.to() == (try invite.headers.to()))
        #expect(try cancel.headers.cseq() == SIPCSeq(314_159, .cancel))
        #expect(try cancel.headers.route() == (try invite.headers.route()))
        #expect(try cancel.headers.maxForwards() == 70)
        #expect(cancel.body.isEmpty)
        // Its own transaction at the next hop, pointing at the INVITE's.
        let cancelKey = try #require(TransactionKey.server(for: cancel))
        #expect(cancelKey != TransactionKey.server(for: invite))
        #expect(TransactionKey.invite(cancelledBy: cancel) == TransactionKey.server(for: invite))
    }

    @Test func cancelIsAllowedOnlyAfterAProvisionalAndBeforeAFinal() throws {
        let invite = try TransactionFixtures.request(.invite)
        var transaction = InviteClientTransaction(invite: invite, reliable: false)
        _ = transaction.start()
        #expect(!transaction.acceptsCancel)
        _ = transaction.receive(try TransactionFixtures.response(180, to: invite))
        #expect(transaction.acceptsCancel)
        _ = transaction.receive(try TransactionFixtures.response(487, to: invite))
        #expect(!transaction.acceptsCancel)
    }

    /// RFC 3261 Figure 5: a transport error in Completed (the ACK could not be sent) moves to Terminated and
    /// informs the TU.
    @Test(arguments: TestTransport.allCases.filter { !$0.isReliable })
    func transportErrorInCompletedInformsTheTransactionUser(transport: TestTransport) throws {
        let invite = try TransactionFixtures.request(.invite)
        var transaction = InviteClientTransaction(invite: invite, reliable: transport.isReliable)
        _ = transaction.start()
        _ = transaction.receive(try TransactionFixtures.response(486, to: invite))
        let actions = transaction.transportError()
        #expect(transaction.state == .terminated)
        #expect(actions.contains(.transportFailed))
    }
}
