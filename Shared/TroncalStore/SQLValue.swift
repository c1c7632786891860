/// A value bound to a statement parameter or read from a result column, the same on every backend.
///
/// `bool` is stored as a native boolean on PostgreSQL and as the integer 0 or 1 on SQLite, so read it back with
/// ``SQLRow/bool(_:)``, which accepts both. Money is never a `real`: store it as an integer of minor units or as text.
public enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
    case bool(Bool)

    /// An `Int` as an ``integer(_:)`` value.
    public static func int(_ value: Int) -> SQLValue { .integer(Int64(value)) }

    /// `true` for ``null``.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The name of the case, for error messages (never the value itself, which may be confidential).
    public var typeName: String {
        switch self {
        case .null: "null"
        case .integer: "integer"
        case .real: "real"
        case .text: "text"
        case .blob: "blob"
        case .bool: "bool"
        }
    }
}

extension SQLValue: ExpressibleByNilLiteral {
    public init(nilLiteral: ()) { self = .null }
}

extension SQLValue: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int64) { self = .integer(value) }
}

extension SQLValue: ExpressibleByFloatLiteral {
    public init(floatLiteral value: Double) { self = .real(value) }
}

extension SQLValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
}

extension SQLValue: ExpressibleByBooleanLiteral {
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension SQLValue: CustomStringConvertible {
    /// A short rendering for debugging; blobs show their size only.
    public var description: String {
        switch self {
        case .null: "NULL"
        case .integer(let value): String(value)
        case .real(let value): String(value)
        case .text(let value): "'\(value)'"
        case .blob(let bytes): "<\(bytes.count) bytes>"
        case .bool(let value): String(value)
        }
    }
}
