import Crypto
public import Logging
import Foundation
public import TroncalProtocol
public import TroncalStore

extension DatabaseFigures {
    /// Measures the database `transaction` sees: every table's row count and content checksum, and each service's
    /// schema version. Run it in one transaction (on PostgreSQL a REPEATABLE READ one, for the snapshot a dump uses)
    /// so that the figures describe one moment.
    ///
    /// Checksums are comparable between two databases of the same backend only: on SQLite the SHA-256 of every row's
    /// values in rowid order (read in pages of 2,000 rows, so a large table is never held in memory); on PostgreSQL each row's
    /// text form hashed with MD5 by the server and the two 64-bit halves of the hashes summed (exact numerics: no
    /// overflow, no order, no sort, no aggregated string that would pass PostgreSQL's 1 GB limit on a large table).
    public static func measure(_ transaction: any SQLTransaction) async throws -> DatabaseFigures {
        var tables: [TableFigures] = []
        switch transaction.backend {
        case .sqlite:
            let names = try await transaction.query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            for row in names {
                let name = try row.string("name")
                tables.append(try await sqliteTable(name, transaction))
            }
        case .postgres:
            let names = try await transaction.query(
                """
                SELECT table_name AS name FROM information_schema.tables
                WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name
                """)
            for row in names {
                let name = try row.string("name")
                let figures = try await transaction.query(
                    """
                    SELECT count(*) AS n,
                        coalesce(md5(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric)::text || ':'
                            || sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric)::text), '') AS sum
                    FROM (SELECT md5(t::text) AS h FROM \(quoted(name)) t) rows
                    """)
                tables.append(TableFigures(name: name, rows: try figures.first?.int("n") ?? 0, checksum: try figures.first?.string("sum") ?? ""))
            }
        }
        var versions: [String: Int] = [:]
        if tables.contains(where: { $0.name == Migrator.table }) {
            for row in try await transaction.query("SELECT service, max(version) AS version FROM \(Migrator.table) GROUP BY service") {
                versions[try row.string("service")] = Int(try row.int("version"))
            }
        }
        return DatabaseFigures(backend: transaction.backend.rawValue, schemaVersions: versions, tables: tables)
    }

    /// Opens the database `configuration` names, measures it in one transaction, and closes it.
    public static func measure(_ configuration: StoreConfiguration, logger: Logger) async throws -> DatabaseFigures {
        let store = try await openStore(configuration, logger: logger)
        do {
            let figures = try await store.transaction { try await measure($0) }
            try await store.close()
            return figures
        } catch {
            try? await store.close()
            throw error
        }
    }

    private static func sqliteTable(_ name: String, _ transaction: any SQLTransaction) async throws -> TableFigures {
        var hash = SHA256()
        var rows: Int64 = 0
        var last = Int64.min
        while true {
            let page = try await transaction.query(
                "SELECT rowid AS troncal_rowid, * FROM \(quoted(name)) WHERE rowid > $1 ORDER BY rowid LIMIT 2000", [.integer(last)])
            for row in page {
                last = try row.int("troncal_rowid")
                rows += 1
                for column in row.columns.dropFirst() { hash.update(value: row[column] ?? .null) }
                hash.update(data: [0x1e])
            }
            if page.count < 2000 { break }
        }
        return TableFigures(name: name, rows: rows, checksum: hash.finalize().map { String(format: "%02x", $0) }.joined())
    }

    private static func quoted(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
}

extension SHA256 {
    /// Feeds one value with its kind and length, so that (1, "2") and ("12") never hash alike.
    fileprivate mutating func update(value: SQLValue) {
        func bytes(_ tag: UInt8, _ payload: [UInt8]) {
            var length = UInt32(payload.count).bigEndian
            update(data: [tag])
            withUnsafeBytes(of: &length) { update(data: Array($0)) }
            update(data: payload)
        }
        switch value {
        case .null: bytes(0, [])
        case .integer(let number): bytes(1, Array(String(number).utf8))
        case .real(let number): bytes(2, Array(String(number).utf8))
        case .text(let text): bytes(3, Array(text.utf8))
        case .blob(let blob): bytes(4, blob)
        case .bool(let flag): bytes(1, Array((flag ? "1" : "0").utf8))
        }
    }
}
