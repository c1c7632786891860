import Foundation
import Logging
import Metrics
import ServiceLifecycle
import TroncalRuntime
import TroncalVault

/// Every minute: how old each source's newest backup is and how old its last passed drill is, by the backup service's
/// own clock (`troncal_backup_age_seconds{source}`, `troncal_backup_drill_age_seconds{source}`; a source never backed
/// up or drilled counts from the service's start), which the monitor's BackupStale (26 h) and BackupDrillStale (8 days)
/// rules watch. With `backup.drillPrivateKeyFile` set it also drills each database source's newest backup every
/// `backup.drillIntervalDays`.
struct BackupWatch: Service {
    let config: SiteConfig
    let vault: Vault
    let keys: URL
    let work: URL
    let drillKey: URL?
    let drillInterval: TimeInterval
    let logger: Logger

    func run() async throws {
        let started = Date()
        while !Task.isCancelledOrShuttingDown {
            let now = Date()
            let backups = vault.list()
            let databases = DatabaseBackups.sources(config)
            var watched = ["site-config"] + databases
            if config.store.backend == "postgres" && config.backup.postgresWAL {
                watched += [PostgresArchive.baseSource(config), PostgresArchive.walSource(config)]
            }
            for source in watched {
                let newest = backups.last { $0.source == source }?.createdAt ?? started
                Gauge(label: "troncal_backup_age_seconds", dimensions: [("source", source)]).record(max(0, now.timeIntervalSince(newest)))
            }
            var drills = DatabaseBackup.drills(work: work)
            if let drillKey {
                for source in databases {
                    let last = drills.last { $0.source == source }?.at ?? .distantPast
                    guard now.timeIntervalSince(last) >= drillInterval, let newest = backups.last(where: { $0.source == source }) else { continue }
                    if let result = await drill(newest.id, source: source, key: drillKey) { drills.append(result) }
                }
            }
            for source in databases {
                if let last = drills.last(where: { $0.source == source }) {
                    Gauge(label: "troncal_backup_drill_passed", dimensions: [("source", source)]).record(last.passed ? 1 : 0)
                }
                let passed = drills.last { $0.source == source && $0.passed }?.at ?? started
                Gauge(label: "troncal_backup_drill_age_seconds", dimensions: [("source", source)]).record(max(0, now.timeIntervalSince(passed)))
            }
            await Task.sleepUnlessShuttingDown(for: .seconds(60))
        }
    }

    private func drill(_ id: String, source: String, key: URL) async -> DatabaseBackup.DrillResult? {
        do {
            let result = try await DatabaseBackup.drill(
                id, vault: vault, restoreKey: try VaultKeys.restorePrivate(key), signingKey: try VaultKeys.signingPublic(keys.appendingPathComponent("signing.pub")),
                postgres: config.store.backend == "postgres" ? config.store.postgres : nil, work: work, logger: logger)
            try DatabaseBackup.record(result, work: work)
            if result.passed {
                logger.info("backup drill passed", metadata: ["backup": "\(id)", "tables": "\(result.tables)", "rows": "\(result.rows)"])
            } else {
                logger.error("backup drill FAILED", metadata: ["backup": "\(id)", "differences": "\(result.differences.joined(separator: "; "))"])
                Counter(label: "troncal_backup_drill_failures_total", dimensions: [("source", source)]).increment()
            }
            return result
        } catch {
            logger.error("backup drill could not run", metadata: ["backup": "\(id)", "reason": "\(error)"])
            Counter(label: "troncal_backup_drill_failures_total", dimensions: [("source", source)]).increment()
            let result = DatabaseBackup.DrillResult(
                backup: id, source: source, at: Date(), passed: false, differences: ["could not run: \(error)"], tables: 0, rows: 0, seconds: 0)
            try? DatabaseBackup.record(result, work: work)
            return result
        }
    }
}
