public import Foundation
import Logging
public import TroncalStore

/// The two store backends a service's database tests run on.
public enum TestBackend: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite, postgres
    public var description: String { rawValue }

    /// The PostgreSQL URL of the throwaway cluster `scripts/test` starts; nil when PostgreSQL is skipped on purpose.
    public static func postgresURL() throws -> String? {
        let environment = ProcessInfo.processInfo.environment
        if let url = environment["TRONCAL_TEST_POSTGRES_URL"], !url.isEmpty { return url }
        if environment["TRONCAL_TEST_SKIP_POSTGRES"] == "1" { return nil }
        throw StoreError(.invalidConfiguration, "TRONCAL_TEST_POSTGRES_URL is not set: run the tests through scripts/test (or set TRONCAL_TEST_SKIP_POSTGRES=1)")
    }
}

/// A PostgreSQL database of its own on the test cluster, dropped by `drop()`.
public struct TestPostgresDatabase: Sendable {
    public let name: String
    public let url: String
    let adminURL: String

    public static func create(prefix: String) async throws -> TestPostgresDatabase? {
        guard let adminURL = try TestBackend.postgresURL() else { return nil }
        let name = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        let admin = try await openStore(.postgres(try PostgresConfiguration(url: adminURL)), logger: Logger(label: "test.db"))
        defer { Task { try? await admin.close() } }
        try await admin.execute("CREATE DATABASE \(name)")
        guard var components = URLComponents(string: adminURL) else { throw StoreError(.invalidConfiguration, "bad test URL") }
        components.path = "/\(name)"
        return TestPostgresDatabase(name: name, url: components.string ?? adminURL, adminURL: adminURL)
    }

    public var components: URLComponents? { URLComponents(string: url) }

    public func drop() async {
        guard let admin = try? await openStore(.postgres(try PostgresConfiguration(url: adminURL)), logger: Logger(label: "test.db")) else { return }
        try? await admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        try? await admin.close()
    }
}

/// Runs `body` on a fresh database of `backend` migrated with `migrations` (a SQLite file in a temporary directory,
/// or a PostgreSQL database of its own), and removes it afterwards, also when `body` throws. Does nothing when the
/// backend is PostgreSQL and PostgreSQL is skipped on purpose.
public func withMigratedDatabase(
    _ backend: TestBackend, service: String, migrations: [Migration], _ body: (any SQLStore) async throws -> Void
) async throws {
    let logger = Logger(label: "test.db")
    var cleanup: @Sendable () async -> Void = {}
    let store: any SQLStore
    switch backend {
    case .sqlite:
        let directory = try TemporaryDirectory(prefix: "troncal-\(service)-store")
        cleanup = { directory.remove() }
        store = try await openStore(.sqlite(path: directory.url.appendingPathComponent("\(service).sqlite").path), logger: logger)
    case .postgres:
        guard let database = try await TestPostgresDatabase.create(prefix: service) else { return }
        cleanup = { await database.drop() }
        do {
            store = try await openStore(.postgres(try PostgresConfiguration(url: database.url)), logger: logger)
        } catch {
            await cleanup()
            throw error
        }
    }
    var failure: (any Error)?
    do {
        _ = try await Migrator(service: service, migrations: migrations, logger: logger).migrate(store)
        try await body(store)
    } catch {
        failure = error
    }
    try? await store.close()
    await cleanup()
    if let failure { throw failure }
}
