/// Rejects replayed digest nonce counts (RFC 7616 §3.3): remembers the highest nc seen per nonce in a bounded
/// table. When full, the oldest nonce is forgotten and a watermark remembers its issue time, so a nonce issued
/// at or before the watermark that is no longer in the table is reported `forgotten` (answer with a fresh nonce
/// and `stale=true`) rather than accepted again.
public struct DigestNonceCountTracker: Sendable {
    /// What one use of a nonce amounts to.
    public enum Use: Hashable, Sendable {
        /// A higher nc than ever seen with this nonce.
        case fresh
        /// nc not above one already seen: a replay.
        case replayed
        /// The nonce fell out of the table; its history is unknown.
        case forgotten
    }

    public let capacity: Int
    private var highest: [String: UInt32] = [:]
    private var issueTimes: [String: UInt64] = [:]
    /// Nonces in first-use order, for eviction; `head` is the oldest live entry.
    private var order: [String] = []
    private var head = 0
    private var watermark: UInt64?

    public init(capacity: Int = 10_000) {
        self.capacity = max(1, capacity)
    }

    /// How many nonces are remembered.
    public var count: Int { highest.count }

    /// Records a use of `nonce` with `nonceCount`, issued at `issuedAt` (Unix seconds).
    public mutating func record(nonce: String, nonceCount: UInt32, issuedAt: UInt64) -> Use {
        if let seen = highest[nonce] {
            guard nonceCount > seen else { return .replayed }
            highest[nonce] = nonceCount
            return .fresh
        }
        if let watermark, issuedAt <= watermark { return .forgotten }
        if highest.count >= capacity { evictOldest() }
        highest[nonce] = nonceCount
        issueTimes[nonce] = issuedAt
        order.append(nonce)
        return .fresh
    }

    private mutating func evictOldest() {
        while head < order.count {
            let nonce = order[head]
            head += 1
            if highest.removeValue(forKey: nonce) != nil {
                let issued = issueTimes.removeValue(forKey: nonce) ?? 0
                watermark = max(watermark ?? 0, issued)
                break
            }
        }
        if head > 1024, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
