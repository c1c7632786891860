public import Foundation
public import TroncalMedia
public import TroncalProtocol
public import TroncalSIP

/// One call through the SBC (or the PBX, with `anchorsMedia` off) as a back-to-back user agent, as a pure state machine: events in (the caller's
/// requests, the routing decision, the callee's responses, timers), actions out (messages to send on either
/// leg, timers, reports). It works at transaction-user level: the transaction layer below absorbs
/// retransmissions, adds the Via of requests it sends and builds the CANCEL of a pending INVITE.
///
/// Topology hiding: the callee leg is a new dialog (own Call-ID, tags, CSeq, Contact) that copies only a
/// short list of harmless headers from the caller's INVITE, and responses to the caller copy nothing that
/// names the carrier. SDP is rewritten so that media flows through the SBC's relay ports.
public struct B2BUACall: Sendable {
    public enum State: Sendable, Hashable {
        /// Waiting for `routing.route`.
        case routing
        /// An INVITE is out to target `attempt` (index into the targets).
        case calling(attempt: Int)
        /// Answered; both dialogs confirmed (or waiting for the caller's ACK).
        case answered
        /// Tearing down: waiting for the BYE answers.
        case ending
        case ended
    }

    /// What a B2BUA needs to know about the SBC itself.
    public struct Configuration: Sendable, Hashable {
        /// Contact host:port the caller sees (the SBC's customer-facing address).
        public var customerSideContact: String
        /// Contact host:port carriers see (the SBC's carrier-facing address).
        public var carrierSideContact: String
        /// The relay address written into SDP towards the caller and towards the callee.
        public var customerSideMediaAddress: String
        public var carrierSideMediaAddress: String
        /// Relay ports: `[0]` what the caller sends to, `[1]` what the callee sends to.
        public var relayPorts: (caller: Int, callee: Int)
        /// Hard cap on any call's length, whatever billing allows.
        public var maximumDuration: Duration
        /// How long a target may ring (after its first 18x) before the next one is tried (RFC 3261 Timer C).
        public var maximumRingDuration: Duration = .seconds(180)
        /// The carrier-facing Contact host:port per transport (`tcp`, `tls`) when it differs from the UDP one.
        public var carrierSideContacts: [String: String] = [:]
        /// Whether SDP is rewritten to the relay (the SBC), or passed through unchanged (the PBX: its calls' media
        /// is anchored by the SBC legs on either side of it).
        public var anchorsMedia = true

        /// The Contact URI carriers see over `transport`.
        func carrierContact(for transport: String) -> String {
            let hostPort = carrierSideContacts[transport] ?? carrierSideContact
            return transport == "udp" ? "<sip:\(hostPort)>" : "<sip:\(hostPort);transport=\(transport)>"
        }

        public init(
            customerSideContact: String, carrierSideContact: String, customerSideMediaAddress: String,
            carrierSideMediaAddress: String, relayPorts: (caller: Int, callee: Int), maximumDuration: Duration = .seconds(4 * 3600)
        ) {
            self.customerSideContact = customerSideContact
            self.carrierSideContact = carrierSideContact
            self.customerSideMediaAddress = customerSideMediaAddress
            self.carrierSideMediaAddress = carrierSideMediaAddress
            self.relayPorts = relayPorts
            self.maximumDuration = maximumDuration
        }

        public static func == (lhs: Configuration, rhs: Configuration) -> Bool {
            lhs.customerSideContact == rhs.customerSideContact && lhs.carrierSideContact == rhs.carrierSideContact
                && lhs.relayPorts == rhs.relayPorts && lhs.maximumDuration == rhs.maximumDuration
        }
        public func hash(into hasher: inout Hasher) { hasher.combine(customerSideContact) }
    }

    /// Timers the shell runs for the call.
    public enum Timer: Int, Sendable, Hashable, CaseIterable {
        /// The current attempt's setup timeout (no final answer in time → next target).
        case setup = 1
        /// The authorised maximum duration.
        case duration
        /// RFC 4028 session expiry: no refresh in time → hang up.
        case sessionExpiry
        /// Waiting for the BYE answers while ending.
        case teardown
        /// Time to ask billing to extend the grant (`billing.renew`).
        case renewal
    }

    public enum Event: Sendable {
        case routed(RouteDecision)
        /// Routing could not be asked (link down, timeout).
        case routingFailed(String)
        /// A response to the INVITE currently out to the callee.
        case calleeResponse(SIPResponse)
        case attemptTransportFailed
        case timerFired(Timer)
        /// The caller cancelled its INVITE.
        case callerCancel
        /// A request inside the caller's dialog (ACK, BYE, re-INVITE, UPDATE, INFO, OPTIONS…).
        case callerRequest(SIPRequest)
        /// A request inside the callee's dialog.
        case calleeRequest(SIPRequest)
        /// A response to an in-dialog request this call sent to the caller.
        case callerResponse(SIPResponse)
        /// A response to an in-dialog request this call sent to the callee (not the initial INVITE).
        case calleeDialogResponse(SIPResponse)
        /// Billing's answer to `billing.renew` (nil: no answer; the call ends at the grant it has).
        case grantRenewed(Authorization?)
        /// The summary asked for by `spool` is durable: the messages held back go out now.
        case summarySpooled
    }

    public enum Action: Sendable {
        case route(RouteRequest)
        /// A response to the caller's INVITE or to one of its in-dialog requests.
        case respondToCaller(SIPResponse)
        /// A request to the caller (BYE, re-INVITE passed through from the callee…).
        case sendToCaller(SIPRequest)
        /// A new INVITE towards a target (the transaction layer adds Via and sends to host:port/transport).
        case inviteCallee(SIPRequest, RouteTarget)
        /// CANCEL the INVITE currently out to the callee.
        case cancelCallee
        /// A request in the callee's dialog (ACK for 2xx, BYE, re-INVITE…), to its remote target.
        case sendToCallee(SIPRequest, RouteTarget)
        /// A response to one of the callee's in-dialog requests.
        case respondToCallee(SIPResponse)
        /// Where the relay should send each side's media (from their SDP).
        case mediaDestination(leg: Leg, address: String, port: Int)
        /// The codec of the latest SDP's first media line (the answer's, once answered): what the MOS is computed for.
        case mediaCodec(String)
        case startTimer(Timer, Duration)
        case cancelTimer(Timer)
        case reportAttempt(CallAttemptReport)
        /// Ask billing to extend the call's grant; its answer comes back as `grantRenewed`.
        case renewGrant(RenewRequest)
        /// Write the summary of an answered call to the spool (fsync) now, at the hang-up, before anything tells either
        /// side the call is over; `summarySpooled` releases the BYEs and answers held back meanwhile.
        case spool(CallSummary)
        /// The call is over; the summary goes to the CDR spool unless `summaryIsSpooled` (written at the hang-up).
        case finished(CallSummary)
    }

    public enum Leg: String, Sendable, Hashable { case caller, callee }

    public private(set) var state: State = .routing
    public let configuration: Configuration
    public let customer: String
    /// The call came in from a carrier (to one of the operator's DIDs), not from a customer.
    public var fromCarrier = false
    public let site: String
    public let instance: String
    let callerInvite: SIPRequest
    let callerCallID: String
    let callerLocalTag: String
    let calleeCallID: String
    let calleeLocalTag: String
    let summaryID: String
    private(set) var targets: [RouteTarget] = []
    private var calleeInvite: SIPRequest?
    private var calleeRemoteTag: String?
    private var calleeRemoteTarget: SIPURI?
    private var calleeRouteSet: [SIPAddress] = []
    private var calleeCSeq: UInt32 = 1
    private var callerRemoteTarget: SIPURI?
    private var callerCSeq: UInt32 = 1
    private var attemptStarted: Date?
    private var attemptProvisionalAt: Date?
    private var attempts: [CallSummary.Attempt] = []
    private let setupAt: Date
    private var answerAt: Date?
    private var maximumDuration: Duration
    /// Billing will extend the grant when asked before it runs out.
    private var renewable = false
    /// The summary was written at the hang-up (`spool`); `finished` then carries it for the record only.
    public private(set) var summaryIsSpooled = false
    /// Messages that wait for the summary to be durable.
    private var heldUntilSpooled: [Action] = []
    private var disconnect: CallSummary.Disconnect?
    private var pendingByeAnswers = 0
    /// When the call ended for billing: the BYE or the hang-up decision, not the end of the teardown.
    private var hungUpAt: Date?
    private var sessionExpires: Int?
    private var callerSDPText: String?
    private var streams: [CallSummary.StreamReport] = []
    /// The callee number as normalised by routing.
    private var callee: String

    /// Starts a call for the caller's initial INVITE. Identifiers are passed in so that the core stays
    /// deterministic; the shell draws them at random.
    public init(
        invite: SIPRequest, customer: String, site: String, instance: String, configuration: Configuration,
        callerLocalTag: String, calleeCallID: String, calleeLocalTag: String, summaryID: String, now: Date
    ) {
        self.callerInvite = invite
        self.customer = customer
        self.site = site
        self.instance = instance
        self.configuration = configuration
        self.callerLocalTag = callerLocalTag
        self.calleeCallID = calleeCallID
        self.calleeLocalTag = calleeLocalTag
        self.summaryID = summaryID
        self.callerCallID = (try? invite.headers.callID()) ?? ""
        self.setupAt = now
        self.maximumDuration = configuration.maximumDuration
        self.callee = invite.uri.user ?? ""
        self.callerRemoteTarget = Self.firstContact(invite.headers)
    }

    /// The first actions: a 100 Trying is the transaction layer's; the call asks routing.
    public mutating func start() -> [Action] {
        let caller = ((try? callerInvite.headers.from()) ?? nil)?.uri.user ?? ""
        return [.route(RouteRequest(customer: customer, caller: caller, callee: callee, site: site, callID: callerCallID, fromCarrier: fromCarrier))]
    }

    public mutating func handle(_ event: Event, now: Date) -> [Action] {
        if case .summarySpooled = event {
            let held = heldUntilSpooled
            heldUntilSpooled = []
            return held
        }
        switch (state, event) {
        case (.routing, .routed(let decision)):
            return routed(decision, now: now)
        case (.routing, .routingFailed(let reason)):
            return fail(status: 503, reason: "routing unavailable: \(reason)", now: now)
        case (.calling(let attempt), .calleeResponse(let response)):
            return calleeAnswered(response, attempt: attempt, now: now)
        case (.calling(let attempt), .attemptTransportFailed):
            return nextTarget(after: attempt, result: .transportError, status: nil, now: now)
        case (.calling(let attempt), .timerFired(.setup)):
            return [.cancelCallee] + nextTarget(after: attempt, result: .noAnswer, status: nil, now: now)
        case (.calling(let attempt), .callerCancel):
            recordAttempt(attempt, result: .cancelled, status: nil)
            disconnect = CallSummary.Disconnect(by: .caller, status: 487, reason: "cancelled by caller")
            return [.cancelCallee, .cancelTimer(.setup), .respondToCaller(response(487, "Request Terminated"))] + finish(now: now)
        case (.routing, .callerCancel):
            disconnect = CallSummary.Disconnect(by: .caller, status: 487, reason: "cancelled by caller")
            return [.respondToCaller(response(487, "Request Terminated"))] + finish(now: now)
        case (.answered, .callerRequest(let request)):
            return callerInDialog(request, now: now)
        case (.answered, .calleeRequest(let request)):
            return calleeInDialog(request, now: now)
        case (.answered, .calleeResponse(let response)) where (200..<300).contains(response.statusCode):
            // A retransmitted 2xx: of the first INVITE (ACK again with its CSeq), or of a re-INVITE whose transaction is
            // over (its ACK again).
            if let ack = sent[.callee]?.lastAck, Self.isRetransmission(response, acknowledgedBy: ack) { return send(ack, to: .callee) }
            return CSeqKey(response.headers)?.number == calleeCSeqOfInvite ? ackCallee() : []
        case (.answered, .calleeDialogResponse(let response)), (.ending, .calleeDialogResponse(let response)):
            return forwardResponse(response, from: .callee, now: now)
        case (.answered, .callerResponse(let response)), (.ending, .callerResponse(let response)):
            return forwardResponse(response, from: .caller, now: now)
        case (.answered, .timerFired(.duration)):
            return hangUp(reason: "maximum duration reached", now: now)
        case (.answered, .timerFired(.renewal)):
            let elapsed = answerAt.map { Int(now.timeIntervalSince($0)) } ?? 0
            return [.renewGrant(RenewRequest(customer: customer, callID: callerCallID, elapsedSeconds: elapsed))]
        case (.answered, .grantRenewed(let authorization)):
            return grantRenewed(authorization, now: now)
        case (.answered, .timerFired(.sessionExpiry)):
            return hangUp(reason: "session timer expired", now: now)
        case (.ending, .timerFired(.teardown)):
            return finish(now: now)
        case (.ending, .callerRequest(let request)) where request.method == .bye:
            return [.respondToCaller(inDialogResponse(to: request, 200, "OK"))]
        case (.ending, .calleeRequest(let request)) where request.method == .bye:
            return [.respondToCallee(inDialogResponse(to: request, 200, "OK"))]
        default:
            return []
        }
    }

    /// The target the call's INVITE is out to now (nil unless it is calling).
    public var targetBeingCalled: RouteTarget? {
        if case .calling(let attempt) = state, targets.indices.contains(attempt) { return targets[attempt] }
        return nil
    }

    /// The call is answered by a party whose own INVITE reached the B2BUA (a call pickup: a phone dialled the pickup
    /// code while this call rang elsewhere). That INVITE's dialog becomes the callee leg, with the B2BUA as its UAS:
    /// the shell has answered it (200, To tag `calleeLocalTag`, the caller's media as the answer to the picker's
    /// offer) and sends the callee leg's requests to `target`. The caller gets a 200 with `sdp`, the picker's media as
    /// the answer to its own offer. Only before an answer (after `start()`, or while calling: the shell cancels what
    /// was out).
    public mutating func answeredByPickup(invite picker: SIPRequest, target: RouteTarget, sdp: [UInt8], now: Date) -> [Action] {
        switch state {
        case .routing, .calling: break
        default: return []
        }
        guard let from = (try? picker.headers.from()) ?? nil, let to = picker.headers.first(.to) else { return [] }
        targets = [target]
        attemptStarted = now
        attemptProvisionalAt = now
        state = .answered
        answerAt = now
        // The picker's dialog as seen by its UAS: requests to it go From its To (our tag), To its From (its tag), to its
        // Contact, along its Record-Route as received.
        var headers = SIPHeaders()
        headers.append(.from, "\(to.valueString);tag=\(calleeLocalTag)")
        headers.append(.to, SIPAddress(displayName: from.displayNameString, uri: from.uri).description)
        calleeInvite = SIPRequest(method: .invite, uri: from.uri, headers: headers)
        calleeRemoteTag = from.tag
        calleeRemoteTarget = Self.firstContact(picker.headers)
        calleeRouteSet = (try? picker.headers.recordRoute()) ?? []
        calleeCSeq = 1
        recordAttempt(0, result: .answered, status: 200)
        var answer = SIPResponse(statusCode: 200, reasonPhrase: "OK")
        if !sdp.isEmpty {
            answer.body = sdp
            answer.headers.append(.contentType, "application/sdp")
        }
        return [.startTimer(.duration, maximumDuration), .reportAttempt(attemptReport(0, result: .answered, status: 200)), .respondToCaller(callerResponse(answer))]
    }

    /// An answered call's dialog with its callee: what another call of the shell needs to take it over (an attended
    /// transfer joins the transferee with the party the transferor consulted).
    public struct CalleeDialog: Sendable {
        let invite: SIPRequest
        let remoteTag: String?
        let remoteTarget: SIPURI?
        let routeSet: [SIPAddress]
        let cseq: UInt32
        public let callID: String
        public let localTag: String
        public let target: RouteTarget
    }

    /// The target the call is with (calling or answered).
    public var currentRouteTarget: RouteTarget? { currentTarget }

    /// This call's callee dialog, when answered.
    public var calleeDialog: CalleeDialog? {
        guard state == .answered, let calleeInvite, let target = currentTarget else { return nil }
        return CalleeDialog(
            invite: calleeInvite, remoteTag: calleeRemoteTag, remoteTarget: calleeRemoteTarget, routeSet: calleeRouteSet, cseq: calleeCSeq,
            callID: calleeCallID, localTag: calleeLocalTag, target: target)
    }

    /// The call's callee leg becomes `dialog`, another call's answered callee (that call gives it up): the call is
    /// answered at once, without a word to either side (the shell re-INVITEs both with each other's media). The call must
    /// have been made with the dialog's Call-ID and local tag. Only before an answer.
    public mutating func adoptCallee(_ dialog: CalleeDialog, now: Date) -> [Action] {
        switch state {
        case .routing, .calling: break
        default: return []
        }
        targets = [dialog.target]
        attemptStarted = now
        attemptProvisionalAt = now
        state = .answered
        answerAt = now
        calleeInvite = dialog.invite
        calleeRemoteTag = dialog.remoteTag
        calleeRemoteTarget = dialog.remoteTarget
        calleeRouteSet = dialog.routeSet
        calleeCSeq = dialog.cseq
        recordAttempt(0, result: .answered, status: 200)
        return [.startTimer(.duration, maximumDuration), .reportAttempt(attemptReport(0, result: .answered, status: 200))]
    }

    /// Media quality measured by the relay, added to the summary before the call finishes.
    public mutating func recordStream(_ report: CallSummary.StreamReport) {
        streams.append(report)
    }

    // MARK: - Billing grants

    /// When to ask for more: a third of the time left before the grant ends, at most 30 s before it, at least 1 s after now.
    static func renewalDelay(remaining: Duration) -> Duration {
        let lead = min(.seconds(30), remaining / 3)
        return max(.seconds(1), remaining - lead)
    }

    private mutating func grantRenewed(_ authorization: Authorization?, now: Date) -> [Action] {
        guard let authorization, authorization.allowed, let total = authorization.maximumDurationSeconds, let answerAt else { return [] }
        let extended = min(configuration.maximumDuration, .seconds(total))
        guard extended > maximumDuration else { return [] }
        maximumDuration = extended
        let elapsed = Duration.milliseconds(Int64(now.timeIntervalSince(answerAt) * 1000))
        let remaining = max(.milliseconds(1), extended - elapsed)
        var actions: [Action] = [.cancelTimer(.duration), .startTimer(.duration, remaining)]
        if authorization.renewable, extended < configuration.maximumDuration {
            actions.append(.startTimer(.renewal, Self.renewalDelay(remaining: remaining)))
        }
        return actions
    }

    // MARK: - Setup

    private mutating func routed(_ decision: RouteDecision, now: Date) -> [Action] {
        if let normalised = decision.callee { callee = normalised }
        if let seconds = decision.maximumDurationSeconds {
            maximumDuration = min(maximumDuration, .seconds(seconds))
            renewable = decision.renewable ?? false
        }
        switch decision.outcome {
        case .reject:
            return fail(status: decision.rejectStatus ?? 403, reason: decision.reason ?? "refused by routing", now: now)
        case .onNet:
            guard let target = decision.onNet else { return fail(status: 404, reason: "on-net target missing", now: now) }
            targets = [target]
        case .route:
            targets = decision.targets
        }
        guard !targets.isEmpty else { return fail(status: 503, reason: "no carrier available", now: now) }
        return invite(attempt: 0, now: now)
    }

    private mutating func invite(attempt: Int, now: Date) -> [Action] {
        let target = targets[attempt]
        state = .calling(attempt: attempt)
        attemptStarted = now
        attemptProvisionalAt = nil
        calleeRemoteTag = nil
        calleeCSeq = 1
        var headers = SIPHeaders()
        let caller = ((try? callerInvite.headers.from()) ?? nil)?.uri.user ?? "anonymous"
        let carrierHost = target.host.contains(":") ? "[\(target.host)]" : target.host
        var toURI = SIPURI(scheme: .sip, user: target.number, host: carrierHost, port: UInt16(target.port))
        if target.transport != "udp" { toURI.parameters.set("transport", to: target.transport) }
        headers.append(.from, "<sip:\(caller)@\(configuration.carrierSideContact)>;tag=\(calleeLocalTag)")
        headers.append(.to, "<\(toURI)>")
        headers.append(.callID, calleeCallID)
        headers.append(.cseq, "\(calleeCSeq) INVITE")
        let maxForwards = ((try? callerInvite.headers.maxForwards()) ?? nil).map { max(1, Int($0) - 1) } ?? 69
        headers.append(.maxForwards, "\(maxForwards)")
        headers.append(.contact, configuration.carrierContact(for: target.transport))
        copyAllowedHeaders(from: callerInvite.headers, into: &headers)
        var body: [UInt8] = []
        var actions: [Action] = []
        if !callerInvite.body.isEmpty, let rewritten = rewriteSDP(callerInvite.body, from: .caller, actions: &actions) {
            body = rewritten
            headers.append(.contentType, "application/sdp")
        }
        headers.append(.contentLength, "\(body.count)")
        let request = SIPRequest(method: .invite, uri: toURI, headers: headers, body: body)
        calleeInvite = request
        let timeout = Duration.milliseconds(max(500, target.setupTimeoutMilliseconds))
        return actions + [.inviteCallee(request, target), .startTimer(.setup, timeout)]
    }

    private mutating func calleeAnswered(_ response: SIPResponse, attempt: Int, now: Date) -> [Action] {
        let status = response.statusCode
        if status < 200 {
            guard status > 100 else { return [] }
            var actions: [Action] = []
            if attemptProvisionalAt == nil {
                // The target answered: from now on it may ring up to the ring limit, not just the setup time.
                attemptProvisionalAt = now
                let ring = targets[attempt].ringTimeoutMilliseconds.map { Duration.milliseconds($0) } ?? configuration.maximumRingDuration
                actions.append(.startTimer(.setup, min(ring, configuration.maximumRingDuration)))
            }
            var relayed = SIPResponse(statusCode: status, reasonPhrase: response.reasonPhraseString)
            if !response.body.isEmpty, let rewritten = rewriteSDP(response.body, from: .callee, actions: &actions) {
                relayed.body = rewritten
                relayed.headers.append(.contentType, "application/sdp")
            }
            return actions + [.respondToCaller(callerResponse(relayed))]
        }
        if (200..<300).contains(status) {
            recordAttempt(attempt, result: .answered, status: status)
            answerAt = now
            state = .answered
            calleeRemoteTag = ((try? response.headers.to()) ?? nil)?.tag
            calleeRemoteTarget = Self.firstContact(response.headers)
            calleeRouteSet = ((try? response.headers.recordRoute()) ?? []).reversed()
            var actions: [Action] = [.cancelTimer(.setup), .startTimer(.duration, maximumDuration)]
            if renewable, maximumDuration < configuration.maximumDuration {
                actions.append(.startTimer(.renewal, Self.renewalDelay(remaining: maximumDuration)))
            }
            var relayed = SIPResponse(statusCode: status, reasonPhrase: response.reasonPhraseString)
            if !response.body.isEmpty, let rewritten = rewriteSDP(response.body, from: .callee, actions: &actions) {
                relayed.body = rewritten
                relayed.headers.append(.contentType, "application/sdp")
            }
            copyAllowedHeaders(from: response.headers, into: &relayed.headers)
            if let expires = Self.sessionExpires(response.headers) {
                sessionExpires = expires
                actions.append(.startTimer(.sessionExpiry, .seconds(expires)))
            }
            actions.append(.reportAttempt(attemptReport(attempt, result: .answered, status: status)))
            actions.append(.respondToCaller(callerResponse(relayed)))
            actions += ackCallee()
            return actions
        }
        // A final failure: 408, 5xx (and 503) move on; any other final answer ends the call.
        let failover = status == 408 || (500..<600).contains(status) || (targets[attempt].huntOn?.contains(status) ?? false)
        if failover {
            return [.cancelTimer(.setup)] + nextTarget(after: attempt, result: .failed, status: status, now: now)
        }
        recordAttempt(attempt, result: .failed, status: status)
        disconnect = CallSummary.Disconnect(by: .callee, status: status, reason: response.reasonPhraseString)
        return [.cancelTimer(.setup), .reportAttempt(attemptReport(attempt, result: .failed, status: status)),
                .respondToCaller(self.response(status, response.reasonPhraseString))] + finish(now: now)
    }

    static func firstContact(_ headers: SIPHeaders) -> SIPURI? {
        guard case .addresses(let addresses)? = try? headers.contacts() else { return nil }
        return addresses.first?.uri
    }

    private mutating func nextTarget(after attempt: Int, result: CallAttemptReport.Result, status: Int?, now: Date) -> [Action] {
        recordAttempt(attempt, result: result, status: status)
        let report = Action.reportAttempt(attemptReport(attempt, result: result, status: status))
        if attempt + 1 < targets.count {
            return [report] + invite(attempt: attempt + 1, now: now)
        }
        let finalStatus = result == .noAnswer ? 408 : (status.map { (500..<600).contains($0) ? 503 : $0 } ?? 503)
        disconnect = CallSummary.Disconnect(by: .sbc, status: finalStatus, reason: "all \(targets.count) targets failed")
        return [report, .respondToCaller(response(finalStatus, Self.reasonPhrase(finalStatus)))]
            + finish(now: now)
    }

    private mutating func fail(status: Int, reason: String, now: Date) -> [Action] {
        disconnect = CallSummary.Disconnect(by: .sbc, status: status, reason: reason)
        return [.respondToCaller(response(status, Self.reasonPhrase(status)))] + finish(now: now)
    }

    // MARK: - In dialog

    private mutating func callerInDialog(_ request: SIPRequest, now: Date) -> [Action] {
        guard let target = currentTarget else { return [] }
        switch request.method {
        case .ack:
            // The caller's ACK for our 2xx: the callee leg was ACKed when its 2xx came, unless a late offer's answer is
            // in this ACK.
            return acknowledged(request, by: .caller)
        case .bye:
            disconnect = CallSummary.Disconnect(by: .caller, status: 200, reason: "caller hung up")
            hungUpAt = now
            state = .ending
            pendingByeAnswers = 1
            return spoolFirst(
                [.respondToCaller(inDialogResponse(to: request, 200, "OK")), .sendToCallee(calleeRequest(.bye, body: []), target)],
                then: [.cancelTimer(.duration), .cancelTimer(.renewal), .cancelTimer(.sessionExpiry), .startTimer(.teardown, .seconds(4))], now: now)
        default:
            return forward(request, from: .caller)
        }
    }

    private mutating func calleeInDialog(_ request: SIPRequest, now: Date) -> [Action] {
        switch request.method {
        case .ack:
            return acknowledged(request, by: .callee)
        case .bye:
            disconnect = CallSummary.Disconnect(by: .callee, status: 200, reason: "callee hung up")
            hungUpAt = now
            state = .ending
            pendingByeAnswers = 1
            return spoolFirst(
                [.respondToCallee(inDialogResponse(to: request, 200, "OK")), .sendToCaller(callerRequest(.bye, body: []))],
                then: [.cancelTimer(.duration), .cancelTimer(.renewal), .cancelTimer(.sessionExpiry), .startTimer(.teardown, .seconds(4))], now: now)
        default:
            return forward(request, from: .callee)
        }
    }

    /// What the call keeps of the requests it sends into one leg's dialog.
    struct SentRequests {
        /// Requests the other side started, gone on into this dialog with these CSeqs: an answer is matched to its
        /// request by CSeq (answers to an INFO and a re-INVITE may cross), and a re-INVITE's 2xx is ACKed with its own
        /// CSeq, not the initial INVITE's.
        var forwarded: [(request: SIPRequest, cseq: UInt32)] = []
        /// Re-INVITEs of the call's own (`reinvite`): answered here, never passed to the other side.
        var own: Set<UInt32> = []
        /// The last ACK for a 2xx to a re-INVITE: sent again for each retransmission of that 2xx (one lost ACK on UDP
        /// would otherwise end the call after 32 s).
        var lastAck: SIPRequest?
        /// A re-INVITE without SDP whose 2xx carried the offer: the answer comes in the other side's ACK, so the ACK
        /// into this dialog (with this CSeq) waits for it (RFC 3264 late offer).
        var ackAwaitingAnswer: UInt32?
    }

    private var sent: [Leg: SentRequests] = [.caller: SentRequests(), .callee: SentRequests()]

    private static func other(_ leg: Leg) -> Leg { leg == .caller ? .callee : .caller }

    /// A request in `leg`'s dialog: the next CSeq of that dialog, or `cseq`.
    private mutating func request(_ method: SIPMethod, body: [UInt8], cseq: UInt32? = nil, on leg: Leg) -> SIPRequest {
        leg == .caller ? callerRequest(method, body: body, cseq: cseq) : calleeRequest(method, body: body, cseq: cseq)
    }

    /// The CSeq `leg`'s dialog last used for a request of ours.
    private func lastCSeq(on leg: Leg) -> UInt32 { leg == .caller ? callerCSeq : calleeCSeq }

    private func send(_ request: SIPRequest, to leg: Leg) -> [Action] {
        if leg == .caller { return [.sendToCaller(request)] }
        return currentTarget.map { [.sendToCallee(request, $0)] } ?? []
    }

    private func respond(_ response: SIPResponse, to leg: Leg) -> Action {
        leg == .caller ? .respondToCaller(response) : .respondToCallee(response)
    }

    /// ACKs a 2xx to a re-INVITE in `leg`'s dialog (and keeps the ACK for its retransmissions).
    private mutating func acknowledge(_ cseq: UInt32, body: [UInt8] = [], on leg: Leg) -> [Action] {
        let ack = request(.ack, body: body, cseq: cseq, on: leg)
        sent[leg, default: SentRequests()].lastAck = ack
        return send(ack, to: leg)
    }

    /// Whether `response` is a 2xx to an INVITE with the CSeq of `ack`.
    private static func isRetransmission(_ response: SIPResponse, acknowledgedBy ack: SIPRequest?) -> Bool {
        guard let ack, (200..<300).contains(response.statusCode), let cseq = CSeqKey(response.headers), cseq.method == .invite,
            let acked = CSeqKey(ack.headers)
        else { return false }
        return acked.number == cseq.number
    }

    /// A request inside one side's dialog (not ACK or BYE) goes on into the other side's, its SDP anchored.
    private mutating func forward(_ request: SIPRequest, from leg: Leg) -> [Action] {
        let to = Self.other(leg)
        var actions: [Action] = []
        var body: [UInt8] = []
        if !request.body.isEmpty { body = rewriteSDP(request.body, from: leg, actions: &actions) ?? request.body }
        if request.method == .invite || request.method == .update { actions += refreshSessionTimer(request.headers) }
        var forwarded = self.request(request.method, body: body, on: to)
        sent[to, default: SentRequests()].forwarded.append((request, lastCSeq(on: to)))
        copyAllowedHeaders(from: request.headers, into: &forwarded.headers)
        // A body that is not SDP (a NOTIFY's sipfrag, an INFO's digits) keeps its own type.
        if !body.isEmpty, let type = request.headers.first(.contentType)?.valueString, !type.lowercased().hasPrefix("application/sdp") {
            forwarded.headers.replace(.contentType, with: type)
        }
        return actions + send(forwarded, to: to)
    }

    /// A response from `leg` to a request of ours in its dialog: the answer to the other side's request it was
    /// forwarded for, an answer to one of our own re-INVITEs, or a retransmitted 2xx (ACKed again).
    private mutating func forwardResponse(_ response: SIPResponse, from leg: Leg, now: Date) -> [Action] {
        if state == .ending {
            guard response.statusCode >= 200 else { return [] }
            pendingByeAnswers -= 1
            return pendingByeAnswers <= 0 ? [.cancelTimer(.teardown)] + finish(now: now) : []
        }
        if let own = ownReinviteAnswered(response, from: leg) { return own }
        guard response.statusCode >= 200 else { return [] }
        let number = CSeqKey(response.headers)?.number
        guard let index = sent[leg]?.forwarded.firstIndex(where: { $0.cseq == number }) else {
            if let ack = sent[leg]?.lastAck, Self.isRetransmission(response, acknowledgedBy: ack) { return send(ack, to: leg) }
            return []
        }
        let (original, cseq) = sent[leg, default: SentRequests()].forwarded.remove(at: index)
        var actions: [Action] = []
        var answer = inDialogResponse(to: original, response.statusCode, response.reasonPhraseString)
        if !response.body.isEmpty, let rewritten = rewriteSDP(response.body, from: leg, actions: &actions) {
            answer.body = rewritten
            answer.headers.replace(.contentLength, with: "\(rewritten.count)")
            answer.headers.insert(SIPHeaderField(.contentType, value: "application/sdp"), at: max(0, answer.headers.count - 1))
        }
        if original.method == .invite, (200..<300).contains(response.statusCode) {
            if original.body.isEmpty, !response.body.isEmpty {
                // Late offer: the other side's ACK carries the answer; ours waits for it.
                sent[leg, default: SentRequests()].ackAwaitingAnswer = cseq
            } else {
                actions += acknowledge(cseq, on: leg)
            }
        }
        return actions + [respond(answer, to: Self.other(leg))]
    }

    /// `leg`'s ACK of our 2xx: when it answers a late offer, the answer goes on in our waiting ACK to the other side.
    private mutating func acknowledged(_ ack: SIPRequest, by leg: Leg) -> [Action] {
        let to = Self.other(leg)
        guard let cseq = sent[to]?.ackAwaitingAnswer else { return [] }
        sent[to]?.ackAwaitingAnswer = nil
        var actions: [Action] = []
        let body = ack.body.isEmpty ? [] : (rewriteSDP(ack.body, from: leg, actions: &actions) ?? ack.body)
        return actions + acknowledge(cseq, body: body, on: to)
    }

    /// Sends `leg` a re-INVITE of the call's own with `offer` (the PBX's hold music source, or the other party's media
    /// again). Its 2xx is ACKed here and reported as `.mediaDestination(leg:…)` (where that party wants media); its
    /// answer is never passed to the other side. Nothing when the call is not answered.
    public mutating func reinvite(_ leg: Leg, offer: [UInt8]) -> [Action] {
        guard state == .answered, currentTarget != nil else { return [] }
        let invite = request(.invite, body: offer, on: leg)
        sent[leg, default: SentRequests()].own.insert(lastCSeq(on: leg))
        return send(invite, to: leg)
    }

    /// Sends a request of the call's own into `leg`'s dialog (a NOTIFY of a transfer's progress, RFC 3515), with
    /// `headers` and `body` of `contentType`. Its answer is taken and dropped. Nothing unless answered (or ending).
    public mutating func send(
        _ method: SIPMethod, into leg: Leg, headers: [(SIPHeaderName, String)], body: [UInt8], contentType: String
    ) -> [Action] {
        guard state == .answered || state == .ending, currentTarget != nil else { return [] }
        var request = request(method, body: body, on: leg)
        request.headers.removeAll(.contentType)
        let end = request.headers.firstIndex { $0.name == .contentLength } ?? request.headers.count
        for (offset, (name, value)) in headers.enumerated() { request.headers.insert(SIPHeaderField(name, value: value), at: end + offset) }
        if !body.isEmpty {
            request.headers.insert(SIPHeaderField(.contentType, value: contentType), at: request.headers.firstIndex { $0.name == .contentLength } ?? request.headers.count)
        }
        return send(request, to: leg)
    }

    /// The CSeq of the last request of ours in the caller's dialog.
    public var callerDialogCSeq: UInt32 { callerCSeq }

    /// This call takes over a caller's dialog another call of the shell used (a transfer: the transferee's dialog goes
    /// on with the new destination): its requests to the caller go on after `cseq` (RFC 3261 §12.2.1.1).
    public mutating func continueCallerDialog(after cseq: UInt32) {
        callerCSeq = max(callerCSeq, cseq)
    }

    /// The answer to one of `reinvite`'s requests, if `response` is one: its ACK and where that party's media goes.
    private mutating func ownReinviteAnswered(_ response: SIPResponse, from leg: Leg) -> [Action]? {
        guard let number = CSeqKey(response.headers)?.number, sent[leg]?.own.contains(number) == true else { return nil }
        guard response.statusCode >= 200 else { return [] }
        sent[leg]?.own.remove(number)
        guard (200..<300).contains(response.statusCode), currentTarget != nil else { return [] }
        var actions = acknowledge(number, on: leg)
        if let text = String(validating: response.body, as: UTF8.self), let sdp = try? SessionDescription(text),
            let destination = sdp.destination(ofMedia: 0)
        {
            actions.append(.mediaDestination(leg: leg, address: destination.address, port: destination.port))
        }
        return actions
    }

    /// The element ends the call now (an SBC drained at its bound): an answered call is hung up on both sides with
    /// `reason`, as at its maximum duration; a call still being set up is cancelled toward the carrier and refused
    /// toward the caller with 503, and its attempt counts as cancelled (not against the carrier: the carrier did
    /// nothing wrong); a call waiting for routing is refused with 503.
    public mutating func terminate(reason: String, now: Date) -> [Action] {
        switch state {
        case .answered:
            return hangUp(reason: reason, now: now)
        case .calling(let attempt):
            recordAttempt(attempt, result: .cancelled, status: nil)
            return [.cancelCallee, .cancelTimer(.setup)] + fail(status: 503, reason: reason, now: now)
        case .routing:
            return fail(status: 503, reason: reason, now: now)
        case .ending, .ended:
            return []
        }
    }

    private mutating func hangUp(reason: String, now: Date) -> [Action] {
        guard let target = currentTarget else { return finish(now: now) }
        disconnect = CallSummary.Disconnect(by: .sbc, status: 200, reason: reason)
        hungUpAt = now
        state = .ending
        pendingByeAnswers = 2
        return spoolFirst(
            [.sendToCaller(callerRequest(.bye, body: [])), .sendToCallee(calleeRequest(.bye, body: []), target)],
            then: [.cancelTimer(.duration), .cancelTimer(.renewal), .cancelTimer(.sessionExpiry), .startTimer(.teardown, .seconds(4))], now: now)
    }

    /// At the hang-up of an answered call: the summary is spooled first, and `messages` (BYEs, the 200 to a BYE) wait
    /// for it, so that no side learns the call is over before its CDR is durable; `then` (timers) runs at once.
    private mutating func spoolFirst(_ messages: [Action], then: [Action], now: Date) -> [Action] {
        summaryIsSpooled = true
        heldUntilSpooled = messages
        return [.spool(summary(now: now))] + then
    }

    private func refreshSessionTimer(_ headers: SIPHeaders) -> [Action] {
        guard let expires = Self.sessionExpires(headers) ?? sessionExpires else { return [] }
        return [.startTimer(.sessionExpiry, .seconds(expires))]
    }

    private mutating func ackCallee() -> [Action] {
        guard let target = currentTarget else { return [] }
        return [.sendToCallee(calleeRequest(.ack, body: [], cseq: calleeCSeqOfInvite), target)]
    }

    private var calleeCSeqOfInvite: UInt32 { 1 }

    // MARK: - Building messages

    private var currentTarget: RouteTarget? {
        switch state {
        case .calling(let attempt): return targets[attempt]
        case .answered, .ending: return targets.isEmpty ? nil : targets[currentAttempt]
        default: return nil
        }
    }

    private var currentAttempt: Int { max(0, attempts.count - 1) }

    /// A response to the caller's INVITE: its Via, From, To (with our tag), Call-ID and CSeq, our Contact.
    private func response(_ status: Int, _ reason: String) -> SIPResponse {
        callerResponse(SIPResponse(statusCode: status, reasonPhrase: reason))
    }

    private func callerResponse(_ base: SIPResponse) -> SIPResponse {
        var response = base
        var headers = SIPHeaders()
        for field in callerInvite.headers where [.via, .from, .callID, .cseq].contains(field.name) { headers.append(field) }
        if let to = callerInvite.headers.first(.to) {
            let value = to.valueString
            headers.append(.to, value.contains(";tag=") || response.statusCode == 100 ? value : "\(value);tag=\(callerLocalTag)")
        }
        if response.statusCode > 100 && response.statusCode < 300 {
            headers.append(.contact, "<sip:\(configuration.customerSideContact)>")
        }
        for field in base.headers where field.name != .contentLength { headers.append(field) }
        headers.append(.contentLength, "\(response.body.count)")
        response.headers = headers
        return response
    }

    private func inDialogResponse(to request: SIPRequest, _ status: Int, _ reason: String) -> SIPResponse {
        var headers = SIPHeaders()
        for field in request.headers where [.via, .from, .to, .callID, .cseq].contains(field.name) { headers.append(field) }
        headers.append(.contentLength, "0")
        return SIPResponse(statusCode: status, reasonPhrase: reason, headers: headers)
    }

    /// A request in the callee's dialog: to its remote target, our From/tag, its To/tag, our CSeq.
    private mutating func calleeRequest(_ method: SIPMethod, body: [UInt8], cseq: UInt32? = nil) -> SIPRequest {
        let number: UInt32
        if let cseq { number = cseq } else { calleeCSeq += 1; number = calleeCSeq }
        let invite = calleeInvite ?? callerInvite
        var headers = SIPHeaders()
        for field in invite.headers where field.name == .from { headers.append(field) }
        if let to = invite.headers.first(.to) {
            headers.append(.to, calleeRemoteTag.map { "\(to.valueString);tag=\($0)" } ?? to.valueString)
        }
        headers.append(.callID, calleeCallID)
        headers.append(.cseq, "\(number) \(method.name)")
        headers.append(.maxForwards, "70")
        for route in calleeRouteSet { headers.append(.route, route.description) }
        if method != .ack && method != .bye { headers.append(.contact, configuration.carrierContact(for: currentTarget?.transport ?? "udp")) }
        if !body.isEmpty { headers.append(.contentType, "application/sdp") }
        headers.append(.contentLength, "\(body.count)")
        return SIPRequest(method: method, uri: calleeRemoteTarget ?? invite.uri, headers: headers, body: body)
    }

    /// A request in the caller's dialog: to its Contact, our tag as From, its From as To.
    private mutating func callerRequest(_ method: SIPMethod, body: [UInt8], cseq: UInt32? = nil) -> SIPRequest {
        let number: UInt32
        if let cseq { number = cseq } else { callerCSeq += 1; number = callerCSeq }
        var headers = SIPHeaders()
        if let to = callerInvite.headers.first(.to) { headers.append(.from, "\(to.valueString);tag=\(callerLocalTag)") }
        if let from = callerInvite.headers.first(.from) { headers.append(.to, from.valueString) }
        headers.append(.callID, callerCallID)
        headers.append(.cseq, "\(number) \(method.name)")
        headers.append(.maxForwards, "70")
        for route in ((try? callerInvite.headers.recordRoute()) ?? []) { headers.append(.route, route.description) }
        if method != .ack && method != .bye { headers.append(.contact, "<sip:\(configuration.customerSideContact)>") }
        if !body.isEmpty { headers.append(.contentType, "application/sdp") }
        headers.append(.contentLength, "\(body.count)")
        return SIPRequest(method: method, uri: callerRemoteTarget ?? callerInvite.uri, headers: headers, body: body)
    }

    /// Headers that cross the SBC unchanged: they describe the session, never the network.
    static let passedHeaders: Set<String> = [
        "allow", "supported", "require", "session-expires", "x", "min-se", "accept", "privacy", "p-asserted-identity",
        "p-preferred-identity", "reason", "rseq", "rack", "event", "subscription-state", "refer-to",
    ]

    private func copyAllowedHeaders(from source: SIPHeaders, into target: inout SIPHeaders) {
        for field in source {
            let name = String(decoding: field.rawName, as: UTF8.self).lowercased()
            let long = Self.compactForms[name] ?? name
            guard Self.passedHeaders.contains(long), !target.contains(where: { $0.name == field.name && $0.raw == field.raw }) else { continue }
            target.append(field)
        }
    }

    static let compactForms = ["k": "supported", "x": "session-expires", "u": "allow-events", "o": "event"]

    static func sessionExpires(_ headers: SIPHeaders) -> Int? {
        guard let field = headers.first(named: "Session-Expires") ?? headers.first(named: "x") else { return nil }
        let text = field.valueString.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard let seconds = Int(text), seconds >= 90 else { return nil }
        return seconds
    }

    /// Rewrites an SDP body so that the other side sends media to the relay; records where `leg` wants its
    /// media sent. Returns nil when the body is not SDP the SBC can anchor (it is then not forwarded).
    private mutating func rewriteSDP(_ body: [UInt8], from leg: Leg, actions: inout [Action]) -> [UInt8]? {
        guard configuration.anchorsMedia else { return body }
        guard let text = String(validating: body, as: UTF8.self), var sdp = try? SessionDescription(text) else { return nil }
        if leg == .caller { callerSDPText = text }
        if let destination = sdp.destination(ofMedia: 0) {
            actions.append(.mediaDestination(leg: leg, address: destination.address, port: destination.port))
        }
        if let codec = sdp.media.first?.codecs.first?.encoding { actions.append(.mediaCodec(codec)) }
        let (address, port) = leg == .caller
            ? (configuration.carrierSideMediaAddress, configuration.relayPorts.callee)
            : (configuration.customerSideMediaAddress, configuration.relayPorts.caller)
        sdp.anchor(at: address, ports: sdp.media.indices.map { port + 2 * $0 })
        return Array(sdp.text.utf8)
    }

    // MARK: - Summary

    private mutating func recordAttempt(_ attempt: Int, result: CallAttemptReport.Result, status: Int?) {
        guard targets.indices.contains(attempt) else { return }
        let target = targets[attempt]
        attempts.append(CallSummary.Attempt(
            carrier: target.carrier, trunk: target.trunk, result: result, status: status, startedAt: attemptStarted ?? setupAt,
            postDialDelayMilliseconds: postDialDelay))
    }

    private var postDialDelay: Int? {
        guard let started = attemptStarted, let first = attemptProvisionalAt else { return nil }
        return Int(first.timeIntervalSince(started) * 1000)
    }

    private func attemptReport(_ attempt: Int, result: CallAttemptReport.Result, status: Int?) -> CallAttemptReport {
        let target = targets[attempt]
        return CallAttemptReport(
            carrier: target.carrier, trunk: target.trunk, result: result, status: status, postDialDelayMilliseconds: postDialDelay,
            callID: callerCallID)
    }

    private mutating func finish(now: Date) -> [Action] {
        guard state != .ended else { return [] }
        state = .ended
        // Anything still held (the teardown ran out first) goes now.
        let held = heldUntilSpooled
        heldUntilSpooled = []
        return held + [.cancelTimer(.duration), .cancelTimer(.renewal), .cancelTimer(.sessionExpiry), .finished(summary(now: now))]
    }

    /// The call's summary as if it ended now, by the SBC: what billing records if the SBC is lost with the call up.
    public func checkpoint(now: Date) -> CallSummary {
        var summary = summary(now: now)
        summary.disconnect = CallSummary.Disconnect(by: .sbc, status: 200, reason: Self.checkpointReason)
        return summary
    }

    /// The disconnect reason of a checkpoint, and of the CDR billing makes from it.
    public static let checkpointReason = "SBC lost: ended at its last heartbeat"

    private func summary(now: Date) -> CallSummary {
        let caller = ((try? callerInvite.headers.from()) ?? nil)?.uri.user ?? ""
        let end = hungUpAt ?? now
        let duration = answerAt.map { Int((end.timeIntervalSince($0) * 1000).rounded()) } ?? 0
        return CallSummary(
            id: summaryID, callID: callerCallID, customer: customer, caller: caller, callee: callee, site: site, instance: instance,
            attempts: attempts, setupAt: setupAt, answerAt: answerAt, endAt: end, durationMilliseconds: max(0, duration),
            disconnect: disconnect ?? CallSummary.Disconnect(by: .sbc, status: 500, reason: "ended"), streams: streams)
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 402: "Payment Required"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 408: "Request Timeout"
        case 480: "Temporarily Unavailable"
        case 486: "Busy Here"
        case 482: "Loop Detected"
        case 487: "Request Terminated"
        case 600: "Busy Everywhere"
        case 603: "Decline"
        case 503: "Service Unavailable"
        default: status < 500 ? "Request Failed" : "Server Error"
        }
    }
}
