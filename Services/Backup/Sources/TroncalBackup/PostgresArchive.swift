import Foundation
import Logging
import Metrics
import ServiceLifecycle
import TroncalProtocol
import TroncalRuntime
import TroncalStore
import TroncalVault

/// Point-in-time recovery for a site on PostgreSQL: `pg_receivewal` streams the write-ahead log through a replication
/// slot of the backup service's own (`troncal_backup_<database>`, so nothing is lost while the service is down: the
/// server keeps the WAL until it is received), completed segments are moved into the store (each one a backup of source
/// `postgres-<database>-wal`, then deleted here), and a physical base backup (`pg_basebackup`, tar format, with the WAL
/// it needs) is taken at start when none is recent and every `backup.databaseIntervalMinutes` (source
/// `postgres-<database>-base`). Retention prunes base backups; WAL older than the oldest kept base backup goes with them.
struct PostgresArchive: Service {
    let config: SiteConfig
    let vault: Vault
    let keys: URL
    let work: URL
    let interval: Duration
    let ship: Duration
    let policy: RetentionPolicy
    let logger: Logger

    var postgres: PostgresSettings { config.store.postgres }
    static func walSource(_ config: SiteConfig) -> String { "postgres-\(config.store.postgres.database)-wal" }
    static func baseSource(_ config: SiteConfig) -> String { "postgres-\(config.store.postgres.database)-base" }
    static func slot(_ config: SiteConfig) -> String {
        "troncal_backup_" + String(config.store.postgres.database.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }.prefix(40))
    }
    var walDirectory: URL { work.appendingPathComponent("wal-\(postgres.database)") }

    func run() async throws {
        do {
            try FileManager.default.createDirectory(at: walDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            logger.error("WAL archive not started: cannot create its directory", metadata: ["path": "\(walDirectory.path)", "reason": "\(error)"])
            return
        }
        await withDiscardingTaskGroup { group in
            group.addTask { await receive() }
            group.addTask { await shipLoop() }
            group.addTask { await baseLoop() }
        }
    }

    // MARK: - WAL

    /// Keeps `pg_receivewal` running (restarted with backoff when it exits), stopped at shutdown.
    private func receive() async {
        var delay = Duration.seconds(2)
        var lastFailure: String?
        let (connection, environment) = DatabaseBackup.connection(postgres, database: postgres.database)
        // pg_receivewal takes no database: host, port and user only.
        let arguments = Array(connection.prefix(6))
        while !Task.isCancelledOrShuttingDown {
            do {
                let tool = try DatabaseBackup.tool("pg_receivewal")
                try await DatabaseBackup.run(
                    tool, arguments + ["--slot=\(Self.slot(config))", "--create-slot", "--if-not-exists", "--no-password"], environment: environment)
                let log = work.appendingPathComponent("pg_receivewal.log")
                let process = Process()
                process.executableURL = tool
                process.arguments = arguments + ["--slot=\(Self.slot(config))", "--directory=\(walDirectory.path)", "--no-password", "--no-loop"]
                process.environment = environment
                if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
                let handle = try FileHandle(forWritingTo: log)
                _ = try handle.seekToEnd()
                process.standardError = handle
                process.standardOutput = handle
                process.standardInput = FileHandle.nullDevice
                try process.runWithDefaultSignals()
                logger.info("WAL streaming started", metadata: ["slot": "\(Self.slot(config))", "directory": "\(walDirectory.path)"])
                let started = ContinuousClock.now
                while process.isRunning, !Task.isCancelledOrShuttingDown { try? await Task.sleep(for: .milliseconds(200)) }
                if process.isRunning {
                    // SIGTERM: pg_receivewal flushes what it received and exits.
                    process.terminate()
                    while process.isRunning { try? await Task.sleep(for: .milliseconds(50)) }
                    try? handle.close()
                    return
                }
                try? handle.close()
                if ContinuousClock.now - started > .seconds(60) { delay = .seconds(2) }
                throw VaultError("pg_receivewal exited (\(process.terminationStatus)); see \(log.path)")
            } catch {
                let reason = "\(error)"
                if reason != lastFailure { logger.error("WAL streaming stopped; restarting", metadata: ["reason": "\(reason)", "in": "\(delay)"]) }
                lastFailure = reason
                Counter(label: "troncal_backup_failures_total", dimensions: [("source", Self.walSource(config))]).increment()
                await Task.sleepUnlessShuttingDown(for: delay)
                delay = min(delay * 2, .seconds(60))
            }
        }
    }

    private func shipLoop() async {
        while !Task.isCancelledOrShuttingDown {
            shipCompleted()
            await Task.sleepUnlessShuttingDown(for: ship)
        }
        shipCompleted()
    }

    /// Moves every completed segment (and timeline history file) into the store, oldest first.
    func shipCompleted() {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: walDirectory.path)) ?? []).filter(Self.isCompleted).sorted()
        guard !names.isEmpty else { return }
        let restore: ServiceKeys
        do {
            restore = try .init(keys: keys)
        } catch {
            logger.error("WAL not shipped: no keys", metadata: ["reason": "\(error)"])
            return
        }
        let source = Self.walSource(config)
        for name in names {
            let file = walDirectory.appendingPathComponent(name)
            let id = "\(source)-\(name)"
            // A write of this segment interrupted earlier (crash, full disk) left a folder without a manifest: it is not
            // a backup, and would make this segment "exist already" forever.
            if vault.removeIncomplete(id) {
                logger.warning("an interrupted copy of a WAL segment removed; shipped again", metadata: ["segment": "\(name)"])
            }
            do {
                let manifest = try vault.write(
                    id: id, source: source, schemaVersion: 0, metadata: [DatabaseBackup.formatKey: "postgres-wal", "segment": name], file: file,
                    restoreKey: restore.restore, signingKey: restore.signing)
                Gauge(label: "troncal_backup_last_success_timestamp_seconds", dimensions: [("source", source)])
                    .record(manifest.createdAt.timeIntervalSince1970)
                Counter(label: "troncal_backup_bytes_total", dimensions: [("source", source)]).increment(by: manifest.plainBytes)
            } catch {
                // Already in the store (shipped before a crash, not yet deleted here): verify it is whole, then drop ours.
                guard vault.list().contains(where: { $0.id == id }) else {
                    logger.error("WAL segment not shipped; tried again", metadata: ["segment": "\(name)", "reason": "\(error)"])
                    Counter(label: "troncal_backup_failures_total", dimensions: [("source", source)]).increment()
                    return
                }
            }
            try? FileManager.default.removeItem(at: file)
        }
    }

    /// A WAL segment (24 hex digits) or a timeline history file; `.partial` segments are still being written.
    static func isCompleted(_ name: String) -> Bool {
        let hex = name.allSatisfy { $0.isHexDigit }
        return (name.count == 24 && hex) || (name.hasSuffix(".history") && name.dropLast(8).allSatisfy(\.isHexDigit))
    }

    // MARK: - Base backups

    private func baseLoop() async {
        var lastFailure: String?
        let source = Self.baseSource(config)
        while !Task.isCancelledOrShuttingDown {
            let newest = vault.list().last { $0.source == source }?.createdAt ?? .distantPast
            let due = Date().timeIntervalSince(newest) >= Double(interval.components.seconds) * 0.9
            if due {
                do {
                    let manifest = try await takeBase(at: Date())
                    lastFailure = nil
                    vault.prune(source, policy: policy, logger: logger)
                    pruneWAL()
                    logger.info("PostgreSQL base backup taken", metadata: ["backup": "\(manifest.id)", "bytes": "\(manifest.plainBytes)"])
                    Gauge(label: "troncal_backup_last_success_timestamp_seconds", dimensions: [("source", source)])
                        .record(manifest.createdAt.timeIntervalSince1970)
                    Counter(label: "troncal_backup_bytes_total", dimensions: [("source", source)]).increment(by: manifest.plainBytes)
                } catch {
                    let reason = "\(error)"
                    if reason != lastFailure { logger.error("PostgreSQL base backup failed; tried again next interval", metadata: ["reason": "\(reason)"]) }
                    lastFailure = reason
                    Counter(label: "troncal_backup_failures_total", dimensions: [("source", source)]).increment()
                }
            }
            await Task.sleepUnlessShuttingDown(for: due ? interval : .seconds(60))
        }
    }

    func takeBase(at now: Date) async throws -> VaultManifest {
        let restore = try ServiceKeys(keys: keys)
        let store = try await openStore(.postgres(postgres.configuration(database: postgres.database)), logger: logger)
        let start: String
        do {
            start = try await store.query("SELECT pg_walfile_name(pg_current_wal_lsn()) AS segment").first?.string("segment") ?? ""
            try await store.close()
        } catch {
            try? await store.close()
            throw error
        }
        let folder = work.appendingPathComponent("base-\(RandomID.uuidString())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (connection, environment) = DatabaseBackup.connection(postgres, database: postgres.database)
        try await DatabaseBackup.run(
            try DatabaseBackup.tool("pg_basebackup"),
            Array(connection.prefix(6)) + ["--pgdata=\(folder.path)", "--format=tar", "--wal-method=fetch", "--checkpoint=fast", "--no-password"],
            environment: environment)
        // Tablespaces outside the data directory come as one more tar each (<oid>.tar): not archived here, so a base
        // backup of such a cluster would restore without them. Refused, loudly, rather than kept incomplete.
        let extra = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".tar") && $0 != "base.tar" }
        guard extra.isEmpty else {
            throw VaultError("the cluster has tablespaces outside its data directory (\(extra.sorted().joined(separator: ", "))): base backups of it are not supported; use pg_dump backups only (backup.postgresWAL false)")
        }
        let source = Self.baseSource(config)
        let id = source + "-" + BackupNames.stamp(now)
        do {
            return try vault.write(
                id: id, source: source, schemaVersion: 0,
                metadata: [DatabaseBackup.formatKey: "postgres-base", "startSegment": start, "database": postgres.database],
                file: folder.appendingPathComponent("base.tar"), restoreKey: restore.restore, signingKey: restore.signing, at: now)
        } catch {
            vault.removeIncomplete(id)
            throw error
        }
    }

    /// WAL segments older than the oldest base backup kept are no use to any restore.
    private func pruneWAL() {
        let all = vault.list()
        guard let oldest = all.filter({ $0.source == Self.baseSource(config) }).compactMap({ $0.metadata["startSegment"] }).min() else { return }
        for manifest in all where manifest.source == Self.walSource(config) {
            guard let segment = manifest.metadata["segment"], segment.count == 24, segment.suffix(16) < oldest.suffix(16) else { continue }
            try? vault.remove(manifest.id)
        }
    }
}
