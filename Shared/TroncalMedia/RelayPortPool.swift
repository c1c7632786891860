public import NIOCore

/// Hands out the SBC's media relay ports from a configured range: each call side takes an even RTP port
/// and the odd one above it for RTCP. A pure value type; each loop's `MediaRelay` owns one for its share of the range.
public struct RelayPortPool: Sendable, Hashable {
    public let range: ClosedRange<Int>
    private var free: CircularBuffer<Int>
    private var inUse: Set<Int> = []

    /// `range` is widened inward to start on an even port; it must hold at least one RTP/RTCP pair.
    public init(range: ClosedRange<Int>) {
        self.range = range
        let first = range.lowerBound % 2 == 0 ? range.lowerBound : range.lowerBound + 1
        free = CircularBuffer(stride(from: first, to: range.upperBound, by: 2))
    }

    /// Takes a free even port (its RTCP port is `port + 1`); nil when the range is exhausted.
    public mutating func allocate() -> Int? {
        guard let port = free.popFirst() else { return nil }
        inUse.insert(port)
        return port
    }

    /// Gives a port back (ignored if it was not handed out). Returned ports are reused last, so a late packet
    /// of an ended call does not land in a new one at once.
    public mutating func release(_ port: Int) {
        guard inUse.remove(port) != nil else { return }
        free.append(port)
    }

    public var available: Int { free.count }
    public var allocated: Int { inUse.count }
}
