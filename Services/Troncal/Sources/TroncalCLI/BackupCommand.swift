import ArgumentParser
import Crypto
import Foundation
import TroncalVault

/// `troncal backup keys init|list|verify|restore`: the backup store's keys, and what can be done with the store itself
/// (on the backup host, where it lives).
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "The backup store: keys, list, verify and restore.",
        subcommands: [BackupKeysCommand.self, BackupListCommand.self, BackupVerifyCommand.self, BackupRestoreCommand.self])
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
        commandName: "restore", abstract: "Decrypt a verified backup into a file (the service's database file or dump), with the private restore key.")
    @Argument(help: "The backup.")
    var id: String
    @Option(help: "The private restore key file.")
    var privateKey: String
    @Option(help: "Where to write the restored bytes.")
    var to: String
    @OptionGroup var paths: BackupPaths

    func run() async throws {
        do {
            let key = try VaultKeys.restorePrivate(URL(fileURLWithPath: privateKey))
            let signing = try VaultKeys.signingPublic(paths.signingPublic)
            try paths.vault.restore(id, restoreKey: key, signingKey: signing, to: URL(fileURLWithPath: to))
        } catch {
            throw paths.fail("\(error)")
        }
        Output.line("restored \(id) to \(to)")
    }
}
