import Foundation
import Logging
public import TroncalStore

/// Turns the site's `store` settings into an open `SQLStore` for one instance and migrates it.
enum StoreBridge {
    /// SQLite: `dataDirectory/db/<instance>.sqlite` (the directory is created). PostgreSQL: the configured server.
    static func open(_ settings: StoreSettings, dataDirectory: URL, instance: String, logger: Logger) async throws -> any SQLStore {
        switch settings.backend {
        case "postgres":
            return try await openStore(.postgres(settings.postgres.configuration(database: settings.postgres.database)), logger: logger)
        default:
            let directory = dataDirectory.appendingPathComponent("db")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            return try await openStore(.sqlite(path: directory.appendingPathComponent("\(instance).sqlite").path), logger: logger)
        }
    }

    static func migrate(_ store: any SQLStore, service: String, migrations: [Migration], logger: Logger) async throws {
        try await Migrator(service: service, migrations: migrations, logger: logger).migrate(store)
    }
}

extension PostgresSettings {
    /// The connection to `database` on this server, or on the primary of `hosts`.
    public func configuration(database: String) -> PostgresConfiguration {
        PostgresConfiguration(
            host: host, port: port, user: user, password: password.isEmpty ? nil : password, database: database,
            unixSocketPath: unixSocketPath.isEmpty ? nil : unixSocketPath, tls: PostgresTLSMode(rawValue: tls),
            tlsCACertificatePath: tlsCACertificatePath.isEmpty ? nil : tlsCACertificatePath, hosts: (try? servers()) ?? [],
            primaryCheckIntervalMilliseconds: primaryCheckIntervalMilliseconds, failoverWaitSeconds: failoverWaitSeconds)
    }

    /// `hosts` parsed (the configuration check refuses a bad one, naming it).
    public func servers() throws -> [PostgresHost] {
        try hosts.map { try PostgresHost(parsing: $0) }
    }
}
