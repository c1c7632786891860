import ArgumentParser
import Crypto
import Foundation
import Logging
import TroncalProtocol
import TroncalRuntime
import TroncalVault

/// `troncal backup keys init|list|verify|restore`: the backup store's keys, and what can be done with the store itself
/// (on the backup host, where it lives).
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "The backup store: keys, list, verify, restore and drill.",
        subcommands: [BackupKeysCommand.self, BackupListCommand.self, BackupVerifyCommand.self, BackupRestoreCommand.self, BackupDrillCommand.self])
}

struct BackupKeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "keys", abstract: "The backup keys.", subcommands: [BackupKeysInitCommand.self])
}

/// Where the backup service's keys live in a site's data directory.
struct BackupPaths: ParsableArguments {
    @OptionGroup var site: SiteOptions
    @Option(help: "The backup store (default: <data-dir>/backup-store).")
    var store: String?

    var keys: URL { URL(fileURLWithPath: site.dataDir).appendingPathComponent("backup-keys") }
    var restorePublic: URL { keys.appendingPathComponent("restore.pub") }
    var signingPrivate: URL { keys.appendingPathComponent("signing.key") }
    var signingPublic: URL { keys.appendingPathComponent("signing.pub") }
    var vault: Vault { Vault(directory: URL(fileURLWithPath: store ?? URL(fileURLWithPath: site.dataDir).appendingPathComponent("backup-store").path)) }

    func fail(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("troncal: \(message)\n".utf8))
        return ExitCode(1)
    }
}

struct BackupKeysInitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Make the restore key pair and the backup service's signing key; print where the private restore key is, to keep offline.")
    @Option(help: "Where to write the private restore key (default: <data-dir>/restore-key.private). Move it offline.")
    var privateKeyOut: String?
    @OptionGroup var paths: BackupPaths

    func run() async throws {
        let privateOut = URL(fileURLWithPath: privateKeyOut ?? URL(fileURLWithPath: paths.site.dataDir).appendingPathComponent("restore-key.private").path)
        for existing in [paths.restorePublic, paths.signingPrivate, privateOut] where FileManager.default.fileExists(atPath: existing.path) {
            // New keys would leave every existing backup without the key that opens it.
            throw paths.fail("\(existing.path) exists: keys are made once (backups made with them need them)")
        }
        try FileManager.default.createDirectory(at: paths.keys, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: privateOut.deletingLastPathComponent(), withIntermediateDirectories: true)
        let keys = VaultKeys.generate()
        func write(_ text: String, _ url: URL, mode: Int) throws {
            guard FileManager.default.createFile(atPath: url.path, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
                throw paths.fail("cannot write \(url.path)")
            }
        }
        try write(VaultKeys.text(tag: VaultKeys.restorePrivateTag, keys.restorePrivate.rawRepresentation), privateOut, mode: 0o400)
        try write(VaultKeys.text(tag: VaultKeys.restorePublicTag, keys.restorePublic.rawRepresentation), paths.restorePublic, mode: 0o444)
        try write(VaultKeys.text(tag: VaultKeys.signingPrivateTag, keys.signingPrivate.rawRepresentation), paths.signingPrivate, mode: 0o400)
        try write(VaultKeys.text(tag: VaultKeys.signingPublicTag, keys.signingPrivate.publicKey.rawRepresentation), paths.signingPublic, mode: 0o444)
        Output.line("restore public key (the backup service encrypts to it): \(paths.restorePublic.path)")
        Output.line("signing key (the backup service signs manifests with it): \(paths.signingPrivate.path), public half \(paths.signingPublic.path)")
        Output.line("PRIVATE restore key: \(privateOut.path)")
        Output.line("  Move it off this machine now (an offline medium in a safe, and a second copy elsewhere): the backup service")
        Output.line("  never needs it, and without it no backup can be restored or read.")
    }
}

struct BackupListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "The complete backups in the store, oldest first.")
    @Flag(help: "Print JSON.")
    var json = false
    @OptionGroup var paths: BackupPaths

    func run() async throws {
        let manifests = paths.vault.list()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            return Output.line(String(decoding: try encoder.encode(manifests), as: UTF8.self))
        }
        if manifests.isEmpty { Output.line("no backups") }
        for manifest in manifests {
            Output.line("\(manifest.id)  \(manifest.source)  schema \(manifest.schemaVersion)  \(manifest.createdAt.formatted(.iso8601))  \(manifest.plainBytes) bytes in \(manifest.chunks.count) chunks")
        }
    }
}

struct BackupVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check backups without the private key: manifest signatures and every chunk's SHA-256.")
    @Argument(help: "Backups to check (default: all).")
    var ids: [String] = []
    @OptionGroup var paths: BackupPaths

    func run() async throws {
        let signing: Curve25519.Signing.PublicKey
        do { signing = try VaultKeys.signingPublic(paths.signingPublic) } catch { throw paths.fail("\(error)") }
        let names = ids.isEmpty ? paths.vault.list().map(\.id) : ids
        var failures = 0
        for id in names {
            do {
                let manifest = try paths.vault.verify(id, signingKey: signing)
                Output.line("ok  \(id)  \(manifest.chunks.count) chunks")
            } catch {
                failures += 1
                Output.line("BAD \(error)")
            }
        }
        if failures > 0 { throw paths.fail("\(failures) of \(names.count) backups failed verification") }
    }
}

struct BackupRestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Decrypt a verified backup into a file, or back into a stopped instance's SQLite database, or into a PostgreSQL database.",
        discussion: """
            --to PATH writes the backup's bytes (a tar of the configuration, an SQLite file, a pg_dump archive). --instance NAME \
            puts an SQLite backup back as that instance's database (the instance must be stopped; its -wal and -shm files are \
            removed, since they belong to the database being replaced). --postgres-database NAME restores a PostgreSQL dump \
            into that database of the site's server with pg_restore --clean.
            """)
    @Argument(help: "The backup.")
    var id: String
    @Option(help: "The private restore key file.")
    var privateKey: String
    @Option(help: "Where to write the restored bytes.")
    var to: String?
    @Option(help: "The instance whose SQLite database is replaced by the backup (stopped first).")
    var instance: String?
    @Option(help: "The PostgreSQL database (on the site's server) a dump is restored into.")
    var postgresDatabase: String?
    @Option(help: "A new PostgreSQL data directory made from a base backup and the WAL after it (point-in-time recovery).")
    var pitrDirectory: String?
    @Option(help: "With --pitr-directory: recover up to this time (PostgreSQL syntax, e.g. '2026-12-04 10:15:00+00'); default: all WAL.")
    var targetTime: String?
    @Option(help: "With --pitr-directory: the account that will run that server (the files are given to it).")
    var owner: String?
    @OptionGroup var paths: BackupPaths

    func run() async throws {
        guard [to, instance, postgresDatabase, pitrDirectory].compactMap({ $0 }).count == 1 else {
            throw paths.fail("give exactly one of --to, --instance, --postgres-database, --pitr-directory")
        }
        do {
            let key = try VaultKeys.restorePrivate(URL(fileURLWithPath: privateKey))
            let signing = try VaultKeys.signingPublic(paths.signingPublic)
            let vault = paths.vault
            if let to {
                try vault.restore(id, restoreKey: key, signingKey: signing, to: URL(fileURLWithPath: to))
                Output.line("restored \(id) to \(to)")
            } else if let instance {
                let database = try await restoreInstance(instance, vault: vault, key: key, signing: signing)
                Output.line("restored \(id) as \(instance)'s database \(database.path); start the instance again")
            } else if let postgresDatabase {
                try await restorePostgres(postgresDatabase, vault: vault, key: key, signing: signing)
                Output.line("restored \(id) into PostgreSQL database \(postgresDatabase)")
            } else if let pitrDirectory {
                let segments = try await restorePointInTime(URL(fileURLWithPath: pitrDirectory), vault: vault, key: key, signing: signing)
                Output.line("""
                    restored base backup \(id) and \(segments) WAL segments into \(pitrDirectory) \
                    (recovery \(targetTime.map { "to \($0)" } ?? "to the end of the WAL"), then promoted)
                    start it as the postgres account: pg_ctl start -D \(pitrDirectory) -o '-p PORT'
                    """)
            }
        } catch let error as ExitCode {
            throw error
        } catch {
            throw paths.fail("\(error)")
        }
    }

    private func restoreInstance(_ name: String, vault: Vault, key: VaultKeys.RestorePrivateKey, signing: VaultKeys.SigningPublicKey) async throws -> URL {
        let site = SiteDirectory(path: paths.site.dataDir)
        let config = try site.loadConfig()
        guard let instance = config.instance(named: name) else { throw VaultError("no instance named \(name) in \(site.configPath)") }
        guard config.store.backend != "postgres" else { throw VaultError("this site stores in PostgreSQL: use --postgres-database") }
        let manifest = try vault.verify(id, signingKey: signing)
        guard manifest.metadata[DatabaseBackup.formatKey] == "sqlite" else { throw VaultError("backup \(id) is not an SQLite database backup") }
        if manifest.metadata["service"] != instance.role.rawValue {
            throw VaultError("backup \(id) holds a \(manifest.metadata["service"] ?? "?") database; \(name) is \(instance.role.rawValue)")
        }
        switch Self.answers(host: instance.adminHost, port: instance.adminPort) {
        case true?: throw VaultError("\(name) is running (its admin port \(instance.adminPort) answers): stop it first")
        case nil: throw VaultError("cannot tell whether \(name) is running (its admin host \(instance.adminHost) does not resolve): not restored")
        case false?: break
        }
        let database = config.resolve(config.dataDirectory, relativeTo: site.root).appendingPathComponent("db").appendingPathComponent("\(name).sqlite")
        try FileManager.default.createDirectory(at: database.deletingLastPathComponent(), withIntermediateDirectories: true)
        // Restored beside the database, then renamed over it; the old database's -wal and -shm would be replayed
        // into the restored one at the next open, so they go (after the rename, so that a failure leaves the old whole).
        let restored = database.deletingLastPathComponent().appendingPathComponent(".\(name).restoring.sqlite")
        try vault.restore(id, restoreKey: key, signingKey: signing, to: restored)
        // The restored database keeps the old one's owner and mode (the service's account must still open it).
        var old = stat()
        if stat(database.path, &old) == 0 {
            _ = chown(restored.path, old.st_uid, old.st_gid)
            _ = chmod(restored.path, old.st_mode & 0o7777)
        }
        guard rename(restored.path, database.path) == 0 else {
            throw VaultError("cannot put the restored database at \(database.path): \(String(cString: strerror(errno)))")
        }
        for suffix in ["-wal", "-shm", "-journal"] { _ = unlink(database.path + suffix) }
        return database
    }

    private func restorePostgres(_ database: String, vault: Vault, key: VaultKeys.RestorePrivateKey, signing: VaultKeys.SigningPublicKey) async throws {
        let config = try SiteDirectory(path: paths.site.dataDir).loadConfig()
        let manifest = try vault.verify(id, signingKey: signing)
        guard manifest.metadata[DatabaseBackup.formatKey] == "postgres" else { throw VaultError("backup \(id) is not a PostgreSQL dump") }
        let archive = FileManager.default.temporaryDirectory.appendingPathComponent("troncal-restore-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: archive) }
        try vault.restore(id, restoreKey: key, signingKey: signing, to: archive)
        let (arguments, environment) = DatabaseBackup.connection(config.store.postgres, database: database)
        try await DatabaseBackup.run(
            try DatabaseBackup.tool("pg_restore"), arguments + ["--clean", "--if-exists", "--no-owner", "--exit-on-error", archive.path],
            environment: environment)
    }

    /// A data directory from a base backup, the WAL segments from its start on in `<directory>.wal`, and the recovery
    /// settings (restore_command, recovery_target_time, promote) that PostgreSQL reads at its next start. Returns the
    /// number of WAL segments restored.
    private func restorePointInTime(_ directory: URL, vault: Vault, key: VaultKeys.RestorePrivateKey, signing: VaultKeys.SigningPublicKey) async throws -> Int {
        let manifest = try vault.verify(id, signingKey: signing)
        guard manifest.metadata[DatabaseBackup.formatKey] == "postgres-base", let start = manifest.metadata["startSegment"] else {
            throw VaultError("backup \(id) is not a PostgreSQL base backup (source postgres-<database>-base)")
        }
        if let existing = try? FileManager.default.contentsOfDirectory(atPath: directory.path), !existing.isEmpty {
            throw VaultError("\(directory.path) is not empty: a restore never writes over a data directory")
        }
        if let targetTime, targetTime.contains("'") { throw VaultError("--target-time must not contain quotes") }
        let wal = URL(fileURLWithPath: directory.path + ".wal")
        for folder in [directory, wal] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let archive = directory.deletingLastPathComponent().appendingPathComponent(".\(directory.lastPathComponent).base.tar")
        defer { try? FileManager.default.removeItem(at: archive) }
        try vault.restore(id, restoreKey: key, signingKey: signing, to: archive)
        try await DatabaseBackup.run(URL(fileURLWithPath: "/usr/bin/tar"), ["-xf", archive.path, "-C", directory.path])
        let walSource = manifest.source.replacingOccurrences(of: "-base", with: "-wal", options: .backwards)
        var segments = 0
        for backup in vault.list() where backup.source == walSource {
            guard let segment = backup.metadata["segment"] else { continue }
            if segment.count == 24, segment.suffix(16) < start.suffix(16) { continue }
            try vault.restore(backup.id, restoreKey: key, signingKey: signing, to: wal.appendingPathComponent(segment))
            segments += 1
        }
        var settings = "\n# troncal backup restore \(id)\nrestore_command = 'cp \"\(wal.path)/%f\" \"%p\"'\n"
        if let targetTime { settings += "recovery_target_time = '\(targetTime)'\n" }
        settings += "recovery_target_action = 'promote'\n"
        // Debian keeps postgresql.conf (and pg_hba.conf) in /etc/postgresql, outside the data directory: the base
        // backup has none. A minimal one lets the restored cluster start; the operator brings the real settings back.
        let conf = directory.appendingPathComponent("postgresql.conf")
        if !FileManager.default.fileExists(atPath: conf.path) {
            try Data("# written by troncal backup restore: the base backup held no postgresql.conf (Debian keeps it in /etc/postgresql)\nlisten_addresses = 'localhost'\n".utf8).write(to: conf)
            Output.line("note: the base backup held no postgresql.conf (Debian layout): a minimal one was written; copy your settings into \(conf.path)")
        }
        for file in ["pg_hba.conf", "pg_ident.conf"] where !FileManager.default.fileExists(atPath: directory.appendingPathComponent(file).path) {
            let text = file == "pg_hba.conf" ? "local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n" : ""
            try Data(text.utf8).write(to: directory.appendingPathComponent(file))
        }
        let auto = directory.appendingPathComponent("postgresql.auto.conf")
        let existing = (try? String(contentsOf: auto, encoding: .utf8)) ?? ""
        try Data((existing + settings).utf8).write(to: auto)
        _ = FileManager.default.createFile(atPath: directory.appendingPathComponent("recovery.signal").path, contents: Data())
        if let owner {
            try await DatabaseBackup.run(URL(fileURLWithPath: "/bin/chown"), ["-R", "\(owner):", directory.path, wal.path])
        }
        return segments
    }

    /// Whether something accepts TCP connections at host:port (the instance is running).
    /// nil when the host cannot be resolved (then nobody can tell, and a restore refuses).
    static func answers(host: String, port: Int) -> Bool? {
        let target = host == "0.0.0.0" || host.isEmpty ? "127.0.0.1" : host == "::" || host == "[::]" ? "::1" : host
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        let bare = target.hasPrefix("[") && target.hasSuffix("]") ? String(target.dropFirst().dropLast()) : target
        guard getaddrinfo(bare, String(port), &hints, &found) == 0, let first = found else { return nil }
        defer { freeaddrinfo(first) }
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            let fd = socket(current.pointee.ai_family, current.pointee.ai_socktype, current.pointee.ai_protocol)
            if fd >= 0 {
                let connected = connect(fd, current.pointee.ai_addr, current.pointee.ai_addrlen) == 0
                close(fd)
                if connected { return true }
            }
            entry = current.pointee.ai_next
        }
        return false
    }

}

struct BackupDrillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract: "Restore database backups into a scratch database and compare row counts, checksums and schema versions with their manifests.",
        discussion: """
            Without IDs: the newest backup of every database source. SQLite backups are restored into a scratch file, \
            PostgreSQL dumps into a scratch database on the site's server (created and dropped). Each result is added to \
            <data-dir>/backup-work/drills.jsonl, which the backup service reads for the BackupDrillStale alarm. Exits 1 if any \
            drill failed.
            """)
    @Argument(help: "Backups to drill (default: the newest of each database source).")
    var ids: [String] = []
    @Option(help: "The private restore key file.")
    var privateKey: String
    @Flag(help: "One JSON object per drill.")
    var json = false
    @OptionGroup var paths: BackupPaths

    func run() async throws {
        let vault = paths.vault
        let site = SiteDirectory(path: paths.site.dataDir)
        let config = (try? site.loadConfig()) ?? SiteConfig()
        let work = config.resolve(config.backup.workDirectory, relativeTo: site.root)
        var names = ids
        if names.isEmpty {
            var newest: [String: String] = [:]
            // Dumps and database copies only: WAL segments and base backups record no figures to compare with.
            for manifest in vault.list() where DatabaseBackup.drillableFormats.contains(manifest.metadata[DatabaseBackup.formatKey] ?? "") {
                newest[manifest.source] = manifest.id
            }
            names = newest.keys.sorted().compactMap { newest[$0] }
        }
        guard !names.isEmpty else { throw paths.fail("no database backup in \(vault.directory.path)") }
        let key: VaultKeys.RestorePrivateKey
        let signing: VaultKeys.SigningPublicKey
        do {
            key = try VaultKeys.restorePrivate(URL(fileURLWithPath: privateKey))
            signing = try VaultKeys.signingPublic(paths.signingPublic)
        } catch {
            throw paths.fail("\(error)")
        }
        var failures = 0
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        encoder.dateEncodingStrategy = .iso8601
        for id in names {
            let result: DatabaseBackup.DrillResult
            do {
                result = try await DatabaseBackup.drill(
                    id, vault: vault, restoreKey: key, signingKey: signing,
                    postgres: config.store.backend == "postgres" ? config.store.postgres : nil, work: work, logger: Logger(label: "troncal.backup"))
            } catch {
                let source = vault.list().first { $0.id == id }?.source ?? id
                result = .init(backup: id, source: source, at: Date(), passed: false, differences: ["could not run: \(error)"], tables: 0, rows: 0, seconds: 0)
            }
            try? DatabaseBackup.record(result, work: work)
            if !result.passed { failures += 1 }
            if json {
                Output.line(String(decoding: try encoder.encode(result), as: UTF8.self))
            } else if result.passed {
                Output.line(String(format: "passed  %@  %d tables, %lld rows, %.1f s", id, result.tables, result.rows, result.seconds))
            } else {
                Output.line("FAILED  \(id)")
                for difference in result.differences { Output.line("        \(difference)") }
            }
        }
        if failures > 0 { throw paths.fail("\(failures) of \(names.count) drills failed") }
    }
}
