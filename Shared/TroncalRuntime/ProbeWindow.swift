/// The last `size` probes of one link: round-trip times of the answered ones, and how many were lost. Gives the
/// link figures the monitor alarms on: latency (median round trip), jitter (mean difference between consecutive round
/// trips, as RFC 3550 does for transit times) and loss (percent of probes unanswered).
public struct ProbeWindow: Sendable, Hashable {
    public let size: Int
    /// Round trips in milliseconds, nil for a lost probe; oldest first.
    public private(set) var probes: [Double?] = []

    public init(size: Int = 10) {
        self.size = max(1, size)
    }

    public mutating func record(_ roundTripMilliseconds: Double?) {
        probes.append(roundTripMilliseconds)
        if probes.count > size { probes.removeFirst(probes.count - size) }
    }

    public var lossPercent: Double? {
        guard !probes.isEmpty else { return nil }
        return Double(probes.filter { $0 == nil }.count) / Double(probes.count) * 100
    }

    /// The median round trip of the answered probes: a probe answered late because the prober's machine was busy (a
    /// scheduling stall, not the network) does not move it, while a link that is slower for half the window does.
    public var latencyMilliseconds: Double? {
        let answered = probes.compactMap { $0 }.sorted()
        guard !answered.isEmpty else { return nil }
        let middle = answered.count / 2
        return answered.count % 2 == 1 ? answered[middle] : (answered[middle - 1] + answered[middle]) / 2
    }

    public var jitterMilliseconds: Double? {
        let answered = probes.compactMap { $0 }
        guard answered.count >= 2 else { return nil }
        var total = 0.0
        for index in 1..<answered.count { total += abs(answered[index] - answered[index - 1]) }
        return total / Double(answered.count - 1)
    }
}
