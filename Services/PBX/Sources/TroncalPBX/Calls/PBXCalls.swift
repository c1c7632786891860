internal import Foundation
internal import Logging
internal import Metrics
internal import NIOCore
internal import TroncalCall
internal import TroncalMedia
internal import TroncalProtocol
internal import TroncalRuntime
internal import TroncalSIP

/// The PBX's SIP application on its loop: REGISTER (and OPTIONS) go to the registrar, INVITEs become calls. A call
/// comes from an SBC of the site, for a phone registered through it: the SBC asserts who the phone is
/// (`P-Asserted-Identity: <sip:EXT@TENANT-DOMAIN>`, the address of record its REGISTER was authenticated for; the PBX
/// takes it only from its trusted sources, and any other source never reaches this loop). The PBX answers it as a
/// back-to-back user agent (the shared `B2BUACall`, SDP passed through unchanged: the media stays on the SBC's relay,
/// which anchors both phones' legs) and calls the callee's registered contacts through the SBC that holds each one's
/// flow (the first hop of the binding's Path, whose user part is the SBC's flow token).
///
/// A call rings several places at once (an extension's contacts, a simultaneous ring group's members) with one machine
/// per place, all sharing the caller's leg: the first to answer wins, the others are cancelled; when every one failed,
/// the best failure is the caller's answer, or the call moves on (a forward, a group's fallback) with new machines on
/// the same INVITE. Leg 0 of a call is the caller's (from the SBC); machine k calls on leg k + 1 (its own Call-ID) and
/// its timers are numbered k × 16 + the machine's timer.
final class PBXCalls: CallApplication {
    struct Machine {
        var call: B2BUACall?
        /// The INVITE out to its current target.
        var attempt: TransactionID?
        /// Its final failure answer to the caller, held until every machine has failed.
        var failure: SIPResponse?
    }

    struct Slot {
        var invite: SIPRequest
        let source: SIPSource
        let inviteTransaction: TransactionID
        let tenant: String
        /// The tenant's billing customer: outside calls are charged to it.
        let customer: String
        let caller: String
        let callID: String
        /// What is being rung now (a failure may move the call on: forwards, a ring group's fallback).
        var route: PBXRoute
        /// Forwards and fallbacks followed so far.
        var hops = 0
        let callerLocalTag: String
        /// The machines ringing (or, after the answer, the one in the call), by number.
        var machines: [Int: Machine] = [:]
        var nextMachine = 0
        /// The machine whose callee answered.
        var winner: Int?
        /// Failures of the machines of the current route, for the caller's answer when all have failed.
        var failures: [SIPResponse] = []
        /// The caller cancelled: nothing moves on.
        var cancelled = false
        /// On hold: the PBX plays music to the party that did not ask for it.
        var hold: PBXHold?
        /// A hold being set up (its media socket being opened): further re-INVITEs wait for it.
        var holdStarting = false
        /// The PBX answered the caller itself (an IVR menu, voicemail): its media endpoint and what it is doing. Cleared
        /// when the call is connected to a destination the menu chose.
        var app: PBXApp?
        /// The caller's INVITE was answered by the PBX (200 with its own media): a machine's answer later reconnects the
        /// caller's media with a re-INVITE instead.
        var answeredHere = false
        /// Its media socket being opened.
        var appStarting = false
        /// A blind transfer under way: the transferor's machine (still in its dialog for the NOTIFYs) and the REFER.
        var transfer: PBXTransfer?
        /// Transferors' machines of transfers done, still ending (their BYE does not end the call).
        var releasedTransferors: Set<Int> = []
        /// The last CSeq of ours in the caller's dialog, for machines that take it over (a transfer's destination).
        var callerCSeq: UInt32 = 0
        /// The origin line (`o=`) of the last SDP the caller got: a re-INVITE of the PBX's own goes on in that session.
        var callerOrigin: String?
        /// The same for the callee.
        var calleeOrigin: String?
        /// The last SDP each party sent (the caller's went on to the callee, the callee's to the caller): what an
        /// attended transfer offers the other party it joins.
        var callerSDP: [UInt8] = []
        var calleeSDP: [UInt8] = []
        /// Machines whose callee another call took over (an attended transfer): what they would send it is dropped.
        var movedCallees: Set<Int> = []
    }

    let loop: CallLoop
    let registrar: Registrar
    let catalogs: PBXCatalogManager
    let bindings: BindingStore
    let logger: Logger
    let instance: String
    let site: String
    let setupTimeout: Duration
    let media: PBXMediaSettings
    let voicemail: VoicemailStore
    let prompts: PBXPrompts
    let applications: PBXApplicationSettings
    let mwiNotifies: [String: Counter]
    let transfers: [String: Counter]
    var calls: [Int: Slot] = [:]
    private var nextCall = 1
    /// The member each round-robin ring group starts with next, by tenant/group.
    private var roundRobin: [String: Int] = [:]
    private let started = Counter(label: "troncal_pbx_calls_total")
    let outcomes: [String: Counter]
    private let pickups: [String: Counter]
    private let holds: [String: Counter]

    static let callerLeg = 0
    /// Standalone requests of the PBX (message-waiting NOTIFYs) are numbered from here.
    static let firstNotifyToken = 1 << 30
    var nextNotifyToken = PBXCalls.firstNotifyToken
    /// Not a leg of any call: answers for it are dropped.
    static let applicationLeg = -1
    static func caller(_ number: Int) -> LegReference { LegReference(call: number, leg: callerLeg) }
    static func callee(_ number: Int, machine: Int) -> LegReference { LegReference(call: number, leg: machine + 1) }
    static let timersPerMachine = 16
    static let outcomeNames = ["answered", "busy", "unavailable", "not-found", "refused", "failed", "cancelled"]
    /// The target "carrier" of a call outside: the SBC the call came from.
    static let outsideCarrier = "outside"
    static let chargeDomain = "charge.troncal.invalid"
    /// What passes a ring group's member over for the next: busy, unavailable, not registered.
    static let memberFailures = [404, 480, 486, 600, 603]

    init(
        loop: CallLoop, registrar: Registrar, catalogs: PBXCatalogManager, bindings: BindingStore, instance: String, site: String,
        setupTimeout: Duration, media: PBXMediaSettings, voicemail: VoicemailStore, prompts: PBXPrompts, applications: PBXApplicationSettings,
        logger: Logger
    ) {
        self.media = media
        self.voicemail = voicemail
        self.prompts = prompts
        self.applications = applications
        var notifies: [String: Counter] = [:]
        for name in ["sent", "answered", "refused", "failed"] { notifies[name] = Counter(label: "troncal_pbx_mwi_notifies_total", dimensions: [("result", name)]) }
        self.mwiNotifies = notifies
        var transfers: [String: Counter] = [:]
        for name in ["transferred", "failed", "refused"] { transfers[name] = Counter(label: "troncal_pbx_transfers_total", dimensions: [("result", name)]) }
        self.transfers = transfers
        self.loop = loop
        self.registrar = registrar
        self.catalogs = catalogs
        self.bindings = bindings
        self.instance = instance
        self.site = site
        self.setupTimeout = setupTimeout
        self.logger = logger
        var outcomes: [String: Counter] = [:]
        for name in Self.outcomeNames { outcomes[name] = Counter(label: "troncal_pbx_call_outcomes_total", dimensions: [("outcome", name)]) }
        self.outcomes = outcomes
        var pickups: [String: Counter] = [:]
        for name in ["picked-up", "nothing-ringing", "incompatible"] {
            pickups[name] = Counter(label: "troncal_pbx_pickups_total", dimensions: [("result", name)])
        }
        self.pickups = pickups
        var holds: [String: Counter] = [:]
        for name in ["started", "playing", "resumed", "failed"] { holds[name] = Counter(label: "troncal_pbx_holds_total", dimensions: [("result", name)]) }
        self.holds = holds
    }

    var calling: Int { calls.count }

    func handle(_ event: CallLayerEvent, in loop: CallLoop) {
        switch event {
        case .newRequest(let request, let id, let source):
            guard request.method == .invite else { return registrar.handle(event, in: loop) }
            registrar.prepareLayer()
            newCall(request, id: id, source: source)
        case .inDialogRequest(let leg, let request, let id):
            if request.method == .refer { return refer(leg, request) }
            if request.method == .invite, let winner = calls[leg.call]?.winner, holdOrResume(leg.call, machine: winner, request, from: leg) { return }
            if leg.leg == Self.callerLeg, let slot = calls[leg.call], slot.answeredHere, slot.winner == nil {
                return applicationRequest(leg.call, request)
            }
            let handled: Int
            if leg.leg == Self.callerLeg {
                handled = calls[leg.call]?.winner.map { callEvent(leg.call, machine: $0, .callerRequest(request)) } ?? 0
            } else {
                handled = callEvent(leg.call, machine: leg.leg - 1, .calleeRequest(request))
            }
            if handled == 0, !loop.layer.isAnswered(id) {
                loop.layer.respond(InviteServerTransaction.response(481, "Call/Transaction Does Not Exist", to: request, toTag: loop.layer.makeTag()), on: id)
            }
        case .ack(let leg, let ack):
            if leg.leg == Self.callerLeg {
                if let winner = calls[leg.call]?.winner { callEvent(leg.call, machine: winner, .callerRequest(ack)) }
            } else {
                callEvent(leg.call, machine: leg.leg - 1, .calleeRequest(ack))
            }
        case .cancelled(let leg, _):
            guard var slot = calls[leg.call], slot.winner == nil, !slot.answeredHere, !slot.appStarting else { return }
            slot.cancelled = true
            calls[leg.call] = slot
            guard !slot.machines.isEmpty else {
                // Cancelled while the contacts were being looked up: nothing rings yet.
                loop.layer.respond(
                    InviteServerTransaction.response(487, "Request Terminated", to: slot.invite, toTag: slot.callerLocalTag), on: slot.inviteTransaction)
                calls.removeValue(forKey: leg.call)
                outcomes["cancelled"]?.increment()
                loop.layer.endCall(leg.call)
                return
            }
            for machine in slot.machines.keys.sorted() { callEvent(leg.call, machine: machine, .callerCancel) }
        case .response(let leg?, let response, let id, let purpose):
            guard let slot = calls[leg.call] else { return }
            if leg.leg == Self.callerLeg {
                if purpose == .inDialog, let winner = slot.winner { callEvent(leg.call, machine: winner, .callerResponse(response)) }
                return
            }
            if leg.leg == Self.applicationLeg { return }
            let machine = leg.leg - 1
            switch purpose {
            case .dialogSetup where id == nil || id == slot.machines[machine]?.attempt:
                callEvent(leg.call, machine: machine, .calleeResponse(response))
            case .inDialog:
                callEvent(leg.call, machine: machine, .calleeDialogResponse(response))
            default:
                return
            }
        case .requestFailed(let leg?, let id, .dialogSetup, _):
            if leg.leg != Self.callerLeg, calls[leg.call]?.machines[leg.leg - 1]?.attempt == id {
                callEvent(leg.call, machine: leg.leg - 1, .attemptTransportFailed)
            }
        case .answerUnacknowledged(let leg):
            if let slot = calls[leg.call], slot.answeredHere, slot.winner == nil {
                logger.info("no ACK for the PBX's answer: hanging up", metadata: ["call-id": "\(slot.callID)", "tenant": "\(slot.tenant)"])
                return finishApplication(leg.call, status: 408, reason: "no ACK")
            }
            guard let slot = calls[leg.call], let winner = slot.winner else { return }
            logger.info("no ACK for the answer: hanging up", metadata: ["call-id": "\(slot.callID)", "tenant": "\(slot.tenant)"])
            callEvent(leg.call, machine: winner, .timerFired(.sessionExpiry))
        case .timer(let call, let timer):
            if timer < 0 { return applicationTimer(call, -timer) }
            if let kind = B2BUACall.Timer(rawValue: timer % Self.timersPerMachine) {
                callEvent(call, machine: timer / Self.timersPerMachine, .timerFired(kind))
            }
        case .response(nil, let response, _, .standalone(let token)) where token >= Self.firstNotifyToken:
            guard response.statusCode >= 200 else { return }
            mwiNotifies[(200..<300).contains(response.statusCode) ? "answered" : "refused"]?.increment()
            if response.statusCode >= 300 {
                logger.info("message-waiting NOTIFY refused", metadata: ["status": "\(response.statusCode)"])
            }
        case .requestFailed(nil, _, .standalone(let token), let failure) where token >= Self.firstNotifyToken:
            mwiNotifies["failed"]?.increment()
            logger.info("message-waiting NOTIFY not answered", metadata: ["reason": "\(failure == .timeout ? "timeout" : "transport error")"])
        case .response, .requestFailed:
            return
        }
    }

    // MARK: - New calls

    private func newCall(_ received: SIPRequest, id: TransactionID, source: SIPSource) {
        let catalog = catalogs.catalog
        let now = Date()
        guard let callID = (try? received.headers.callID()) ?? nil else {
            return loop.layer.answer(received, id: id, source: source, status: 400, reason: "Bad Request")
        }
        if loop.layer.leg(forCallID: callID) != nil {
            return loop.layer.answer(received, id: id, source: source, status: 482, reason: "Loop Detected")
        }
        var invite = received
        let dialled = invite.uri.user ?? ""
        let tenant: PBXCatalog.Tenant
        let route: PBXRoute
        let caller: String
        if let asserted = received.headers.first(.pAssertedIdentity).flatMap({ SIPAddress($0.valueString) }), let user = asserted.uri.user,
            let assertedTenant = catalog.tenant(domain: asserted.uri.host), let from = catalog.extension(user, of: assertedTenant.name)
        {
            // An extension calls: the identity the SBC asserts for the phone's registered flow.
            if dialled.hasPrefix(assertedTenant.pickupCode) {
                // The pickup code alone: a call ringing in the caller's pickup group; followed by an extension: a call
                // ringing at that extension.
                let directed = String(dialled.dropFirst(assertedTenant.pickupCode.count))
                if directed.isEmpty || PBXCatalog.isExtensionNumber(directed) {
                    return pickUp(received, id: id, source: source, tenant: assertedTenant, picker: from, directed: directed.isEmpty ? nil : directed)
                }
            }
            tenant = assertedTenant
            caller = from.number
            if dialled == applications.voicemailCode {
                // The caller's own voicemail box.
                route = from.voicemail ? .voicemailAccess(from.number) : .reject(404, "extension \(from.number) has no voicemail box")
            } else {
                route = PBXDialPlan(catalog: catalog, tenant: tenant).dialled(dialled, now: now)
            }
            // Inside the tenant the callee sees the extension; outside, the tenant's caller id (or anonymous).
            if case .outside = route {
                let shown = from.withholdCallerID ? "anonymous" : tenant.callerID.isEmpty ? from.number : tenant.callerID
                Self.rewriteFrom(&invite, user: shown, name: "")
                if from.withholdCallerID { invite.headers.replace(.privacy, with: "id") }
            } else {
                Self.rewriteFrom(&invite, user: from.number, name: from.withholdCallerID ? "" : from.name)
            }
        } else if let did = catalog.dids.first(where: { $0.number == dialled || $0.number == "+" + dialled }),
            let didTenant = catalog.tenants.first(where: { $0.name == did.tenant })
        {
            // A call from outside to one of the tenant's numbers, routed here by the SBC.
            tenant = didTenant
            caller = ((try? received.headers.from()) ?? nil)?.uri.user ?? ""
            route = PBXDialPlan(catalog: catalog, tenant: tenant).follow(did.destination, now: now, hops: 0)
            invite.headers.removeAll(.pAssertedIdentity)
        } else {
            outcomes["refused"]?.increment()
            logger.info("call neither from an asserted extension nor to a DID refused", metadata: ["source": "\(source)", "call-id": "\(callID)"])
            return loop.layer.answer(received, id: id, source: source, status: 403, reason: "Forbidden")
        }
        let number = nextCall
        nextCall += 1
        loop.layer.addLeg(Self.caller(number), callID: callID)
        guard loop.layer.serve(received, id: id, source: source, leg: Self.caller(number)) else {
            loop.layer.endCall(number)
            return
        }
        started.increment()
        calls[number] = Slot(
            invite: invite, source: source, inviteTransaction: id, tenant: tenant.name, customer: tenant.customer, caller: caller,
            callID: callID, route: route, callerLocalTag: loop.layer.makeTag())
        ring(number)
    }

    // MARK: - Hold

    /// A re-INVITE in an answered call: a hold (`sendonly`/`inactive`) is answered by the PBX itself, which plays the
    /// hold music to the other party (its own re-INVITE, `sendonly`, from a media socket of its own); a resume closes
    /// that socket and goes on as any re-INVITE (the other party gets the holder's media again). True when handled here.
    private func holdOrResume(_ number: Int, machine: Int, _ request: SIPRequest, from leg: LegReference) -> Bool {
        guard var slot = calls[number], let text = String(validating: request.body, as: UTF8.self), let offer = try? SessionDescription(text)
        else { return false }
        if !offer.isHold {
            guard let hold = slot.hold else { return false }
            hold.endpoint.close()
            slot.hold = nil
            calls[number] = slot
            holds["resumed"]?.increment()
            logger.info("call resumed", metadata: ["call-id": "\(slot.callID)", "tenant": "\(slot.tenant)"])
            return false
        }
        if slot.holdStarting {
            // A second hold while the first is being set up: the phone retries after 491 (RFC 3261 §14.1).
            loop.layer.respondInDialog(InviteServerTransaction.response(491, "Request Pending", to: request), on: leg)
            return true
        }
        if let hold = slot.hold {
            // Already on hold (a refresh, or a hold from the other side too): the same media answer again.
            answerHold(request, offer: offer, endpoint: hold.endpoint, on: leg)
            return true
        }
        guard let choice = SessionDescription.endpointAnswer(to: offer, address: media.address, port: 0),
            let remote = try? SocketAddress(ipAddress: choice.remote.address, port: choice.remote.port)
        else { return false }
        slot.holdStarting = true
        calls[number] = slot
        let bound = NIOLoopBound(self, eventLoop: loop.eventLoop)
        MediaEndpoint.open(
            host: media.address, ports: media.ports, remote: remote, codec: choice.codec, payloadType: choice.payloadType, eventPayloadType: nil,
            on: loop.eventLoop
        ).assumeIsolated().whenComplete { result in
            let calls = bound.value
            calls.calls[number]?.holdStarting = false
            switch result {
            case .success(let endpoint):
                guard let slot = calls.calls[number], slot.winner == machine, slot.hold == nil else {
                    endpoint.close()
                    return
                }
                endpoint.latches = false
                calls.calls[number]?.hold = PBXHold(endpoint: endpoint)
                calls.answerHold(request, offer: offer, endpoint: endpoint, on: leg)
                calls.holds["started"]?.increment()
                calls.logger.info("call on hold: music to the other party", metadata: [
                    "call-id": "\(slot.callID)", "tenant": "\(slot.tenant)", "by": "\(leg.leg == Self.callerLeg ? "caller" : "callee")",
                    "media-port": "\(endpoint.port)",
                ])
                let other: B2BUACall.Leg = leg.leg == Self.callerLeg ? .callee : .caller
                if let music = SessionDescription.holdMusicOffer(
                    address: calls.media.address, port: endpoint.port, codec: choice.codec, payloadType: choice.payloadType)
                {
                    calls.callEvent(number, machine: machine, own: other, offer: Array(music.text.utf8))
                }
            case .failure(let error):
                // No media port: the hold goes through as any re-INVITE (the other party hears silence, not music).
                calls.holds["failed"]?.increment()
                calls.logger.warning("hold music unavailable: the hold is passed on", metadata: ["reason": "\(error)"])
                if leg.leg == Self.callerLeg {
                    calls.callEvent(number, machine: machine, .callerRequest(request))
                } else {
                    calls.callEvent(number, machine: machine, .calleeRequest(request))
                }
            }
            calls.loop.flush()
        }
        return true
    }

    /// The PBX's 200 to a hold: its media socket, in the direction the holder allows (`recvonly` for `sendonly`).
    private func answerHold(_ request: SIPRequest, offer: SessionDescription, endpoint: MediaEndpoint, on leg: LegReference) {
        guard let answer = SessionDescription.endpointAnswer(to: offer, address: media.address, port: endpoint.port) else {
            loop.layer.respondInDialog(InviteServerTransaction.response(488, "Not Acceptable Here", to: request), on: leg)
            return
        }
        var response = InviteServerTransaction.response(200, "OK", to: request)
        let body = Array(answer.answer.text.utf8)
        response.headers.removeAll(.contentLength)
        response.headers.append(.contact, "<sip:\(loop.layer.configuration.sentBy[.udp] ?? "")>")
        response.headers.append(.contentType, "application/sdp")
        response.headers.append(.contentLength, "\(body.count)")
        response.body = body
        loop.layer.respondInDialog(response, on: leg)
    }

    /// Has a machine send its own re-INVITE to one side (the hold music offer).
    func callEvent(_ number: Int, machine index: Int, own leg: B2BUACall.Leg, offer: [UInt8]) {
        guard var call = calls[number]?.machines[index]?.call else { return }
        let actions = call.reinvite(leg, offer: offer)
        calls[number]?.machines[index]?.call = call
        perform(actions, call: number, machine: index)
    }

    // MARK: - Call pickup

    /// Answers a call ringing elsewhere from the phone that dialled the pickup code (`picker`): the oldest call of the
    /// tenant ringing at an extension of the picker's pickup group (or at `directed`), never one the picker itself
    /// made. The picker's INVITE becomes that call's answering leg: both offers are answered with the other party's
    /// media (the SBC anchors each phone's leg, so each side's relay sends to the other's), the places still ringing
    /// are cancelled, and the call goes on as any answered call. Nothing ringing: 480; no codec in common: 488.
    private func pickUp(
        _ invite: SIPRequest, id: TransactionID, source: SIPSource, tenant: PBXCatalog.Tenant, picker: PBXCatalog.Extension, directed: String?
    ) {
        let catalog = catalogs.catalog
        let callID = ((try? invite.headers.callID()) ?? nil) ?? ""
        // Ringing: a machine of a call nobody answered yet, calling an extension's contact (trunk `tenant/extension`).
        let ringing = calls.keys.sorted().lazy.compactMap { number -> (Int, String)? in
            guard let slot = self.calls[number], slot.tenant == tenant.name, slot.winner == nil, !slot.cancelled, slot.caller != picker.number else {
                return nil
            }
            for machine in slot.machines.values {
                guard let target = machine.call?.targetBeingCalled, target.carrier == "extension" else { continue }
                let rung = String(target.trunk.dropFirst(tenant.name.count + 1))
                guard rung != picker.number else { continue }
                if let directed {
                    if rung == directed { return (number, rung) }
                } else if let member = catalog.extension(rung, of: tenant.name), member.pickupGroup == picker.pickupGroup {
                    return (number, rung)
                }
            }
            return nil
        }.first
        guard let (number, rung) = ringing, let slot = calls[number] else {
            pickups["nothing-ringing"]?.increment()
            logger.info("call pickup: nothing ringing", metadata: [
                "call-id": "\(callID)", "tenant": "\(tenant.name)", "extension": "\(picker.number)", "directed": "\(directed ?? "-")",
            ])
            return loop.layer.answer(invite, id: id, source: source, status: 480, reason: "Temporarily Unavailable")
        }
        let callerOffer = String(decoding: slot.invite.body, as: UTF8.self)
        let pickerOffer = String(decoding: invite.body, as: UTF8.self)
        guard let offerA = try? SessionDescription(callerOffer), let offerB = try? SessionDescription(pickerOffer),
            let toCaller = SessionDescription.answer(to: offerA, from: offerB), let toPicker = SessionDescription.answer(to: offerB, from: offerA)
        else {
            pickups["incompatible"]?.increment()
            logger.info("call pickup: no media in common (or an INVITE without SDP)", metadata: [
                "call-id": "\(callID)", "tenant": "\(tenant.name)", "extension": "\(picker.number)", "picked-call-id": "\(slot.callID)",
            ])
            return loop.layer.answer(invite, id: id, source: source, status: 488, reason: "Not Acceptable Here")
        }
        let tag = loop.layer.makeTag()
        let contact = loop.layer.configuration.sentBy[.udp] ?? ""
        var call = B2BUACall(
            invite: slot.invite, customer: slot.tenant, site: site, instance: instance, configuration: machineSettings, callerLocalTag: slot.callerLocalTag,
            calleeCallID: callID, calleeLocalTag: tag, summaryID: RandomID.uuidString(), now: Date())
        _ = call.start()
        let target = RouteTarget(
            carrier: "pickup", trunk: "\(tenant.name)/\(picker.number)", host: source.remoteIP, port: source.remotePort, transport: "udp",
            number: picker.number, setupTimeoutMilliseconds: 0)
        // The machine takes the picker's dialog first; only then is the picker answered (nothing is half done).
        let actions = call.answeredByPickup(invite: invite, target: target, sdp: Array(toCaller.text.utf8), now: Date())
        guard !actions.isEmpty else {
            return loop.layer.answer(invite, id: id, source: source, status: 400, reason: "Bad Request")
        }
        var updated = slot
        let index = updated.nextMachine
        updated.nextMachine += 1
        let leg = Self.callee(number, machine: index)
        loop.layer.addLeg(leg, callID: callID)
        // A full transaction table answered 503 already; the leg goes with the call's.
        guard loop.layer.serve(invite, id: id, source: source, leg: leg) else { return }
        // The picker's answer: the caller's media, our Contact.
        var answer = InviteServerTransaction.response(200, "OK", to: invite, toTag: tag)
        let body = Array(toPicker.text.utf8)
        answer.headers.removeAll(.contentLength)
        answer.headers.append(.contact, "<sip:\(contact)>")
        answer.headers.append(.contentType, "application/sdp")
        answer.headers.append(.contentLength, "\(body.count)")
        answer.body = body
        loop.layer.respond(answer, on: id)
        updated.machines[index] = Machine(call: call)
        calls[number] = updated
        pickups["picked-up"]?.increment()
        logger.info("call picked up", metadata: [
            "call-id": "\(slot.callID)", "tenant": "\(tenant.name)", "extension": "\(picker.number)", "ringing": "\(rung)",
            "picker-call-id": "\(callID)",
        ])
        // The caller's 200 makes this machine the one in the call and cancels the places still ringing.
        perform(actions, call: number, machine: index)
    }

    /// The caller's From: `user` (and a display name) instead of what the phone wrote there.
    static func rewriteFrom(_ invite: inout SIPRequest, user: String, name: String) {
        guard let from = (try? invite.headers.from()) ?? nil else { return }
        var uri = from.uri
        uri.user = user
        let tag = from.tag.map { ";tag=\($0)" } ?? ""
        let shown = name.isEmpty ? "" : "\"\(name.replacingOccurrences(of: "\"", with: ""))\" "
        invite.headers.replace(.from, with: "\(shown)<\(uri)>\(tag)")
    }

    /// Rings what the call's route names: each place its own machine (all at once), or one machine trying its targets
    /// in turn (sequential and round-robin groups, outside, a refusal).
    func ring(_ number: Int) {
        guard let slot = calls[number] else { return }
        switch slot.route {
        case .reject(let status, let reason):
            startMachines(number, [.reject(status, reason)])
        case .menu, .voicemail, .voicemailAccess:
            runApplication(number, slot.route)
        case .outside(let dialled):
            let sbc = RouteTarget(
                carrier: Self.outsideCarrier, trunk: slot.customer, host: slot.source.remoteIP, port: slot.source.remotePort, transport: "udp",
                number: dialled, setupTimeoutMilliseconds: 60_000)
            startMachines(number, [.targets([sbc], callee: dialled)])
        case .extensionNumber(let extensionNumber):
            // All its contacts at once; each rung until its no-answer forward's time when it has one.
            let ringSeconds = catalogs.catalog.extension(extensionNumber, of: slot.tenant).flatMap {
                $0.forwardNoAnswer != nil || $0.voicemail ? $0.noAnswerSeconds : nil
            }
            lookUpTargets(number, members: [extensionNumber], ringSeconds: ringSeconds, huntOn: nil, together: true)
        case .group(let name):
            guard let group = catalogs.catalog.ringGroups.first(where: { $0.tenant == slot.tenant && $0.name == name }) else {
                startMachines(number, [.reject(404, "ring group \(name) is gone")])
                return
            }
            var members = group.members
            if group.strategy == .roundRobin, !members.isEmpty {
                // Each call starts one member further than the last one did.
                let key = "\(group.tenant)/\(group.name)"
                let first = roundRobin[key, default: 0] % members.count
                roundRobin[key] = first + 1
                members = Array(members[first...] + members[..<first])
            }
            // Simultaneous: every member's contacts at once. Sequential and round-robin: one after another, a member
            // that is busy, unavailable or not registered passed over for the next.
            let together = group.strategy == .simultaneous
            lookUpTargets(number, members: members, ringSeconds: group.memberSeconds, huntOn: together ? nil : Self.memberFailures, together: together)
        }
    }

    enum Plan {
        case targets([RouteTarget], callee: String)
        case reject(Int, String)
    }

    /// The registered contacts of `members`, in order (each extension's newest first): one machine each (`together`),
    /// or one machine trying them in turn.
    private func lookUpTargets(_ number: Int, members: [String], ringSeconds: Int?, huntOn: [Int]?, together: Bool) {
        guard let slot = calls[number] else { return }
        let bound = NIOLoopBound(self, eventLoop: loop.eventLoop)
        let tenant = slot.tenant
        let timeout = Int(setupTimeout.components.seconds * 1000)
        Self.lookUp(tenant: tenant, extensions: members, in: bindings) { result in
            bound.eventLoop.execute {
                let calls = bound.value
                switch result {
                case .success(let found):
                    let targets = found.flatMap { member in
                        member.sorted { $0.registeredAt > $1.registeredAt }.compactMap {
                            Self.target($0, timeoutMilliseconds: timeout, ringSeconds: ringSeconds, huntOn: huntOn)
                        }
                    }
                    let callee = members.first ?? ""
                    if targets.isEmpty {
                        calls.startMachines(number, [.reject(480, "\(members.joined(separator: ", ")) not registered")])
                    } else if together {
                        calls.startMachines(number, targets.map { .targets([$0], callee: callee) })
                    } else {
                        calls.startMachines(number, [.targets(targets, callee: callee)])
                    }
                case .failure(let error):
                    calls.logger.error("bindings could not be read: call refused", metadata: ["tenant": "\(tenant)", "reason": "\(error)"])
                    calls.startMachines(number, [.reject(503, "bindings unavailable")])
                }
                calls.loop.flush()
            }
        }
    }

    /// The settings of every call machine: the PBX's own address (as the registrar prepared it for the Via) as its
    /// Contact on both sides; SDP passed through unchanged (the media stays on the SBC's relay).
    var machineSettings: B2BUACall.Configuration {
        let contact = loop.layer.configuration.sentBy[.udp] ?? ""
        var settings = B2BUACall.Configuration(
            customerSideContact: contact, carrierSideContact: contact, customerSideMediaAddress: "", carrierSideMediaAddress: "", relayPorts: (0, 0))
        settings.anchorsMedia = false
        return settings
    }

    /// One machine per plan, each on a leg of its own, all answering the caller's INVITE.
    func startMachines(_ number: Int, _ plans: [Plan]) {
        guard var slot = calls[number] else { return }
        let settings = machineSettings
        var started: [(Int, Plan)] = []
        for plan in plans {
            let index = slot.nextMachine
            slot.nextMachine += 1
            let calleeCallID = loop.layer.makeCallID()
            loop.layer.addLeg(Self.callee(number, machine: index), callID: calleeCallID)
            var call = B2BUACall(
                invite: slot.invite, customer: slot.tenant, site: site, instance: instance, configuration: settings,
                callerLocalTag: slot.callerLocalTag, calleeCallID: calleeCallID, calleeLocalTag: loop.layer.makeTag(),
                summaryID: RandomID.uuidString(), now: Date())
            // The route is decided here: the machine's request for one is answered at once.
            _ = call.start()
            call.continueCallerDialog(after: slot.callerCSeq)
            slot.machines[index] = Machine(call: call)
            started.append((index, plan))
        }
        slot.failures = []
        calls[number] = slot
        for (index, plan) in started {
            switch plan {
            case .targets(let targets, let callee):
                callEvent(number, machine: index, .routed(RouteDecision(outcome: .route, callee: callee, targets: targets)))
            case .reject(let status, let reason):
                callEvent(number, machine: index, .routed(RouteDecision(outcome: .reject, rejectStatus: status, reason: reason)))
            }
        }
    }

    private static func lookUp(
        tenant: String, extensions: [String], in store: BindingStore, then done: @escaping @Sendable (Result<[[Binding]], any Error>) -> Void
    ) {
        Task {
            let now = Int64(Date().timeIntervalSince1970)
            do {
                var found: [[Binding]] = []
                for number in extensions { found.append(try await store.bindings(tenant: tenant, extensionNumber: number, now: now)) }
                done(.success(found))
            } catch {
                done(.failure(error))
            }
        }
    }

    /// A binding as a call target: the first Path hop (the SBC holding the phone's flow, its user part the flow token),
    /// or the contact itself for a phone that registered without a Path (a trusted source on the PBX's own network).
    static func target(_ binding: Binding, timeoutMilliseconds: Int, ringSeconds: Int? = nil, huntOn: [Int]? = nil) -> RouteTarget? {
        let hop: SIPURI?
        if !binding.path.isEmpty, let first = binding.path.split(separator: ">", maxSplits: 1).first {
            hop = SIPAddress(String(first) + ">")?.uri
        } else {
            hop = SIPAddress(binding.contact)?.uri
        }
        guard let hop, let user = hop.user else { return nil }
        let transport = hop.parameters["transport"]?.lowercased() ?? "udp"
        return RouteTarget(
            carrier: "extension", trunk: "\(binding.tenant)/\(binding.extensionNumber)", host: hop.host, port: Int(hop.port ?? 5060),
            transport: transport == "tcp" ? "tcp" : "udp", number: user, setupTimeoutMilliseconds: timeoutMilliseconds,
            ringTimeoutMilliseconds: ringSeconds.map { $0 * 1000 }, huntOn: huntOn)
    }

    /// Where the call goes after its route failed with `status`, if anywhere.
    private func moveOn(_ slot: Slot, status: Int) -> PBXRoute? {
        let catalog = catalogs.catalog
        guard let tenant = catalog.tenants.first(where: { $0.name == slot.tenant }) else { return nil }
        return PBXDialPlan(catalog: catalog, tenant: tenant).afterFailure(of: slot.route, status: status, now: Date(), hops: slot.hops)
    }

    /// The answer the caller gets when every place rung failed: the caller's own cancel, a decline or busy, then
    /// unavailable, not found, no answer, anything else (RFC 3261 §16.7 picks the best the same way).
    static func best(_ failures: [SIPResponse]) -> SIPResponse? {
        let order = [487, 603, 600, 486, 480, 404, 408]
        for status in order { if let found = failures.first(where: { $0.statusCode == status }) { return found } }
        return failures.first { $0.statusCode < 500 } ?? failures.first
    }

    // MARK: - The machines

    @discardableResult
    func callEvent(_ number: Int, machine index: Int, _ event: B2BUACall.Event) -> Int {
        guard var call = calls[number]?.machines[index]?.call else { return 0 }
        calls[number]?.machines[index]?.call = nil
        let actions = call.handle(event, now: Date())
        calls[number]?.machines[index]?.call = call
        perform(actions, call: number, machine: index)
        return actions.count
    }

    func perform(_ actions: [B2BUACall.Action], call number: Int, machine index: Int) {
        for action in actions {
            guard let slot = calls[number], let machine = slot.machines[index] else { return }
            // Only the machine in the call speaks to the caller; the others' messages to it are dropped.
            let speaksToCaller = slot.winner == nil || slot.winner == index
            let leg = Self.callee(number, machine: index)
            switch action {
            case .route:
                continue
            case .respondToCaller(let response):
                if slot.winner == index || slot.winner == nil, (200..<300).contains(response.statusCode), let origin = Self.origin(response.body) {
                    calls[number]?.callerOrigin = origin
                    if slot.hold == nil { calls[number]?.calleeSDP = response.body }
                }
                let cseq = CSeqKey(response.headers)
                guard let cseq, cseq.method == .invite, cseq == CSeqKey(slot.invite.headers) else {
                    if slot.winner == index { loop.layer.respondInDialog(response, on: Self.caller(number)) }
                    continue
                }
                let status = response.statusCode
                if slot.answeredHere {
                    // The caller is in the PBX's own media (an IVR menu chose this destination): provisional answers are
                    // the ring-back it plays; the callee's answer is connected with a re-INVITE to the caller.
                    if status >= 300, slot.winner == nil {
                        calls[number]?.machines[index]?.failure = response
                    } else if (200..<300).contains(status) {
                        if slot.winner == nil {
                            connectApplication(number, machine: index, answer: response)
                        } else if slot.winner != index {
                            callEvent(number, machine: index, .timerFired(.sessionExpiry))
                        }
                    }
                    continue
                }
                if status < 200 {
                    if slot.winner == nil { loop.layer.respond(response, on: slot.inviteTransaction) }
                } else if status < 300 {
                    if slot.winner == nil {
                        calls[number]?.winner = index
                        loop.layer.respond(response, on: slot.inviteTransaction)
                        // The others stop ringing.
                        for other in slot.machines.keys.sorted() where other != index { callEvent(number, machine: other, .callerCancel) }
                    } else if slot.winner != index {
                        // Answered at the same moment as the one that won: hung up (its messages to the caller dropped).
                        callEvent(number, machine: index, .timerFired(.sessionExpiry))
                    }
                } else if slot.winner == nil {
                    calls[number]?.machines[index]?.failure = response
                }
            case .sendToCaller(let request):
                if speaksToCaller, slot.winner == index {
                    if let origin = Self.origin(request.body) {
                        calls[number]?.callerOrigin = origin
                        if slot.hold == nil { calls[number]?.calleeSDP = request.body }
                    }
                    loop.layer.send(request, on: Self.caller(number), to: .source(slot.source), purpose: .inDialog)
                }
            case .inviteCallee(var request, let target):
                if let origin = Self.origin(request.body) {
                    calls[number]?.calleeOrigin = origin
                    calls[number]?.callerSDP = request.body
                }
                if target.carrier == Self.outsideCarrier {
                    // The SBC takes the account to charge only from the site's PBX instances (RFC 8496).
                    if let charge = SIPHeaderField(rawName: "P-Charge-Info", value: "<sip:\(target.trunk)@\(Self.chargeDomain)>") {
                        request.headers.insert(charge, at: max(0, request.headers.count - 1))
                    }
                }
                let kind = SIPTransportProtocol(rawValue: target.transport) ?? .udp
                if let id = loop.layer.send(request, on: leg, to: .address(host: target.host, port: target.port, transport: kind), purpose: .dialogSetup) {
                    calls[number]?.machines[index]?.attempt = id
                } else {
                    callEvent(number, machine: index, .attemptTransportFailed)
                }
            case .cancelCallee:
                guard let id = machine.attempt, !slot.movedCallees.contains(index) else { continue }
                calls[number]?.machines[index]?.attempt = nil
                loop.layer.cancel(id)
            case .sendToCallee(let request, let target):
                if slot.movedCallees.contains(index) { continue }
                if slot.winner == index, let origin = Self.origin(request.body) {
                    calls[number]?.calleeOrigin = origin
                    if slot.hold == nil { calls[number]?.callerSDP = request.body }
                }
                let kind = SIPTransportProtocol(rawValue: target.transport) ?? .udp
                loop.layer.send(request, on: leg, to: .address(host: target.host, port: target.port, transport: kind), purpose: .inDialog)
            case .respondToCallee(let response):
                if slot.movedCallees.contains(index) { continue }
                if slot.winner == index, (200..<300).contains(response.statusCode), let origin = Self.origin(response.body) {
                    calls[number]?.calleeOrigin = origin
                    if slot.hold == nil { calls[number]?.callerSDP = response.body }
                }
                loop.layer.respondInDialog(response, on: leg)
            case .mediaDestination(_, let address, let port):
                // The answer to the PBX's hold offer: the held party's media address; the music starts.
                guard let hold = slot.hold, let destination = try? SocketAddress(ipAddress: address, port: port) else { continue }
                hold.endpoint.sender.redirect(to: destination)
                hold.endpoint.sender.play(media.holdMusic, repeating: true)
                holds["playing"]?.increment()
            case .mediaCodec:
                continue
            case .startTimer(let timer, let delay):
                loop.layer.startTimer(call: number, timer: index * Self.timersPerMachine + timer.rawValue, after: delay)
            case .cancelTimer(let timer):
                loop.layer.cancelTimer(call: number, timer: index * Self.timersPerMachine + timer.rawValue)
            case .renewGrant:
                callEvent(number, machine: index, .grantRenewed(nil))
            case .reportAttempt(let report):
                logger.info("call attempt", metadata: [
                    "call-id": "\(slot.callID)", "tenant": "\(slot.tenant)", "extension": "\(report.trunk)",
                    "result": "\(report.result.rawValue)", "status": "\(report.status.map(String.init) ?? "-")",
                ])
            case .spool:
                // Calls between extensions never leave the platform: nothing to bill, the held messages go at once.
                callEvent(number, machine: index, .summarySpooled)
            case .finished(let summary):
                machineFinished(number, machine: index, summary)
                return
            }
        }
    }

    /// A machine is done: the call ends with the one in it; when the last ringing one failed, the call moves on or the
    /// caller gets the best failure.
    func machineFinished(_ number: Int, machine index: Int, _ summary: CallSummary) {
        guard var slot = calls[number], let machine = slot.machines.removeValue(forKey: index) else { return }
        if let failure = machine.failure { slot.failures.append(failure) }
        calls[number] = slot
        if slot.winner == index {
            return callEnded(number, summary)
        }
        // The transferor hung up (as it should once the transfer is under way): its call is over, the caller's is not.
        if slot.transfer?.transferor == index || slot.releasedTransferors.contains(index) { return }
        guard slot.winner == nil, slot.machines.isEmpty else { return }
        if slot.transfer != nil, !slot.cancelled {
            return transferFailed(number, status: Self.best(slot.failures)?.statusCode ?? 480)
        }
        // Every place rung failed.
        let best = Self.best(slot.failures)
        let status = best?.statusCode ?? 480
        if !slot.cancelled, status != 487, let next = moveOn(slot, status: status) {
            logger.info("call moves on", metadata: [
                "call-id": "\(slot.callID)", "tenant": "\(slot.tenant)", "status": "\(status)", "from": "\(slot.route)", "to": "\(next)",
            ])
            calls[number]?.route = next
            calls[number]?.hops += 1
            return ring(number)
        }
        if slot.answeredHere {
            // The caller is answered by the PBX: it hears that the destination failed, then the PBX hangs up.
            return failApplication(number, status: status)
        }
        if let best { loop.layer.respond(best, on: slot.inviteTransaction) }
        callEnded(number, summary)
    }

    func callEnded(_ number: Int, _ summary: CallSummary) {
        guard let slot = calls.removeValue(forKey: number) else { return }
        slot.hold?.endpoint.close()
        slot.app?.endpoint.close()
        let outcome: String
        switch summary.disconnect.status {
        case _ where summary.answerAt != nil: outcome = "answered"
        case 486, 600, 603: outcome = "busy"
        case 480, 408: outcome = "unavailable"
        case 404: outcome = "not-found"
        case 487: outcome = "cancelled"
        default: outcome = "failed"
        }
        outcomes[outcome]?.increment()
        logger.info("call ended", metadata: [
            "call-id": "\(summary.callID)", "tenant": "\(slot.tenant)", "caller": "\(slot.caller)", "callee": "\(summary.callee)",
            "status": "\(summary.disconnect.status)", "by": "\(summary.disconnect.by)", "duration-ms": "\(summary.durationMilliseconds)",
        ])
        loop.layer.endCall(number)
    }
}
