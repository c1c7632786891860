/// A hashed timing wheel: the timers of one event loop's calls and transactions, with O(1) start and cancel.
///
/// Time is passed in (monotonic nanoseconds), never read: the wheel is a plain value that a loop shell advances.
/// Deadlines are rounded up to the wheel's resolution, so a timer never fires early and fires at most one
/// resolution late. A deadline further away than one turn of the wheel waits in its slot for the turn it is due.
public struct TimerWheel<Key: Hashable> {
    struct Entry {
        var key: Key
        var deadline: Int64
        var sequence: UInt64
    }

    /// Nanoseconds per slot.
    public let resolution: Int64
    private var slots: [[Entry]]
    private let mask: Int
    /// Where each pending timer is: slot and index in it.
    private var locations: [Key: (slot: Int, index: Int)] = [:]
    /// The next tick to process.
    private var cursor: Int64
    private var sequence: UInt64 = 0

    /// `slotCount` is rounded up to a power of two; `now` is the wheel's starting time.
    public init(resolution: Duration = .milliseconds(10), slotCount: Int = 4096, now: Int64) {
        self.resolution = max(1, resolution.nanoseconds)
        var count = 1
        while count < max(2, slotCount) { count <<= 1 }
        slots = Array(repeating: [], count: count)
        mask = count - 1
        cursor = now / self.resolution
    }

    /// Timers pending.
    public var count: Int { locations.count }
    public var isEmpty: Bool { locations.isEmpty }

    public func contains(_ key: Key) -> Bool { locations[key] != nil }

    /// Starts a timer (replacing one with the same key) due at `deadline`.
    public mutating func schedule(_ key: Key, at deadline: Int64) {
        cancel(key)
        let tick = max(cursor, Self.ceilingDivide(deadline, resolution))
        let slot = Int(tick & Int64(mask))
        sequence &+= 1
        locations[key] = (slot, slots[slot].count)
        slots[slot].append(Entry(key: key, deadline: deadline, sequence: sequence))
    }

    /// Stops a timer; false when it was not pending.
    @discardableResult
    public mutating func cancel(_ key: Key) -> Bool {
        guard let location = locations.removeValue(forKey: key) else { return false }
        remove(at: location)
        return true
    }

    /// Removes and returns every timer due at `now` or before, in deadline order (ties in start order).
    public mutating func expire(upTo now: Int64) -> [Key] {
        let last = now / resolution
        guard last >= cursor, !locations.isEmpty else {
            if last >= cursor { cursor = last + 1 }
            return []
        }
        var fired: [Entry] = []
        // A wheel left alone for more than a turn visits each slot once.
        let first = max(cursor, last - Int64(mask))
        var tick = first
        while tick <= last {
            let slot = Int(tick & Int64(mask))
            var index = 0
            while index < slots[slot].count {
                let entry = slots[slot][index]
                if entry.deadline <= now {
                    locations[entry.key] = nil
                    remove(at: (slot, index))
                    fired.append(entry)
                } else {
                    index += 1
                }
            }
            tick += 1
        }
        cursor = last + 1
        if fired.count > 1 { fired.sort { ($0.deadline, $0.sequence) < ($1.deadline, $1.sequence) } }
        return fired.map(\.key)
    }

    private mutating func remove(at location: (slot: Int, index: Int)) {
        let (slot, index) = location
        let lastIndex = slots[slot].count - 1
        if index != lastIndex {
            let moved = slots[slot][lastIndex]
            slots[slot][index] = moved
            locations[moved.key] = (slot, index)
        }
        slots[slot].removeLast()
    }

    static func ceilingDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        value >= 0 ? (value + divisor - 1) / divisor : value / divisor
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return product.addingReportingOverflow(attoseconds / 1_000_000_000).overflow ? .max : product + attoseconds / 1_000_000_000
    }
}
