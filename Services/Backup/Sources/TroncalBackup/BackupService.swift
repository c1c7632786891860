public import Foundation
public import Logging
internal import Metrics
public import ServiceLifecycle
public import TroncalLink
public import TroncalProtocol
public import TroncalRuntime
public import TroncalStore
internal import TroncalVault

/// The `backup` service: backups to an isolated store, encrypted to an offline restore key, checksummed and signed
/// (the store's format: `TroncalVault`, docs/backup.md).
///
/// The site's configuration and PKI directory (the CA key included) at start and every `backup.configIntervalMinutes`;
/// every database at start and every `backup.databaseIntervalMinutes` (pulled: `DatabaseBackups`); ages and scheduled
/// drills (`BackupWatch`); each source pruned by the retention rule.
public struct BackupService: TroncalService {
    public static let role = Role.backup
    public static let dependencies: [Role] = []
    public static let migrations: [Migration]? = []

    let context: ServiceContext

    public init(context: ServiceContext) async throws {
        self.context = context
    }

    public func register(_ handlers: inout LinkHandlers) {}

    public var services: [any Service] {
        let config = context.config
        let backup = config.backup
        let vault = Vault(directory: config.resolve(backup.storeDirectory, relativeTo: context.configDirectory))
        let keys = config.resolve(backup.keysDirectory, relativeTo: context.configDirectory)
        let work = config.resolve(backup.workDirectory, relativeTo: context.configDirectory)
        let policy = RetentionPolicy(daily: backup.keepDaily, weekly: backup.keepWeekly, monthly: backup.keepMonthly)
        var archive: [any Service] = []
        if config.store.backend == "postgres" && backup.postgresWAL {
            archive.append(
                PostgresArchive(
                    config: config, vault: vault, keys: keys, work: work, interval: .seconds(backup.databaseIntervalMinutes * 60),
                    ship: .seconds(backup.walShipSeconds), policy: policy, logger: context.logger))
        }
        return archive + [
            ConfigBackups(
                vault: vault, keys: keys, configDirectory: context.configDirectory,
                pkiDirectory: config.resolve(config.pkiDirectory, relativeTo: context.configDirectory),
                interval: .seconds(backup.configIntervalMinutes * 60), policy: policy, logger: context.logger),
            DatabaseBackups(
                config: config, vault: vault, keys: keys, work: work, credentials: context.credentials,
                interval: .seconds(backup.databaseIntervalMinutes * 60), policy: policy, logger: context.logger),
            BackupWatch(
                config: config, vault: vault, keys: keys, work: work,
                drillKey: backup.drillPrivateKeyFile.isEmpty ? nil : config.resolve(backup.drillPrivateKeyFile, relativeTo: context.configDirectory),
                drillInterval: TimeInterval(backup.drillIntervalDays) * 86_400, logger: context.logger),
        ]
    }
}

/// Backs up `site.json` and the PKI directory as one tar archive (source `site-config`) at start and every interval,
/// then prunes that source's older backups by the retention rule. Without keys it says so (once) and tries again
/// next interval: the service stays up.
struct ConfigBackups: Service {
    let vault: Vault
    let keys: URL
    let configDirectory: URL
    let pkiDirectory: URL
    let interval: Duration
    let policy: RetentionPolicy
    let logger: Logger

    func run() async throws {
        var lastFailure: String?
        while !Task.isCancelledOrShuttingDown {
            do {
                let manifest = try backUp(at: Date())
                lastFailure = nil
                logger.info("site configuration backed up", metadata: [
                    "backup": "\(manifest.id)", "bytes": "\(manifest.plainBytes)", "chunks": "\(manifest.chunks.count)",
                ])
                Gauge(label: "troncal_backup_last_success_timestamp_seconds", dimensions: [("source", "site-config")])
                    .record(manifest.createdAt.timeIntervalSince1970)
                Counter(label: "troncal_backup_bytes_total", dimensions: [("source", "site-config")]).increment(by: manifest.plainBytes)
            } catch {
                let reason = "\(error)"
                if reason != lastFailure {
                    logger.error("site configuration not backed up; tried again next interval", metadata: ["reason": "\(reason)"])
                }
                lastFailure = reason
                Counter(label: "troncal_backup_failures_total", dimensions: [("source", "site-config")]).increment()
            }
            await Task.sleepUnlessShuttingDown(for: interval)
        }
    }

    func backUp(at now: Date) throws -> VaultManifest {
        let restore: ServiceKeys
        do {
            restore = try .init(keys: keys)
        } catch {
            throw VaultError("\(error) (make the keys with `troncal backup keys init`)")
        }
        let archive = FileManager.default.temporaryDirectory.appendingPathComponent("troncal-site-config-\(UUID().uuidString).tar")
        defer { try? FileManager.default.removeItem(at: archive) }
        // tar with an argument list (no shell): site.json from its directory, the PKI directory by its own name.
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
        tar.arguments = [
            "-cf", archive.path, "-C", configDirectory.path, "site.json", "-C", pkiDirectory.deletingLastPathComponent().path,
            pkiDirectory.lastPathComponent,
        ]
        let errors = Pipe()
        tar.standardError = errors
        try tar.runWithDefaultSignals()
        tar.waitUntilExit()
        guard tar.terminationStatus == 0 else {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw VaultError("tar failed (\(tar.terminationStatus)): \(text.prefix(500))")
        }
        let id = "site-config-" + BackupNames.stamp(now)
        let manifest = try vault.write(
            id: id, source: "site-config", schemaVersion: 1, metadata: ["contents": "site.json, \(pkiDirectory.lastPathComponent)/"],
            file: archive, restoreKey: restore.restore, signingKey: restore.signing, at: now)
        vault.prune("site-config", policy: policy, logger: logger)
        return manifest
    }
}

/// The two keys the service holds: the restore public key and its signing key.
struct ServiceKeys {
    let restore: VaultKeys.RestorePublicKey
    let signing: VaultKeys.SigningPrivateKey

    init(keys: URL) throws {
        restore = try VaultKeys.restorePublic(keys.appendingPathComponent("restore.pub"))
        signing = try VaultKeys.signingPrivate(keys.appendingPathComponent("signing.key"))
    }
}
