/// One `;name[=value]` parameter of a header field or URI. Values keep their escapes (URIs) or are unquoted
/// (header quoted-strings, with `isQuoted` remembering the quotes).
public struct SIPParameter: Hashable, Sendable {
    public var name: String
    public var value: String?
    /// Whether the value was (and will be written as) a quoted-string.
    public var isQuoted: Bool

    public init(name: String, value: String? = nil, isQuoted: Bool = false) {
        self.name = name
        self.value = value
        self.isQuoted = isQuoted
    }
}

/// An ordered list of parameters with case-insensitive lookup by name.
public struct SIPParameters: RandomAccessCollection, MutableCollection, Hashable, Sendable, ExpressibleByArrayLiteral {
    private var storage: [SIPParameter]

    public init(_ parameters: [SIPParameter] = []) { storage = parameters }
    public init(arrayLiteral elements: SIPParameter...) { storage = elements }

    public var startIndex: Int { storage.startIndex }
    public var endIndex: Int { storage.endIndex }
    public subscript(position: Int) -> SIPParameter {
        get { storage[position] }
        set { storage[position] = newValue }
    }

    /// The first parameter with this name (ASCII case-insensitive).
    public func first(named name: String) -> SIPParameter? {
        storage.first { $0.name.utf8.equalsCaseInsensitive(bytes: name.utf8) }
    }

    /// Whether a parameter with this name is present (with or without a value).
    public func contains(_ name: String) -> Bool { first(named: name) != nil }

    /// The value of the first parameter with this name; nil when absent or valueless.
    public subscript(name: String) -> String? {
        first(named: name)?.value
    }

    /// Replaces the value of the first parameter with this name, or appends it.
    public mutating func set(_ name: String, to value: String?, quoted: Bool = false) {
        if let index = storage.firstIndex(where: { $0.name.utf8.equalsCaseInsensitive(bytes: name.utf8) }) {
            storage[index].value = value
            storage[index].isQuoted = quoted
        } else {
            storage.append(SIPParameter(name: name, value: value, isQuoted: quoted))
        }
    }

    /// Removes every parameter with this name.
    public mutating func remove(_ name: String) {
        storage.removeAll { $0.name.utf8.equalsCaseInsensitive(bytes: name.utf8) }
    }

    public mutating func append(_ parameter: SIPParameter) { storage.append(parameter) }

    /// `;name=value` for each parameter, quoting where `isQuoted`.
    public var serialized: String {
        var text = ""
        for parameter in storage {
            text += ";" + parameter.name
            if let value = parameter.value {
                text += "=" + (parameter.isQuoted ? SIPQuoting.quote(value) : value)
            }
        }
        return text
    }
}
