/// The non-INVITE server transaction (RFC 3261 §17.2.2): resends the last provisional or final response
/// when the request is retransmitted, and keeps the final response for timer J (64·T1 on unreliable
/// transports, none on reliable ones).
public struct NonInviteServerTransaction: Sendable {
    public enum State: Sendable, Hashable { case trying, proceeding, completed, terminated }

    public private(set) var state: State = .trying
    public let request: SIPRequest
    public let reliable: Bool
    public let timers: TransactionTimers
    private var lastResponse: SIPResponse?

    public init(request: SIPRequest, reliable: Bool, timers: TransactionTimers = TransactionTimers()) {
        self.request = request
        self.reliable = reliable
        self.timers = timers
    }

    public mutating func start() -> [TransactionAction] {
        [.deliver(.request(request))]
    }

    /// A retransmission of the request.
    public mutating func receive(_ incoming: SIPRequest) -> [TransactionAction] {
        switch state {
        case .proceeding, .completed: return lastResponse.map { [.send(.response($0))] } ?? []
        case .trying, .terminated: return []
        }
    }

    public mutating func send(_ response: SIPResponse) -> [TransactionAction] {
        switch state {
        case .trying, .proceeding:
            lastResponse = response
            if response.statusCode < 200 {
                state = .proceeding
                return [.send(.response(response))]
            }
            if reliable {
                state = .terminated
                return [.send(.response(response)), .terminated]
            }
            state = .completed
            return [.send(.response(response)), .startTimer(.j, timers.transactionTimeout)]
        case .completed, .terminated:
            return []
        }
    }

    public mutating func timerFired(_ timer: TransactionTimer) -> [TransactionAction] {
        guard state == .completed, timer == .j else { return [] }
        state = .terminated
        return [.terminated]
    }

    public mutating func transportError() -> [TransactionAction] {
        guard state != .terminated else { return [] }
        state = .terminated
        return [.transportFailed, .terminated]
    }
}
