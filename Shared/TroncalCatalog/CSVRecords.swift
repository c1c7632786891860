public import Foundation

/// A catalog file read against its columns: the header checked (no unknown or repeated column, every required one
/// present, every row as wide as the header), then rows read field by field with checks that name the line and column.
/// Shared by the routing and billing catalogs so that every file follows the same rules and says the same things.
public struct CSVRecords: Sendable {
    public let header: [String]
    public let records: [CSVRecord]

    public init(parsing text: String, kind: String, columns: [String], required: [String]) throws(CatalogError) {
        let table = try CSVTable(parsing: text)
        for name in table.header where !columns.contains(name) {
            throw CatalogError(line: 1, column: name, "not a column of \(kind) (columns: \(columns.joined(separator: ", ")))")
        }
        for name in required where !table.header.contains(name) { throw CatalogError(line: 1, column: name, "this column is required") }
        if let duplicate = table.header.enumerated().first(where: { table.header.firstIndex(of: $0.element) != $0.offset }) {
            throw CatalogError(line: 1, column: duplicate.element, "the column appears twice")
        }
        let index = Dictionary(uniqueKeysWithValues: table.header.enumerated().map { ($0.element, $0.offset) })
        let width = table.header.count
        var records: [CSVRecord] = []
        records.reserveCapacity(table.rows.count)
        for row in table.rows {
            guard row.fields.count == width else { throw CatalogError(line: row.line, "\(row.fields.count) fields, the header has \(width)") }
            records.append(CSVRecord(line: row.line, fields: row.fields, index: index))
        }
        header = table.header
        self.records = records
    }

    public func hasColumn(_ name: String) -> Bool { header.contains(name) }
}

/// One data row with typed, checked access by column name (an absent column reads as empty).
public struct CSVRecord: Sendable {
    public let line: Int
    let fields: [String]
    let index: [String: Int]

    /// The field, spaces around it dropped.
    public subscript(_ column: String) -> String {
        guard let position = index[column] else { return "" }
        return fields[position].trimmingSpaces
    }

    public func fail(_ column: String, _ detail: String) -> CatalogError { CatalogError(line: line, column: column, detail) }

    /// 1 to 64 visible characters, no spaces or `;`.
    public static func checkName(_ value: String, line: Int, column: String) throws(CatalogError) {
        guard value.count <= 64, value.unicodeScalars.allSatisfy({ $0.value >= 0x21 && $0.value != 0x7F && $0 != ";" }) else {
            throw CatalogError(line: line, column: column, "a name has 1 to 64 visible characters, no spaces or ';'")
        }
    }

    /// A name (carrier, trunk, plan, customer); empty is an error unless `optional`, then `fallback`.
    public func name(_ column: String, optional: Bool = false, default fallback: String = "") throws(CatalogError) -> String {
        let value = self[column]
        if value.isEmpty {
            guard optional else { throw fail(column, "a value is required") }
            return fallback
        }
        try Self.checkName(value, line: line, column: column)
        return value
    }

    public func host(_ column: String) throws(CatalogError) -> String {
        let value = self[column]
        guard !value.isEmpty, value.count <= 253,
            value.unicodeScalars.allSatisfy({ ($0.properties.isAlphabetic && $0.isASCII) || ("0"..."9").contains($0) || ".-:[]".unicodeScalars.contains($0) })
        else { throw fail(column, "\(value.quotedForError) is not a host name or IP address") }
        return value
    }

    public func integer(_ column: String, default fallback: Int, _ range: ClosedRange<Int>) throws(CatalogError) -> Int {
        let value = self[column]
        if value.isEmpty { return fallback }
        guard value.allSatisfy(\.isASCIIDigit), let number = Int(value), range.contains(number) else {
            throw fail(column, "\(value.quotedForError) is not a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    public func bool(_ column: String, default fallback: Bool) throws(CatalogError) -> Bool {
        switch self[column].lowercased() {
        case "": return fallback
        case "true", "yes", "1": return true
        case "false", "no", "0": return false
        case let other: throw fail(column, "\(other.quotedForError) is not true or false")
        }
    }

    /// `udp` (when empty), `tcp` or `tls`.
    public func transport(_ column: String) throws(CatalogError) -> String {
        let value = self[column].lowercased()
        if value.isEmpty { return "udp" }
        guard ["udp", "tcp", "tls"].contains(value) else { throw fail(column, "\(value.quotedForError) is not udp, tcp or tls") }
        return value
    }

    /// E.164 digits without `+` (a leading `+` is accepted and dropped), up to 15; may be empty.
    public func prefix(_ column: String) throws(CatalogError) -> String {
        var value = self[column]
        if value.hasPrefix("+") { value.removeFirst() }
        guard value.count <= 15, value.allSatisfy(\.isASCIIDigit) else { throw fail(column, "\(value.quotedForError) is not up to 15 digits") }
        return value
    }

    /// Digits, `*` and `#` (tech prefixes), up to 16.
    public func dialPrefix(_ column: String) throws(CatalogError) -> String {
        let value = self[column]
        guard value.count <= 16, value.allSatisfy({ $0.isASCIIDigit || $0 == "*" || $0 == "#" }) else {
            throw fail(column, "\(value.quotedForError) is not up to 16 digits, * or #")
        }
        return value
    }

    /// An exact amount in millionths (`0.0125`); empty gives `fallback`, or is an error when `fallback` is nil.
    public func amount(_ column: String, default fallback: Int64? = 0) throws(CatalogError) -> Int64 {
        let value = self[column]
        if value.isEmpty {
            guard let fallback else { throw fail(column, "a value is required") }
            return fallback
        }
        guard let micros = MicroAmount.parse(value) else {
            throw fail(column, "\(value.quotedForError) is not an amount like 0.0125 (up to 6 decimals, no sign)")
        }
        return micros
    }

    /// The `days` and `hours` columns as a schedule.
    public func schedule(days: String = "days", hours: String = "hours") throws(CatalogError) -> Schedule {
        do {
            return try Schedule(days: self[days], hours: self[hours])
        } catch {
            throw CatalogError(line: line, column: error.column, error.detail)
        }
    }

    /// `2026-12-01` (midnight UTC) or an ISO 8601 time; nil when empty.
    public func date(_ column: String) throws(CatalogError) -> Date? {
        let value = self[column]
        if value.isEmpty { return nil }
        if let date = try? Date(value, strategy: .iso8601) { return date }
        if value.count == 10, let date = try? Date(value + "T00:00:00Z", strategy: .iso8601) { return date }
        throw fail(column, "\(value.quotedForError) is not a date (2026-12-01) or an ISO 8601 time (2026-12-01T08:00:00Z)")
    }
}
