/// A longest-prefix-match table over decimal digit strings, built once and then only read.
///
/// Nodes live in one flat `[Int32]` array, ten child slots each (one per digit). A slot holds
/// `child << 1 | hasValue` (0 means no child; the root is never a child), so a lookup reads one slot per digit and
/// touches the value table once at the end: no hashing, no allocation. After building, `compact()` lays the nodes out
/// depth-first so the tail of a lookup reads consecutive memory. The trie is a value: publish a finished one by
/// swapping the reference that holds it, and readers of the old copy are never disturbed.
public struct PrefixTrie<Value> {
    @usableFromInline static var fanOut: Int { 10 }

    /// Ten slots per node: `child << 1 | hasValue`, or 0.
    @usableFromInline var slots: [Int32]
    /// Per node: the index in `values` plus one, or 0 when no prefix ends at the node.
    @usableFromInline var valueIndexByNode: [Int32]
    @usableFromInline var values: [Value]
    @usableFromInline var prefixes: [String]

    /// An empty trie.
    public init() {
        slots = Array(repeating: 0, count: Self.fanOut)
        valueIndexByNode = [0]
        values = []
        prefixes = []
    }

    /// An empty trie with room for about `count` prefixes before it reallocates.
    public init(minimumCapacity count: Int) {
        self.init()
        let nodes = max(count, 1) * 3
        slots.reserveCapacity(Self.fanOut * nodes)
        valueIndexByNode.reserveCapacity(nodes)
        values.reserveCapacity(count)
        prefixes.reserveCapacity(count)
    }

    /// A compacted trie of the given prefixes; a prefix given twice keeps its last value.
    public init(_ entries: some Sequence<(String, Value)>) throws(NumberingError) {
        self.init(minimumCapacity: entries.underestimatedCount)
        for (prefix, value) in entries {
            try insert(prefix, value)
        }
        compact()
    }

    /// The number of prefixes.
    public var count: Int { values.count }

    /// Whether the trie holds no prefix.
    public var isEmpty: Bool { values.isEmpty }

    /// The number of nodes, the root included.
    public var nodeCount: Int { valueIndexByNode.count }

    /// Approximate bytes held by the trie's arrays (nodes, values and the prefix strings' inline parts).
    public var memoryFootprint: Int {
        slots.capacity * MemoryLayout<Int32>.stride + valueIndexByNode.capacity * MemoryLayout<Int32>.stride
            + values.capacity * MemoryLayout<Value>.stride + prefixes.capacity * MemoryLayout<String>.stride
    }

    /// Every prefix with its value, in insertion order.
    public var entries: some Sequence<(prefix: String, value: Value)> {
        zip(prefixes, values).lazy.map { (prefix: $0, value: $1) }
    }

    /// Adds `prefix` (decimal digits only; the empty prefix matches every number), replacing and returning the
    /// value it had.
    @discardableResult
    public mutating func insert(_ prefix: String, _ value: Value) throws(NumberingError) -> Value? {
        var node = 0
        var parentSlot: Int?
        for byte in prefix.utf8 {
            let digit = Int(byte) &- 48
            guard digit >= 0, digit < 10 else {
                throw NumberingError(.invalidPrefix, "a prefix holds a character that is not a decimal digit")
            }
            let slot = node * Self.fanOut + digit
            let entry = Int(slots[slot])
            if entry != 0 {
                node = entry >> 1
            } else {
                let child = valueIndexByNode.count
                guard child < 1 << 30 else {
                    throw NumberingError(.invalidPrefix, "the trie is full (\(child) nodes)")
                }
                slots[slot] = Int32(truncatingIfNeeded: child << 1)
                slots.append(contentsOf: repeatElement(0, count: Self.fanOut))
                valueIndexByNode.append(0)
                node = child
            }
            parentSlot = slot
        }
        let existing = Int(valueIndexByNode[node])
        if existing != 0 {
            let old = values[existing - 1]
            values[existing - 1] = value
            return old
        }
        values.append(value)
        prefixes.append(prefix)
        valueIndexByNode[node] = Int32(truncatingIfNeeded: values.count)
        if let parentSlot { slots[parentSlot] |= 1 }
        return nil
    }

    /// Renumbers the nodes in depth-first order, so that a node's first child follows it and a lookup's tail reads
    /// consecutive memory. Call once after the last insert; lookups give the same answers either way.
    public mutating func compact() {
        let nodeCount = valueIndexByNode.count
        var order: [Int32] = []
        order.reserveCapacity(nodeCount)
        var newIndex = [Int32](repeating: 0, count: nodeCount)
        var stack: [Int32] = [0]
        while let node = stack.popLast() {
            newIndex[Int(node)] = Int32(truncatingIfNeeded: order.count)
            order.append(node)
            for digit in (0..<Self.fanOut).reversed() {
                let entry = slots[Int(node) * Self.fanOut + digit]
                if entry != 0 { stack.append(entry >> 1) }
            }
        }
        var newSlots = [Int32](repeating: 0, count: slots.count)
        var newValueIndex = [Int32](repeating: 0, count: nodeCount)
        for (position, node) in order.enumerated() {
            let old = Int(node) * Self.fanOut
            let new = position * Self.fanOut
            for digit in 0..<Self.fanOut {
                let entry = slots[old + digit]
                if entry != 0 { newSlots[new + digit] = newIndex[Int(entry >> 1)] << 1 | (entry & 1) }
            }
            newValueIndex[position] = valueIndexByNode[Int(node)]
        }
        slots = newSlots
        valueIndexByNode = newValueIndex
    }

    /// The value stored for exactly `prefix`.
    public func value(forPrefix prefix: String) -> Value? {
        var node = 0
        for byte in prefix.utf8 {
            let digit = Int(byte) &- 48
            guard digit >= 0, digit < 10 else { return nil }
            let entry = Int(slots[node * Self.fanOut + digit])
            if entry == 0 { return nil }
            node = entry >> 1
        }
        let index = Int(valueIndexByNode[node])
        return index == 0 ? nil : values[index - 1]
    }

    /// The longest prefix of `digits` in the trie, and its value. Matching stops at the first character that is not
    /// a decimal digit.
    @inlinable
    public func longestMatch(_ digits: String) -> (prefix: String, value: Value)? {
        guard let (length, index) = longestMatchIndex(digits.utf8) else { return nil }
        let prefix = length == digits.utf8.count ? digits : String(Substring(digits.utf8.prefix(length)))
        return (prefix, values[index])
    }

    /// The length of the longest prefix of `digits` (ASCII digits) in the trie, and its value; the fastest lookup,
    /// for callers that already hold the bytes.
    @inlinable
    public func longestMatch(utf8 digits: some Sequence<UInt8>) -> (length: Int, value: Value)? {
        guard let (length, index) = longestMatchIndex(digits) else { return nil }
        return (length, values[index])
    }

    @inlinable
    func longestMatchIndex(_ digits: some Sequence<UInt8>) -> (length: Int, index: Int)? {
        var bestNode = 0
        var bestLength = 0
        slots.withUnsafeBufferPointer { slots in
            var node = 0
            var depth = 0
            for byte in digits {
                let digit = Int(byte) &- 48
                guard digit >= 0, digit < 10 else { break }
                let entry = Int(slots[node &* 10 &+ digit])
                if entry == 0 { break }
                node = entry &>> 1
                depth &+= 1
                if entry & 1 != 0 {
                    bestNode = node
                    bestLength = depth
                }
            }
        }
        let index = Int(valueIndexByNode[bestNode]) - 1
        return index >= 0 ? (bestLength, index) : nil
    }
}

extension PrefixTrie: Sendable where Value: Sendable {}
