import Foundation
public import Logging

/// Brings one service's schema up to date at start-up, recording what it applied in `troncal_schema_migrations`.
///
/// Each pending migration runs in its own transaction together with its record, so a failed one leaves nothing
/// behind and running the migrator again is harmless. Two instances starting at once do not both apply a migration:
/// on PostgreSQL every step takes the transaction-scoped advisory lock ``advisoryLockKey``, on SQLite the
/// transaction is `BEGIN IMMEDIATE`. A database that already holds a newer version than this build knows is refused
/// with ``StoreError/Code/schemaTooNew`` before anything is changed.
public struct Migrator: Sendable {
    /// The table that records applied migrations of every service.
    public static let table = "troncal_schema_migrations"
    /// The PostgreSQL advisory lock key that serialises migrations of all services on one database.
    public static let advisoryLockKey: Int64 = 0x7472_6F6E_6361_6C31  // "troncal1"

    /// The service whose migrations these are, e.g. `billing`.
    public let service: String
    /// The migrations in ascending version order.
    public let migrations: [Migration]
    private let logger: Logger

    /// Checks the list: versions positive and unique, names non-empty, at least one statement each.
    public init(service: String, migrations: [Migration], logger: Logger) throws {
        guard !service.isEmpty else {
            throw StoreError(.misuse, "a migrator needs a service name")
        }
        var seen = Set<Int>()
        for migration in migrations {
            guard migration.version > 0 else {
                throw StoreError(.misuse, "migration \"\(migration.name)\" of \(service) has version \(migration.version); versions start at 1")
            }
            guard seen.insert(migration.version).inserted else {
                throw StoreError(.misuse, "\(service) has two migrations with version \(migration.version)")
            }
            guard !migration.name.isEmpty else {
                throw StoreError(.misuse, "migration \(migration.version) of \(service) has no name")
            }
            for backend in SQLBackendKind.allCases where migration.statements(for: backend).isEmpty {
                throw StoreError(.misuse, "migration \(migration.version) of \(service) has no statements for \(backend)")
            }
        }
        self.service = service
        self.migrations = migrations.sorted { $0.version < $1.version }
        var logger = logger
        logger[metadataKey: "service"] = "\(service)"
        self.logger = logger
    }

    /// The highest version this build knows, 0 when it has no migrations.
    public var latestVersion: Int { migrations.last?.version ?? 0 }

    /// Applies every pending migration in order and returns the versions it applied (empty when up to date).
    @discardableResult
    public func migrate(_ store: any SQLStore) async throws -> [Int] {
        var applied: [Int] = []
        while let version = try await applyNext(store) {
            applied.append(version)
        }
        if applied.isEmpty {
            logger.debug("schema is up to date", metadata: ["version": "\(latestVersion)"])
        }
        return applied
    }

    /// The versions of this service recorded in the database, ascending (empty for a new database).
    public func appliedVersions(_ store: any SQLStore) async throws -> [Int] {
        try await store.transaction { transaction in
            try await prepare(transaction)
            return try await readApplied(transaction).keys.sorted()
        }
    }

    /// Applies the first pending migration, if any, in one transaction; returns its version.
    private func applyNext(_ store: any SQLStore) async throws -> Int? {
        try await store.transaction { transaction -> Int? in
            try await prepare(transaction)
            let applied = try await readApplied(transaction)
            try check(applied)
            guard let next = migrations.first(where: { applied[$0.version] == nil }) else { return nil }
            let started = ContinuousClock.now
            for (index, statement) in next.statements(for: transaction.backend).enumerated() {
                do {
                    try await transaction.execute(statement)
                } catch let error as StoreError {
                    var failure = error
                    failure.code = .migrationFailed
                    failure.message =
                        "migration \(next.version) (\(next.name)) of \(service) failed at statement \(index + 1): \(error.message); nothing of it was applied"
                    throw failure
                }
            }
            try await transaction.execute(
                "INSERT INTO \(Self.table) (service, version, name, applied_at) VALUES ($1, $2, $3, $4)",
                [.text(service), .int(next.version), .text(next.name), .text(Self.timestamp(Date()))])
            logger.info(
                "applied schema migration",
                metadata: [
                    "version": "\(next.version)", "name": "\(next.name)",
                    "duration": "\(ContinuousClock.now - started)",
                ])
            return next.version
        }
    }

    /// Serialises concurrent migrators and makes sure the migrations table exists.
    private func prepare(_ transaction: any SQLTransaction) async throws {
        if transaction.backend == .postgres {
            try await transaction.execute("SELECT pg_advisory_xact_lock($1)", [.integer(Self.advisoryLockKey)])
        }
        try await transaction.execute(
            """
            CREATE TABLE IF NOT EXISTS \(Self.table) (
                service TEXT NOT NULL,
                version INTEGER NOT NULL,
                name TEXT NOT NULL,
                applied_at TEXT NOT NULL,
                PRIMARY KEY (service, version)
            )
            """)
    }

    private func readApplied(_ transaction: any SQLTransaction) async throws -> [Int: String] {
        let rows = try await transaction.query(
            "SELECT version, name FROM \(Self.table) WHERE service = $1", [.text(service)])
        var applied: [Int: String] = [:]
        for row in rows {
            applied[Int(try row.int("version"))] = try row.string("name")
        }
        return applied
    }

    private func check(_ applied: [Int: String]) throws {
        if let newest = applied.keys.max(), newest > latestVersion {
            throw StoreError(
                .schemaTooNew,
                "database schema of \(service) is at version \(newest) but this build knows up to \(latestVersion); upgrade Troncal or restore a matching backup")
        }
        if let newest = applied.keys.max(),
            let gap = migrations.first(where: { $0.version < newest && applied[$0.version] == nil })
        {
            throw StoreError(
                .migrationFailed,
                "database schema of \(service) is at version \(newest) but migration \(gap.version) (\(gap.name)) was never applied; restore a consistent backup")
        }
        for migration in migrations {
            if let recorded = applied[migration.version], recorded != migration.name {
                logger.warning(
                    "applied migration has another name in this build",
                    metadata: ["version": "\(migration.version)", "recorded": "\(recorded)", "name": "\(migration.name)"])
            }
        }
    }

    private static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
