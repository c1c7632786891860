public import TroncalSIP

/// What the application asks of the call layer. Each command adds effects; the shell performs them.
extension CallLayer {
    // MARK: - Legs

    /// Makes `callID` the dialog of `leg`: its requests and retransmitted answers come to the leg from now on.
    public mutating func addLeg(_ leg: LegReference, callID: String) {
        legs[leg] = LegRecord(callID: callID)
        legsByCallID[callID] = leg
        legsOfCall[leg.call, default: []].append(leg.leg)
    }

    /// The call is over: its legs' Call-IDs are forgotten (later requests get 481), 2xx retransmissions and the
    /// call's timers stop, INVITEs still out are cancelled (a late 2xx is hung up), and any request of the call left
    /// unanswered gets a final answer so that its transaction ends.
    public mutating func endCall(_ call: Int) {
        for timer in timersOfCall.removeValue(forKey: call) ?? [] { wheel.cancel(.application(call: call, timer: timer)) }
        for number in legsOfCall.removeValue(forKey: call) ?? [] {
            let leg = LegReference(call: call, leg: number)
            guard let record = legs.removeValue(forKey: leg) else { continue }
            if legsByCallID[record.callID] == leg { legsByCallID[record.callID] = nil }
            wheel.cancel(.answer(leg))
            for id in record.invites { cancel(id) }
            var open = Array(record.unanswered.values)
            if let invite = record.initialInvite { open.append(invite) }
            for id in open where !isAnswered(id) {
                guard let request = transactions[id]?.request else { continue }
                let initial = id == record.initialInvite
                respond(
                    InviteServerTransaction.response(
                        initial ? 500 : 481, initial ? "Server Internal Error" : "Call/Transaction Does Not Exist", to: request,
                        toTag: makeTag()), on: id)
            }
            for id in record.unanswered.values { servers[id]?.leg = nil }
            if let invite = record.initialInvite { servers[invite]?.leg = nil }
        }
    }

    // MARK: - Answering requests

    /// Starts the server transaction of a `newRequest` (an INVITE's sends 100 Trying). With a `leg`, the request is
    /// that leg's initial INVITE (or an in-dialog request of it): a CANCEL of it becomes `cancelled`. False when the
    /// table is full: the request was answered 503.
    @discardableResult
    public mutating func serve(_ request: SIPRequest, id: TransactionID, source: SIPSource, leg: LegReference?) -> Bool {
        guard let transaction = SIPTransaction(serving: request, reliable: source.transport.isReliable, timers: configuration.timers) else {
            return false
        }
        let cseq = CSeqKey(request.headers)
        let initial = request.method == .invite && ((try? request.headers.to()) ?? nil)?.tag == nil
        servers[id] = ServerRecord(source: source, leg: leg, method: request.method, cseq: cseq, initialInvite: initial && leg != nil)
        switch transactions.start(transaction) {
        case .started(let id, let actions):
            if let leg {
                if initial {
                    legs[leg]?.initialInvite = id
                } else if let cseq {
                    legs[leg]?.unanswered[cseq] = id
                }
            }
            run(id, actions)
            return true
        case .full:
            servers[id] = nil
            respondStatelessly(InviteServerTransaction.response(503, "Service Unavailable", to: request, toTag: makeTag()), to: source)
            return false
        case .duplicate, .unmatchable:
            servers[id] = nil
            return false
        }
    }

    /// Serves a request and answers it at once (`status`, a new To tag unless it has one).
    public mutating func answer(_ request: SIPRequest, id: TransactionID, source: SIPSource, status: Int, reason: String) {
        guard serve(request, id: id, source: source, leg: nil) else { return }
        respond(InviteServerTransaction.response(status, reason, to: request, toTag: makeTag()), on: id)
    }

    /// A response on a server transaction. A 2xx to an INVITE on an unreliable transport is retransmitted until its
    /// ACK (T1 doubling to T2, for 64·T1; then `answerUnacknowledged`).
    public mutating func respond(_ response: SIPResponse, on id: TransactionID) {
        guard let record = servers[id] else { return }
        let actions = transactions.send(response, on: id)
        if response.statusCode >= 200, let leg = record.leg, let cseq = record.cseq, legs[leg]?.unanswered[cseq] == id {
            legs[leg]?.unanswered[cseq] = nil
        }
        if (200..<300).contains(response.statusCode), record.method == .invite, !record.source.transport.isReliable, let leg = record.leg,
            legs[leg] != nil, let cseq = record.cseq
        {
            let timers = configuration.timers
            let answer = PendingAnswer(
                response: response, source: record.source, cseq: cseq.number, interval: timers.t1,
                deadline: now &+ timers.transactionTimeout.nanoseconds)
            legs[leg]?.answer = answer
            schedule(.answer(leg), after: timers.t1)
        }
        run(id, actions)
    }

    /// Answers the leg's in-dialog request that `response`'s CSeq names; false when there is none waiting.
    @discardableResult
    public mutating func respondInDialog(_ response: SIPResponse, on leg: LegReference) -> Bool {
        guard let cseq = CSeqKey(response.headers), let id = legs[leg]?.unanswered[cseq] else { return false }
        respond(response, on: id)
        return true
    }

    /// Sends a response with no transaction (an overload 503, a border refusal).
    public mutating func respondStatelessly(_ response: SIPResponse, to source: SIPSource) {
        effects.append(.send(.response(response), .source(source), nil))
    }

    /// Whether a server transaction has had its final answer (or is gone).
    public func isAnswered(_ id: TransactionID) -> Bool {
        switch transactions[id] {
        case .inviteServer(let transaction)?: transaction.state != .proceeding
        case .nonInviteServer(let transaction)?: transaction.state != .trying && transaction.state != .proceeding
        default: true
        }
    }

    // MARK: - Sending requests

    /// Sends a request with a new top Via (this element's sent-by, a new branch, `rport`), in a client transaction
    /// (an ACK goes straight out). Returns the transaction, or nil for an ACK or when the table is full.
    @discardableResult
    public mutating func send(_ request: SIPRequest, on leg: LegReference?, to destination: SIPDestination, purpose: RequestPurpose)
        -> TransactionID?
    {
        var request = request
        let kind = destination.transport
        let sentBy = configuration.sentBy[kind] ?? configuration.sentBy[.udp] ?? "invalid"
        let branch = identifiers.identifier(length: 16)
        request.headers.insert(SIPHeaderField(.via, value: "SIP/2.0/\(kind.rawValue.uppercased()) \(sentBy);branch=z9hG4bK\(branch);rport"), at: 0)
        guard let transaction = SIPTransaction(sending: request, reliable: kind.isReliable, timers: configuration.timers) else {
            effects.append(.send(.request(request), destination, nil))
            return nil
        }
        guard let id = transaction.id else { return nil }
        clients[id] = ClientRecord(destination: destination, leg: leg, purpose: purpose)
        switch transactions.start(transaction) {
        case .started(let id, let actions):
            if let leg, request.method == .invite { legs[leg]?.invites.insert(id) }
            run(id, actions)
            return id
        case .full, .duplicate, .unmatchable:
            clients[id] = nil
            return nil
        }
    }

    /// Gives up on an INVITE: CANCEL it now if it has had a provisional answer, or as soon as it has one (§9.1). Its
    /// answers no longer reach the application; a 2xx that comes anyway is ACKed and hung up.
    public mutating func cancel(_ id: TransactionID) {
        guard var record = clients[id] else { return }
        record.abandoned = true
        clients[id] = record
        guard case .inviteClient(let transaction)? = transactions[id] else { return }
        if transaction.acceptsCancel {
            sendCancel(for: id)
        } else if transaction.state == .calling {
            clients[id]?.cancelWhenProvisional = true
        }
    }

    /// Sends the CANCEL of an INVITE in Proceeding (it reuses the INVITE's Via, so it does not go through `send`).
    mutating func sendCancel(for id: TransactionID) {
        guard case .inviteClient(let transaction)? = transactions[id], transaction.acceptsCancel, let destination = clients[id]?.destination
        else { return }
        clients[id]?.cancelWhenProvisional = false
        let cancel = transaction.cancel()
        guard let client = SIPTransaction(sending: cancel, reliable: transaction.reliable, timers: configuration.timers), let cancelID = client.id
        else { return }
        clients[cancelID] = ClientRecord(destination: destination, leg: nil, purpose: .layer)
        if case .started(let started, let actions) = transactions.start(client) {
            run(started, actions)
        } else {
            clients[cancelID] = nil
        }
    }
}
