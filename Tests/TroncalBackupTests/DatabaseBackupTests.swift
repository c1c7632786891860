import Foundation
import Logging
import Synchronization
import Testing
import TestSupport
import TroncalLink
import TroncalPKI
import TroncalProtocol
import TroncalRuntime
import TroncalStore
import TroncalVault

/// Databases backed up while in use: SQLite instances pulled over the link (`backup.snapshot`), PostgreSQL dumped with
/// `pg_dump`; drills that restore into scratch databases and compare counts and checksums; a restore into a stopped
/// instance that removes its stale -wal and -shm; the store's files out of reach of a service's account.
@Suite(.serialized, .startsProcesses) struct DatabaseBackupTests {
    static let binaries = troncalBinaryDirectory()

    /// A one-box site in a temporary directory with keys made; instances started by name.
    final class Site: @unchecked Sendable {
        let directory: TemporaryDirectory
        let offset: Int
        var config: SiteConfig
        let privateKey: URL
        var processes: [String: ChildProcess] = [:]

        init(_ configure: (inout SiteConfig) -> Void = { _ in }) async throws {
            directory = try TemporaryDirectory(prefix: "troncal-db-backup")
            offset = await freePortOffset()
            var config = SiteConfig().shiftingPorts(by: offset)
            config.site = "db-backup"
            configure(&config)
            self.config = config
            privateKey = directory.url.appendingPathComponent("offline/restore-key.private")
            try ConfigLoader.encode(config).write(to: directory.url.appendingPathComponent("site.json"))
            let pki = try await troncal(["pki", "init", "--data-dir", directory.url.path])
            guard pki.status == 0 else { throw VaultError("pki init: \(pki.output)") }
            let keys = try await troncal(["backup", "keys", "init", "--data-dir", directory.url.path, "--private-key-out", privateKey.path])
            guard keys.status == 0 else { throw VaultError("keys init: \(keys.output)") }
        }

        func troncal(_ arguments: [String]) async throws -> (status: Int32, output: String) {
            try await ChildProcess.run(DatabaseBackupTests.binaries.appendingPathComponent("troncal"), arguments, timeout: .seconds(120))
        }

        func backup(_ arguments: [String]) async throws -> (status: Int32, output: String) {
            try await troncal(["backup"] + arguments + ["--data-dir", directory.url.path])
        }

        /// Starts an instance and waits until its admin port answers /health.
        func start(_ name: String) async throws {
            let instance = try #require(config.instance(named: name))
            let process = try ChildProcess(
                DatabaseBackupTests.binaries.appendingPathComponent("troncal-\(instance.role.rawValue)"),
                ["--config", directory.url.appendingPathComponent("site.json").path, "--instance", name],
                output: directory.url.appendingPathComponent("\(name)-\(processes.count).log"))
            processes[name] = process
            let up = await eventually(timeout: .seconds(30)) { (try? await httpGet(port: instance.adminPort, path: "/health")) != nil }
            guard up else { throw VaultError("\(name) did not start:\n\(process.outputText.suffix(2000))") }
        }

        func stop(_ name: String) async {
            await processes[name]?.stop()
            processes[name] = nil
        }

        /// Waits until `troncal backup list` satisfies `done`; whether it did, and the last listing.
        func waitListed(timeout: Duration = .seconds(90), _ done: @escaping @Sendable (String) -> Bool) async -> (Bool, String) {
            let last = Mutex("")
            let ok = await eventually(timeout: timeout, interval: .milliseconds(300)) {
                let listed = (try? await self.backup(["list"]))?.output ?? ""
                last.withLock { $0 = listed }
                return done(listed)
            }
            return (ok, last.withLock { $0 })
        }

        func stopAll() async {
            for name in processes.keys { await stop(name) }
        }

        func database(_ instance: String) -> URL {
            directory.url.appendingPathComponent(config.dataDirectory).appendingPathComponent("db/\(instance).sqlite")
        }

        var store: URL { directory.url.appendingPathComponent("backup-store") }

        var logs: String {
            processes.map { "--- \($0.key)\n\($0.value.outputText.suffix(2500))" }.joined(separator: "\n")
        }

        func remove() {
            for process in processes.values { process.terminateNow(within: 5) }
            releasePortOffset(offset)
            if let keep = ProcessInfo.processInfo.environment["TRONCAL_KEEP_TEST_FILES"], !keep.isEmpty {
                try? FileManager.default.copyItem(at: directory.url, to: URL(fileURLWithPath: keep).appendingPathComponent(directory.url.lastPathComponent))
            }
            directory.remove()
        }
    }

    /// Writes CDR rows (call ids `marker-N`) into billing's database until cancelled; returns how many it wrote.
    static func writeCDRs(into store: any SQLStore) async -> Int {
        var written = 0
        while !Task.isCancelled {
            let id = "marker-\(written)"
            let now = "2026-12-04T10:00:00Z"
            do {
                try await store.execute(
                    """
                    INSERT INTO billing_cdrs (id, call_id, customer, caller, callee, carrier, trunk, setup_at, answer_at, end_at, duration_ms,
                    billed_seconds, disconnect_status, disconnect_by, currency, sell_micros, buy_micros, margin_micros, rated, rate_prefix, note,
                    mos, summary, stored_at)
                    VALUES ($1, $2, 'acme', '+34911000001', '+34911000002', 'carrier-a', 'main', $3, $3, $3, 60000, 60, 200, 'caller', 'EUR',
                    10000, 5000, 5000, 1, '34', '', 4.2, '{}', $3)
                    """, [.text(id), .text(id), .text(now)])
                written += 1
            } catch {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        return written
    }

    /// Encrypted: `grep -r` finds a CDR call id that is in the backups nowhere in the store (exit status 1: no match).
    static func expectNotInClear(_ text: String, in site: Site) async throws {
        let (status, output) = try await ChildProcess.run(URL(fileURLWithPath: "/bin/grep"), ["-r", "-l", "-a", text, site.store.path])
        // The backup service may be writing meanwhile: a temporary chunk file that vanished under grep is an error
        // (status 2), not a match; any line but grep's own complaints would be one.
        let matches = output.split(separator: "\n").filter { !$0.hasPrefix("/bin/grep:") && !$0.hasPrefix("grep:") }
        #expect(status == 1 || (status == 2 && matches.isEmpty), "grep found \(text) in clear: \(output)")
    }

    static func figures(_ site: Site, source: String) async throws -> (id: String, figures: DatabaseFigures) {
        let (status, output) = try await site.backup(["list", "--json"])
        #expect(status == 0, "\(output)")
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let manifests = try decoder.decode([VaultManifest].self, from: Data(output.utf8))
        let manifest = try #require(manifests.last { $0.source == source }, "no backup of \(source): \(output)")
        return (manifest.id, try #require(DatabaseBackup.figures(of: manifest)))
    }

    @Test func sqliteInstancesAreBackedUpOverTheLinkWhileInUseDrilledAndRestoredWithoutStaleWALFiles() async throws {
        let site = try await Site()
        defer { site.remove() }
        try await site.start("billing-1")
        try await site.start("routing-1")
        try await site.start("pbx-1")

        // CDRs written into billing's database (a second connection, as the service's own) while the backup pulls it.
        let billing = try await openStore(.sqlite(path: site.database("billing-1").path), logger: Logger(label: "test.writer"))
        let writer = Task { await Self.writeCDRs(into: billing) }
        let rows = { @Sendable in ((try? await billing.query("SELECT count(*) AS n FROM billing_cdrs"))?.first.flatMap { try? $0.int("n") } ?? 0) }
        #expect(await eventually(timeout: .seconds(60)) { await rows() > 0 })
        let beforeBackup = await rows()
        try await site.start("backup-1")
        let (backedUp, listed) = await site.waitListed(timeout: .seconds(90)) { $0.contains("  billing-1  ") && $0.contains("  routing-1  ") && $0.contains("  pbx-1  ") }
        let written = await { writer.cancel(); return await writer.value }()
        try await billing.close()
        #expect(backedUp, "\(listed)\n\(site.logs)")
        // Writes went on while the backup ran (how many depends on the machine's load).
        #expect(Int64(written) > beforeBackup, "\(written) rows written, \(beforeBackup) before the backup started")

        // Only the backup role may ask for a snapshot: billing's own credentials are refused by routing.
        let ca = try SiteCA.open(site.directory.url.appendingPathComponent(site.config.pkiDirectory))
        let routing = try #require(site.config.instance(named: "routing-1"))
        let intruder = try LinkClient(
            role: .routing, endpoints: [LinkEndpoint(host: routing.host, port: routing.linkPort)],
            credentials: ca.credentials(role: .billing, instance: "billing-1"), logger: Logger(label: "test.intruder"))
        do {
            _ = try await intruder.request(BackupSnapshotRequest(maximumBytes: 65_536), timeout: .seconds(30))
            Issue.record("billing was given routing's database")
        } catch {
            #expect(error.remote?.code == .forbidden, "\(error)")
        }
        await intruder.close()

        // The drill restores each into a scratch file: tables, rows and checksums as recorded.
        let drill = try await site.backup(["drill", "--private-key", site.privateKey.path])
        #expect(drill.status == 0, "\(drill.output)")
        for instance in ["billing-1", "routing-1", "pbx-1"] { #expect(drill.output.contains("passed  \(instance)-"), "\(drill.output)") }
        let (id, recorded) = try await Self.figures(site, source: "billing-1")
        let cdrs = try #require(recorded.tables.first { $0.name == "billing_cdrs" })
        #expect(cdrs.rows > 0 && cdrs.rows <= Int64(written), "\(cdrs.rows) of \(written)")
        #expect(recorded.schemaVersions["billing"] ?? 0 >= 1, "\(recorded.schemaVersions)")
        try await Self.expectNotInClear("marker-1", in: site)

        // Restore: refused while billing runs; then, stopped and with stale -wal and -shm beside its file, the backup
        // replaces the database, the stale files are gone, and billing starts on the rows the backup holds.
        let refused = try await site.backup(["restore", id, "--private-key", site.privateKey.path, "--instance", "billing-1"])
        #expect(refused.status != 0 && refused.output.contains("is running"), "\(refused.output)")
        await site.stop("billing-1")
        let database = site.database("billing-1")
        for suffix in ["-wal", "-shm"] { try Data(repeating: 0x5a, count: 32_768).write(to: URL(fileURLWithPath: database.path + suffix)) }
        let restored = try await site.backup(["restore", id, "--private-key", site.privateKey.path, "--instance", "billing-1"])
        #expect(restored.status == 0, "\(restored.output)")
        for suffix in ["-wal", "-shm"] { #expect(!FileManager.default.fileExists(atPath: database.path + suffix), "\(suffix) left beside the restored database") }
        let check = try await openStore(.sqlite(path: database.path), logger: Logger(label: "test.check"))
        let count = try await check.query("SELECT count(*) AS n FROM billing_cdrs").first?.int("n")
        try await check.close()
        #expect(count == cdrs.rows)
        try await site.start("billing-1")
        await site.stop("backup-1")
    }

    /// A site whose store is `database` on the test cluster.
    static func postgresSite(_ database: TestPostgresDatabase, _ configure: @escaping (inout SiteConfig) -> Void = { _ in }) async throws -> Site {
        let url = try #require(database.components)
        return try await Site { config in
            config.store.backend = "postgres"
            config.store.postgres.host = url.host ?? "127.0.0.1"
            config.store.postgres.port = url.port ?? 5432
            config.store.postgres.user = url.user ?? "postgres"
            config.store.postgres.password = url.password ?? ""
            config.store.postgres.database = database.name
            configure(&config)
        }
    }

    /// Drops the backup service's replication slot for `database` (it would keep the cluster's WAL forever).
    static func dropSlot(_ database: TestPostgresDatabase) async {
        guard let store = try? await openStore(.postgres(try PostgresConfiguration(url: database.url)), logger: Logger(label: "test.db")) else { return }
        _ = try? await store.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", [.text("troncal_backup_\(database.name)")])
        try? await store.close()
    }

    @Test func billingOnPostgreSQLIsDumpedWhileCDRsAreWrittenAndTheDrillMatchesCountsAndChecksums() async throws {
        guard let database = try await TestPostgresDatabase.create(prefix: "backup_src") else { return }
        let site = try await Self.postgresSite(database)
        defer {
            site.remove()
            Task {
                await Self.dropSlot(database)
                await database.drop()
            }
        }
        try await site.start("billing-1")
        let billing = try await openStore(.postgres(try PostgresConfiguration(url: database.url)), logger: Logger(label: "test.writer"))
        let writer = Task { await Self.writeCDRs(into: billing) }
        let rows = { @Sendable in ((try? await billing.query("SELECT count(*) AS n FROM billing_cdrs"))?.first.flatMap { try? $0.int("n") } ?? 0) }
        #expect(await eventually(timeout: .seconds(60)) { await rows() > 0 })
        let beforeBackup = await rows()
        try await site.start("backup-1")
        let source = "postgres-\(database.name)"
        let (backedUp, listed) = await site.waitListed(timeout: .seconds(90)) { $0.contains("  \(source)  ") }
        let written = await { writer.cancel(); return await writer.value }()
        try await billing.close()
        #expect(backedUp, "\(listed)\n\(site.logs)")

        let drill = try await site.backup(["drill", "--private-key", site.privateKey.path])
        #expect(drill.status == 0 && drill.output.contains("passed  \(source)-"), "\(drill.output)\n\(site.logs)")
        let (_, recorded) = try await Self.figures(site, source: source)
        let cdrs = try #require(recorded.tables.first { $0.name == "billing_cdrs" })
        // The dump holds what was written before the backup started, and no more than was ever written.
        #expect(cdrs.rows >= beforeBackup && cdrs.rows > 0 && cdrs.rows <= Int64(written), "\(cdrs.rows) of \(written), \(beforeBackup) before the backup")
        try await Self.expectNotInClear("marker-1", in: site)
        // A damaged figure is caught: the drill compares, it does not just restore.
        var altered = recorded
        altered.tables[0].rows += 1
        #expect(!altered.differences(from: recorded).isEmpty)
        await site.stopAll()
        await Self.dropSlot(database)
        await database.drop()
    }

    @Test(.enabled(if: getuid() == 0, "needs root to run a PostgreSQL server as the postgres account"))
    func aPointInTimeRestoreBetweenTwoMarkerRowsHasTheFirstAndNotTheSecond() async throws {
        guard let database = try await TestPostgresDatabase.create(prefix: "backup_pitr") else { return }
        let bin = try #require(ProcessInfo.processInfo.environment["TRONCAL_PG_BIN"], "scripts/test exports TRONCAL_PG_BIN")
        let site = try await Self.postgresSite(database) { $0.backup.walShipSeconds = 1 }
        let restored = site.directory.url.appendingPathComponent("pitr")
        defer {
            site.remove()
            Task {
                await Self.dropSlot(database)
                await database.drop()
            }
        }
        try await site.start("billing-1")
        try await site.start("backup-1")
        let base = "postgres-\(database.name)-base"
        let (done, listed) = await site.waitListed(timeout: .seconds(90)) { $0.contains("  \(base)  ") }
        #expect(done, "\(listed)\n\(site.logs)")
        let baseID = try #require(listed.split(separator: "\n").first { $0.contains("  \(base)  ") }?.split(separator: " ").first.map(String.init))

        // The first marker, the target time, the second marker; then the segment holding them is completed.
        let store = try await openStore(.postgres(try PostgresConfiguration(url: database.url)), logger: Logger(label: "test.writer"))
        let insert = "INSERT INTO billing_events (id, at, customer, kind, detail) VALUES ($1, '2026-12-04T10:00:00Z', 'acme', 'marker', '')"
        try await store.execute(insert, [.text("pitr-first")])
        let target = try #require(try await store.query("SELECT clock_timestamp()::text AS t").first?.string("t"))
        try await store.execute(insert, [.text("pitr-second")])
        // The segment the switch completes (the one holding both markers). Not pg_current_wal_lsn(): that is the write
        // position, which lags behind the markers when commits do not wait for the disk (synchronous_commit=off).
        let segment = try #require(try await store.query("SELECT pg_walfile_name(pg_switch_wal()) AS s").first?.string("s"))
        try await store.close()
        let (shipped, after) = await site.waitListed(timeout: .seconds(60)) { $0.contains("-wal-\(segment)  ") }
        #expect(shipped, "segment \(segment) never reached the store:\n\(after)\n\(site.logs)")
        await site.stop("backup-1")

        let restore = try await site.backup([
            "restore", baseID, "--private-key", site.privateKey.path, "--pitr-directory", restored.path, "--target-time", target, "--owner", "postgres",
        ])
        #expect(restore.status == 0, "\(restore.output)")
        // The way to the data directory must be open to the postgres account.
        chmod(site.directory.url.path, 0o755)
        // The restored server in the foreground as the postgres account (setpriv execs it: its PID is the server's,
        // stopped by the test even when it fails).
        let port = try PostgresCluster.freePort()
        let server = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/setpriv"),
            ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", "\(bin)/postgres", "-D", restored.path, "-c", "listen_addresses=127.0.0.1",
             "-p", "\(port)", "-c", "unix_socket_directories=\(restored.path)", "-c", "fsync=off", "-c", "max_connections=200"],
            output: site.directory.url.appendingPathComponent("pitr-server.log"))
        defer { server.terminateNow(within: 10) }
        var components = try #require(database.components)
        components.port = port
        let checkURL = try #require(components.string)
        let promoted = await eventually(timeout: .seconds(60), interval: .milliseconds(200)) {
            guard let store = try? await openStore(.postgres(try PostgresConfiguration(url: checkURL)), logger: Logger(label: "test.check")) else { return false }
            let ready = (try? await store.query("SELECT NOT pg_is_in_recovery() AS promoted").first?.bool("promoted")) ?? false
            try? await store.close()
            return ready
        }
        #expect(promoted, "\(server.outputText.suffix(3000))")
        let check = try await openStore(.postgres(try PostgresConfiguration(url: checkURL)), logger: Logger(label: "test.check"))
        let markers = try await check.query("SELECT id FROM billing_events WHERE kind = 'marker' ORDER BY id").map { try $0.string("id") }
        try await check.close()
        #expect(markers == ["pitr-first"], "\(markers)\n\(server.outputText.suffix(3000))")
        await server.stop(signal: SIGINT)
        await site.stopAll()
        await Self.dropSlot(database)
        await database.drop()
    }


    @Test(.enabled(if: getuid() == 0, "needs root to act as another account"))
    func aServiceAccountCannotDeleteOrOverwriteAFileInTheStore() async throws {
        let site = try await Site()
        defer { site.remove() }
        try await site.start("backup-1")
        let (done, listed) = await site.waitListed(timeout: .seconds(30)) { $0.contains("site-config") }
        #expect(done, "\(listed)\n\(site.logs)")
        await site.stop("backup-1")
        // The way to the store is open to everyone (so what stops the account is the store's own permissions).
        chmod(site.directory.url.path, 0o755)
        let folder = try #require(try FileManager.default.contentsOfDirectory(atPath: site.store.path).first { $0.hasPrefix("site-config-") })
        let chunk = site.store.appendingPathComponent(folder).appendingPathComponent("chunk-000000")
        let before = try Data(contentsOf: chunk)
        // A service's account (nobody here): remove, overwrite, rename over, and remove the backup's directory.
        let attempts: [[String]] = [
            ["rm", "-f", chunk.path],
            ["sh", "-c", "echo x > '\(chunk.path)'"],
            ["sh", "-c", "echo x > '\(chunk.path).new' && mv -f '\(chunk.path).new' '\(chunk.path)'"],
            ["rm", "-rf", site.store.appendingPathComponent(folder).path],
        ]
        for attempt in attempts {
            let (status, output) = try await ChildProcess.run(
                URL(fileURLWithPath: "/usr/bin/setpriv"), ["--reuid=65534", "--regid=65534", "--clear-groups", "--"] + attempt)
            #expect(status != 0, "\(attempt) succeeded as nobody: \(output)")
            #expect(output.contains("Permission denied"), "\(attempt): \(output)")
        }
        #expect(try Data(contentsOf: chunk) == before)
        let verified = try await site.backup(["verify"])
        #expect(verified.status == 0, "\(verified.output)")
    }
}
