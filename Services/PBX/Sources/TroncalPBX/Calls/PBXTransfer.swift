internal import Foundation
internal import Logging
internal import Metrics
internal import TroncalCall
internal import TroncalMedia
internal import TroncalProtocol
internal import TroncalRuntime
internal import TroncalSIP

/// A blind transfer under way (RFC 3515, RFC 5589 §6): the party that answered (the transferor) sent REFER; the caller
/// (the transferee) is being connected to the destination the Refer-To names.
struct PBXTransfer {
    /// The transferor's machine: its dialog carries the NOTIFYs (`message/sipfrag`) until it hangs up.
    var transferor: Int
    /// The REFER's CSeq: the `id` of the `refer` event.
    var referCSeq: UInt32
    var target: String
    var startedAt: Date
}

extension SIPResponse {
    /// The reason phrase of a status, for a sipfrag.
    static func standardReason(_ status: Int) -> String {
        switch status {
        case 100: "Trying"
        case 180: "Ringing"
        case 200: "OK"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 408: "Request Timeout"
        case 480: "Temporarily Unavailable"
        case 482: "Loop Detected"
        case 486: "Busy Here"
        case 487: "Request Terminated"
        case 488: "Not Acceptable Here"
        case 600: "Busy Everywhere"
        case 603: "Decline"
        default: status < 500 ? "Request Failed" : "Server Error"
        }
    }
}

extension PBXCalls {
    /// A REFER inside an answered call. From the party that answered, with a Refer-To without Replaces: a blind
    /// transfer of the caller (202, NOTIFY 100, the destination rung as any call the caller makes; when it answers,
    /// the caller is re-INVITEd with its media and the transferor gets NOTIFY 200; when it fails, the transferor gets
    /// the failure and the call goes on between the two as before). Anything else is refused with the reason.
    func refer(_ leg: LegReference, _ request: SIPRequest) {
        func refuse(_ status: Int, _ reason: String, _ why: String) {
            logger.info("transfer refused", metadata: ["call-id": "\(calls[leg.call]?.callID ?? "-")", "status": "\(status)", "reason": "\(why)"])
            transfers["refused"]?.increment()
            loop.layer.respondInDialog(InviteServerTransaction.response(status, reason, to: request), on: leg)
        }
        guard let slot = calls[leg.call], let winner = slot.winner, slot.hold == nil, slot.transfer == nil else {
            return refuse(491, "Request Pending", "the call is not answered, is on hold, or is being transferred")
        }
        guard leg.leg == winner + 1 else {
            return refuse(501, "Not Implemented", "a transfer by the calling party is not supported yet")
        }
        guard let value = request.headers.first(.referTo)?.valueString, let address = SIPAddress(value), let user = address.uri.user, !user.isEmpty
        else { return refuse(400, "Bad Request", "no usable Refer-To") }
        guard address.uri.headers.isEmpty else { return attendedTransfer(leg, request, target: user) }
        let catalog = catalogs.catalog
        guard let tenant = catalog.tenants.first(where: { $0.name == slot.tenant }) else { return refuse(480, "Temporarily Unavailable", "tenant gone") }
        let route = PBXDialPlan(catalog: catalog, tenant: tenant).dialled(user, now: Date())
        let cseq = ((try? request.headers.cseq()) ?? nil)?.sequenceNumber ?? 1
        var accepted = InviteServerTransaction.response(202, "Accepted", to: request)
        accepted.headers.insert(SIPHeaderField(.contact, value: "<sip:\(loop.layer.configuration.sentBy[.udp] ?? "")>"), at: max(0, accepted.headers.count - 1))
        loop.layer.respondInDialog(accepted, on: leg)
        if case .reject(let status, let why) = route {
            notifyTransferor(leg.call, machine: winner, cseq: cseq, status: status, reason: SIPResponse.standardReason(status), final: true)
            transfers["failed"]?.increment()
            logger.info("transfer failed", metadata: ["call-id": "\(slot.callID)", "tenant": "\(slot.tenant)", "to": "\(user)", "reason": "\(why)"])
            return
        }
        notifyTransferor(leg.call, machine: winner, cseq: cseq, status: 100, reason: "Trying", final: false)
        logger.info("transfer requested", metadata: [
            "call-id": "\(slot.callID)", "tenant": "\(slot.tenant)", "caller": "\(slot.caller)", "to": "\(user)", "route": "\(route)",
        ])
        // The caller's dialog leaves the transferor's machine (which keeps its own dialog for the NOTIFYs and the
        // transferor's BYE) and waits for the destination's: what the caller sends meanwhile is answered here.
        var updated = slot
        updated.callerCSeq = max(slot.callerCSeq, slot.machines[winner]?.call?.callerDialogCSeq ?? 0)
        updated.transfer = PBXTransfer(transferor: winner, referCSeq: cseq, target: user, startedAt: Date())
        updated.winner = nil
        updated.answeredHere = true
        updated.route = route
        updated.hops = 0
        if case .outside = route, let caller = catalog.extension(slot.caller, of: slot.tenant) {
            // An extension transferred outside shows the tenant's number there, as its own outside calls do.
            let shown = caller.withholdCallerID ? "anonymous" : tenant.callerID.isEmpty ? caller.number : tenant.callerID
            Self.rewriteFrom(&updated.invite, user: shown, name: "")
            if caller.withholdCallerID { updated.invite.headers.replace(.privacy, with: "id") }
        }
        updated.failures = []
        calls[leg.call] = updated
        ring(leg.call)
    }

    /// The transfer's NOTIFY (`Event: refer;id=CSEQ`, `message/sipfrag`) to the transferor, through its machine.
    func notifyTransferor(_ number: Int, machine: Int, cseq: UInt32, status: Int, reason: String, final: Bool) {
        guard var call = calls[number]?.machines[machine]?.call else { return }
        let actions = call.send(
            .notify, into: .callee,
            headers: [(.event, "refer;id=\(cseq)"), (.subscriptionState, final ? "terminated;reason=noresource" : "active;expires=60")],
            body: Array("SIP/2.0 \(status) \(reason)\r\n".utf8), contentType: "message/sipfrag;version=2.0")
        calls[number]?.machines[machine]?.call = call
        perform(actions, call: number, machine: machine)
    }

    /// The destination answered and the caller is being re-INVITEd to it: the transferor hears 200 and is expected to
    /// hang up; a transferor that does not within 32 s is hung up.
    func transferDone(_ number: Int) {
        guard var slot = calls[number], let transfer = slot.transfer else { return }
        notifyTransferor(number, machine: transfer.transferor, cseq: transfer.referCSeq, status: 200, reason: "OK", final: true)
        loop.layer.startTimer(
            call: number, timer: transfer.transferor * Self.timersPerMachine + B2BUACall.Timer.sessionExpiry.rawValue, after: .seconds(32))
        slot.transfer = nil
        slot.releasedTransferors.insert(transfer.transferor)
        calls[number] = slot
        transfers["transferred"]?.increment()
        logger.info("call transferred", metadata: [
            "call-id": "\(slot.callID)", "tenant": "\(slot.tenant)", "caller": "\(slot.caller)", "to": "\(transfer.target)",
            "milliseconds": "\(Int(Date().timeIntervalSince(transfer.startedAt) * 1000))",
        ])
    }

    /// Every place the transfer rang failed: the transferor hears the failure and keeps the call (its dialog and the
    /// caller's never changed); a transferor that already hung up leaves the caller alone, who is hung up.
    func transferFailed(_ number: Int, status: Int) {
        guard var slot = calls[number], let transfer = slot.transfer else { return }
        transfers["failed"]?.increment()
        slot.transfer = nil
        slot.answeredHere = false
        if slot.machines[transfer.transferor] != nil {
            slot.winner = transfer.transferor
            calls[number] = slot
            notifyTransferor(number, machine: transfer.transferor, cseq: transfer.referCSeq, status: status, reason: SIPResponse.standardReason(status), final: true)
            logger.info("transfer failed: the call stays with the transferor", metadata: [
                "call-id": "\(slot.callID)", "tenant": "\(slot.tenant)", "to": "\(transfer.target)", "status": "\(status)",
            ])
        } else {
            calls[number] = slot
            logger.info("transfer failed and the transferor is gone: caller hung up", metadata: [
                "call-id": "\(slot.callID)", "tenant": "\(slot.tenant)", "to": "\(transfer.target)", "status": "\(status)",
            ])
            finishApplication(number, status: status, reason: "transfer failed")
        }
    }

    /// The caller hung up while its transfer's destination rang: what rings is cancelled, the transferor (if still
    /// there) hears 487.
    func transferAbandoned(_ number: Int) {
        guard let slot = calls[number] else { return }
        if let transfer = slot.transfer {
            notifyTransferor(number, machine: transfer.transferor, cseq: transfer.referCSeq, status: 487, reason: "Request Terminated", final: true)
            // The transferor's call had the caller in it: it ends too.
            calls[number]?.releasedTransferors.insert(transfer.transferor)
            callEvent(number, machine: transfer.transferor, .timerFired(.sessionExpiry))
        }
        finishApplication(number, status: 487, reason: "caller hung up during the transfer", sendBye: false)
    }
}

extension PBXCalls {
    /// An attended transfer (REFER with Replaces, RFC 3891) from the party that answered: the transferor (B) talks to
    /// the caller (A) in this call and called the target (C) in another it made, answered. The PBX joins A and C itself:
    /// this call takes over C's dialog from the other call, A is re-INVITEd with C's media and C with A's, B gets NOTIFY
    /// 200 here and a BYE in the other call. The call replaced is B's answered call to the extension the Refer-To names
    /// (or B's only other answered call): the Replaces identifiers are those of B's dialog with the SBC, which the PBX
    /// does not see. None: 481.
    func attendedTransfer(_ leg: LegReference, _ request: SIPRequest, target: String) {
        guard let slot = calls[leg.call], let winner = slot.winner, let transferor = slot.machines[winner]?.call?.currentRouteTarget?.trunk else { return }
        let tenant = slot.tenant
        let transferorNumber = String(transferor.dropFirst(tenant.count + 1))
        let others = calls.keys.sorted().filter { key in
            guard key != leg.call, let other = calls[key], other.tenant == tenant, other.caller == transferorNumber, let answered = other.winner,
                other.transfer == nil, other.hold == nil, other.machines[answered]?.call?.calleeDialog != nil
            else { return false }
            return true
        }
        let named = others.first { key in
            guard let other = calls[key], let answered = other.winner else { return false }
            return other.machines[answered]?.call?.currentRouteTarget?.trunk == "\(tenant)/\(target)"
        }
        guard let consulted = named ?? (others.count == 1 ? others.first : nil), var second = calls[consulted], let secondWinner = second.winner,
            let dialog = second.machines[secondWinner]?.call?.calleeDialog
        else {
            transfers["refused"]?.increment()
            logger.info("attended transfer refused: no answered call of the transferor to replace", metadata: [
                "call-id": "\(slot.callID)", "tenant": "\(tenant)", "transferor": "\(transferorNumber)", "to": "\(target)",
            ])
            loop.layer.respondInDialog(InviteServerTransaction.response(481, "Call/Transaction Does Not Exist", to: request), on: leg)
            return
        }
        let cseq = ((try? request.headers.cseq()) ?? nil)?.sequenceNumber ?? 1
        var accepted = InviteServerTransaction.response(202, "Accepted", to: request)
        accepted.headers.insert(SIPHeaderField(.contact, value: "<sip:\(loop.layer.configuration.sentBy[.udp] ?? "")>"), at: max(0, accepted.headers.count - 1))
        loop.layer.respondInDialog(accepted, on: leg)

        // This call takes C's dialog: a new machine with A's dialog (as the transferor's had it) and C's.
        var first = slot
        let index = first.nextMachine
        first.nextMachine += 1
        var call = B2BUACall(
            invite: first.invite, customer: tenant, site: site, instance: instance, configuration: machineSettings, callerLocalTag: first.callerLocalTag,
            calleeCallID: dialog.callID, calleeLocalTag: dialog.localTag, summaryID: RandomID.uuidString(), now: Date())
        _ = call.start()
        call.continueCallerDialog(after: max(first.callerCSeq, first.machines[winner]?.call?.callerDialogCSeq ?? 0))
        let started = call.adoptCallee(dialog, now: Date())
        loop.layer.addLeg(Self.callee(leg.call, machine: index), callID: dialog.callID)
        first.machines[index] = Machine(call: call)
        first.winner = index
        first.releasedTransferors.insert(winner)
        first.hold?.endpoint.close()
        first.hold = nil
        // The parties' media for each other: A's last SDP for C, C's for A, each in the session its receiver knows.
        let toCaller = Self.offer(second.calleeSDP, continuing: first.callerOrigin)
        let toCallee = Self.offer(first.callerSDP.isEmpty ? first.invite.body : first.callerSDP, continuing: second.calleeOrigin)
        first.calleeOrigin = toCallee.origin
        first.callerOrigin = toCaller.origin
        first.calleeSDP = second.calleeSDP
        calls[leg.call] = first
        perform(started, call: leg.call, machine: index)
        // The transferor's other call gives C up (what it would send C is dropped) and hangs up the transferor.
        second.movedCallees.insert(secondWinner)
        calls[consulted] = second
        callEvent(consulted, machine: secondWinner, .timerFired(.sessionExpiry))
        if let offer = toCaller.body { callEvent(leg.call, machine: index, own: .caller, offer: offer) }
        if let offer = toCallee.body { callEvent(leg.call, machine: index, own: .callee, offer: offer) }
        notifyTransferor(leg.call, machine: winner, cseq: cseq, status: 200, reason: "OK", final: true)
        loop.layer.startTimer(call: leg.call, timer: winner * Self.timersPerMachine + B2BUACall.Timer.sessionExpiry.rawValue, after: .seconds(32))
        transfers["transferred"]?.increment()
        logger.info("call transferred (attended)", metadata: [
            "call-id": "\(slot.callID)", "tenant": "\(tenant)", "caller": "\(slot.caller)", "transferor": "\(transferorNumber)", "to": "\(target)",
            "replaced-call-id": "\(second.callID)",
        ])
    }

    /// An offer made of a party's SDP for the other party: in the session that party knows (its origin, the next
    /// version), sending and receiving (a hold's direction dropped).
    static func offer(_ body: [UInt8], continuing origin: String?) -> (body: [UInt8]?, origin: String?) {
        guard let text = String(validating: body, as: UTF8.self), var sdp = try? SessionDescription(text) else { return (nil, origin) }
        let directions: Set<String> = ["sendonly", "recvonly", "inactive", "sendrecv"]
        sdp.sessionLines.removeAll { $0.type == "a" && directions.contains($0.value) }
        for index in sdp.media.indices { sdp.media[index].lines.removeAll { $0.type == "a" && directions.contains($0.value) } }
        var next = origin
        if let line = sdp.sessionLines.firstIndex(where: { $0.type == "o" }) {
            if let origin { sdp.sessionLines[line].value = nextVersion(of: origin) }
            next = sdp.sessionLines[line].value
        }
        return (Array(sdp.text.utf8), next)
    }
}
