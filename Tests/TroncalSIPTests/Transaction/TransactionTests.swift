import Testing
import TroncalSIP

@Suite("SIP transactions (RFC 3261 §17, RFC 6026)")
struct TransactionTests {
    static func request(_ method: String, branch: String = "z9hG4bK74bf9", toTag: String? = nil) -> SIPRequest {
        let text = """
            \(method) sip:bob@biloxi.example.com SIP/2.0\r
            Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=\(branch)\r
            Max-Forwards: 70\r
            Route: <sip:proxy.example.com;lr>\r
            From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r
            To: Bob <sip:bob@biloxi.example.com>\(toTag.map { ";tag=\($0)" } ?? "")\r
            Call-ID: 3848276298220188511@atlanta.example.com\r
            CSeq: 2 \(method == "ACK" ? "INVITE" : method)\r
            Content-Length: 0\r
            \r

            """
        guard case .request(let request)? = try? SIPMessageParser().parse(Array(text.utf8)) else {
            Issue.record("test request does not parse")
            return SIPRequest(method: .options, uri: SIPURI("sip:x@y")!)
        }
        return request
    }

    static func response(_ status: Int, to request: SIPRequest) -> SIPResponse {
        InviteServerTransaction.response(status, "R", to: request, toTag: status > 100 ? "8321234356" : nil)
    }

    func sent(_ actions: [TransactionAction]) -> [SIPMessage] {
        actions.compactMap { if case .send(let message) = $0 { message } else { nil } }
    }

    func started(_ actions: [TransactionAction]) -> [TransactionTimer: Duration] {
        var timers: [TransactionTimer: Duration] = [:]
        for case .startTimer(let timer, let duration) in actions { timers[timer] = duration }
        return timers
    }

    // MARK: INVITE client

    @Test func inviteClientOnUDPRetransmitsWithTimerADoublingUntilTimerBTimesOut() {
        var transaction = InviteClientTransaction(invite: Self.request("INVITE"), reliable: false)
        let start = transaction.start()
        #expect(sent(start).count == 1)
        #expect(started(start) == [.a: .milliseconds(500), .b: .seconds(32)])
        var intervals: [Duration] = []
        for _ in 0..<6 {
            let actions = transaction.timerFired(.a)
            #expect(sent(actions).count == 1)
            intervals.append(started(actions)[.a] ?? .zero)
        }
        #expect(intervals == [1, 2, 4, 8, 16, 32].map { Duration.seconds($0) })
        let timeout = transaction.timerFired(.b)
        #expect(timeout.contains(.timedOut))
        #expect(timeout.contains(.terminated))
        #expect(transaction.state == .terminated)
    }

    @Test func inviteClientOnReliableTransportNeverRetransmits() {
        var transaction = InviteClientTransaction(invite: Self.request("INVITE"), reliable: true)
        #expect(started(transaction.start()) == [.b: .seconds(32)])
        #expect(transaction.timerFired(.a).isEmpty)
    }

    @Test func provisionalStopsRetransmissionAndFinalFailureIsAckedAndAbsorbedUntilTimerD() throws {
        let invite = Self.request("INVITE")
        var transaction = InviteClientTransaction(invite: invite, reliable: false)
        _ = transaction.start()
        let ringing = transaction.receive(Self.response(180, to: invite))
        #expect(ringing.contains(.cancelTimer(.a)))
        #expect(ringing.contains(.deliver(.response(Self.response(180, to: invite)))))
        #expect(transaction.state == .proceeding)
        #expect(transaction.timerFired(.b).isEmpty)  // B only times out the Calling state
        let busy = transaction.receive(Self.response(486, to: invite))
        #expect(transaction.state == .completed)
        #expect(started(busy) == [.d: .seconds(32)])
        let ack = try #require(sent(busy).first)
        guard case .request(let ackRequest) = ack else { Issue.record("not a request"); return }
        #expect(ackRequest.method == .ack)
        #expect(ackRequest.uri == invite.uri)
        #expect(ackRequest.headers.first(.to)?.valueString.contains("tag=8321234356") == true)
        #expect((try ackRequest.headers.cseq())?.description == "2 ACK")
        #expect((try ackRequest.headers.topVia())?.branch == "z9hG4bK74bf9")
        #expect(ackRequest.headers.count(of: .route) == 1)
        // A retransmitted 486 is ACKed again and not delivered.
        let again = transaction.receive(Self.response(486, to: invite))
        #expect(sent(again).count == 1)
        #expect(!again.contains { if case .deliver = $0 { true } else { false } })
        #expect(transaction.timerFired(.d) == [.terminated])
    }

    @Test func finalFailureOnReliableTransportTerminatesAtOnce() {
        let invite = Self.request("INVITE")
        var transaction = InviteClientTransaction(invite: invite, reliable: true)
        _ = transaction.start()
        let actions = transaction.receive(Self.response(503, to: invite))
        #expect(actions.last == .terminated)
        #expect(transaction.state == .terminated)
    }

    @Test func twoHundredGoesToTheTransactionUserWithItsRetransmissionsUntilTimerM() {
        let invite = Self.request("INVITE")
        var transaction = InviteClientTransaction(invite: invite, reliable: false)
        _ = transaction.start()
        let ok = transaction.receive(Self.response(200, to: invite))
        #expect(transaction.state == .accepted)
        #expect(sent(ok).isEmpty)  // the TU ACKs a 2xx end to end
        #expect(started(ok) == [.m: .seconds(32)])
        #expect(transaction.receive(Self.response(200, to: invite)) == [.deliver(.response(Self.response(200, to: invite)))])
        #expect(transaction.timerFired(.m) == [.terminated])
    }

    @Test func transportErrorInformsTheTransactionUser() {
        var transaction = InviteClientTransaction(invite: Self.request("INVITE"), reliable: false)
        _ = transaction.start()
        #expect(transaction.transportError().contains(.transportFailed))
        #expect(transaction.state == .terminated)
    }

    // MARK: non-INVITE client

    @Test func nonInviteClientTimerEDoublesUpToT2ThenTimerFTimesOut() {
        var transaction = NonInviteClientTransaction(request: Self.request("OPTIONS"), reliable: false)
        #expect(started(transaction.start()) == [.e: .milliseconds(500), .f: .seconds(32)])
        let intervals = (0..<5).map { _ in started(transaction.timerFired(.e))[.e] ?? .zero }
        #expect(intervals == [.seconds(1), .seconds(2), .seconds(4), .seconds(4), .seconds(4)])
        #expect(transaction.timerFired(.f).contains(.timedOut))
    }

    @Test func nonInviteClientInProceedingRetransmitsEveryT2AndAbsorbsFinalsDuringTimerK() {
        let options = Self.request("OPTIONS")
        var transaction = NonInviteClientTransaction(request: options, reliable: false)
        _ = transaction.start()
        _ = transaction.receive(Self.response(100, to: options))
        #expect(transaction.state == .proceeding)
        #expect(started(transaction.timerFired(.e))[.e] == .seconds(4))
        let final = transaction.receive(Self.response(200, to: options))
        #expect(started(final) == [.k: .seconds(5)])
        #expect(transaction.receive(Self.response(200, to: options)).isEmpty)
        #expect(transaction.timerFired(.k) == [.terminated])
    }

    @Test func nonInviteClientOnReliableTransportHasNoTimerEOrK() {
        let options = Self.request("OPTIONS")
        var transaction = NonInviteClientTransaction(request: options, reliable: true)
        #expect(started(transaction.start()) == [.f: .seconds(32)])
        #expect(transaction.receive(Self.response(200, to: options)).last == .terminated)
    }

    // MARK: INVITE server

    @Test func inviteServerSends100TryingAndResendsTheLastResponseOnRetransmission() {
        let invite = Self.request("INVITE")
        var transaction = InviteServerTransaction(invite: invite, reliable: false)
        let start = transaction.start()
        guard case .response(let trying)? = sent(start).first else { Issue.record("no 100"); return }
        #expect(trying.statusCode == 100)
        #expect(start.contains(.deliver(.request(invite))))
        _ = transaction.send(Self.response(180, to: invite))
        #expect(sent(transaction.receive(invite)).map { if case .response(let r) = $0 { r.statusCode } else { 0 } } == [180])
    }

    @Test func inviteServerRetransmitsFailureWithTimerGUntilAckThenAbsorbsForTimerI() {
        let invite = Self.request("INVITE")
        var transaction = InviteServerTransaction(invite: invite, reliable: false)
        _ = transaction.start()
        let final = transaction.send(Self.response(486, to: invite))
        #expect(started(final) == [.g: .milliseconds(500), .h: .seconds(32)])
        let intervals = (0..<5).map { _ in started(transaction.timerFired(.g))[.g] ?? .zero }
        #expect(intervals == [.seconds(1), .seconds(2), .seconds(4), .seconds(4), .seconds(4)])
        #expect(sent(transaction.receive(invite)).count == 1)
        let ack = transaction.receive(Self.request("ACK", toTag: "8321234356"))
        #expect(transaction.state == .confirmed)
        #expect(started(ack) == [.i: .seconds(5)])
        #expect(transaction.receive(Self.request("ACK", toTag: "8321234356")).isEmpty)
        #expect(transaction.timerFired(.i) == [.terminated])
    }

    @Test func inviteServerWithoutAckTimesOutWithTimerH() {
        let invite = Self.request("INVITE")
        var transaction = InviteServerTransaction(invite: invite, reliable: true)
        _ = transaction.start()
        #expect(started(transaction.send(Self.response(404, to: invite))) == [.h: .seconds(32)])
        #expect(transaction.timerFired(.h).contains(.timedOut))
    }

    @Test func inviteServerAcceptedPassesAcksUpAndLetsTheUserRetransmitTheTwoHundred() {
        let invite = Self.request("INVITE")
        var transaction = InviteServerTransaction(invite: invite, reliable: false)
        _ = transaction.start()
        #expect(started(transaction.send(Self.response(200, to: invite))) == [.l: .seconds(32)])
        #expect(transaction.state == .accepted)
        #expect(sent(transaction.send(Self.response(200, to: invite))).count == 1)
        #expect(transaction.receive(invite).isEmpty)
        let ack = Self.request("ACK", branch: "z9hG4bKother", toTag: "8321234356")
        #expect(transaction.receive(ack) == [.deliver(.request(ack))])
        #expect(transaction.timerFired(.l) == [.terminated])
    }

    // MARK: non-INVITE server

    @Test func nonInviteServerResendsFinalOnRetransmissionUntilTimerJ() {
        let options = Self.request("OPTIONS")
        var transaction = NonInviteServerTransaction(request: options, reliable: false)
        #expect(transaction.start() == [.deliver(.request(options))])
        #expect(transaction.receive(options).isEmpty)
        #expect(started(transaction.send(Self.response(200, to: options))) == [.j: .seconds(32)])
        #expect(sent(transaction.receive(options)).count == 1)
        #expect(transaction.timerFired(.j) == [.terminated])
    }

    @Test func nonInviteServerOnReliableTransportTerminatesAfterTheFinal() {
        let options = Self.request("OPTIONS")
        var transaction = NonInviteServerTransaction(request: options, reliable: true)
        _ = transaction.start()
        #expect(transaction.send(Self.response(200, to: options)).last == .terminated)
    }

    // MARK: matching

    @Test func ackMatchesItsInviteAndCancelIsItsOwnTransaction() {
        let invite = TransactionKey.server(for: Self.request("INVITE"))
        #expect(invite != nil)
        #expect(TransactionKey.server(for: Self.request("ACK", toTag: "x")) == invite)
        #expect(TransactionKey.server(for: Self.request("CANCEL")) != invite)
        #expect(TransactionKey.server(for: Self.request("INVITE", branch: "z9hG4bKother")) != invite)
        let response = Self.response(180, to: Self.request("INVITE"))
        #expect(TransactionKey.client(for: response) == TransactionKey.client(for: Self.request("INVITE")))
    }

    @Test func rfc2543RequestsWithoutMagicCookieMatchByDialogFields() {
        let invite = Self.request("INVITE", branch: "oldstyle1")
        let key = TransactionKey.server(for: invite)
        guard case .rfc2543? = key else { Issue.record("expected RFC 2543 key"); return }
        #expect(TransactionKey.server(for: Self.request("ACK", branch: "oldstyle1", toTag: "t")) == key)
        #expect(TransactionKey.server(for: Self.request("OPTIONS", branch: "oldstyle1")) != key)
    }
}
