import Foundation
import Logging
import TestSupport
import TroncalStore

/// The two backends every store test runs on. PostgreSQL comes from the throwaway cluster `scripts/test`
/// starts (`TRONCAL_TEST_POSTGRES_URL`); without it the PostgreSQL cases fail, unless
/// `TRONCAL_TEST_SKIP_POSTGRES=1` says on purpose that this run has no PostgreSQL.
enum StoreBackend: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite, postgres
    var description: String { rawValue }

    struct Opened: Sendable {
        let store: any SQLStore
        let directory: TemporaryDirectory?

        func close() async {
            try? await store.close()
            directory?.remove()
        }
    }

    static var skipPostgres: Bool { ProcessInfo.processInfo.environment["TRONCAL_TEST_SKIP_POSTGRES"] == "1" }

    /// Opens a fresh store; nil when this backend is skipped on purpose.
    func open() async throws -> Opened? {
        let logger = Logger(label: "test.store")
        switch self {
        case .sqlite:
            let directory = try TemporaryDirectory(prefix: "troncal-store")
            let store = try await openStore(.sqlite(path: directory.url.appendingPathComponent("test.sqlite").path), logger: logger)
            return Opened(store: store, directory: directory)
        case .postgres:
            guard let url = ProcessInfo.processInfo.environment["TRONCAL_TEST_POSTGRES_URL"], !url.isEmpty else {
                if Self.skipPostgres { return nil }
                throw StoreError(.invalidConfiguration, "TRONCAL_TEST_POSTGRES_URL is not set: run the tests through scripts/test (or set TRONCAL_TEST_SKIP_POSTGRES=1)")
            }
            let store = try await openStore(.postgres(try PostgresConfiguration(url: url)), logger: logger)
            return Opened(store: store, directory: nil)
        }
    }
}

/// A table name unique to one test, so parallel tests on the shared PostgreSQL database never collide.
func uniqueName(_ prefix: String) -> String {
    "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
}
