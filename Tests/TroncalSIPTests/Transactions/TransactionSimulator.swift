import TroncalSIP

/// Drives one transaction on a virtual clock the way a shell would: keeps its timers by deadline, fires them in
/// order, and logs with the time everything the transaction sends, passes up or reports. A timer test then
/// reads as a timeline instead of a sequence of hand-fired timers.
struct TransactionSimulator {
    /// What the outside world sees.
    enum Event: Hashable, Sendable, CustomStringConvertible {
        case sent(String)
        case delivered(String)
        case timedOut
        case transportFailed
        case terminated

        var description: String {
            switch self {
            case .sent(let what): "sent \(what)"
            case .delivered(let what): "delivered \(what)"
            case .timedOut: "timed out"
            case .transportFailed: "transport failed"
            case .terminated: "terminated"
            }
        }
    }

    struct Entry: Hashable, Sendable, Comparable, CustomStringConvertible {
        var at: Duration
        var event: Event

        static func < (lhs: Entry, rhs: Entry) -> Bool {
            (lhs.at, lhs.event.description) < (rhs.at, rhs.event.description)
        }

        var description: String { "\(at) \(event)" }
    }

    struct TimerStart: Hashable, Sendable {
        var timer: TransactionTimer
        var duration: Duration
        var at: Duration
    }

    private(set) var transaction: SIPTransaction
    private(set) var now: Duration = .zero
    private(set) var log: [Entry] = []
    private(set) var timerStarts: [TimerStart] = []
    private(set) var isTerminated = false
    /// Actions returned by events after the transaction said `.terminated`; a correct one returns none.
    private(set) var actionsAfterTermination: [TransactionAction] = []
    private var deadlines: [TransactionTimer: Duration] = [:]

    init(_ transaction: SIPTransaction) {
        self.transaction = transaction
        let actions = self.transaction.start()
        perform(actions)
    }

    /// Fires, in deadline order, every timer due by `time`, then moves the clock there.
    mutating func advance(to time: Duration) {
        while let (timer, deadline) = deadlines.min(by: { ($0.value, $0.key.rawValue) < ($1.value, $1.key.rawValue) }),
            deadline <= time
        {
            deadlines[timer] = nil
            now = deadline
            perform(transaction.timerFired(timer))
        }
        now = max(now, time)
    }

    mutating func receive(_ message: SIPMessage, at time: Duration) {
        advance(to: time)
        perform(transaction.receive(message))
    }

    mutating func send(_ response: SIPResponse, at time: Duration) {
        advance(to: time)
        perform(transaction.send(response))
    }

    mutating func transportError(at time: Duration) {
        advance(to: time)
        perform(transaction.transportError())
    }

    private mutating func perform(_ actions: [TransactionAction]) {
        if isTerminated {
            actionsAfterTermination += actions
            return
        }
        for action in actions {
            switch action {
            case .send(let message): log.append(Entry(at: now, event: .sent(message.summary)))
            case .deliver(let message): log.append(Entry(at: now, event: .delivered(message.summary)))
            case .startTimer(let timer, let duration):
                timerStarts.append(TimerStart(timer: timer, duration: duration, at: now))
                deadlines[timer] = now + duration
            case .cancelTimer(let timer): deadlines[timer] = nil
            case .timedOut: log.append(Entry(at: now, event: .timedOut))
            case .transportFailed: log.append(Entry(at: now, event: .transportFailed))
            case .terminated:
                log.append(Entry(at: now, event: .terminated))
                isTerminated = true
            }
        }
        if isTerminated { deadlines.removeAll() }
    }
}
