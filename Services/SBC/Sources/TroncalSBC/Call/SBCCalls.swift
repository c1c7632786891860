internal import Foundation
internal import Logging
internal import Metrics
internal import NIOCore
internal import TroncalCall
internal import TroncalMedia
internal import TroncalProtocol
internal import TroncalSIP
internal import TroncalRuntime

/// One call in progress on a loop: its B2BUA machine and what the shell keeps beside it.
struct CallSlot {
    /// Nil until the media relay is open (the machine needs its ports).
    var call: B2BUACall?
    let invite: SIPRequest
    let source: SIPSource
    let inviteTransaction: TransactionID
    let customer: String
    let callerCallID: String
    let calleeCallID: String
    let fromCarrier: Bool
    var relay: MediaRelaySession?
    /// The INVITE out to the current target.
    var currentAttempt: TransactionID?
    /// Cancelled while the relay was opening.
    var cancelled = false
    /// A PBX call (a registered phone's call to the PBX, or the PBX's call to a phone): its targets are known here,
    /// routing is not asked, and nothing is billed or reported to routing (the PBX's own outside calls are).
    var internalTargets: [RouteTarget]? = nil
    var billed: Bool { internalTargets == nil }
    /// The address the callee leg's INVITE went to (its SDP's address is compared with it: NAT).
    var calleeHost: String?
    /// The leg that is a registered phone (the caller of a phone's call, the callee of the PBX's call to a phone).
    var phoneLeg: B2BUACall.Leg?
}

/// A call of the PBX's through this SBC.
enum PBXLeg {
    /// From a phone registered through this SBC (the flow its REGISTER came from), identified by its address of record.
    case fromPhone(aor: String)
    /// From a PBX instance to a phone, named by the flow token of the phone's Path.
    case toPhone(FlowTokens.Flow, aor: String)
    /// To a flow token that is valid but no longer registered.
    case toUnregisteredPhone
    /// From a PBX instance to a number outside, charged to the tenant's customer account (`P-Charge-Info`, RFC 8496,
    /// taken from the site's PBX instances only): routed and billed as that customer's call.
    case fromPBX(customer: String)
}

/// The SBC's calls on one event loop: the application above that loop's `CallLayer`. It admits new calls
/// (`CallAdmission`), runs a `B2BUACall` per call and carries out what the machine asks: messages through the layer,
/// media through the loop's relay, routing and billing through the loop's links, summaries through the loop's spool
/// writer. Everything here runs on the loop; nothing is locked.
///
/// Leg 0 of a call is the caller's dialog, leg 1 the callee's.
final class SBCCalls: CallApplication {
    let shared: SBCCallShared
    let loop: CallLoop
    let relay: MediaRelay
    let links: CallLinks
    let spool: SpoolWriter
    var calls: [Int: CallSlot] = [:]
    private var nextCall = 1
    var probes = TrunkProbes()
    var registrations: RegistrationRelay
    var phoneRequests = PhoneRequestRelay()
    /// B2BUA settings that depend on the transport's bound ports, made on the first call.
    private var contacts: B2BUACall.Configuration?

    static let callerLeg = 0
    static let calleeLeg = 1

    init(shared: SBCCallShared, loop: CallLoop, relay: MediaRelay, links: CallLinks, spool: SpoolWriter) {
        self.shared = shared
        self.loop = loop
        self.relay = relay
        self.links = links
        self.spool = spool
        let configuration = shared.configuration
        registrations = RegistrationRelay(
            targets: configuration.registrars, inService: configuration.registrarsInService, maximumPending: max(1, configuration.maximumPendingRegistrations / max(1, configuration.loopCount)),
            attemptTimeout: configuration.registrationAttemptTimeout, flows: shared.flows)
    }

    var logger: Logger { shared.logger }
    var configuration: CallEngine.Configuration { shared.configuration }

    static func caller(_ number: Int) -> LegReference { LegReference(call: number, leg: callerLeg) }
    static func callee(_ number: Int) -> LegReference { LegReference(call: number, leg: calleeLeg) }

    // MARK: - Events of the layer

    func handle(_ event: CallLayerEvent, in loop: CallLoop) {
        switch event {
        case .newRequest(let request, let id, let source):
            newRequest(request, id: id, source: source)
        case .inDialogRequest(let leg, let request, let id):
            let handled = callEvent(leg.call, leg.leg == Self.callerLeg ? .callerRequest(request) : .calleeRequest(request))
            // A request the call did nothing with (one outside its state) must still get a final answer.
            if handled == 0, !loop.layer.isAnswered(id) {
                loop.layer.respond(InviteServerTransaction.response(481, "Call/Transaction Does Not Exist", to: request, toTag: loop.layer.makeTag()), on: id)
            }
        case .ack(let leg, let ack):
            callEvent(leg.call, leg.leg == Self.callerLeg ? .callerRequest(ack) : .calleeRequest(ack))
        case .cancelled(let leg, let invite):
            guard var slot = calls[leg.call] else { return }
            if slot.call == nil {
                // Still opening the relay: the call ends before it starts.
                slot.cancelled = true
                calls[leg.call] = slot
                loop.layer.respond(InviteServerTransaction.response(487, "Request Terminated", to: slot.invite, toTag: loop.layer.makeTag()), on: invite)
                finishSlot(leg.call)
            } else {
                callEvent(leg.call, .callerCancel)
            }
        case .response(let leg?, let response, let id, let purpose):
            guard let slot = calls[leg.call] else { return }
            switch (leg.leg, purpose) {
            case (Self.calleeLeg, .dialogSetup) where id == nil || id == slot.currentAttempt:
                callEvent(leg.call, .calleeResponse(response))
            case (Self.calleeLeg, .inDialog):
                callEvent(leg.call, .calleeDialogResponse(response))
            case (Self.callerLeg, .inDialog):
                callEvent(leg.call, .callerResponse(response))
            default:
                return
            }
        case .response(nil, let response, let id, .standalone(let token)) where RegistrationRelay.isRegistration(token):
            if let (request, source) = registrations.answered(token, response, from: id, layer: &loop.layer) {
                shared.registrationAnswered(response.statusCode)
                shared.phones.learn(request, response: response, source: source)
                // A refused digest counts against the source like a failed call authentication (brute force bans).
                if response.statusCode == 403 { shared.frontDoor.recordAuthenticationFailure(source) }
            }
        case .response(nil, let response, _, .standalone(let token)) where PhoneRequestRelay.isPhoneRequest(token):
            phoneRequests.answered(token, response, layer: &loop.layer)
        case .response(nil, let response, _, .standalone(let token)):
            probes.answered(token, status: response.statusCode, layer: &loop.layer)
        case .response:
            return
        case .requestFailed(let leg?, let id, .dialogSetup, _):
            if calls[leg.call]?.currentAttempt == id { callEvent(leg.call, .attemptTransportFailed) }
        case .requestFailed(nil, let id, .standalone(let token), _) where RegistrationRelay.isRegistration(token):
            registrations.failed(token, transaction: id, layer: &loop.layer)
        case .requestFailed(nil, _, .standalone(let token), _) where PhoneRequestRelay.isPhoneRequest(token):
            phoneRequests.failed(token, layer: &loop.layer)
        case .requestFailed(nil, _, .standalone(let token), let failure):
            probes.failed(token, reason: failure == .timeout ? "timeout" : "transport error", layer: &loop.layer)
        case .requestFailed:
            return
        case .answerUnacknowledged(let leg):
            guard let slot = calls[leg.call] else { return }
            // No ACK in 64·T1: the caller is gone. Hang up the call (RFC 3261 §13.3.1.4).
            logger.info("no ACK for the answer: hanging up", metadata: ["call-id": "\(slot.callerCallID)", "customer": "\(slot.customer)"])
            callEvent(leg.call, .timerFired(.sessionExpiry))
        case .timer(let call, let timer):
            if call <= -RegistrationRelay.firstToken {
                registrations.timedOut(-call, attempt: timer, layer: &loop.layer)
            } else if call < 0 {
                probes.timedOut(-call, layer: &loop.layer)
            } else if let timer = B2BUACall.Timer(rawValue: timer) {
                callEvent(call, .timerFired(timer))
            }
        }
    }

    // MARK: - New requests

    private func newRequest(_ request: SIPRequest, id: TransactionID, source: SIPSource) {
        switch request.method {
        case .invite:
            newCall(request, id: id, source: source)
        case .options:
            guard loop.layer.serve(request, id: id, source: source, leg: nil) else { return }
            var ok = InviteServerTransaction.response(200, "OK", to: request, toTag: loop.layer.makeTag())
            ok.headers.insert(SIPHeaderField(.allow, value: "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO"), at: ok.headers.count - 1)
            ok.headers.insert(SIPHeaderField(.accept, value: "application/sdp"), at: ok.headers.count - 1)
            loop.layer.respond(ok, on: id)
        case .register:
            prepareLayer()
            registrations.relay(request, id: id, source: source, sentBy: loop.layer.configuration.sentBy[.udp] ?? "", layer: &loop.layer)
        case .publish:
            qualityReport(request, id: id, source: source)
        case .notify:
            toPhone(request, id: id, source: source)
        default:
            loop.layer.answer(request, id: id, source: source, status: 501, reason: "Not Implemented")
        }
    }

    /// A phone's RTCP XR voice quality report (`PUBLISH`, `Event: vq-rtcpxr`, RFC 6035) from a customer (digest
    /// authenticated like its calls when the customer has credentials): answered 200 with an entity tag (RFC 3903)
    /// and passed to the monitor as the quality the phone heard. Anything else is refused with the reason: 403 for a
    /// source that is not a customer, 489 for another event package, 415 for another body, 400 for a body that is not
    /// a report.
    private func qualityReport(_ request: SIPRequest, id: TransactionID, source: SIPSource) {
        let admission = shared.admission
        var customer: CustomerSettings
        switch admission.identify(source.remoteIP) {
        case .unknown, .carrier:
            logger.info("quality report from a source that is not a customer refused", metadata: ["source": "\(source)"])
            shared.qualityReport("refused")
            return loop.layer.answer(request, id: id, source: source, status: 403, reason: "Forbidden")
        case .customers(let candidates):
            customer = candidates[0]
            if !customer.username.isEmpty {
                switch admission.authenticate(request, source: source, candidates: candidates, toTag: loop.layer.makeTag(), now: Date()) {
                case .authenticated(let authenticated):
                    customer = authenticated
                case .answer(let response):
                    guard loop.layer.serve(request, id: id, source: source, leg: nil) else { return }
                    loop.layer.respond(response, on: id)
                    return
                }
            }
        }
        let event = request.headers.first(.event)?.valueString.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard event == "vq-rtcpxr" else {
            shared.qualityReport("refused")
            return loop.layer.answer(request, id: id, source: source, status: 489, reason: "Bad Event")
        }
        let type = (try? request.headers.contentType()) ?? nil
        guard type?.type.lowercased() == "application", type?.subtype.lowercased() == "vq-rtcpxr" else {
            shared.qualityReport("refused")
            return loop.layer.answer(request, id: id, source: source, status: 415, reason: "Unsupported Media Type")
        }
        let report: VQReport
        do {
            report = try VQReport.parse(request.body)
        } catch {
            logger.info("malformed quality report refused", metadata: ["source": "\(source)", "customer": "\(customer.id)", "reason": "\(error)"])
            shared.qualityReport("malformed")
            return loop.layer.answer(request, id: id, source: source, status: 400, reason: "Bad Request")
        }
        guard loop.layer.serve(request, id: id, source: source, leg: nil) else { return }
        var ok = InviteServerTransaction.response(200, "OK", to: request, toTag: loop.layer.makeTag())
        if let etag = SIPHeaderField(rawName: "SIP-ETag", value: loop.layer.makeTag()) { ok.headers.insert(etag, at: ok.headers.count - 1) }
        ok.headers.insert(SIPHeaderField(.expires, value: "0"), at: ok.headers.count - 1)
        loop.layer.respond(ok, on: id)
        let heard = report.quality
        let quality = CallQuality(
            callID: report.callID, source: .phone, customer: customer.id, carrier: "", trunk: "", caller: report.localID, callee: report.remoteID,
            site: configuration.site, instance: configuration.instance, endAt: Date(), durationMilliseconds: 0,
            streams: [
                CallQuality.Stream(
                    direction: .sbcToCustomer, codec: report.codec, packets: 0, lost: 0, lossPercent: heard.lossPercent,
                    jitterMilliseconds: heard.jitterMilliseconds, roundTripMilliseconds: report.roundTripMilliseconds,
                    delayMilliseconds: heard.delayMilliseconds, mos: heard.mos)
            ])
        links.quality(quality)
        shared.qualityReport("accepted")
        logger.debug("quality report from a phone", metadata: [
            "call-id": "\(report.callID)", "customer": "\(customer.id)", "mos": "\((heard.mos * 100).rounded() / 100)",
        ])
    }

    /// A site PBX's request to a phone (message waiting): relayed to the flow its Request-URI's token names. Anything
    /// else is refused: 403 from a source that is not a PBX of the site, 404 for a token that is not this SBC's, 480
    /// for a phone no longer registered on that flow.
    private func toPhone(_ request: SIPRequest, id: TransactionID, source: SIPSource) {
        prepareLayer()
        guard configuration.registrars.contains(where: { $0.host == source.remoteIP }) else {
            logger.info("NOTIFY from a source that is not a PBX of the site refused", metadata: ["source": "\(source)"])
            return loop.layer.answer(request, id: id, source: source, status: 403, reason: "Forbidden")
        }
        guard let user = request.uri.user, let (flow, aor) = shared.flows.named(user) else {
            return loop.layer.answer(request, id: id, source: source, status: 404, reason: "Not Found")
        }
        guard let entry = shared.phones.entry(flow, aor: aor) else {
            return loop.layer.answer(request, id: id, source: source, status: 480, reason: "Temporarily Unavailable")
        }
        guard loop.layer.serve(request, id: id, source: source, leg: nil) else { return }
        let contact = loop.layer.configuration.sentBy[flow.transport] ?? loop.layer.configuration.sentBy[.udp] ?? ""
        if !phoneRequests.relay(request, id: id, flow: flow, aor: entry.aor, contact: contact, layer: &loop.layer) {
            loop.layer.respond(InviteServerTransaction.response(503, "Service Unavailable", to: request, toTag: loop.layer.makeTag()), on: id)
        }
    }

    private func refuse(_ invite: SIPRequest, id: TransactionID, source: SIPSource, status: Int, reason: String, counted: String) {
        shared.refused(counted)
        loop.layer.answer(invite, id: id, source: source, status: status, reason: reason)
    }

    private var layerReady = false

    /// The Via sent-by of each transport, from the listeners' bound ports (known once the transport listens).
    func prepareLayer() {
        guard !layerReady else { return }
        let address = configuration.advertisedAddress
        let host = address.contains(":") ? "[\(address)]" : address
        var sentBy: [SIPTransportProtocol: String] = [:]
        for kind in [SIPTransportProtocol.udp, .tcp, .tls] { sentBy[kind] = "\(host):\(loop.transport.port(of: kind))" }
        loop.layer.configuration.sentBy = sentBy
        layerReady = loop.transport.udpAddress != nil || loop.transport.configuration.udpPort == nil
    }

    /// Whether an INVITE is one of the PBX's calls: from a registered phone's flow, or from a PBX instance to a flow token.
    func pbxLeg(_ invite: SIPRequest, source: SIPSource) -> PBXLeg? {
        let registrars = configuration.registrars
        guard !registrars.isEmpty else { return nil }
        if registrars.contains(where: { $0.host == source.remoteIP }) {
            if let user = invite.uri.user, let (flow, aor) = shared.flows.named(user) {
                guard let entry = shared.phones.entry(flow, aor: aor) else { return .toUnregisteredPhone }
                return .toPhone(flow, aor: entry.aor)
            }
            if let charge = invite.headers.first(named: "P-Charge-Info").flatMap({ SIPAddress($0.valueString) }), let customer = charge.uri.user,
                !customer.isEmpty
            {
                return .fromPBX(customer: customer)
            }
        }
        // Every INVITE asks this: the From is read only for a source that is a registered phone.
        let lines = shared.phones.lines(FlowTokens.Flow(transport: source.transport, host: source.remoteIP, port: source.remotePort))
        guard !lines.isEmpty else { return nil }
        let from = ((try? invite.headers.from()) ?? nil).map { "\($0.uri.user ?? "")@\($0.uri.host.lowercased())" }
        return PhoneFlows.caller(among: lines, from: from).map { .fromPhone(aor: $0.aor) }
    }

    /// The targets of a PBX call: for a phone's call every PBX instance (the one the Call-ID picks first, the others on
    /// failure), with the phone's address of record asserted (`P-Asserted-Identity`; the phone's own is removed); for
    /// the PBX's call to a phone, the phone's flow.
    private func pbxTargets(_ leg: PBXLeg, invite: inout SIPRequest, callID: String) -> [RouteTarget] {
        let attempt = Int(configuration.registrationAttemptTimeout.components.seconds * 1000)
        switch leg {
        case .fromPhone(let aor):
            invite.headers.removeAll(.pAssertedIdentity)
            invite.headers.removeAll(.pPreferredIdentity)
            invite.headers.insert(SIPHeaderField(.pAssertedIdentity, value: "<sip:\(aor)>"), at: max(0, invite.headers.count - 1))
            let registrars = configuration.registrars
            // The stable hash that places calls on loops (and REGISTERs on PBX instances).
            let marked = configuration.registrarsInService
            let inService = marked > 0 ? min(marked, registrars.count) : registrars.count
            let first = Int(CallLoopRouting.hash(callID) % UInt64(max(1, inService)))
            let callee = invite.uri.user ?? ""
            return (0..<registrars.count).map { index in
                let target = registrars[RegistrationRelay.hunt(index, first: first, count: registrars.count, inService: inService)]
                // 480 passes to the next instance too: what one instance does not have, another may (a call ringing there
                // for a pickup code; with SQLite, a binding it took). The last instance's answer is the phone's.
                return RouteTarget(
                    carrier: "pbx", trunk: "\(target.host):\(target.port)", host: target.host, port: target.port, transport: "udp", number: callee,
                    setupTimeoutMilliseconds: 2 * attempt, huntOn: [480])
            }
        case .toPhone(let flow, let aor):
            // The identity the platform asserted stays inside it (RFC 3325): the phone shows the From.
            invite.headers.removeAll(.pAssertedIdentity)
            let user = String(aor.split(separator: "@", maxSplits: 1).first ?? "")
            return [
                RouteTarget(
                    carrier: "phone", trunk: aor, host: flow.host, port: flow.port, transport: flow.transport.rawValue, number: user,
                    setupTimeoutMilliseconds: attempt)
            ]
        case .toUnregisteredPhone, .fromPBX:
            return []
        }
    }

    private func newCall(_ received: SIPRequest, id: TransactionID, source: SIPSource) {
        prepareLayer()
        let admission = shared.admission
        var customer: CustomerSettings
        var fromCarrier = false
        var invite = received
        var internalTargets: [RouteTarget]?
        let pbx = pbxLeg(invite, source: source)
        if case .fromPBX(let account)? = pbx {
            // An extension's call outside: the tenant's customer account, routed and billed as its own calls are. What
            // the PBX asserted stays inside.
            customer = admission.customers.customer(id: account) ?? CustomerSettings(id: account, addresses: [])
            invite.headers.removeAll(named: "P-Charge-Info")
            invite.headers.removeAll(.pAssertedIdentity)
            shared.frontDoor.recordAuthenticated(source, account: "pbx")
        } else if let leg = pbx {
            if case .toUnregisteredPhone = leg {
                return loop.layer.answer(invite, id: id, source: source, status: 480, reason: "Temporarily Unavailable")
            }
            internalTargets = pbxTargets(leg, invite: &invite, callID: ((try? invite.headers.callID()) ?? nil) ?? "")
            customer = CustomerSettings(id: "pbx", addresses: [])
            if case .fromPhone(let aor) = leg { shared.frontDoor.recordAuthenticated(source, account: "phone:\(aor)") }
        } else {
            switch admission.identify(source.remoteIP) {
            case .unknown:
                guard configuration.refuseUnknownSources else {
                    // Not a customer, and told to say nothing: not even 100 Trying.
                    shared.refused("unknown-source")
                    logger.info("call from an unknown source dropped", metadata: ["source": "\(source)"])
                    return
                }
                logger.info("call from an unknown source refused", metadata: ["source": "\(source)"])
                return refuse(invite, id: id, source: source, status: 403, reason: "Forbidden", counted: "unknown-source")
            case .carrier(let carrier):
                shared.frontDoor.recordAuthenticated(source, account: "carrier:\(carrier.id)")
                customer = carrier
                fromCarrier = true
            case .customers(let candidates):
                customer = candidates[0]
                if !customer.username.isEmpty {
                    switch admission.authenticate(invite, source: source, candidates: candidates, toTag: loop.layer.makeTag(), now: Date()) {
                    case .authenticated(let authenticated):
                        customer = authenticated
                    case .answer(let response):
                        guard loop.layer.serve(invite, id: id, source: source, leg: nil) else { return }
                        loop.layer.respond(response, on: id)
                        return
                    }
                } else {
                    // A trunk known by its address has proven who it is as far as the border is concerned: it earns the
                    // higher request limit, so that a busy customer trunk is not taken for a flood.
                    shared.frontDoor.recordAuthenticated(source, account: customer.id)
                }
            }
        }
        guard let callerCallID = (try? invite.headers.callID()) ?? nil else {
            return loop.layer.answer(invite, id: id, source: source, status: 400, reason: "Bad Request")
        }
        if loop.layer.leg(forCallID: callerCallID) != nil {
            // A second INVITE of a call already here (new branch, same Call-ID and no To tag): a loop or a fork.
            return loop.layer.answer(invite, id: id, source: source, status: 482, reason: "Loop Detected")
        }
        if let refusal = admission.admit(customer) {
            return refusal == "sbc-full" || refusal == "sbc-draining"
                ? refuse(invite, id: id, source: source, status: 503, reason: "Service Unavailable", counted: refusal)
                : refuse(invite, id: id, source: source, status: 403, reason: "Forbidden", counted: refusal)
        }
        let number = nextCall
        nextCall += 1
        let calleeCallID = loop.layer.makeCallID()
        loop.layer.addLeg(Self.caller(number), callID: callerCallID)
        loop.layer.addLeg(Self.callee(number), callID: calleeCallID)
        guard loop.layer.serve(invite, id: id, source: source, leg: Self.caller(number)) else {
            // The transaction table is full: answered 503 already.
            shared.overloaded()
            loop.layer.endCall(number)
            admission.release(customer.id)
            return
        }
        calls[number] = CallSlot(
            invite: invite, source: source, inviteTransaction: id, customer: customer.id, callerCallID: callerCallID,
            calleeCallID: calleeCallID, fromCarrier: fromCarrier, internalTargets: internalTargets)
        switch pbx {
        case .fromPhone?: calls[number]?.phoneLeg = .caller
        case .toPhone?: calls[number]?.phoneLeg = .callee
        default: break
        }
        shared.callStarted()
        let calls = NIOLoopBound(self, eventLoop: loop.eventLoop)
        relay.openSession().whenComplete { result in
            let calls = calls.value
            calls.relayOpened(number, result)
            calls.loop.flush()
        }
    }

    private func relayOpened(_ number: Int, _ result: Result<MediaRelaySession, any Error>) {
        guard var slot = calls[number], !slot.cancelled else {
            if case .success(let session) = result { relay.release(session) }
            return
        }
        let session: MediaRelaySession
        switch result {
        case .success(let opened):
            session = opened
        case .failure(let error):
            logger.warning("no media relay ports: call refused", metadata: ["call-id": "\(slot.callerCallID)", "reason": "\(error)"])
            loop.layer.respond(InviteServerTransaction.response(503, "Service Unavailable", to: slot.invite, toTag: loop.layer.makeTag()), on: slot.inviteTransaction)
            finishSlot(number)
            return
        }
        slot.relay = session
        var callConfiguration = b2buaConfiguration(for: slot.source.transport)
        callConfiguration.relayPorts = (session.callerPort, session.calleePort)
        var call = B2BUACall(
            invite: slot.invite, customer: slot.customer, site: configuration.site, instance: configuration.instance,
            configuration: callConfiguration, callerLocalTag: loop.layer.makeTag(), calleeCallID: slot.calleeCallID,
            calleeLocalTag: loop.layer.makeTag(), summaryID: RandomID.uuidString(), now: Date())
        call.fromCarrier = slot.fromCarrier
        let actions = call.start()
        slot.call = call
        calls[number] = slot
        perform(actions, call: number)
    }

    /// The B2BUA's addresses: the caller sees the SBC over its own transport, carriers over theirs.
    private func b2buaConfiguration(for transport: SIPTransportProtocol) -> B2BUACall.Configuration {
        let address = configuration.advertisedAddress
        let host = address.contains(":") ? "[\(address)]" : address
        let ports = Dictionary(uniqueKeysWithValues: [SIPTransportProtocol.udp, .tcp, .tls].map { ($0, loop.transport.port(of: $0)) })
        let contact = transport == .udp ? "\(host):\(ports[.udp]!)" : "\(host):\(ports[transport]!);transport=\(transport.rawValue)"
        var settings = B2BUACall.Configuration(
            customerSideContact: contact, carrierSideContact: "\(host):\(ports[.udp]!)", customerSideMediaAddress: address,
            carrierSideMediaAddress: address, relayPorts: (0, 0), maximumDuration: configuration.maximumCallDuration)
        settings.carrierSideContacts = ["tcp": "\(host):\(ports[.tcp]!)", "tls": "\(host):\(ports[.tls]!)"]
        return settings
    }

    // MARK: - The machine

    /// Feeds an event to a call's machine; returns how many actions it gave.
    @discardableResult
    func callEvent(_ number: Int, _ event: B2BUACall.Event) -> Int {
        guard var call = calls[number]?.call else { return 0 }
        calls[number]?.call = nil
        let actions = call.handle(event, now: Date())
        calls[number]?.call = call
        perform(actions, call: number)
        return actions.count
    }

    /// Ends every call of this loop (a drained SBC at its bound): answered ones hung up, ones being set up cancelled.
    func hangUpAll(reason: String) {
        for number in Array(calls.keys).sorted() {
            guard var call = calls[number]?.call else { continue }
            calls[number]?.call = nil
            let actions = call.terminate(reason: reason, now: Date())
            calls[number]?.call = call
            perform(actions, call: number)
        }
        loop.flush()
    }

    func perform(_ actions: [B2BUACall.Action], call number: Int) {
        for action in actions {
            guard let slot = calls[number] else { return }
            switch action {
            case .route(let request):
                if let targets = slot.internalTargets {
                    callEvent(number, .routed(RouteDecision(outcome: .route, callee: request.callee, targets: targets)))
                    continue
                }
                let calls = NIOLoopBound(self, eventLoop: loop.eventLoop)
                links.route(request).whenComplete { result in
                    let calls = calls.value
                    switch result {
                    case .success(let decision): calls.callEvent(number, .routed(decision))
                    case .failure(let error): calls.callEvent(number, .routingFailed("\(error)"))
                    }
                    calls.loop.flush()
                }
            case .respondToCaller(let response):
                respondToCaller(response, slot: slot)
            case .sendToCaller(let request):
                loop.layer.send(request, on: Self.caller(number), to: .source(slot.source), purpose: .inDialog)
            case .inviteCallee(var request, let target):
                if slot.internalTargets == nil, configuration.registrars.contains(where: { $0.host == target.host && $0.port == target.port }) {
                    // A call routed to the PBX (a DID whose trunk is a PBX instance) from a carrier or a customer: the
                    // PBX takes an asserted identity for one of its extensions, which only this SBC may assert for a
                    // registered phone. Whatever the caller asserted stays out.
                    request.headers.removeAll(.pAssertedIdentity)
                }
                let kind = SIPTransportProtocol(rawValue: target.transport) ?? .udp
                if let id = loop.layer.send(
                    request, on: Self.callee(number), to: .address(host: target.host, port: target.port, transport: kind), purpose: .dialogSetup)
                {
                    calls[number]?.currentAttempt = id
                    calls[number]?.calleeHost = target.host
                    if slot.billed { links.usage(TrunkUsage(event: .seized, carrier: target.carrier, trunk: target.trunk, callID: slot.callerCallID)) }
                } else {
                    logger.warning("INVITE not sent: transaction table full", metadata: ["call-id": "\(slot.callerCallID)"])
                    callEvent(number, .attemptTransportFailed)
                }
            case .cancelCallee:
                guard let id = slot.currentAttempt else { continue }
                calls[number]?.currentAttempt = nil
                loop.layer.cancel(id)
            case .sendToCallee(let request, let target):
                let kind = SIPTransportProtocol(rawValue: target.transport) ?? .udp
                loop.layer.send(request, on: Self.callee(number), to: .address(host: target.host, port: target.port, transport: kind), purpose: .inDialog)
            case .respondToCallee(let response):
                loop.layer.respondInDialog(response, on: Self.callee(number))
            case .mediaDestination(let leg, let address, let port):
                let signalling = leg == .caller ? slot.source.remoteIP : slot.calleeHost
                if slot.phoneLeg == leg, Self.isBehindNAT(sdpAddress: address, signalling: signalling) {
                    // A phone behind a NAT (a private address in its SDP, its SIP from elsewhere): its media goes where
                    // its own packets come from (symmetric RTP), never to an address that cannot be reached (a send
                    // that fails there would close the relay's socket).
                    continue
                }
                slot.relay?.setDestination(leg == .caller ? .caller : .callee, host: address, port: port)
            case .mediaCodec(let codec):
                slot.relay?.setCodec(codec)
            case .startTimer(let timer, let delay):
                loop.layer.startTimer(call: number, timer: timer.rawValue, after: delay)
            case .cancelTimer(let timer):
                loop.layer.cancelTimer(call: number, timer: timer.rawValue)
            case .renewGrant(let request):
                let calls = NIOLoopBound(self, eventLoop: loop.eventLoop)
                let logger = self.logger
                links.renew(request).whenComplete { result in
                    let calls = calls.value
                    switch result {
                    case .success(let authorization):
                        calls.callEvent(number, .grantRenewed(authorization))
                    case .failure(let error):
                        logger.warning("billing could not renew the grant: the call ends when it runs out", metadata: [
                            "call-id": "\(request.callID)", "customer": "\(request.customer)", "reason": "\(error)",
                        ])
                        calls.callEvent(number, .grantRenewed(nil))
                    }
                    calls.loop.flush()
                }
            case .reportAttempt(let report):
                if slot.billed { links.report(report) }
                if slot.billed, report.result == .answered, let call = slot.call {
                    // Billing keeps this until the call's CDR: if this SBC is lost, it ends the call at our last heartbeat.
                    links.checkpoint(answered: call.checkpoint(now: Date()))
                }
                logger.info("call attempt", metadata: [
                    "call-id": "\(slot.callerCallID)", "customer": "\(slot.customer)", "carrier": "\(report.carrier)",
                    "result": "\(report.result.rawValue)", "status": "\(report.status.map(String.init) ?? "-")",
                ])
            case .spool(var summary):
                guard slot.billed else {
                    // Nothing to bill: the messages held for the summary go at once.
                    callEvent(number, .summarySpooled)
                    continue
                }
                if let session = slot.relay { summary.streams = Self.streams(session) }
                let calls = NIOLoopBound(self, eventLoop: loop.eventLoop)
                spool.submit(summary) {
                    let calls = calls.value
                    calls.callEvent(number, .summarySpooled)
                    calls.loop.flush()
                }
            case .finished(var summary):
                let alreadySpooled = (slot.call?.summaryIsSpooled ?? false) || !slot.billed
                if slot.billed, let answered = summary.attempts.last(where: { $0.result == .answered }) {
                    links.usage(TrunkUsage(event: .released, carrier: answered.carrier, trunk: answered.trunk, callID: summary.callID))
                }
                if let session = slot.relay {
                    let reports = session.streamReports()
                    summary.streams = reports.map(Self.streamReport)
                    if slot.billed, let quality = Self.quality(of: summary, reports: reports, fromCarrier: slot.fromCarrier) { links.quality(quality) }
                    relay.release(session)
                    calls[number]?.relay = nil
                }
                // The media relayed per direction: for calls inside the platform (no CDR) the only record of their audio.
                let streams = summary.streams.map { "\($0.direction) \($0.packets) packets \($0.lost) lost" }.joined(separator: ", ")
                logger.info("call ended", metadata: [
                    "call-id": "\(summary.callID)", "customer": "\(summary.customer)", "status": "\(summary.disconnect.status)",
                    "duration-ms": "\(summary.durationMilliseconds)", "attempts": "\(summary.attempts.count)",
                    "streams": "\(streams.isEmpty ? "none" : streams)",
                ])
                if !alreadySpooled { spool.submit(summary) }
                if slot.billed, summary.answerAt != nil { links.checkpoint(ended: summary) }
                finishSlot(number)
            }
        }
    }

    private func respondToCaller(_ response: SIPResponse, slot: CallSlot) {
        let cseq = CSeqKey(response.headers)
        if let cseq, cseq.method == .invite, cseq == CSeqKey(slot.invite.headers) {
            loop.layer.respond(response, on: slot.inviteTransaction)
        } else if let number = loop.layer.leg(forCallID: slot.callerCallID)?.call {
            loop.layer.respondInDialog(response, on: Self.caller(number))
        }
    }

    static let privateNetworks = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "fc00::/7", "fe80::/10"]
        .compactMap { IPNetwork($0) }

    /// Whether a phone's SDP address is a private one while its SIP comes from (or goes to) another address: it is
    /// behind a NAT, and only its own packets show where its media can be sent.
    static func isBehindNAT(sdpAddress: String, signalling: String?) -> Bool {
        guard let signalling, signalling != sdpAddress else { return false }
        return privateNetworks.contains { $0.contains(sdpAddress) }
    }

    static func streams(_ session: MediaRelaySession) -> [CallSummary.StreamReport] {
        session.streamReports().map(streamReport)
    }

    static func streamReport(_ report: RelayStreamReport) -> CallSummary.StreamReport {
        let quality = report.quality
        return CallSummary.StreamReport(
            direction: report.direction, codec: quality.codec, packets: quality.packets, bytes: quality.bytes, lost: quality.lost,
            jitterMilliseconds: quality.jitterMilliseconds, roundTripMilliseconds: quality.roundTripMilliseconds,
            rFactor: quality.rFactor, mos: quality.mos)
    }

    /// The monitor's view of an answered call's media: the caller's side is the customer's, the callee's the
    /// carrier's (the other way round for a call from a carrier to one of our numbers). Nil when no audio flowed.
    static func quality(of summary: CallSummary, reports: [RelayStreamReport], fromCarrier: Bool) -> CallQuality? {
        guard !reports.isEmpty, let answered = summary.attempts.last(where: { $0.result == .answered }) else { return nil }
        let streams = reports.map { report in
            let fromCaller = report.direction == "caller-to-callee"
            let q = report.quality
            return CallQuality.Stream(
                direction: fromCaller != fromCarrier ? .customerToSBC : .carrierToSBC, codec: q.codec, packets: q.packets, lost: q.lost,
                lossPercent: q.lossPercent, jitterMilliseconds: q.jitterMilliseconds, roundTripMilliseconds: q.roundTripMilliseconds,
                delayMilliseconds: q.oneWayDelayMilliseconds, mos: q.mos)
        }
        // From a carrier, the SBC's "customer" is the originating carrier and the answering trunk the DID's owner.
        return CallQuality(
            callID: summary.callID, source: .sbc, customer: fromCarrier ? answered.trunk : summary.customer,
            carrier: fromCarrier ? summary.customer : answered.carrier, trunk: fromCarrier ? "on-net" : answered.trunk,
            caller: summary.caller, callee: summary.callee, site: summary.site, instance: summary.instance, endAt: summary.endAt,
            durationMilliseconds: summary.durationMilliseconds, streams: streams)
    }

    /// The call is gone: its dialogs, timers and counts go with it.
    func finishSlot(_ number: Int) {
        guard let slot = calls.removeValue(forKey: number) else { return }
        loop.layer.endCall(number)
        if let session = slot.relay { relay.release(session) }
        shared.admission.release(slot.customer)
    }
}
