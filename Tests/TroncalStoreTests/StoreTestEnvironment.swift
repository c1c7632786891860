import Foundation
import Logging
import Testing
import TroncalStore

/// The backends every store test runs on. PostgreSQL comes from `TRONCAL_TEST_POSTGRES_URL` (set by
/// `troncal_pg_start` in scripts/lib/postgres.sh); without it the PostgreSQL cases fail, unless
/// `TRONCAL_TEST_SKIP_POSTGRES=1` drops them explicitly.
enum TestBackend: String, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    static let urlVariable = "TRONCAL_TEST_POSTGRES_URL"
    static let skipVariable = "TRONCAL_TEST_SKIP_POSTGRES"

    static var skipPostgres: Bool { ProcessInfo.processInfo.environment[skipVariable] == "1" }

    /// Both backends, or SQLite alone when PostgreSQL is skipped on purpose.
    static var enabled: [TestBackend] { skipPostgres ? [.sqlite] : [.sqlite, .postgres] }

    static func postgresConfiguration() throws -> PostgresConfiguration {
        guard let url = ProcessInfo.processInfo.environment[urlVariable], !url.isEmpty else {
            throw MissingPostgres()
        }
        return try PostgresConfiguration(url: url)
    }
}

struct MissingPostgres: Error, CustomStringConvertible {
    var description: String {
        """
        \(TestBackend.urlVariable) is not set, so the PostgreSQL store tests cannot run. Start the throwaway cluster \
        first (source scripts/lib/postgres.sh; troncal_pg_start) or run scripts/test; set \
        \(TestBackend.skipVariable)=1 to leave PostgreSQL out on purpose.
        """
    }
}

/// Quiet tests: only warnings and errors reach stderr.
let testLogger: Logger = {
    var logger = Logger(label: "troncal.store.tests")
    logger.logLevel = .warning
    return logger
}()

/// Names unique to one test, so tests can share one PostgreSQL database while running in parallel.
final class TestNames: Sendable {
    let suffix = UUID().uuidString.prefix(8).lowercased()

    func table(_ base: String) -> String { "\(base)_\(suffix)" }
    func service(_ base: String) -> String { "\(base)-\(suffix)" }
}

/// A fresh store for one test: a new SQLite file in a new temporary directory, or the shared PostgreSQL test
/// database. Tables named through `names` and migration records of its services are dropped afterwards on
/// PostgreSQL; the SQLite directory is deleted.
func withTestStore(
    _ backend: TestBackend, _ body: (any SQLStore, TestNames) async throws -> Void
) async throws {
    let names = TestNames()
    switch backend {
    case .sqlite:
        let directory = try TemporaryStoreDirectory()
        defer { directory.remove() }
        let store = try await openStore(.sqlite(path: directory.path("store.db")), logger: testLogger)
        do {
            try await body(store, names)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    case .postgres:
        let store = try await openStore(.postgres(try TestBackend.postgresConfiguration()), logger: testLogger)
        var failure: (any Error)?
        do {
            try await body(store, names)
        } catch {
            failure = error
        }
        await dropTestObjects(store, suffix: names.suffix)
        try? await store.close()
        if let failure { throw failure }
    }
}

/// Opens another store on the same database as `store` (for tests of two instances sharing one database).
func openSecondStore(like store: any SQLStore) async throws -> any SQLStore {
    if let sqlite = store as? SQLiteStore {
        return try await SQLiteStore.open(sqlite.configuration, logger: testLogger)
    }
    return try await openStore(.postgres(try TestBackend.postgresConfiguration()), logger: testLogger)
}

private func dropTestObjects(_ store: any SQLStore, suffix: String) async {
    do {
        let tables = try await store.query(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE $1",
            [.text("%_\(suffix)")])
        for table in tables {
            try await store.execute("DROP TABLE IF EXISTS \(try table.string("tablename"))")
        }
        let migrations = try await store.query(
            "SELECT 1 AS present FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1",
            [.text(Migrator.table)])
        if !migrations.isEmpty {
            try await store.execute("DELETE FROM \(Migrator.table) WHERE service LIKE $1", [.text("%-\(suffix)")])
        }
    } catch {
        testLogger.warning("could not clean up PostgreSQL test objects", metadata: ["error": "\(error)"])
    }
}

/// A temporary directory for SQLite files, removed by `remove()`.
struct TemporaryStoreDirectory: Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("troncal-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ file: String) -> String { url.appendingPathComponent(file).path }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// Runs `body` and returns the ``StoreError`` it throws, recording an issue when it throws nothing or another error.
func storeError(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> StoreError? {
    do {
        try await body()
        Issue.record("expected a StoreError, but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as StoreError {
        return error
    } catch {
        Issue.record("expected a StoreError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
