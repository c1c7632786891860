/// The RFC 3261 timer values (§17, Table 4) a transaction derives its timers from.
public struct TransactionTimers: Sendable, Hashable {
    /// RTT estimate, 500 ms by default.
    public var t1: Duration = .milliseconds(500)
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    public var t2: Duration = .seconds(4)
    /// Maximum time a message stays in the network, 5 s.
    public var t4: Duration = .seconds(5)

    public init(t1: Duration = .milliseconds(500), t2: Duration = .seconds(4), t4: Duration = .seconds(5)) {
        self.t1 = t1
        self.t2 = t2
        self.t4 = t4
    }

    /// 64·T1: timers B, F, H, J (unreliable), L and M.
    public var transactionTimeout: Duration { t1 * 64 }
}

/// The named timers of RFC 3261 §17 and RFC 6026 (L, M).
public enum TransactionTimer: String, Sendable, Hashable, CaseIterable {
    case a = "A", b = "B", d = "D", e = "E", f = "F", g = "G", h = "H", i = "I", j = "J", k = "K", l = "L", m = "M"
}

/// What a transaction asks its shell (transport and transaction user) to do.
public enum TransactionAction: Sendable, Hashable {
    /// Hand this message to the transport.
    case send(SIPMessage)
    case startTimer(TransactionTimer, Duration)
    case cancelTimer(TransactionTimer)
    /// Pass this message up to the transaction user.
    case deliver(SIPMessage)
    /// Tell the transaction user the transaction timed out (B, F or H).
    case timedOut
    /// Tell the transaction user the transport failed.
    case transportFailed
    /// The transaction is over: forget it.
    case terminated
}
