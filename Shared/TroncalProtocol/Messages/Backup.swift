public import Foundation

/// `backup.snapshot`: the backup service asks an instance for a consistent copy of its SQLite database, in parts.
///
/// Without `snapshot` the instance makes a new copy (`VACUUM INTO`, consistent while the service keeps writing),
/// measures it (``DatabaseFigures``) and answers the first part; with `snapshot` it answers the part at `offset`. The
/// copy is removed after its last part is sent, or when nobody asked for it for ten minutes. Only the `backup` role
/// may send it. An instance that stores in PostgreSQL refuses it (`unavailable`): that database is dumped with
/// `pg_dump` by the backup service.
public struct BackupSnapshotRequest: LinkRequest, Hashable {
    public typealias Reply = BackupSnapshotPart
    public static let messageType = "backup.snapshot"
    public var snapshot: String?
    public var offset: Int64
    /// The largest part wanted (the instance may send less; never more than its frame limit allows).
    public var maximumBytes: Int

    public init(snapshot: String? = nil, offset: Int64 = 0, maximumBytes: Int) {
        self.snapshot = snapshot
        self.offset = offset
        self.maximumBytes = maximumBytes
    }
}

/// `backup.snapshotPart`: one part of a snapshot, with what the whole snapshot is.
public struct BackupSnapshotPart: LinkMessage, Hashable {
    public static let messageType = "backup.snapshotPart"
    public var snapshot: String
    public var service: String
    public var totalBytes: Int64
    /// SHA-256 (hex) of the whole copy.
    public var sha256: String
    public var figures: DatabaseFigures
    public var offset: Int64
    public var data: Data
    public var last: Bool

    public init(
        snapshot: String, service: String, totalBytes: Int64, sha256: String, figures: DatabaseFigures, offset: Int64, data: Data, last: Bool
    ) {
        self.snapshot = snapshot
        self.service = service
        self.totalBytes = totalBytes
        self.sha256 = sha256
        self.figures = figures
        self.offset = offset
        self.data = data
        self.last = last
    }
}

/// What a database held when it was backed up, for a drill to compare a restored copy with: the schema version of
/// each service in it and, per table, the row count and a checksum of the rows' contents.
public struct DatabaseFigures: Codable, Sendable, Hashable {
    public var backend: String
    /// Each service's latest applied migration (`troncal_schema_migrations`).
    public var schemaVersions: [String: Int]
    public var tables: [TableFigures]

    public init(backend: String, schemaVersions: [String: Int], tables: [TableFigures]) {
        self.backend = backend
        self.schemaVersions = schemaVersions
        self.tables = tables
    }

    /// The highest schema version of any service in the database (0 when none).
    public var schemaVersion: Int { schemaVersions.values.max() ?? 0 }

    /// Every difference between what a backup recorded (`self`) and a restored copy, in words; empty when equal.
    public func differences(from restored: DatabaseFigures) -> [String] {
        var found: [String] = []
        if schemaVersions != restored.schemaVersions {
            found.append("schema versions: recorded \(schemaVersions.sorted { $0.key < $1.key }), restored \(restored.schemaVersions.sorted { $0.key < $1.key })")
        }
        let theirs = Dictionary(restored.tables.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for table in tables {
            guard let other = theirs[table.name] else {
                found.append("table \(table.name): missing from the restored copy")
                continue
            }
            if other.rows != table.rows { found.append("table \(table.name): \(table.rows) rows recorded, \(other.rows) restored") }
            else if other.checksum != table.checksum { found.append("table \(table.name): checksum differs (\(table.checksum) recorded, \(other.checksum) restored)") }
        }
        let ours = Set(tables.map(\.name))
        for table in restored.tables where !ours.contains(table.name) { found.append("table \(table.name): in the restored copy only") }
        return found
    }
}

/// One table's row count and content checksum.
public struct TableFigures: Codable, Sendable, Hashable {
    public var name: String
    public var rows: Int64
    public var checksum: String

    public init(name: String, rows: Int64, checksum: String) {
        self.name = name
        self.rows = rows
        self.checksum = checksum
    }
}
