import Foundation
import Testing
import TroncalMedia
import TroncalProtocol
import TroncalCall
import TroncalSIP

@Suite("B2BUA call state machine")
struct B2BUACallTests {
    static let customerIP = "198.51.100.23"
    static let carrierIPs = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]

    static let sdp = "v=0\r\no=alice 1 1 IN IP4 \(customerIP)\r\ns=-\r\nc=IN IP4 \(customerIP)\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8\r\na=sendrecv\r\n"

    static let inviteText = """
        INVITE sip:34911234567@sbc.example.net SIP/2.0\r
        Via: SIP/2.0/UDP \(customerIP):5060;branch=z9hG4bK776asdhds;rport\r
        Max-Forwards: 70\r
        To: <sip:34911234567@sbc.example.net>\r
        From: "Alice" <sip:34600111222@\(customerIP)>;tag=1928301774\r
        Call-ID: a84b4c76e66710@\(customerIP)\r
        CSeq: 314159 INVITE\r
        Contact: <sip:alice@\(customerIP):5060>\r
        User-Agent: CustomerPBX/1.0\r
        Record-Route: <sip:proxy.customer.internal;lr>\r
        Supported: timer\r
        Content-Type: application/sdp\r
        Content-Length: \(sdp.utf8.count)\r
        \r

        """ + sdp

    static var invite: SIPRequest {
        get throws {
            guard case .request(let request) = try SIPMessageParser().parse(Array(inviteText.utf8)) else {
                throw SIPParseError(.invalidStartLine, detail: "not a request")
            }
            return request
        }
    }

    func makeCall() throws -> B2BUACall {
        B2BUACall(
            invite: try Self.invite, customer: "acme", site: "site-a", instance: "sbc-1",
            configuration: .init(
                customerSideContact: "192.0.2.10:5060", carrierSideContact: "10.0.0.10:5060", customerSideMediaAddress: "192.0.2.10",
                carrierSideMediaAddress: "10.0.0.10", relayPorts: (caller: 30000, callee: 30002), maximumDuration: .seconds(3600)),
            callerLocalTag: "sbc-a-tag", calleeCallID: "b-leg-call-id", calleeLocalTag: "sbc-b-tag", summaryID: "cdr-1",
            now: Date(timeIntervalSince1970: 1000))
    }

    func targets(_ count: Int) -> [RouteTarget] {
        (0..<count).map { RouteTarget(carrier: "carrier\($0 + 1)", trunk: "trunk\($0 + 1)", host: Self.carrierIPs[$0], port: 5060, transport: "udp", number: "34911234567", setupTimeoutMilliseconds: 8000) }
    }

    func response(
        _ status: Int, to request: SIPRequest, tag: String = "carrier-tag", sdp: Bool = false, contactHost: String = "203.0.113.3", formats: String = "0"
    ) -> SIPResponse {
        var headers = SIPHeaders()
        for field in request.headers where [.from, .callID, .cseq].contains(field.name) { headers.append(field) }
        if let to = request.headers.first(.to) { headers.append(.to, status > 100 ? "\(to.valueString);tag=\(tag)" : to.valueString) }
        headers.append(.contact, "<sip:carrier@\(contactHost):5060>")
        headers.append(.init(rawName: "Server", value: "CarrierSwitch 9 at \(contactHost)")!)
        let body = sdp ? Array("v=0\r\no=c 1 1 IN IP4 \(contactHost)\r\ns=-\r\nc=IN IP4 \(contactHost)\r\nt=0 0\r\nm=audio 50000 RTP/AVP \(formats)\r\n".utf8) : []
        if sdp { headers.append(.contentType, "application/sdp") }
        return SIPResponse(statusCode: status, reasonPhrase: "X", headers: headers, body: body)
    }

    func invites(_ actions: [B2BUACall.Action]) -> [(SIPRequest, RouteTarget)] {
        actions.compactMap { if case .inviteCallee(let request, let target) = $0 { (request, target) } else { nil } }
    }

    func callerResponses(_ actions: [B2BUACall.Action]) -> [SIPResponse] {
        actions.compactMap { if case .respondToCaller(let response) = $0 { response } else { nil } }
    }

    func summary(_ actions: [B2BUACall.Action]) -> CallSummary? {
        actions.lazy.compactMap { if case .finished(let summary) = $0 { summary } else { nil } }.first
    }

    let t0 = Date(timeIntervalSince1970: 1000)

    /// A ring group's members: each rings for its own time, a busy one is passed over, and the last failure is the
    /// caller's answer (with its own reason phrase).
    @Test func aTargetRingsForItsOwnTimeAndABusyOneIsPassedOverWhenTheDecisionSaysSo() throws {
        var call = try makeCall()
        _ = call.start()
        var members = targets(3)
        for index in members.indices {
            members[index].ringTimeoutMilliseconds = 5000
            members[index].huntOn = [486]
        }
        var actions = call.handle(.routed(RouteDecision(outcome: .route, targets: members)), now: t0)
        let first = try #require(invites(actions).first)
        actions = call.handle(.calleeResponse(response(180, to: first.0)), now: t0.addingTimeInterval(0.1))
        #expect(actions.contains { if case .startTimer(.setup, let limit) = $0 { limit == .seconds(5) } else { false } })
        actions = call.handle(.timerFired(.setup), now: t0.addingTimeInterval(5.1))
        let second = try #require(invites(actions).first)
        #expect(second.1.carrier == "carrier2")
        actions = call.handle(.calleeResponse(response(486, to: second.0)), now: t0.addingTimeInterval(5.2))
        let third = try #require(invites(actions).first, "a busy member was not passed over")
        #expect(third.1.carrier == "carrier3")
        actions = call.handle(.calleeResponse(response(486, to: third.0)), now: t0.addingTimeInterval(5.3))
        #expect(callerResponses(actions).map(\.statusCode) == [486])
        #expect(callerResponses(actions).first?.reasonPhraseString == "Busy Here")
    }

    @Test func failsOverFrom503ToNoAnswerToTheThirdCarrierAndRecordsTheAttemptsInOrder() throws {
        var call = try makeCall()
        let start = call.start()
        guard case .route(let request) = start.first else { Issue.record("no route request"); return }
        #expect(request.customer == "acme")
        #expect(request.callee == "34911234567")
        var actions = call.handle(.routed(RouteDecision(outcome: .route, targets: targets(3), maximumDurationSeconds: 90)), now: t0)
        let first = try #require(invites(actions).first)
        #expect(first.1.carrier == "carrier1")
        actions = call.handle(.calleeResponse(response(503, to: first.0)), now: t0.addingTimeInterval(0.1))
        let second = try #require(invites(actions).first)
        #expect(second.1.carrier == "carrier2")
        actions = call.handle(.timerFired(.setup), now: t0.addingTimeInterval(8.1))
        #expect(actions.contains { if case .cancelCallee = $0 { true } else { false } })
        let third = try #require(invites(actions).first)
        #expect(third.1.carrier == "carrier3")
        actions = call.handle(.calleeResponse(response(180, to: third.0)), now: t0.addingTimeInterval(8.3))
        #expect(callerResponses(actions).first?.statusCode == 180)
        actions = call.handle(.calleeResponse(response(200, to: third.0, sdp: true)), now: t0.addingTimeInterval(9))
        #expect(call.state == .answered)
        #expect(callerResponses(actions).first?.statusCode == 200)
        #expect(actions.contains { if case .startTimer(.duration, let d) = $0 { d == .seconds(90) } else { false } })
        #expect(actions.contains { if case .sendToCallee(let ack, _) = $0 { ack.method == .ack } else { false } })
        // The caller hangs up: the summary is spooled first; only then do the 200 and the BYE to the carrier go out.
        let hangUp = call.handle(.callerRequest(byeFromCaller()), now: t0.addingTimeInterval(39))
        let spooled = try #require(hangUp.lazy.compactMap { if case .spool(let summary) = $0 { summary } else { nil } }.first)
        #expect(spooled.durationMilliseconds == 30_000)
        #expect(callerResponses(hangUp).isEmpty)
        #expect(!hangUp.contains { if case .sendToCallee = $0 { true } else { false } })
        let released = call.handle(.summarySpooled, now: t0.addingTimeInterval(39.005))
        #expect(callerResponses(released).map(\.statusCode) == [200])
        #expect(released.contains { if case .sendToCallee(let bye, _) = $0 { bye.method == .bye } else { false } })
        #expect(call.summaryIsSpooled)
        actions = call.handle(.calleeDialogResponse(SIPResponse(statusCode: 200, reasonPhrase: "OK")), now: t0.addingTimeInterval(39.1))
        let cdr = try #require(summary(actions))
        #expect(cdr.attempts.map(\.carrier) == ["carrier1", "carrier2", "carrier3"])
        #expect(cdr.attempts.map(\.result) == [.failed, .noAnswer, .answered])
        #expect(cdr.attempts.map(\.status) == [503, nil, 200])
        #expect(cdr.durationMilliseconds == 30_000)
        #expect(cdr.disconnect.by == .caller)
    }

    func byeFromCaller() -> SIPRequest {
        var headers = SIPHeaders()
        headers.append(.via, "SIP/2.0/UDP \(Self.customerIP):5060;branch=z9hG4bKbye1")
        headers.append(.from, "\"Alice\" <sip:34600111222@\(Self.customerIP)>;tag=1928301774")
        headers.append(.to, "<sip:34911234567@sbc.example.net>;tag=sbc-a-tag")
        headers.append(.callID, "a84b4c76e66710@\(Self.customerIP)")
        headers.append(.cseq, "314160 BYE")
        return SIPRequest(method: .bye, uri: SIPURI("sip:192.0.2.10:5060")!, headers: headers)
    }

    @Test func calleeLegHidesTheCustomerAndCallerLegHidesTheCarrier() throws {
        var call = try makeCall()
        _ = call.start()
        var actions = call.handle(.routed(RouteDecision(outcome: .route, targets: targets(3))), now: t0)
        let (calleeInvite, _) = try #require(invites(actions).first)
        let wire = String(decoding: SIPMessage.request(calleeInvite).serialized(), as: UTF8.self)
        #expect(!wire.contains(Self.customerIP), "\(wire)")
        #expect(!wire.contains("a84b4c76e66710"))
        #expect(!wire.contains("1928301774"))
        #expect(!wire.contains("customer.internal"))
        #expect(!wire.contains("CustomerPBX"))
        #expect(wire.contains("m=audio 30002 RTP/AVP 0 8"))
        #expect(wire.contains("c=IN IP4 10.0.0.10"))
        #expect(actions.contains { if case .mediaDestination(.caller, Self.customerIP, 40000) = $0 { true } else { false } })

        actions = call.handle(.calleeResponse(response(183, to: calleeInvite, sdp: true, contactHost: "203.0.113.1")), now: t0)
        actions += call.handle(.calleeResponse(response(200, to: calleeInvite, sdp: true, contactHost: "203.0.113.1")), now: t0)
        for answer in callerResponses(actions) {
            let text = String(decoding: SIPMessage.response(answer).serialized(), as: UTF8.self)
            #expect(!text.contains("203.0.113"), "\(text)")
            #expect(!text.contains("CarrierSwitch"))
            #expect(!text.contains("b-leg-call-id"))
            #expect(text.contains("Call-ID: a84b4c76e66710@\(Self.customerIP)"))
            #expect(text.contains("tag=sbc-a-tag"))
        }
        #expect(callerResponses(actions).last.map { String(decoding: $0.body, as: UTF8.self).contains("m=audio 30000 RTP/AVP 0") } == true)
    }

    @Test func cancelBeforeAnswerCancelsTheCalleeAndAnswers487() throws {
        var call = try makeCall()
        _ = call.start()
        _ = call.handle(.routed(RouteDecision(outcome: .route, targets: targets(1))), now: t0)
        let actions = call.handle(.callerCancel, now: t0.addingTimeInterval(2))
        #expect(actions.contains { if case .cancelCallee = $0 { true } else { false } })
        #expect(callerResponses(actions).map(\.statusCode) == [487])
        let cdr = try #require(summary(actions))
        #expect(cdr.answerAt == nil)
        #expect(cdr.attempts.map(\.result) == [.cancelled])
        #expect(call.state == .ended)
    }

    /// A drained SBC at its bound: a call ringing at the carrier is cancelled there and refused to the caller with
    /// 503; its attempt is cancelled, not a failure, and nothing is reported to routing against the carrier. A call
    /// still waiting for routing gets 503 as well.
    @Test func terminatingACallBeingSetUpCancelsTheCarrierLegAndAnswers503WithoutBlamingTheCarrier() throws {
        var call = try makeCall()
        _ = call.start()
        let out = invites(call.handle(.routed(RouteDecision(outcome: .route, targets: targets(2))), now: t0))
        let invite = try #require(out.first?.0)
        _ = call.handle(.calleeResponse(response(180, to: invite)), now: t0.addingTimeInterval(1))
        let actions = call.terminate(reason: "SBC drained", now: t0.addingTimeInterval(3))
        #expect(actions.contains { if case .cancelCallee = $0 { true } else { false } })
        #expect(!actions.contains { if case .reportAttempt = $0 { true } else { false } }, "\(actions)")
        #expect(invites(actions).isEmpty, "no next carrier is tried")
        #expect(callerResponses(actions).map(\.statusCode) == [503])
        let cdr = try #require(summary(actions))
        #expect(cdr.answerAt == nil && cdr.attempts.map(\.result) == [.cancelled])
        #expect(cdr.disconnect.by == .sbc && cdr.disconnect.status == 503 && cdr.disconnect.reason == "SBC drained")
        #expect(call.state == .ended)

        var routing = try makeCall()
        _ = routing.start()
        let refused = routing.terminate(reason: "SBC drained", now: t0)
        #expect(callerResponses(refused).map(\.statusCode) == [503] && routing.state == .ended)
    }

    @Test(arguments: [404, 486, 603])
    func finalNonFailoverAnswerEndsTheCallWithoutTryingTheNextCarrier(_ status: Int) throws {
        var call = try makeCall()
        _ = call.start()
        let actions0 = call.handle(.routed(RouteDecision(outcome: .route, targets: targets(3))), now: t0)
        let (invite, _) = try #require(invites(actions0).first)
        let actions = call.handle(.calleeResponse(response(status, to: invite)), now: t0)
        #expect(invites(actions).isEmpty)
        #expect(callerResponses(actions).map(\.statusCode) == [status])
        #expect(summary(actions)?.attempts.count == 1)
    }

    @Test func allCarriersFailingAnswers503() throws {
        var call = try makeCall()
        _ = call.start()
        var actions = call.handle(.routed(RouteDecision(outcome: .route, targets: targets(2))), now: t0)
        actions = call.handle(.attemptTransportFailed, now: t0)
        let (second, _) = try #require(invites(actions).first)
        actions = call.handle(.calleeResponse(response(500, to: second)), now: t0)
        #expect(callerResponses(actions).map(\.statusCode) == [503])
        #expect(summary(actions)?.attempts.map(\.result) == [.transportError, .failed])
    }

    @Test(arguments: [(404, "unknown number"), (403, "blocked destination"), (402, "no credit")])
    func routingRejectIsAnsweredWithItsStatus(_ status: Int, _ reason: String) throws {
        var call = try makeCall()
        _ = call.start()
        let actions = call.handle(.routed(.reject(status, reason)), now: t0)
        #expect(callerResponses(actions).map(\.statusCode) == [status])
        #expect(summary(actions)?.disconnect.reason == reason)
    }

    @Test func aRingingTargetIsGivenTheRingLimitNotTheSetupTime() throws {
        var call = try makeCall()
        _ = call.start()
        let first = call.handle(.routed(RouteDecision(outcome: .route, targets: targets(2))), now: Date(timeIntervalSince1970: 1000))
        let (invite, _) = try #require(invites(first).first)
        let ringing = call.handle(.calleeResponse(response(180, to: invite)), now: Date(timeIntervalSince1970: 1001))
        let restarted = ringing.compactMap { action -> Duration? in
            if case .startTimer(.setup, let delay) = action { delay } else { nil }
        }
        #expect(restarted == [.seconds(180)])
        // Another 18x does not restart it again.
        let again = call.handle(.calleeResponse(response(183, to: invite)), now: Date(timeIntervalSince1970: 1002))
        #expect(!again.contains { if case .startTimer(.setup, _) = $0 { true } else { false } })
    }

    @Test func theCarrierSeesAContactForTheTransportItIsReachedOver() throws {
        var configuration = B2BUACall.Configuration(
            customerSideContact: "192.0.2.10:5060", carrierSideContact: "10.0.0.10:5060", customerSideMediaAddress: "192.0.2.10",
            carrierSideMediaAddress: "10.0.0.10", relayPorts: (caller: 30000, callee: 30002))
        configuration.carrierSideContacts = ["tls": "10.0.0.10:5061"]
        var call = B2BUACall(
            invite: try Self.invite, customer: "acme", site: "site-a", instance: "sbc-1", configuration: configuration, callerLocalTag: "a",
            calleeCallID: "b", calleeLocalTag: "c", summaryID: "d", now: Date())
        _ = call.start()
        let target = RouteTarget(carrier: "c", trunk: "t", host: "203.0.113.9", port: 5061, transport: "tls", number: "34911234567", setupTimeoutMilliseconds: 8000)
        let actions = call.handle(.routed(RouteDecision(outcome: .route, targets: [target])), now: Date())
        let (invite, _) = try #require(invites(actions).first)
        #expect(invite.headers.first(.contact)?.valueString == "<sip:10.0.0.10:5061;transport=tls>")
    }

    @Test func maximumDurationHangsUpBothLegs() throws {
        var call = try makeCall()
        _ = call.start()
        let a0 = call.handle(.routed(RouteDecision(outcome: .route, targets: targets(1), maximumDurationSeconds: 90)), now: t0)
        let (invite, _) = try #require(invites(a0).first)
        _ = call.handle(.calleeResponse(response(200, to: invite, sdp: true)), now: t0)
        var actions = call.handle(.timerFired(.duration), now: t0.addingTimeInterval(90))
        // The BYEs wait for the summary to be spooled.
        #expect(actions.contains { if case .spool(let summary) = $0 { summary.durationMilliseconds == 90_000 } else { false } })
        #expect(!actions.contains { if case .sendToCaller = $0 { true } else { false } })
        actions += call.handle(.summarySpooled, now: t0.addingTimeInterval(90.01))
        let byes = actions.filter {
            switch $0 {
            case .sendToCaller(let r) where r.method == .bye: true
            case .sendToCallee(let r, _) where r.method == .bye: true
            default: false
            }
        }
        #expect(byes.count == 2)
        actions = call.handle(.callerResponse(SIPResponse(statusCode: 200, reasonPhrase: "OK")), now: t0.addingTimeInterval(90.1))
        #expect(summary(actions) == nil)
        actions = call.handle(.calleeDialogResponse(SIPResponse(statusCode: 200, reasonPhrase: "OK")), now: t0.addingTimeInterval(90.2))
        let cdr = try #require(summary(actions))
        #expect(cdr.durationMilliseconds == 90_000)
        #expect(cdr.disconnect.reason == "maximum duration reached")
    }

    @Test func theAnswersFirstCodecIsWhatTheMOSIsComputedFor() throws {
        var call = try makeCall()
        _ = call.start()
        let a0 = call.handle(.routed(RouteDecision(outcome: .route, targets: targets(1))), now: t0)
        #expect(a0.contains { if case .mediaCodec("PCMU") = $0 { true } else { false } })
        let (invite, _) = try #require(invites(a0).first)
        let answered = call.handle(.calleeResponse(response(200, to: invite, sdp: true, formats: "18 0")), now: t0)
        let codecs = answered.compactMap { if case .mediaCodec(let codec) = $0 { codec } else { nil } }
        #expect(codecs == ["G729"])
    }

    @Test func byeFromTheCalleeReachesTheCaller() throws {
        var call = try makeCall()
        _ = call.start()
        let a0 = call.handle(.routed(RouteDecision(outcome: .route, targets: targets(1))), now: t0)
        let (invite, _) = try #require(invites(a0).first)
        _ = call.handle(.calleeResponse(response(200, to: invite, sdp: true)), now: t0)
        var bye = SIPRequest(method: .bye, uri: SIPURI("sip:10.0.0.10:5060")!)
        bye.headers.append(.via, "SIP/2.0/UDP 203.0.113.1;branch=z9hG4bKx")
        bye.headers.append(.cseq, "1 BYE")
        var actions = call.handle(.calleeRequest(bye), now: t0.addingTimeInterval(5))
        #expect(actions.contains { if case .spool = $0 { true } else { false } })
        actions += call.handle(.summarySpooled, now: t0.addingTimeInterval(5.01))
        let toCaller = actions.compactMap { if case .sendToCaller(let r) = $0 { r } else { nil } }
        #expect(toCaller.map(\.method) == [.bye])
        let text = String(decoding: SIPMessage.request(toCaller[0]).serialized(), as: UTF8.self)
        #expect(text.hasPrefix("BYE sip:alice@\(Self.customerIP):5060 SIP/2.0"))
        #expect(!text.contains("203.0.113"))
    }

    /// A hold from the caller (re-INVITE with `a=sendonly`) goes on to the callee with the callee dialog's next CSeq;
    /// the callee's 200 is ACKed with that CSeq (an ACK with the first INVITE's CSeq would not acknowledge it, and the
    /// callee would end the call after 32 s), and the caller gets the 200.
    @Test func aReInviteIsAcknowledgedWithItsOwnCSeqOnTheCalleeLeg() throws {
        var call = try makeCall()
        _ = call.start()
        let a0 = call.handle(.routed(RouteDecision(outcome: .route, targets: targets(1))), now: t0)
        let (invite, _) = try #require(invites(a0).first)
        _ = call.handle(.calleeResponse(response(200, to: invite, sdp: true)), now: t0)
        var hold = byeFromCaller()
        hold.method = .invite
        hold.headers.replace(.cseq, with: "314160 INVITE")
        hold.body = Array(Self.sdp.replacingOccurrences(of: "a=sendrecv", with: "a=sendonly").utf8)
        let forwarded = call.handle(.callerRequest(hold), now: t0.addingTimeInterval(3))
        let toCallee = try #require(forwarded.compactMap { if case .sendToCallee(let r, _) = $0 { r } else { nil } }.first)
        #expect(toCallee.method == .invite)
        #expect(toCallee.headers.first(.cseq)?.valueString == "2 INVITE")
        #expect(String(decoding: toCallee.body, as: UTF8.self).contains("a=sendonly"))
        let answered = call.handle(.calleeDialogResponse(response(200, to: toCallee, sdp: true)), now: t0.addingTimeInterval(3.1))
        let ack = try #require(answered.compactMap { if case .sendToCallee(let r, _) = $0 { r } else { nil } }.first)
        #expect(ack.method == .ack)
        #expect(ack.headers.first(.cseq)?.valueString == "2 ACK")
        #expect(callerResponses(answered).map(\.statusCode) == [200])
        #expect(callerResponses(answered).first?.headers.first(.cseq)?.valueString == "314160 INVITE")
        // A BYE afterwards uses the next CSeq.
        _ = call.handle(.callerRequest(byeFromCaller()), now: t0.addingTimeInterval(5))
        let after = call.handle(.summarySpooled, now: t0.addingTimeInterval(5))
        let bye = try #require(after.compactMap { if case .sendToCallee(let r, _) = $0 { r } else { nil } }.first)
        #expect(bye.headers.first(.cseq)?.valueString == "3 BYE")
    }

    /// Answers that cross are matched by CSeq (an INFO's 200 never answers a re-INVITE); a retransmitted 2xx to a
    /// re-INVITE is ACKed again; a re-INVITE without SDP has its answer in the caller's ACK, which our ACK carries.
    @Test func inDialogAnswersAreMatchedByCSeqRetransmitted2xxReAckedAndALateOffersAnswerForwarded() throws {
        var call = try makeCall()
        _ = call.start()
        let a0 = call.handle(.routed(RouteDecision(outcome: .route, targets: targets(1))), now: t0)
        let (invite, _) = try #require(invites(a0).first)
        _ = call.handle(.calleeResponse(response(200, to: invite, sdp: true)), now: t0)
        func sent(_ actions: [B2BUACall.Action]) -> [SIPRequest] { actions.compactMap { if case .sendToCallee(let r, _) = $0 { r } else { nil } } }
        // A re-INVITE without SDP (CSeq 2 on the callee leg), then an INFO (CSeq 3).
        var reinvite = byeFromCaller()
        reinvite.method = .invite
        reinvite.headers.replace(.cseq, with: "314160 INVITE")
        var info = byeFromCaller()
        info.method = .info
        info.headers.replace(.cseq, with: "314161 INFO")
        let toCallee = sent(call.handle(.callerRequest(reinvite), now: t0)) + sent(call.handle(.callerRequest(info), now: t0))
        #expect(toCallee.map { $0.headers.first(.cseq)?.valueString } == ["2 INVITE", "3 INFO"])
        // The INFO's 200 comes first: it answers the INFO, not the re-INVITE.
        let infoAnswer = call.handle(.calleeDialogResponse(response(200, to: toCallee[1])), now: t0)
        #expect(callerResponses(infoAnswer).map { $0.headers.first(.cseq)?.valueString } == ["314161 INFO"])
        #expect(sent(infoAnswer).isEmpty)
        // The re-INVITE's 200 carries an offer: the caller gets it, and our ACK waits for the caller's answer.
        let offered = call.handle(.calleeDialogResponse(response(200, to: toCallee[0], sdp: true)), now: t0)
        #expect(callerResponses(offered).map { $0.headers.first(.cseq)?.valueString } == ["314160 INVITE"])
        #expect(sent(offered).isEmpty)
        var ack = byeFromCaller()
        ack.method = .ack
        ack.headers.replace(.cseq, with: "314160 ACK")
        ack.body = Array(Self.sdp.utf8)
        let acked = sent(call.handle(.callerRequest(ack), now: t0))
        #expect(acked.map { $0.headers.first(.cseq)?.valueString } == ["2 ACK"])
        let ackBody = String(decoding: acked.first?.body ?? [], as: UTF8.self)
        #expect(ackBody.contains("m=audio"), "\(ackBody)")
        // The 200 again (our ACK was lost): the same ACK again.
        let again = sent(call.handle(.calleeDialogResponse(response(200, to: toCallee[0], sdp: true)), now: t0))
        #expect(again.map { $0.headers.first(.cseq)?.valueString } == ["2 ACK"])
    }
}
