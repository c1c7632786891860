/// A checked ``SQLStore/bulkLoad(table:columns:rows:)`` request: identifiers that are safe to splice into SQL and
/// rows of the right width.
struct BulkLoadRequest {
    let table: String
    let columns: [String]
    let rows: [[SQLValue]]

    init(table: String, columns: [String], rows: [[SQLValue]], backend: SQLBackendKind) throws {
        for name in [table] + columns where !Self.isPlainIdentifier(name) {
            throw StoreError(
                .misuse,
                "bulk load needs plain lower-case identifiers ([a-z_][a-z0-9_]*, at most 63 characters), got \"\(name)\"",
                backend: backend)
        }
        guard !columns.isEmpty else {
            throw StoreError(.misuse, "bulk load into \(table) names no columns", backend: backend)
        }
        guard Set(columns).count == columns.count else {
            throw StoreError(.misuse, "bulk load into \(table) names a column twice", backend: backend)
        }
        if let bad = rows.firstIndex(where: { $0.count != columns.count }) {
            throw StoreError(
                .misuse,
                "bulk load into \(table): row \(bad) has \(rows[bad].count) values for \(columns.count) columns",
                backend: backend)
        }
        self.table = table
        self.columns = columns
        self.rows = rows
    }

    static func isPlainIdentifier(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 63 else { return false }
        let isLetter = { (byte: UInt8) in (byte >= 97 && byte <= 122) || byte == 95 }
        let isDigit = { (byte: UInt8) in byte >= 48 && byte <= 57 }
        return isLetter(first) && name.utf8.allSatisfy { isLetter($0) || isDigit($0) }
    }
}
