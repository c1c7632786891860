import Foundation
import Logging
import Metrics
import ServiceLifecycle
import TroncalLink
import TroncalPKI
import TroncalProtocol
import TroncalRuntime
import TroncalStore
import TroncalVault

/// Pulls every database of the site into the store at start and every `backup.databaseIntervalMinutes`: on SQLite each
/// instance of routing, billing, monitor and PBX answers `backup.snapshot` (a consistent copy, in parts, over the
/// backup service's own link connection: the instances hold no credentials to the store and never reach it); on
/// PostgreSQL the site's database is dumped with `pg_dump` (custom format) from an exported snapshot whose figures are
/// measured in the same transaction. Each backup records its figures for drills; each source is pruned by retention.
struct DatabaseBackups: Service {
    let config: SiteConfig
    let vault: Vault
    let keys: URL
    let work: URL
    let credentials: SiteCA.Credentials
    let interval: Duration
    let policy: RetentionPolicy
    let logger: Logger

    /// Roles whose instances keep a database.
    static let roles: [Role] = [.routing, .billing, .monitor, .pbx]

    /// The sources this site's databases are backed up as: each SQLite instance's name, or `postgres-<database>`.
    static func sources(_ config: SiteConfig) -> [String] {
        if config.store.backend == "postgres" { return ["postgres-" + config.store.postgres.database] }
        return roles.flatMap { config.instances(of: $0).map(\.name) }
    }

    /// Each source on its own schedule: after a success the next is one interval later; after a failure (an instance not
    /// up yet at `troncal up`, a link down) it is tried again after 30 s, doubling up to the interval.
    func run() async throws {
        var lastFailure: [String: String] = [:]
        var due: [String: ContinuousClock.Instant] = [:]
        var retry: [String: Duration] = [:]
        while !Task.isCancelledOrShuttingDown {
            for source in Self.sources(config) where (due[source] ?? .now) <= .now {
                guard !Task.isCancelledOrShuttingDown else { break }
                do {
                    let manifest = try await backUp(source, at: Date())
                    lastFailure[source] = nil
                    retry[source] = nil
                    due[source] = .now + interval
                    vault.prune(source, policy: policy, logger: logger)
                    logger.info("database backed up", metadata: [
                        "source": "\(source)", "backup": "\(manifest.id)", "bytes": "\(manifest.plainBytes)", "chunks": "\(manifest.chunks.count)",
                    ])
                    Gauge(label: "troncal_backup_last_success_timestamp_seconds", dimensions: [("source", source)])
                        .record(manifest.createdAt.timeIntervalSince1970)
                    Counter(label: "troncal_backup_bytes_total", dimensions: [("source", source)]).increment(by: manifest.plainBytes)
                } catch {
                    let delay = min(retry[source].map { $0 * 2 } ?? .seconds(30), interval)
                    retry[source] = delay
                    due[source] = .now + delay
                    let reason = "\(error)"
                    if reason != lastFailure[source] {
                        logger.error("database not backed up; tried again later", metadata: [
                            "source": "\(source)", "reason": "\(reason)", "retry-in": "\(delay)",
                        ])
                    }
                    lastFailure[source] = reason
                    Counter(label: "troncal_backup_failures_total", dimensions: [("source", source)]).increment()
                }
            }
            let next = due.values.min() ?? (.now + interval)
            await Task.sleepUnlessShuttingDown(for: max(.seconds(1), min(next - .now, .seconds(60))))
        }
    }

    /// Backs up one source now.
    func backUp(_ source: String, at now: Date) async throws -> VaultManifest {
        let restore: ServiceKeys
        do {
            restore = try .init(keys: keys)
        } catch {
            throw VaultError("\(error) (make the keys with `troncal backup keys init`)")
        }
        let id = source + "-" + BackupNames.stamp(now)
        do {
            if config.store.backend == "postgres" {
                return try await dumpPostgres(id: id, source: source, keys: restore, at: now)
            }
            guard let instance = config.instance(named: source) else { throw VaultError("no instance named \(source) in site.json") }
            return try await pullSnapshot(id: id, instance: instance, keys: restore, at: now)
        } catch {
            // Whatever was written of this backup has no manifest: remove it, it is not a backup.
            // (Only an incomplete one: a complete backup of the same name, made the same second, is kept.)
            vault.removeIncomplete(id)
            throw error
        }
    }

    /// `backup.snapshot` from one instance, part after part straight into the store (never in clear on this host).
    private func pullSnapshot(id: String, instance: InstanceSettings, keys: ServiceKeys, at now: Date) async throws -> VaultManifest {
        let client = try LinkClient(
            role: instance.role, endpoints: [LinkEndpoint(host: instance.host, port: instance.linkPort)], credentials: credentials, logger: logger,
            maximumFrameLength: config.link.maximumFrameBytes)
        do {
            let manifest = try await pull(id: id, instance: instance, client: client, keys: keys, at: now)
            await client.close()
            return manifest
        } catch {
            await client.close()
            throw error
        }
    }

    private func pull(id: String, instance: InstanceSettings, client: LinkClient, keys: ServiceKeys, at now: Date) async throws -> VaultManifest {
        let partBytes = max(4096, (config.link.maximumFrameBytes - 16_384) / 4 * 3)
        // The copy of a large database takes a while: the first request waits up to 15 minutes.
        let first = try await client.request(BackupSnapshotRequest(maximumBytes: partBytes), timeout: .seconds(900))
        // The next part is asked for as soon as a part arrives, so it crosses the link while this one is encrypted and
        // written.
        var waiting: BackupSnapshotPart? = first
        var upcoming: Task<BackupSnapshotPart, any Error>?
        var offset: Int64 = 0
        var finished = false
        let manifest: VaultManifest
        do {
            manifest = try await vault.write(
                id: id, source: instance.name, schemaVersion: first.figures.schemaVersion,
                metadata: [
                    DatabaseBackup.formatKey: "sqlite", DatabaseBackup.figuresKey: DatabaseBackup.encode(first.figures), "instance": instance.name,
                    "service": first.service,
                ],
                restoreKey: keys.restore, signingKey: keys.signing, at: now
            ) {
                guard !finished else { return nil }
                let part: BackupSnapshotPart
                if let arrived = waiting {
                    part = arrived
                    waiting = nil
                } else if let upcoming {
                    part = try await upcoming.value
                } else {
                    return nil
                }
                guard part.offset == offset, part.snapshot == first.snapshot else {
                    throw VaultError("\(instance.name) sent part at \(part.offset), expected \(offset)")
                }
                offset += Int64(part.data.count)
                if part.last {
                    finished = true
                    return part.data.isEmpty ? nil : part.data
                }
                guard !part.data.isEmpty else { throw VaultError("\(instance.name) sent an empty part before the end") }
                let request = BackupSnapshotRequest(snapshot: first.snapshot, offset: offset, maximumBytes: partBytes)
                upcoming = Task { try await client.request(request, timeout: .seconds(120)) }
                return part.data
            }
        } catch {
            upcoming?.cancel()
            throw error
        }
        guard Int64(manifest.plainBytes) == first.totalBytes, manifest.plainSHA256 == first.sha256 else {
            throw VaultError("\(instance.name)'s snapshot arrived as \(manifest.plainBytes) bytes with another SHA-256 than it announced")
        }
        return manifest
    }

    /// `pg_dump -Fc` of the site's database from a snapshot exported by a REPEATABLE READ transaction in which the
    /// figures are measured: the dump and its figures describe the same moment while services keep writing.
    private func dumpPostgres(id: String, source: String, keys: ServiceKeys, at now: Date) async throws -> VaultManifest {
        let postgres = config.store.postgres
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let dump = work.appendingPathComponent("dump-\(RandomID.uuidString())")
        defer { try? FileManager.default.removeItem(at: dump) }
        let pgDump = try DatabaseBackup.tool("pg_dump")
        let store = try await openStore(.postgres(postgres.configuration(database: postgres.database)), logger: logger)
        let figures: DatabaseFigures
        do {
            figures = try await store.transaction { transaction in
                try await transaction.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                let snapshot = try await transaction.query("SELECT pg_export_snapshot() AS snapshot").first?.string("snapshot") ?? ""
                let figures = try await DatabaseFigures.measure(transaction)
                let (arguments, environment) = DatabaseBackup.connection(postgres, database: postgres.database)
                try await DatabaseBackup.run(
                    pgDump, arguments + ["--format=custom", "--snapshot=\(snapshot)", "--no-owner", "--file=\(dump.path)"], environment: environment)
                return figures
            }
            try await store.close()
        } catch {
            try? await store.close()
            throw error
        }
        return try vault.write(
            id: id, source: source, schemaVersion: figures.schemaVersion,
            metadata: [
                DatabaseBackup.formatKey: "postgres", DatabaseBackup.figuresKey: DatabaseBackup.encode(figures), "database": postgres.database,
            ],
            file: dump, restoreKey: keys.restore, signingKey: keys.signing, at: now)
    }

}

extension Vault {
    /// Removes the backups of `source` that the retention rule does not keep (the store's side only).
    func prune(_ source: String, policy: RetentionPolicy, logger: Logger) {
        let backups = list().filter { $0.source == source }
        let kept = policy.keep(backups.map { ($0.id, $0.createdAt) })
        for old in backups where !kept.contains(old.id) {
            do {
                try remove(old.id)
                logger.info("backup pruned by retention", metadata: ["backup": "\(old.id)"])
            } catch {
                logger.error("backup could not be pruned", metadata: ["backup": "\(old.id)", "reason": "\(error)"])
            }
        }
    }
}

enum BackupNames {
    /// A backup's time in its name: `20261204T091500Z`-like (UTC, no separators).
    static func stamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: false).dateSeparator(.omitted).timeSeparator(.omitted))
    }
}
