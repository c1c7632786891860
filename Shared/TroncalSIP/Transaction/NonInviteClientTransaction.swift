/// The non-INVITE client transaction (RFC 3261 §17.1.2): retransmits the request on unreliable transports
/// (timer E, doubling up to T2, and at T2 once a provisional came), gives up after timer F, and absorbs
/// retransmitted final responses for timer K.
public struct NonInviteClientTransaction: Sendable {
    public enum State: Sendable, Hashable { case trying, proceeding, completed, terminated }

    public private(set) var state: State = .trying
    public let request: SIPRequest
    public let reliable: Bool
    public let timers: TransactionTimers
    private var intervalE: Duration

    public init(request: SIPRequest, reliable: Bool, timers: TransactionTimers = TransactionTimers()) {
        self.request = request
        self.reliable = reliable
        self.timers = timers
        intervalE = timers.t1
    }

    public mutating func start() -> [TransactionAction] {
        var actions: [TransactionAction] = [.send(.request(request))]
        if !reliable { actions.append(.startTimer(.e, intervalE)) }
        actions.append(.startTimer(.f, timers.transactionTimeout))
        return actions
    }

    public mutating func receive(_ response: SIPResponse) -> [TransactionAction] {
        switch state {
        case .trying, .proceeding:
            if response.statusCode < 200 {
                state = .proceeding
                return [.deliver(.response(response))]
            }
            var actions: [TransactionAction] = [.cancelTimer(.e), .cancelTimer(.f), .deliver(.response(response))]
            if reliable {
                state = .terminated
                actions.append(.terminated)
            } else {
                state = .completed
                actions.append(.startTimer(.k, timers.t4))
            }
            return actions
        case .completed, .terminated:
            return []
        }
    }

    public mutating func timerFired(_ timer: TransactionTimer) -> [TransactionAction] {
        switch (state, timer) {
        case (.trying, .e) where !reliable:
            intervalE = min(intervalE * 2, timers.t2)
            return [.send(.request(request)), .startTimer(.e, intervalE)]
        case (.proceeding, .e) where !reliable:
            intervalE = timers.t2
            return [.send(.request(request)), .startTimer(.e, intervalE)]
        case (.trying, .f), (.proceeding, .f):
            state = .terminated
            return [.cancelTimer(.e), .timedOut, .terminated]
        case (.completed, .k):
            state = .terminated
            return [.terminated]
        default:
            return []
        }
    }

    public mutating func transportError() -> [TransactionAction] {
        guard state == .trying || state == .proceeding else { return [] }
        state = .terminated
        return [.cancelTimer(.e), .cancelTimer(.f), .transportFailed, .terminated]
    }
}
