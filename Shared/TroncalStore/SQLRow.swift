/// One result row: values by column name, with typed accessors that throw a ``StoreError`` with code
/// ``StoreError/Code/decoding`` when the column is missing, NULL (for the non-optional accessors) or of another type.
///
/// Column names are matched exactly first, then case-insensitively, because PostgreSQL folds unquoted names to
/// lower case while SQLite keeps them as written.
public struct SQLRow: Sendable {
    let layout: SQLColumnLayout
    /// The values in column order.
    public let values: [SQLValue]

    init(layout: SQLColumnLayout, values: [SQLValue]) {
        self.layout = layout
        self.values = values
    }

    /// Builds a row from column names and values of the same count (for tests and adapters).
    public init(columns: [String], values: [SQLValue]) {
        precondition(columns.count == values.count, "SQLRow needs one value per column")
        self.init(layout: SQLColumnLayout(columns), values: values)
    }

    /// The column names in result order.
    public var columns: [String] { layout.names }

    /// The value of `column`, or `nil` when the result has no such column.
    public subscript(column: String) -> SQLValue? {
        layout.index(of: column).map { values[$0] }
    }

    /// The value of `column`; throws when the result has no such column.
    public func value(_ column: String) throws -> SQLValue {
        guard let index = layout.index(of: column) else {
            let known = layout.names.map { "\"\($0)\"" }.joined(separator: ", ")
            throw StoreError(.decoding, "no column \"\(column)\" in the result (columns: \(known))")
        }
        return values[index]
    }

    /// Whether `column` holds NULL.
    public func isNull(_ column: String) throws -> Bool {
        try value(column).isNull
    }

    /// An integer column. PostgreSQL `numeric` results (e.g. `SUM` of a `bigint`) arrive as text and are accepted
    /// when they hold a whole number that fits in 64 bits.
    public func int(_ column: String) throws -> Int64 {
        try required(column, "integer", optionalInt)
    }

    /// An integer column that may be NULL.
    public func optionalInt(_ column: String) throws -> Int64? {
        try convert(column, "integer") { value in
            switch value {
            case .integer(let int): int
            case .text(let text): Int64(text)
            default: nil
            }
        }
    }

    /// A floating-point column; integer values and PostgreSQL `numeric` text are widened to `Double`.
    public func double(_ column: String) throws -> Double {
        try required(column, "real", optionalDouble)
    }

    /// A floating-point column that may be NULL.
    public func optionalDouble(_ column: String) throws -> Double? {
        try convert(column, "real") { value in
            switch value {
            case .real(let double): double
            case .integer(let int): Double(int)
            case .text(let text): Double(text)
            default: nil
            }
        }
    }

    /// A text column.
    public func string(_ column: String) throws -> String {
        try required(column, "text", optionalString)
    }

    /// A text column that may be NULL.
    public func optionalString(_ column: String) throws -> String? {
        try convert(column, "text") { value in
            if case .text(let text) = value { return text }
            return nil
        }
    }

    /// A binary (`BLOB` / `bytea`) column.
    public func bytes(_ column: String) throws -> [UInt8] {
        try required(column, "blob", optionalBytes)
    }

    /// A binary column that may be NULL.
    public func optionalBytes(_ column: String) throws -> [UInt8]? {
        try convert(column, "blob") { value in
            if case .blob(let bytes) = value { return bytes }
            return nil
        }
    }

    /// A boolean column: a PostgreSQL `boolean`, or the integer 0 or 1 that SQLite stores for one.
    public func bool(_ column: String) throws -> Bool {
        try required(column, "bool", optionalBool)
    }

    /// A boolean column that may be NULL.
    public func optionalBool(_ column: String) throws -> Bool? {
        try convert(column, "bool") { value in
            switch value {
            case .bool(let bool): bool
            case .integer(0): false
            case .integer(1): true
            default: nil
            }
        }
    }

    private func convert<T>(_ column: String, _ expected: String, _ conversion: (SQLValue) -> T?) throws -> T? {
        let value = try value(column)
        if value.isNull { return nil }
        guard let converted = conversion(value) else {
            throw StoreError(.decoding, "column \"\(column)\" holds a \(value.typeName) value, expected \(expected)")
        }
        return converted
    }

    private func required<T>(_ column: String, _ expected: String, _ optional: (String) throws -> T?) throws -> T {
        guard let value = try optional(column) else {
            throw StoreError(.decoding, "column \"\(column)\" is NULL, expected \(expected)")
        }
        return value
    }
}

extension SQLRow: CustomStringConvertible {
    public var description: String {
        "[" + zip(columns, values).map { "\($0): \($1)" }.joined(separator: ", ") + "]"
    }
}

/// The column names of one result set, shared by all its rows, with a name-to-index table.
final class SQLColumnLayout: Sendable {
    let names: [String]
    private let exact: [String: Int]
    private let folded: [String: Int]

    init(_ names: [String]) {
        self.names = names
        var exact: [String: Int] = [:]
        var folded: [String: Int] = [:]
        for (index, name) in names.enumerated() {
            if exact[name] == nil { exact[name] = index }
            if folded[name.lowercased()] == nil { folded[name.lowercased()] = index }
        }
        self.exact = exact
        self.folded = folded
    }

    func index(of name: String) -> Int? {
        exact[name] ?? folded[name.lowercased()]
    }
}
