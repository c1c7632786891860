import NIOCore
import Testing
import TroncalCall
import TroncalSIP

/// The call layer on a fake clock: what it sends and tells, and when, for each story.
@Suite("Call layer")
struct CallLayerTests {
    static let caller = LegReference(call: 1, leg: 0)
    static let callee = LegReference(call: 1, leg: 1)

    /// A call whose caller leg's INVITE was served (100 Trying sent).
    static func servedCall(transport: SIPSource = LayerHarness.phone, timers: TransactionTimers = TransactionTimers()) throws -> (LayerHarness, TransactionID, SIPRequest) {
        var harness = LayerHarness(timers: timers)
        try harness.receive(Messages.invite(transport: transport.transport == .udp ? "UDP" : "TCP"), from: transport)
        let (invite, id) = try #require(harness.lastNewRequest)
        harness.command {
            $0.addLeg(caller, callID: "call-1")
            $0.serve(invite, id: id, source: transport, leg: caller)
        }
        return (harness, id, invite)
    }

    static func ok(to request: SIPRequest, tag: String = "tt1") -> SIPResponse {
        InviteServerTransaction.response(200, "OK", to: request, toTag: tag)
    }

    @Test func aNewInviteIsHandedUpBeforeAnythingIsSentAndServingItSendsTrying() throws {
        var harness = LayerHarness()
        try harness.receive(Messages.invite())
        #expect(harness.lines() == ["0s event new INVITE"])
        let (invite, id) = try #require(harness.lastNewRequest)
        harness.command { $0.serve(invite, id: id, source: LayerHarness.phone, leg: nil) }
        #expect(harness.lines() == ["0s event new INVITE", "0s send 100 (INVITE) → udp:192.0.2.10:5060"])
        // A retransmitted INVITE is absorbed by its transaction (Trying again), never handed up twice.
        try harness.receive(Messages.invite(), at: 0.4)
        #expect(harness.lines(from: 0.4) == ["0.4s send 100 (INVITE) → udp:192.0.2.10:5060"])
    }

    @Test func aRequestInAnUnknownDialogGets481AndNoEvent() throws {
        var harness = LayerHarness()
        try harness.receive(Messages.inDialog("BYE", callID: "nobody"))
        #expect(harness.lines() == ["0s send 481 (BYE) → udp:192.0.2.10:5060"])
        #expect(harness.events.isEmpty)
    }

    @Test func aCancelOfNoInviteGets481() throws {
        var harness = LayerHarness()
        try harness.receive(Messages.cancel(callID: "nobody"))
        #expect(harness.lines() == ["0s send 481 (CANCEL) → udp:192.0.2.10:5060"])
    }

    @Test func inDialogRequestsReachTheirLegAndAreAnsweredByCSeq() throws {
        var (harness, inviteID, invite) = try Self.servedCall()
        harness.command { $0.respond(Self.ok(to: invite), on: inviteID) }
        try harness.receive(Messages.ack(), at: 0.1)
        try harness.receive(Messages.inDialog("BYE"), at: 5)
        #expect(harness.lines(from: 5) == ["5s event in-dialog BYE on 1.0"])
        let (leg, bye, _) = try #require(harness.lastInDialog)
        var answered = false
        harness.command { answered = $0.respondInDialog(InviteServerTransaction.response(200, "OK", to: bye), on: leg) }
        #expect(answered)
        #expect(harness.lines(from: 5).last == "5s send 200 (BYE) → udp:192.0.2.10:5060")
        // The BYE again: its transaction answers it, the application hears nothing.
        try harness.receive(Messages.inDialog("BYE"), at: 5.5)
        #expect(harness.lines(from: 5.5) == ["5.5s send 200 (BYE) → udp:192.0.2.10:5060"])
        // Nothing is waiting for an answer on the leg any more.
        harness.command { answered = $0.respondInDialog(InviteServerTransaction.response(200, "OK", to: bye), on: leg) }
        #expect(!answered)
    }

    /// The 2xx to an INVITE over UDP, by what the caller does.
    static let answerStories: [(story: String, ackAt: Double?, expected: [String])] = [
        ("ACKed at once: sent once", 0.1, ["0s send 200 (INVITE) → udp:192.0.2.10:5060", "0.1s event ack on 1.0"]),
        ("ACKed after two retransmissions", 2, [
            "0s send 200 (INVITE) → udp:192.0.2.10:5060", "0.5s send 200 (INVITE) → udp:192.0.2.10:5060",
            "1.5s send 200 (INVITE) → udp:192.0.2.10:5060", "2s event ack on 1.0",
        ]),
        ("never ACKed: T1 doubling to T2 for 64·T1, then reported", nil, [
            "0s send 200 (INVITE) → udp:192.0.2.10:5060", "0.5s send 200 (INVITE) → udp:192.0.2.10:5060",
            "1.5s send 200 (INVITE) → udp:192.0.2.10:5060", "3.5s send 200 (INVITE) → udp:192.0.2.10:5060",
            "7.5s send 200 (INVITE) → udp:192.0.2.10:5060", "11.5s send 200 (INVITE) → udp:192.0.2.10:5060",
            "15.5s send 200 (INVITE) → udp:192.0.2.10:5060", "19.5s send 200 (INVITE) → udp:192.0.2.10:5060",
            "23.5s send 200 (INVITE) → udp:192.0.2.10:5060", "27.5s send 200 (INVITE) → udp:192.0.2.10:5060",
            "31.5s send 200 (INVITE) → udp:192.0.2.10:5060", "32s event unacknowledged 1.0",
        ]),
    ]

    @Test(arguments: answerStories.indices)
    func aTwoHundredToAnInviteIsRetransmittedOverUDPUntilItsACK(_ row: Int) throws {
        let story = Self.answerStories[row]
        var (harness, inviteID, invite) = try Self.servedCall()
        harness.command { $0.respond(Self.ok(to: invite), on: inviteID) }
        for step in 1...800 {
            let time = Double(step) / 20
            if let ack = story.ackAt, time == ack { try harness.receive(Messages.ack(), at: ack) } else { harness.at(time) }
        }
        // The INVITE handed up and its 100 Trying are before the story.
        #expect(Array(harness.lines().dropFirst(2)) == story.expected, "\(story.story)")
    }

    @Test func aTwoHundredOverTCPIsSentOnceAndItsACKStillReachesTheLeg() throws {
        var (harness, inviteID, invite) = try Self.servedCall(transport: LayerHarness.phoneTCP)
        harness.command { $0.respond(Self.ok(to: invite), on: inviteID) }
        for step in 1...400 { harness.at(Double(step) * 0.1) }
        #expect(harness.lines().filter { $0.contains("200 (INVITE)") }.count == 1)
        try harness.receive(Messages.ack(), from: LayerHarness.phoneTCP, at: 41)
        #expect(harness.lines(from: 41) == ["41s event ack on 1.0"])
    }

    @Test func aCancelOfTheLegsInviteIsAnsweredAndHandedUp() throws {
        var (harness, _, _) = try Self.servedCall()
        try harness.receive(Messages.cancel(), at: 1)
        #expect(harness.lines(from: 1) == ["1s send 200 (CANCEL) → udp:192.0.2.10:5060", "1s event cancelled 1.0"])
    }

    @Test func aCancelOfAnInviteNoLegOwnsGets487OnTheInvite() throws {
        var harness = LayerHarness()
        try harness.receive(Messages.invite())
        let (invite, id) = try #require(harness.lastNewRequest)
        harness.command { $0.serve(invite, id: id, source: LayerHarness.phone, leg: nil) }
        try harness.receive(Messages.cancel(), at: 1)
        #expect(harness.lines(from: 1) == ["1s send 200 (CANCEL) → udp:192.0.2.10:5060", "1s send 487 (INVITE) → udp:192.0.2.10:5060"])
    }

    /// A call with its callee leg's INVITE out to the trunk.
    static func outboundCall() -> (LayerHarness, TransactionID) {
        var harness = LayerHarness()
        var id: TransactionID?
        harness.command {
            $0.addLeg(callee, callID: "leg-2")
            id = $0.send(Messages.outboundInvite(), on: callee, to: LayerHarness.trunkDestination, purpose: .dialogSetup)
        }
        return (harness, id!)
    }

    @Test func anInviteSentGetsAViaOfOursAndItsAnswersReachTheLeg() throws {
        var (harness, _) = Self.outboundCall()
        let invite = try #require(harness.sentRequests.last)
        #expect(invite.headers.first(.via)?.valueString == "SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKx000000000000001;rport")
        try harness.receive(Messages.answer(180, to: invite), from: LayerHarness.trunk, at: 0.2)
        try harness.receive(Messages.answer(200, to: invite), from: LayerHarness.trunk, at: 1)
        #expect(harness.lines() == [
            "0s send INVITE → udp:198.51.100.7:5060", "0.2s event response 180 on 1.1 dialogSetup", "1s event response 200 on 1.1 dialogSetup",
        ])
        // The 2xx retransmitted after the transaction ended (timer M): matched by Call-ID, handed up to be ACKed again.
        harness.at(40)
        try harness.receive(Messages.answer(200, to: invite), from: LayerHarness.trunk, at: 41)
        #expect(harness.lines(from: 41) == ["41s event response 200 on 1.1 dialogSetup (no transaction)"])
    }

    @Test func anInviteNobodyAnswersIsRetransmittedThenFailsAtTimerB() {
        var (harness, _) = Self.outboundCall()
        for step in 1...700 { harness.at(Double(step) * 0.05) }
        #expect(harness.lines() == [
            "0s send INVITE → udp:198.51.100.7:5060", "0.5s send INVITE → udp:198.51.100.7:5060", "1.5s send INVITE → udp:198.51.100.7:5060",
            "3.5s send INVITE → udp:198.51.100.7:5060", "7.5s send INVITE → udp:198.51.100.7:5060", "15.5s send INVITE → udp:198.51.100.7:5060",
            "31.5s send INVITE → udp:198.51.100.7:5060", "32s event failed timeout on 1.1 dialogSetup",
        ])
    }

    @Test func aTransportFailureIsReportedOnce() {
        var (harness, id) = Self.outboundCall()
        harness.command { $0.transportFailed(id, now: 0) }
        for step in 1...100 { harness.at(Double(step)) }
        #expect(harness.lines() == ["0s send INVITE → udp:198.51.100.7:5060", "0s event failed transport on 1.1 dialogSetup"])
    }

    @Test func aCancelBeforeAnyProvisionalAnswerWaitsForOne() throws {
        var (harness, id) = Self.outboundCall()
        let invite = try #require(harness.sentRequests.last)
        harness.at(0.3)
        harness.command { $0.cancel(id) }
        #expect(harness.lines(from: 0.3).isEmpty)
        try harness.receive(Messages.answer(180, to: invite), from: LayerHarness.trunk, at: 0.4)
        #expect(harness.lines(from: 0.4) == ["0.4s send CANCEL → udp:198.51.100.7:5060"])
        let cancel = try #require(harness.sentRequests.last)
        // The CANCEL reuses the INVITE's branch (§9.1).
        #expect(cancel.headers.first(.via)?.valueString == invite.headers.first(.via)?.valueString)
    }

    @Test func aCancelAfterAProvisionalAnswerGoesAtOnceAndALate200IsHungUp() throws {
        var (harness, id) = Self.outboundCall()
        let invite = try #require(harness.sentRequests.last)
        try harness.receive(Messages.answer(183, to: invite), from: LayerHarness.trunk, at: 0.2)
        harness.command { $0.cancel(id) }
        #expect(harness.lines(from: 0.2) == ["0.2s event response 183 on 1.1 dialogSetup", "0.2s send CANCEL → udp:198.51.100.7:5060"])
        // The 200 crossed the CANCEL: ACK and BYE, and the application hears nothing of it.
        try harness.receive(Messages.answer(200, to: invite), from: LayerHarness.trunk, at: 0.3)
        #expect(harness.lines(from: 0.3) == ["0.3s send ACK → udp:198.51.100.7:5060", "0.3s send BYE → udp:198.51.100.7:5060"])
        // Its retransmission only gets the ACK again (the CANCEL and the BYE retransmit by themselves, unanswered here).
        try harness.receive(Messages.answer(200, to: invite), from: LayerHarness.trunk, at: 0.8)
        #expect(harness.sentRequests.filter { $0.method == .ack }.count == 2)
        let byes = Set(harness.sentRequests.filter { $0.method == .bye }.compactMap { $0.headers.first(.via)?.valueString })
        #expect(byes.count == 1)
        let ack = try #require(harness.sentRequests.first { $0.method == .ack })
        #expect(ack.headers.first(.to)?.valueString.contains("tag=rt1") == true)
    }

    @Test func responsesToInDialogRequestsReachTheLegWithTheirPurpose() throws {
        var (harness, _) = Self.outboundCall()
        let invite = try #require(harness.sentRequests.last)
        try harness.receive(Messages.answer(200, to: invite), from: LayerHarness.trunk, at: 0.1)
        harness.command { $0.send(Messages.outboundBye(), on: Self.callee, to: LayerHarness.trunkDestination, purpose: .inDialog) }
        let bye = try #require(harness.sentRequests.last)
        try harness.receive(Messages.answer(200, to: bye), from: LayerHarness.trunk, at: 0.2)
        #expect(harness.lines(from: 0.2) == ["0.2s event response 200 on 1.1 inDialog"])
    }

    @Test func endingACallAnswersWhatWaitsCancelsWhatIsOutAndForgetsItsDialogs() throws {
        var (harness, inviteID, invite) = try Self.servedCall()
        harness.command {
            $0.respond(Self.ok(to: invite), on: inviteID)
            $0.addLeg(Self.callee, callID: "leg-2")
        }
        try harness.receive(Messages.ack(), at: 0.1)
        try harness.receive(Messages.inDialog("INFO", cseq: 2), at: 1)
        harness.command {
            $0.send(Messages.outboundInvite(), on: Self.callee, to: LayerHarness.trunkDestination, purpose: .dialogSetup)
            $0.startTimer(call: 1, timer: 7, after: .seconds(10))
        }
        let reinvite = try #require(harness.sentRequests.last)
        try harness.receive(Messages.answer(180, to: reinvite), from: LayerHarness.trunk, at: 1.2)
        harness.command { $0.endCall(1) }
        #expect(harness.lines(from: 1.2) == [
            "1.2s event response 180 on 1.1 dialogSetup", "1.2s send 481 (INFO) → udp:192.0.2.10:5060",
            "1.2s send CANCEL → udp:198.51.100.7:5060",
        ])
        // The trunk answers the CANCEL and ends the INVITE (which the layer ACKs): nobody hears of it.
        let cancel = try #require(harness.sentRequests.last)
        try harness.receive(Messages.answer(200, to: cancel), from: LayerHarness.trunk, at: 1.25)
        try harness.receive(Messages.answer(487, to: reinvite), from: LayerHarness.trunk, at: 1.25)
        #expect(harness.lines(from: 1.25) == ["1.25s send ACK → udp:198.51.100.7:5060"])
        // Its timer never fires; its Call-ID now gets 481.
        harness.at(20)
        try harness.receive(Messages.inDialog("BYE", cseq: 3), at: 21)
        #expect(harness.lines(from: 1.3) == ["21s send 481 (BYE) → udp:192.0.2.10:5060"])
        #expect(harness.layer.legCount == 0)
    }

    @Test func applicationTimersFireOnceAtTheirTimeUnlessCancelled() {
        var harness = LayerHarness()
        harness.command {
            $0.startTimer(call: 4, timer: 1, after: .seconds(2))
            $0.startTimer(call: 4, timer: 2, after: .seconds(1))
            $0.startTimer(call: 5, timer: 1, after: .milliseconds(1500))
            $0.startTimer(call: 4, timer: 3, after: .seconds(3))
        }
        harness.at(0.5)
        harness.command {
            $0.cancelTimer(call: 4, timer: 3)
            // Restarting moves it.
            $0.startTimer(call: 4, timer: 1, after: .seconds(2))
        }
        for step in 1...60 { harness.at(0.5 + Double(step) * 0.05) }
        #expect(harness.lines() == ["1s event timer 2 of call 4", "1.5s event timer 1 of call 5", "2.5s event timer 1 of call 4"])
        #expect(harness.layer.pendingTimers == 0)
    }

    @Test func aFullTransactionTableAnswers503() throws {
        var harness = LayerHarness(capacity: 1)
        try harness.receive(Messages.invite(callID: "a", branch: "b1"))
        let (first, firstID) = try #require(harness.lastNewRequest)
        harness.command { $0.serve(first, id: firstID, source: LayerHarness.phone, leg: nil) }
        try harness.receive(Messages.invite(callID: "b", branch: "b9"))
        let (second, secondID) = try #require(harness.lastNewRequest)
        var served = true
        harness.command { served = $0.serve(second, id: secondID, source: LayerHarness.phone, leg: nil) }
        #expect(!served)
        #expect(harness.lines().last == "0s send 503 (INVITE) → udp:192.0.2.10:5060")
        // And a request out fails locally.
        var sent: TransactionID?
        harness.command { sent = $0.send(Messages.outboundInvite(), on: nil, to: LayerHarness.trunkDestination, purpose: .standalone(1)) }
        #expect(sent == nil)
    }

    @Test(arguments: [1, 2, 3, 4, 7])
    func callIDsMadeOnALoopHashToThatLoop(_ loops: Int) {
        for index in 0..<loops {
            var layer = CallLayer(configuration: .init(loopIndex: index, loopCount: loops), identifiers: RandomIdentifiers(), now: 0)
            let routing = CallLoopRouting(loopCount: loops)
            for _ in 0..<50 {
                let callID = layer.makeCallID()
                #expect(callID.count == 24)
                #expect(routing.loopIndex(forCallID: callID) == index)
            }
        }
    }

    @Test func callIDsSpreadEvenlyOverLoops() {
        var identifiers = RandomIdentifiers()
        let routing = CallLoopRouting(loopCount: 4)
        var counts = [0, 0, 0, 0]
        for _ in 0..<8000 { counts[routing.loopIndex(forCallID: identifiers.identifier(length: 24))] += 1 }
        // 2,000 expected each; 5 standard deviations (≈ 194) either way.
        #expect(counts.allSatisfy { abs($0 - 2000) < 200 }, "\(counts)")
    }
}
