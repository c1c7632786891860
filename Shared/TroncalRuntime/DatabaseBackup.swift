public import Foundation
public import Logging
public import TroncalProtocol
import TroncalStore
public import TroncalVault

/// What the backup service and `troncal backup drill|restore` share: the PostgreSQL tools, and the drill (a backup
/// restored into a scratch database and measured against the figures its manifest recorded).
public enum DatabaseBackup {
    /// The manifest metadata key holding the source's ``DatabaseFigures`` (JSON).
    public static let figuresKey = "figures"
    /// `sqlite` (a copy of one instance's database file) or `postgres` (a `pg_dump` custom-format archive).
    public static let formatKey = "format"

    /// The figures a backup recorded, if it is a database backup.
    public static func figures(of manifest: VaultManifest) -> DatabaseFigures? {
        manifest.metadata[figuresKey].flatMap { try? JSONDecoder().decode(DatabaseFigures.self, from: Data($0.utf8)) }
    }

    public static func encode(_ figures: DatabaseFigures) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(figures)) ?? Data("{}".utf8), as: UTF8.self)
    }

    // MARK: - PostgreSQL tools

    /// A PostgreSQL client program (`pg_dump`, `pg_restore`): on the PATH, else the newest under /usr/lib/postgresql.
    public static func tool(_ name: String) throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).compactMap(Int.init).sorted(by: >)
        for version in versions {
            let candidate = URL(fileURLWithPath: "/usr/lib/postgresql/\(version)/bin/\(name)")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw VaultError("\(name) not found (install Debian's postgresql-client)")
    }

    /// The connection options every PostgreSQL tool takes, for `settings` and `database`; the password goes in the
    /// environment (`PGPASSWORD`), never on the command line.
    public static func connection(_ settings: PostgresSettings, database: String) -> (arguments: [String], environment: [String: String]) {
        var environment = ProcessInfo.processInfo.environment
        if !settings.password.isEmpty { environment["PGPASSWORD"] = settings.password }
        if settings.unixSocketPath.isEmpty, let servers = try? settings.servers(), servers.count > 1 {
            // A replicated cluster: libpq tries each server and keeps the primary (PostgreSQL 14 and later).
            environment["PGTARGETSESSIONATTRS"] = "read-write"
            return ([
                "-h", servers.map(\.host).joined(separator: ","), "-p", servers.map { "\($0.port)" }.joined(separator: ","),
                "-U", settings.user, "-d", database,
            ], environment)
        }
        let host = settings.unixSocketPath.isEmpty ? settings.host : URL(fileURLWithPath: settings.unixSocketPath).deletingLastPathComponent().path
        return (["-h", host, "-p", "\(settings.port)", "-U", settings.user, "-d", database], environment)
    }

    /// Runs a program to its end without blocking a thread; its standard error is returned in the error if it fails.
    public static func run(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil) async throws {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        let errors = FileManager.default.temporaryDirectory.appendingPathComponent("troncal-tool-\(RandomID.uuidString()).err")
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errors) }
        let handle = try FileHandle(forWritingTo: errors)
        defer { try? handle.close() }
        process.standardError = handle
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.runWithDefaultSignals()
        while process.isRunning {
            if Task.isCancelled {
                process.terminate()
                process.waitUntilExit()
                throw CancellationError()
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            throw VaultError("\(executable.lastPathComponent) failed (exit \(process.terminationStatus)): \(text.trimmingCharacters(in: .whitespacesAndNewlines).suffix(800))")
        }
    }

    // MARK: - Drills

    /// The outcome of one drill.
    public struct DrillResult: Sendable, Codable {
        public var backup: String
        public var source: String
        public var at: Date
        public var passed: Bool
        public var differences: [String]
        public var tables: Int
        public var rows: Int64
        public var seconds: Double

        public init(backup: String, source: String, at: Date, passed: Bool, differences: [String], tables: Int, rows: Int64, seconds: Double) {
            self.backup = backup
            self.source = source
            self.at = at
            self.passed = passed
            self.differences = differences
            self.tables = tables
            self.rows = rows
            self.seconds = seconds
        }
    }

    /// The formats a drill restores and compares (WAL segments and base backups carry no figures).
    public static let drillableFormats: Set<String> = ["sqlite", "postgres"]

    /// Restores backup `id` into a scratch database (an SQLite file in `work`, or a new PostgreSQL database on the
    /// `postgres` server, dropped after) and compares its schema versions, row counts and checksums with what the
    /// manifest recorded. Throws when the backup cannot be restored at all (bad chunk, wrong key).
    public static func drill(
        _ id: String, vault: Vault, restoreKey: VaultKeys.RestorePrivateKey, signingKey: VaultKeys.SigningPublicKey, postgres: PostgresSettings?,
        work: URL, logger: Logger
    ) async throws -> DrillResult {
        let started = ContinuousClock.now
        let manifest = try vault.verify(id, signingKey: signingKey)
        guard let recorded = figures(of: manifest) else { throw VaultError("backup \(id) is not a database backup (no figures recorded)") }
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let file = work.appendingPathComponent("drill-\(RandomID.uuidString())")
        defer {
            for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: file.path + suffix) }
        }
        try vault.restore(id, restoreKey: restoreKey, signingKey: signingKey, to: file)
        let restored: DatabaseFigures
        switch manifest.metadata[formatKey] {
        case "sqlite":
            restored = try await DatabaseFigures.measure(.sqlite(path: file.path), logger: logger)
        case "postgres":
            guard let postgres else { throw VaultError("backup \(id) is a PostgreSQL dump: a drill needs a PostgreSQL server (store.postgres)") }
            restored = try await drillPostgres(file, postgres: postgres, logger: logger)
        default:
            throw VaultError("backup \(id): unknown database format '\(manifest.metadata[formatKey] ?? "")'")
        }
        let differences = recorded.differences(from: restored)
        return DrillResult(
            backup: id, source: manifest.source, at: Date(), passed: differences.isEmpty, differences: differences, tables: restored.tables.count,
            rows: restored.tables.reduce(0) { $0 + $1.rows }, seconds: (ContinuousClock.now - started).seconds)
    }

    /// `pg_restore` into a new scratch database, measured, then dropped.
    static func drillPostgres(_ archive: URL, postgres: PostgresSettings, logger: Logger) async throws -> DatabaseFigures {
        let scratch = "troncal_drill_" + RandomID.uuidString().lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let admin = try await openStore(.postgres(postgres.configuration(database: postgres.database)), logger: logger)
        do {
            try await admin.execute("CREATE DATABASE \(scratch)")
        } catch {
            try? await admin.close()
            throw error
        }
        do {
            let (arguments, environment) = connection(postgres, database: String(scratch))
            try await run(try tool("pg_restore"), arguments + ["--no-owner", "--exit-on-error", archive.path], environment: environment)
            let figures = try await DatabaseFigures.measure(.postgres(postgres.configuration(database: String(scratch))), logger: logger)
            try await admin.execute("DROP DATABASE \(scratch)")
            try? await admin.close()
            return figures
        } catch {
            try? await admin.execute("DROP DATABASE IF EXISTS \(scratch)")
            try? await admin.close()
            throw error
        }
    }
}

extension DatabaseBackup {
    /// The drill log: one JSON line per drill, by the service's scheduled drills and `troncal backup drill` alike.
    public static func drillLog(_ work: URL) -> URL { work.appendingPathComponent("drills.jsonl") }

    public static func record(_ result: DrillResult, work: URL) throws {
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = .sortedKeys
        var line = try encoder.encode(result)
        line.append(0x0a)
        let file = drillLog(work)
        if !FileManager.default.fileExists(atPath: file.path) { _ = FileManager.default.createFile(atPath: file.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: file)
        defer { try? handle.close() }
        _ = try handle.seekToEnd()
        try handle.write(contentsOf: line)
        try handle.synchronize()
    }

    /// Every drill recorded, oldest first; lines that cannot be read are skipped.
    public static func drills(work: URL) -> [DrillResult] {
        guard let text = try? String(contentsOf: drillLog(work), encoding: .utf8) else { return [] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return text.split(separator: "\n").compactMap { try? decoder.decode(DrillResult.self, from: Data($0.utf8)) }
    }
}
