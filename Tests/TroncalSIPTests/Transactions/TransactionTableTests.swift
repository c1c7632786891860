import Testing
import TroncalSIP

@Suite("TransactionTable: routing, lifetime and bound")
struct TransactionTableTests {
    typealias F = TransactionFixtures

    @Test func inviteOverUDPRunsThroughTheTableFromFirstRequestToTimerI() throws {
        var table = TransactionTable()
        let invite = try F.request(.invite)
        guard case .newRequest(let id) = table.receive(.request(invite)) else {
            Issue.record("a first INVITE must ask for a new server transaction")
            return
        }
        let server = try #require(SIPTransaction(serving: invite, reliable: false))
        guard case .started(id, let first) = table.start(server) else {
            Issue.record("the server transaction must start under the id the route gave")
            return
        }
        #expect(first.contains(.deliver(.request(invite))))
        guard case .matched(id, let absorbed) = table.receive(.request(invite)) else {
            Issue.record("the retransmission must match")
            return
        }
        #expect(absorbed.count == 1)  // 100 Trying again
        _ = table.send(try F.response(486, to: invite), on: id)
        guard case .matched(id, _) = table.receive(.request(try F.ack(for: invite))) else {
            Issue.record("the ACK must match the INVITE transaction")
            return
        }
        #expect(table.count == 1)
        #expect(table.timerFired(.i, on: id) == [.terminated])
        #expect(table.isEmpty)
        // Gone: a late timer does nothing, and the INVITE would now start afresh.
        #expect(table.timerFired(.g, on: id).isEmpty)
        #expect(table.receive(.request(invite)) == .newRequest(id))
    }

    @Test(arguments: TestTransport.allCases)
    func transactionLeavesTheTableTheInstantItTerminates(transport: TestTransport) throws {
        var table = TransactionTable()
        let options = try F.request(.options, branch: "z9hG4bKq1")
        guard
            case .started(let id, _) = table.start(
                try #require(SIPTransaction(sending: options, reliable: transport.isReliable)))
        else {
            Issue.record("not started")
            return
        }
        guard case .matched(id, let actions) = table.receive(.response(try F.response(200, to: options))) else {
            Issue.record("the 200 must match")
            return
        }
        // Reliable: timer K is zero, so the transaction is over at once; UDP: it waits for K.
        #expect(actions.contains(.terminated) == transport.isReliable)
        #expect(table.count == (transport.isReliable ? 0 : 1))
        if !transport.isReliable {
            #expect(table.receive(.response(try F.response(200, to: options))) == .matched(id, []))
            #expect(table.timerFired(.k, on: id) == [.terminated])
            #expect(table.isEmpty)
        }
        // After it, a retransmitted 200 is stray.
        #expect(table.receive(.response(try F.response(200, to: options))) == .unmatchedResponse)
    }

    @Test func fullTableRefusesNewTransactionsAndNeverEvictsLiveOnes() throws {
        var table = TransactionTable(capacity: 2)
        let first = try F.request(.options, branch: "z9hG4bKc1")
        let second = try F.request(.options, branch: "z9hG4bKc2")
        let third = try F.request(.options, branch: "z9hG4bKc3")
        for request in [first, second] {
            guard case .started = table.start(try #require(SIPTransaction(serving: request, reliable: true))) else {
                Issue.record("not started")
                return
            }
        }
        #expect(table.isFull)
        #expect(table.start(try #require(SIPTransaction(serving: third, reliable: true))) == .full)
        // Both live transactions still absorb their retransmissions.
        for request in [first, second] {
            guard case .matched = table.receive(.request(request)) else {
                Issue.record("a live transaction was evicted")
                return
            }
        }
        // One finishes; there is room again.
        let firstID = try #require(TransactionTable.id(matching: .request(first)))
        #expect(table.send(try F.response(200, to: first), on: firstID).contains(.terminated))
        guard case .started = table.start(try #require(SIPTransaction(serving: third, reliable: true))) else {
            Issue.record("room must be made by a terminated transaction")
            return
        }
    }

    @Test func zeroCapacityRefusesEverything() throws {
        var table = TransactionTable(capacity: -1)
        #expect(table.capacity == 0)
        #expect(table.start(try #require(SIPTransaction(serving: try F.request(.invite), reliable: false))) == .full)
    }

    @Test func startingTheSameRequestTwiceIsADuplicate() throws {
        var table = TransactionTable()
        let invite = try F.request(.invite)
        guard case .started(let id, _) = table.start(try #require(SIPTransaction(serving: invite, reliable: false)))
        else {
            Issue.record("not started")
            return
        }
        #expect(table.start(try #require(SIPTransaction(serving: invite, reliable: false))) == .duplicate(id))
        #expect(table.count == 1)
    }

    @Test func requestWithoutViaCannotBeStarted() throws {
        var table = TransactionTable()
        let invite = try F.request(.invite, withVia: false)
        #expect(table.start(try #require(SIPTransaction(serving: invite, reliable: false))) == .unmatchable)
        #expect(table.receive(.request(invite)) == .unmatchable)
    }

    @Test func ackNeverCreatesATransaction() throws {
        let ack = try F.request(.ack, toTag: F.responseTag)
        #expect(SIPTransaction(serving: ack, reliable: false) == nil)
        #expect(SIPTransaction(sending: ack, reliable: false) == nil)
        var table = TransactionTable()
        #expect(table.receive(.request(ack)) == .ackForTransactionUser)
    }

    @Test(arguments: [SIPMethod.invite, .options, .bye, .register, .cancel, .subscribe])
    func methodChoosesTheKindOfTransaction(method: SIPMethod) throws {
        let request = try F.request(method)
        let server = try #require(SIPTransaction(serving: request, reliable: false))
        let client = try #require(SIPTransaction(sending: request, reliable: false))
        switch (server, client) {
        case (.inviteServer, .inviteClient): #expect(method == .invite)
        case (.nonInviteServer, .nonInviteClient): #expect(method != .invite)
        default: Issue.record("\(method) built the wrong kinds")
        }
        #expect(server.side == .server)
        #expect(client.side == .client)
    }

    @Test func eventsForAnotherSideAreIgnored() throws {
        let options = try F.request(.options)
        var client = try #require(SIPTransaction(sending: options, reliable: false))
        _ = client.start()
        #expect(client.receive(.request(options)).isEmpty)
        #expect(client.send(try F.response(200, to: options)).isEmpty)
        var server = try #require(SIPTransaction(serving: options, reliable: false))
        _ = server.start()
        #expect(server.receive(.response(try F.response(200, to: options))).isEmpty)
    }
}
