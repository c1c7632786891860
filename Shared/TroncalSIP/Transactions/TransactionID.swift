/// A transaction's identity in a `TransactionTable`: its `TransactionKey` and whether it is a client or a server
/// transaction. The two sides are matched separately (responses only against client transactions, requests only
/// against server ones, RFC 3261 §17.1.3 and §17.2.3), so a request that loops back to the element that sent it
/// gets a server transaction of its own instead of colliding with its client transaction.
public struct TransactionID: Hashable, Sendable, CustomStringConvertible {
    /// Which half of the transaction layer a transaction belongs to.
    public enum Side: Hashable, Sendable {
        case client, server
    }

    public var side: Side
    public var key: TransactionKey

    public init(side: Side, key: TransactionKey) {
        self.side = side
        self.key = key
    }

    public var description: String { "\(side) \(key)" }
}
