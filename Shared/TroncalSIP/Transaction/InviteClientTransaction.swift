/// The INVITE client transaction (RFC 3261 §17.1.1, with the Accepted state of RFC 6026): sends the INVITE,
/// retransmits it on unreliable transports (timer A), gives up after timer B, ACKs non-2xx final responses
/// itself and absorbs their retransmissions (timer D), and passes 2xx responses (and their retransmissions,
/// timer M) to the transaction user, which ACKs them end to end.
public struct InviteClientTransaction: Sendable {
    public enum State: Sendable, Hashable { case calling, proceeding, completed, accepted, terminated }

    public private(set) var state: State = .calling
    public let request: SIPRequest
    public let reliable: Bool
    public let timers: TransactionTimers
    private var intervalA: Duration

    public init(invite: SIPRequest, reliable: Bool, timers: TransactionTimers = TransactionTimers()) {
        request = invite
        self.reliable = reliable
        self.timers = timers
        intervalA = timers.t1
    }

    /// Sends the INVITE and starts timers A (unreliable only) and B.
    public mutating func start() -> [TransactionAction] {
        var actions: [TransactionAction] = [.send(.request(request))]
        if !reliable { actions.append(.startTimer(.a, intervalA)) }
        actions.append(.startTimer(.b, timers.transactionTimeout))
        return actions
    }

    public mutating func receive(_ response: SIPResponse) -> [TransactionAction] {
        let status = response.statusCode
        switch state {
        case .calling, .proceeding:
            if status < 200 {
                let wasCalling = state == .calling
                state = .proceeding
                return (wasCalling ? [.cancelTimer(.a), .cancelTimer(.b)] : []) + [.deliver(.response(response))]
            }
            if status < 300 {
                state = .accepted
                return [.cancelTimer(.a), .cancelTimer(.b), .deliver(.response(response)), .startTimer(.m, timers.transactionTimeout)]
            }
            var actions: [TransactionAction] = [.cancelTimer(.a), .cancelTimer(.b), .send(.request(ack(for: response))), .deliver(.response(response))]
            if reliable {
                state = .terminated
                actions.append(.terminated)
            } else {
                state = .completed
                actions.append(.startTimer(.d, .seconds(32)))
            }
            return actions
        case .completed:
            // A retransmitted final response: ACK again, tell nobody.
            return status >= 300 ? [.send(.request(ack(for: response)))] : []
        case .accepted:
            return (200..<300).contains(status) ? [.deliver(.response(response))] : []
        case .terminated:
            return []
        }
    }

    public mutating func timerFired(_ timer: TransactionTimer) -> [TransactionAction] {
        switch (state, timer) {
        case (.calling, .a) where !reliable:
            intervalA = intervalA * 2
            return [.send(.request(request)), .startTimer(.a, intervalA)]
        case (.calling, .b):
            state = .terminated
            return [.cancelTimer(.a), .timedOut, .terminated]
        case (.completed, .d), (.accepted, .m):
            state = .terminated
            return [.terminated]
        default:
            return []
        }
    }

    public mutating func transportError() -> [TransactionAction] {
        guard state != .terminated else { return [] }
        // RFC 3261 Figure 5: Calling, Proceeding and Completed all inform the TU (the ACK may not have left).
        let wasRunning = state == .calling || state == .proceeding || state == .completed
        state = .terminated
        return [.cancelTimer(.a), .cancelTimer(.b), .cancelTimer(.d)] + (wasRunning ? [.transportFailed] : []) + [.terminated]
    }

    /// The ACK for a non-2xx final response (§17.1.1.3): the INVITE's Request-URI, Call-ID, From, top Via
    /// and Route headers, the response's To (with its tag), and the INVITE's CSeq number with method ACK.
    public func ack(for response: SIPResponse) -> SIPRequest {
        var headers = SIPHeaders()
        if let via = request.headers.first(.via) {
            // Only the top Via value, even if the INVITE's first Via header line held several.
            let top = via.elements.first.map { String(decoding: $0, as: UTF8.self) } ?? via.valueString
            headers.append(.via, top)
        }
        for field in request.headers where field.name == .maxForwards || field.name == .from || field.name == .callID {
            headers.append(field)
        }
        if let to = response.headers.first(.to) { headers.append(to) }
        let number = ((try? request.headers.cseq()) ?? nil)?.sequenceNumber ?? 1
        headers.append(.cseq, "\(number) ACK")
        for field in request.headers where field.name == .route { headers.append(field) }
        headers.append(.contentLength, "0")
        return SIPRequest(method: .ack, uri: request.uri, headers: headers)
    }
}
