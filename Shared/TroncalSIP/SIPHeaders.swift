/// The header fields of a message in wire order, with lookup by name. Fields keep their raw bytes; the typed
/// accessors (`via()`, `cseq()`, ...) parse on demand.
public struct SIPHeaders: RandomAccessCollection, Hashable, Sendable, ExpressibleByArrayLiteral {
    private var fields: [SIPHeaderField]

    public init(_ fields: [SIPHeaderField] = []) { self.fields = fields }
    public init(arrayLiteral elements: SIPHeaderField...) { fields = elements }

    public var startIndex: Int { fields.startIndex }
    public var endIndex: Int { fields.endIndex }
    public subscript(position: Int) -> SIPHeaderField { fields[position] }

    /// The first field with this name.
    public func first(_ name: SIPHeaderName) -> SIPHeaderField? {
        fields.first { $0.name == name }
    }

    /// The first field whose name (as written) equals `name`, case-insensitively; for extension headers.
    public func first(named name: String) -> SIPHeaderField? {
        let wanted = Array(name.utf8)
        let known = SIPHeaderName(bytes: wanted[...])
        if known != .other { return first(known) }
        return fields.first { $0.name == .other && $0.rawName.equalsCaseInsensitive(bytes: wanted) }
    }

    /// Every field with this name, in order.
    public func fields(_ name: SIPHeaderName) -> [SIPHeaderField] {
        fields.filter { $0.name == name }
    }

    public func contains(_ name: SIPHeaderName) -> Bool { first(name) != nil }

    /// How many fields carry this name (not list elements).
    public func count(of name: SIPHeaderName) -> Int {
        var count = 0
        for field in fields where field.name == name { count += 1 }
        return count
    }

    /// All list elements of all fields with this name (Via, Contact, Route, ...), in order.
    public func elements(_ name: SIPHeaderName) -> [ArraySlice<UInt8>] {
        var result: [ArraySlice<UInt8>] = []
        for field in fields where field.name == name { result.append(contentsOf: field.elements) }
        return result
    }

    public mutating func append(_ field: SIPHeaderField) { fields.append(field) }

    /// Appends `Name: value` for a known header.
    public mutating func append(_ name: SIPHeaderName, _ value: String) {
        fields.append(SIPHeaderField(name, value: value))
    }

    public mutating func insert(_ field: SIPHeaderField, at index: Int) { fields.insert(field, at: index) }

    public mutating func remove(at index: Int) { fields.remove(at: index) }

    /// Removes every field with this name.
    public mutating func removeAll(_ name: SIPHeaderName) {
        fields.removeAll { $0.name == name }
    }

    /// Removes every field with this name, known or not (`P-Charge-Info`), case-insensitively.
    public mutating func removeAll(named name: String) {
        let wanted = Array(name.utf8)
        let known = SIPHeaderName(bytes: wanted[...])
        if known != .other { return removeAll(known) }
        fields.removeAll { $0.name == .other && $0.rawName.equalsCaseInsensitive(bytes: wanted) }
    }

    /// Replaces all fields with this name by one `Name: value`, where the first one was (or at the end).
    public mutating func replace(_ name: SIPHeaderName, with value: String) {
        let field = SIPHeaderField(name, value: value)
        if let index = fields.firstIndex(where: { $0.name == name }) {
            fields.removeAll { $0.name == name }
            fields.insert(field, at: index)
        } else {
            fields.append(field)
        }
    }
}
