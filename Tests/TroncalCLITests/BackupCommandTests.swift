import Foundation
import Testing
import TestSupport
import TroncalVault

/// `troncal backup keys init|list|verify|restore` on a store: keys made once, the private restore key apart; verify
/// names a damaged chunk and exits non-zero; only the right private key restores.
@Suite(.startsProcesses) struct BackupCommandTests {
    let troncal = troncalBinaryDirectory().appendingPathComponent("troncal")

    @Test func keysAreMadeOnceAndTheStoreIsListedVerifiedAndRestoredWithThePrivateKeyOnly() async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-backup-cli")
        defer { directory.remove() }
        let dataDir = directory.url.path
        let offline = directory.url.appendingPathComponent("offline/restore-key.private")
        let (code, output) = try await ChildProcess.run(troncal, ["backup", "keys", "init", "--data-dir", dataDir, "--private-key-out", offline.path])
        #expect(code == 0, "\(output)")
        #expect(output.contains("PRIVATE restore key: \(offline.path)"), "\(output)")
        let mode = try FileManager.default.attributesOfItem(atPath: offline.path)[.posixPermissions] as? Int
        #expect(mode == 0o400)
        let (again, refusal) = try await ChildProcess.run(troncal, ["backup", "keys", "init", "--data-dir", dataDir, "--private-key-out", offline.path])
        #expect(again != 0 && refusal.contains("keys are made once"), "\(refusal)")

        // A backup written with the keys the CLI made (as the backup service will).
        let keys = directory.url.appendingPathComponent("backup-keys")
        let vault = Vault(directory: directory.url.appendingPathComponent("backup-store"))
        let content = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        var sent = false
        let manifest = try vault.write(
            id: "routing-1", source: "routing", schemaVersion: 3, restoreKey: try VaultKeys.restorePublic(keys.appendingPathComponent("restore.pub")),
            signingKey: try VaultKeys.signingPrivate(keys.appendingPathComponent("signing.key")), chunkBytes: 100_000
        ) {
            defer { sent = true }
            return sent ? nil : content
        }
        let (listCode, list) = try await ChildProcess.run(troncal, ["backup", "list", "--data-dir", dataDir])
        #expect(listCode == 0 && list.contains("routing-1  routing  schema 3"), "\(list)")
        let (verifyCode, verified) = try await ChildProcess.run(troncal, ["backup", "verify", "--data-dir", dataDir])
        #expect(verifyCode == 0 && verified.contains("ok  routing-1  3 chunks"), "\(verified)")

        let restored = directory.url.appendingPathComponent("restored.db")
        let (restoreCode, restoreOutput) = try await ChildProcess.run(
            troncal, ["backup", "restore", "routing-1", "--private-key", offline.path, "--to", restored.path, "--data-dir", dataDir])
        #expect(restoreCode == 0, "\(restoreOutput)")
        #expect(try Data(contentsOf: restored) == content)

        // The wrong key file (the public one) is refused by name; a damaged chunk fails verify, naming it.
        let (wrongCode, wrong) = try await ChildProcess.run(
            troncal, ["backup", "restore", "routing-1", "--private-key", keys.appendingPathComponent("restore.pub").path, "--to", restored.path,
                      "--data-dir", dataDir])
        #expect(wrongCode != 0 && wrong.contains("is not a troncal-restore-private key"), "\(wrong)")
        let chunk = vault.directory.appendingPathComponent("routing-1").appendingPathComponent(manifest.chunks[1].file)
        var bytes = try Data(contentsOf: chunk)
        bytes[10] ^= 0xff
        chmod(chunk.path, 0o644)
        try bytes.write(to: chunk)
        let (badCode, bad) = try await ChildProcess.run(troncal, ["backup", "verify", "routing-1", "--data-dir", dataDir])
        #expect(badCode != 0 && bad.contains("backup routing-1: chunk 1 (chunk-000001) does not match its SHA-256"), "\(bad)")
    }
}
