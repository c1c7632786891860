/// The INVITE server transaction (RFC 3261 §17.2.1, with the Accepted state of RFC 6026). It answers
/// 100 Trying at once (the SBC's transaction user never promises a final answer within 200 ms), resends the
/// last response when the INVITE is retransmitted, retransmits a non-2xx final response on unreliable
/// transports (timer G, doubling up to T2) until the ACK comes or timer H gives up, then absorbs ACK
/// retransmissions for timer I. After a 2xx it stays Accepted for timer L, passing ACKs to the transaction
/// user and absorbing INVITE retransmissions (the TU retransmits its 2xx itself).
public struct InviteServerTransaction: Sendable {
    public enum State: Sendable, Hashable { case proceeding, completed, confirmed, accepted, terminated }

    public private(set) var state: State = .proceeding
    public let request: SIPRequest
    public let reliable: Bool
    public let timers: TransactionTimers
    private var lastResponse: SIPResponse?
    private var intervalG: Duration

    public init(invite: SIPRequest, reliable: Bool, timers: TransactionTimers = TransactionTimers()) {
        request = invite
        self.reliable = reliable
        self.timers = timers
        intervalG = timers.t1
    }

    /// Sends 100 Trying and delivers the INVITE to the transaction user.
    public mutating func start() -> [TransactionAction] {
        var trying = Self.response(100, "Trying", to: request)
        // §8.2.6.1: a 100 (Trying) copies the request's Timestamp.
        if let timestamp = request.headers.first(.timestamp) {
            trying.headers.insert(timestamp, at: max(0, trying.headers.count - 1))
        }
        lastResponse = trying
        return [.send(.response(trying)), .deliver(.request(request))]
    }

    /// A request matching this transaction: a retransmitted INVITE, or the ACK.
    public mutating func receive(_ incoming: SIPRequest) -> [TransactionAction] {
        switch (state, incoming.method) {
        case (.proceeding, .invite), (.completed, .invite):
            return lastResponse.map { [.send(.response($0))] } ?? []
        case (.completed, .ack):
            var actions: [TransactionAction] = [.cancelTimer(.g), .cancelTimer(.h)]
            if reliable {
                state = .terminated
                actions.append(.terminated)
            } else {
                state = .confirmed
                actions.append(.startTimer(.i, timers.t4))
            }
            return actions
        case (.accepted, .ack):
            return [.deliver(.request(incoming))]
        default:
            return []
        }
    }

    /// A response from the transaction user.
    public mutating func send(_ response: SIPResponse) -> [TransactionAction] {
        let status = response.statusCode
        switch state {
        case .proceeding:
            lastResponse = response
            if status < 200 { return [.send(.response(response))] }
            if status < 300 {
                state = .accepted
                return [.send(.response(response)), .startTimer(.l, timers.transactionTimeout)]
            }
            state = .completed
            var actions: [TransactionAction] = [.send(.response(response))]
            if !reliable { actions.append(.startTimer(.g, intervalG)) }
            actions.append(.startTimer(.h, timers.transactionTimeout))
            return actions
        case .accepted where (200..<300).contains(status):
            return [.send(.response(response))]
        default:
            return []
        }
    }

    public mutating func timerFired(_ timer: TransactionTimer) -> [TransactionAction] {
        switch (state, timer) {
        case (.completed, .g) where !reliable:
            intervalG = min(intervalG * 2, timers.t2)
            return (lastResponse.map { [.send(.response($0))] } ?? []) + [.startTimer(.g, intervalG)]
        case (.completed, .h):
            state = .terminated
            return [.cancelTimer(.g), .timedOut, .terminated]
        case (.confirmed, .i), (.accepted, .l):
            state = .terminated
            return [.terminated]
        default:
            return []
        }
    }

    public mutating func transportError() -> [TransactionAction] {
        guard state != .terminated else { return [] }
        state = .terminated
        return [.cancelTimer(.g), .cancelTimer(.h), .transportFailed, .terminated]
    }

    /// A response to `request` copying Via, From, To, Call-ID and CSeq (§8.2.6.2); the To tag is added by
    /// the caller of this function when one is needed.
    public static func response(_ status: Int, _ reason: String, to request: SIPRequest, toTag: String? = nil) -> SIPResponse {
        var headers = SIPHeaders()
        for field in request.headers where [.via, .from, .callID, .cseq].contains(field.name) || field.name == .to {
            if field.name == .to, let toTag, !field.valueString.contains("tag=") {
                headers.append(.to, "\(field.valueString);tag=\(toTag)")
            } else {
                headers.append(field)
            }
        }
        headers.append(.contentLength, "0")
        return SIPResponse(statusCode: status, reasonPhrase: reason, headers: headers)
    }
}
