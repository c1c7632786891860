internal import Foundation
internal import Logging
internal import Metrics
internal import NIOCore
internal import TroncalCall
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
/// Leg 0 of a call is the caller's (from the SBC), leg 1 the callee's (to the SBC).
final class PBXCalls: CallApplication {
    struct Slot {
        var call: B2BUACall?
        let invite: SIPRequest
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
        let calleeCallID: String
        /// Set when the machine's failure answer was held back because the call goes on elsewhere.
        var next: PBXRoute?
        var currentAttempt: TransactionID?
    }

    let loop: CallLoop
    let registrar: Registrar
    let catalogs: PBXCatalogManager
    let bindings: BindingStore
    let logger: Logger
    let instance: String
    let site: String
    let setupTimeout: Duration
    private var calls: [Int: Slot] = [:]
    private var nextCall = 1
    /// The member each round-robin ring group starts with next, by tenant/group.
    private var roundRobin: [String: Int] = [:]
    private let started = Counter(label: "troncal_pbx_calls_total")
    private let outcomes: [String: Counter]

    static let callerLeg = 0
    static let calleeLeg = 1
    static func caller(_ number: Int) -> LegReference { LegReference(call: number, leg: callerLeg) }
    static func callee(_ number: Int) -> LegReference { LegReference(call: number, leg: calleeLeg) }
    static let outcomeNames = ["answered", "busy", "unavailable", "not-found", "refused", "failed", "cancelled"]

    init(
        loop: CallLoop, registrar: Registrar, catalogs: PBXCatalogManager, bindings: BindingStore, instance: String, site: String,
        setupTimeout: Duration, logger: Logger
    ) {
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
    }

    var calling: Int { calls.count }
    /// The target "carrier" of a call outside: the SBC the call came from.
    static let outsideCarrier = "outside"
    static let chargeDomain = "charge.troncal.invalid"

    func handle(_ event: CallLayerEvent, in loop: CallLoop) {
        switch event {
        case .newRequest(let request, let id, let source):
            guard request.method == .invite else { return registrar.handle(event, in: loop) }
            newCall(request, id: id, source: source)
        case .inDialogRequest(let leg, let request, let id):
            let handled = callEvent(leg.call, leg.leg == Self.callerLeg ? .callerRequest(request) : .calleeRequest(request))
            if handled == 0, !loop.layer.isAnswered(id) {
                loop.layer.respond(InviteServerTransaction.response(481, "Call/Transaction Does Not Exist", to: request, toTag: loop.layer.makeTag()), on: id)
            }
        case .ack(let leg, let ack):
            callEvent(leg.call, leg.leg == Self.callerLeg ? .callerRequest(ack) : .calleeRequest(ack))
        case .cancelled(let leg, _):
            callEvent(leg.call, .callerCancel)
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
        case .requestFailed(let leg?, let id, .dialogSetup, _):
            if calls[leg.call]?.currentAttempt == id { callEvent(leg.call, .attemptTransportFailed) }
        case .answerUnacknowledged(let leg):
            guard let slot = calls[leg.call] else { return }
            logger.info("no ACK for the answer: hanging up", metadata: ["call-id": "\(slot.callID)", "tenant": "\(slot.tenant)"])
            callEvent(leg.call, .timerFired(.sessionExpiry))
        case .timer(let call, let timer):
            if let timer = B2BUACall.Timer(rawValue: timer) { callEvent(call, .timerFired(timer)) }
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
            tenant = assertedTenant
            caller = from.number
            route = PBXDialPlan(catalog: catalog, tenant: tenant).dialled(dialled, now: now)
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
        let calleeCallID = loop.layer.makeCallID()
        loop.layer.addLeg(Self.callee(number), callID: calleeCallID)
        guard loop.layer.serve(received, id: id, source: source, leg: Self.caller(number)) else {
            loop.layer.endCall(number)
            return
        }
        started.increment()
        calls[number] = Slot(
            call: nil, invite: invite, source: source, inviteTransaction: id, tenant: tenant.name, customer: tenant.customer, caller: caller,
            callID: callID, route: route, callerLocalTag: loop.layer.makeTag(), calleeCallID: calleeCallID)
        startMachine(number)
    }

    /// Runs a call's machine for its current route: the first time, and again when a failure moves the call on (the
    /// caller's INVITE still waits for its final answer; its early dialog keeps our tag).
    private func startMachine(_ number: Int) {
        guard let slot = calls[number] else { return }
        let host = loop.transport.configuration.host
        let address = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
        let shown = address.contains(":") ? "[\(address)]" : address
        let contact = "\(shown):\(loop.transport.port(of: .udp))"
        var settings = B2BUACall.Configuration(
            customerSideContact: contact, carrierSideContact: contact, customerSideMediaAddress: address, carrierSideMediaAddress: address,
            relayPorts: (0, 0))
        settings.anchorsMedia = false
        var call = B2BUACall(
            invite: slot.invite, customer: slot.tenant, site: site, instance: instance, configuration: settings, callerLocalTag: slot.callerLocalTag,
            calleeCallID: slot.calleeCallID, calleeLocalTag: loop.layer.makeTag(), summaryID: RandomID.uuidString(), now: Date())
        let actions = call.start()
        calls[number]?.call = call
        perform(actions, call: number)
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

    /// Where the call goes, as its route says: an extension's registered contacts (each through the SBC of its Path),
    /// a number outside (back through the SBC the call came from, charged to the tenant's customer), or a refusal.
    private func resolve(_ number: Int) {
        guard let slot = calls[number] else { return }
        switch slot.route {
        case .reject(let status, let reason):
            callEvent(number, .routed(RouteDecision(outcome: .reject, rejectStatus: status, reason: reason)))
            return
        case .outside(let dialled):
            let sbc = RouteTarget(
                carrier: Self.outsideCarrier, trunk: slot.customer, host: slot.source.remoteIP, port: slot.source.remotePort, transport: "udp",
                number: dialled, setupTimeoutMilliseconds: 60_000)
            callEvent(number, .routed(RouteDecision(outcome: .route, callee: dialled, targets: [sbc])))
            return
        case .extensionNumber(let extensionNumber):
            // Its contacts, newest first; rung until its no-answer forward's time when it has one.
            let forwardsOnNoAnswer = catalogs.catalog.extension(extensionNumber, of: slot.tenant).flatMap { $0.forwardNoAnswer != nil ? $0.noAnswerSeconds : nil }
            lookUpTargets(number, members: [extensionNumber], ringSeconds: forwardsOnNoAnswer, huntOn: nil)
        case .group(let name):
            guard let group = catalogs.catalog.ringGroups.first(where: { $0.tenant == slot.tenant && $0.name == name }) else {
                callEvent(number, .routed(RouteDecision(outcome: .reject, rejectStatus: 404, reason: "ring group \(name) is gone")))
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
            if group.strategy == .simultaneous {
                logger.notice("simultaneous ring group rung one member after another (forking comes next)", metadata: ["group": "\(name)"])
            }
            // A member that is busy, unavailable or not registered is passed over for the next.
            lookUpTargets(number, members: members, ringSeconds: group.memberSeconds, huntOn: [404, 480, 486, 600, 603])
        }
    }

    /// The registered contacts of `members`, in order (each extension's newest first), as the call's targets.
    private func lookUpTargets(_ number: Int, members: [String], ringSeconds: Int?, huntOn: [Int]?) {
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
                    if targets.isEmpty {
                        let reason = "\(members.joined(separator: ", ")) not registered"
                        calls.callEvent(number, .routed(RouteDecision(outcome: .reject, rejectStatus: 480, reason: reason)))
                    } else {
                        calls.callEvent(number, .routed(RouteDecision(outcome: .route, callee: members.first, targets: targets)))
                    }
                case .failure(let error):
                    calls.logger.error("bindings could not be read: call refused", metadata: ["tenant": "\(tenant)", "reason": "\(error)"])
                    calls.callEvent(number, .routed(RouteDecision(outcome: .reject, rejectStatus: 503, reason: "bindings unavailable")))
                }
                calls.loop.flush()
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

    // MARK: - The machine

    @discardableResult
    func callEvent(_ number: Int, _ event: B2BUACall.Event) -> Int {
        guard var call = calls[number]?.call else { return 0 }
        calls[number]?.call = nil
        let actions = call.handle(event, now: Date())
        calls[number]?.call = call
        perform(actions, call: number)
        return actions.count
    }

    private func perform(_ actions: [B2BUACall.Action], call number: Int) {
        for action in actions {
            guard let slot = calls[number] else { return }
            switch action {
            case .route:
                resolve(number)
            case .respondToCaller(let response):
                let cseq = CSeqKey(response.headers)
                if let cseq, cseq.method == .invite, cseq == CSeqKey(slot.invite.headers) {
                    if response.statusCode >= 300, response.statusCode != 487, let next = moveOn(slot, status: response.statusCode) {
                        // What was rung failed and the call goes on elsewhere: the caller keeps waiting.
                        calls[number]?.next = next
                        continue
                    }
                    loop.layer.respond(response, on: slot.inviteTransaction)
                } else {
                    loop.layer.respondInDialog(response, on: Self.caller(number))
                }
            case .sendToCaller(let request):
                loop.layer.send(request, on: Self.caller(number), to: .source(slot.source), purpose: .inDialog)
            case .inviteCallee(var request, let target):
                if target.carrier == Self.outsideCarrier {
                    // The SBC takes the account to charge only from the site's PBX instances (RFC 8496).
                    if let charge = SIPHeaderField(rawName: "P-Charge-Info", value: "<sip:\(target.trunk)@\(Self.chargeDomain)>") {
                        request.headers.insert(charge, at: max(0, request.headers.count - 1))
                    }
                }
                let kind = SIPTransportProtocol(rawValue: target.transport) ?? .udp
                if let id = loop.layer.send(
                    request, on: Self.callee(number), to: .address(host: target.host, port: target.port, transport: kind), purpose: .dialogSetup)
                {
                    calls[number]?.currentAttempt = id
                } else {
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
            case .mediaDestination, .mediaCodec:
                continue
            case .startTimer(let timer, let delay):
                loop.layer.startTimer(call: number, timer: timer.rawValue, after: delay)
            case .cancelTimer(let timer):
                loop.layer.cancelTimer(call: number, timer: timer.rawValue)
            case .renewGrant:
                callEvent(number, .grantRenewed(nil))
            case .reportAttempt(let report):
                logger.info("call attempt", metadata: [
                    "call-id": "\(slot.callID)", "tenant": "\(slot.tenant)", "extension": "\(report.trunk)",
                    "result": "\(report.result.rawValue)", "status": "\(report.status.map(String.init) ?? "-")",
                ])
            case .spool:
                // Calls between extensions never leave the platform: nothing to bill, the held messages go at once.
                callEvent(number, .summarySpooled)
            case .finished(let summary):
                if let next = slot.next {
                    logger.info("call moves on", metadata: [
                        "call-id": "\(slot.callID)", "tenant": "\(slot.tenant)", "status": "\(summary.disconnect.status)", "from": "\(slot.route)",
                        "to": "\(next)",
                    ])
                    calls[number]?.route = next
                    calls[number]?.hops += 1
                    calls[number]?.next = nil
                    calls[number]?.call = nil
                    startMachine(number)
                    return
                }
                let outcome: String
                switch summary.disconnect.status {
                case _ where summary.answerAt != nil: outcome = "answered"
                case 486, 600: outcome = "busy"
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
                calls.removeValue(forKey: number)
                loop.layer.endCall(number)
            }
        }
    }
}
