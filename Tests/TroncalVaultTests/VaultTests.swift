import Crypto
import Foundation
import Testing
import TestSupport
import TroncalVault

/// The backup store's format: chunks encrypted to the restore key, checked by hash, manifests signed; verify names the
/// backup and the chunk that is wrong; only the right private key restores; nothing is stored in clear or overwritten.
@Suite struct VaultTests {
    /// About 9 MiB of a billing-like dump with a known call id in it: three 4 MiB chunks.
    static func dump() -> Data {
        var text = "COPY billing_cdrs (id, call_id, customer) FROM stdin;\n"
        for index in 0..<200_000 { text += "cdr-\(index)\tknown-call-id-7f3a9-\(index)@127.0.0.2\tacme\n" }
        return Data(text.utf8)
    }

    struct Fixture {
        let directory: TemporaryDirectory
        let vault: Vault
        let keys: VaultKeys.Generated
        init() throws {
            directory = try TemporaryDirectory(prefix: "troncal-vault")
            vault = Vault(directory: directory.url.appendingPathComponent("store"))
            keys = VaultKeys.generate()
        }

        func backUp(_ data: Data, id: String = "billing-20261204T020000Z") throws -> VaultManifest {
            var remaining = data
            return try vault.write(
                id: id, source: "billing", schemaVersion: 7, metadata: ["billing_cdrs.rows": "200000"], restoreKey: keys.restorePublic,
                signingKey: keys.signingPrivate
            ) {
                guard !remaining.isEmpty else { return nil }
                let part = remaining.prefix(1_000_000)
                remaining = Data(remaining.dropFirst(part.count))
                return Data(part)
            }
        }
    }

    @Test func aBackupRoundTripsAndIsNotStoredInClearNorWritable() throws {
        let fixture = try Fixture()
        defer { fixture.directory.remove() }
        let data = Self.dump()
        let manifest = try fixture.backUp(data)
        #expect(manifest.chunks.count == (data.count + Vault.chunkBytes - 1) / Vault.chunkBytes)
        #expect(manifest.plainBytes == data.count)
        #expect(fixture.vault.list().map(\.id) == [manifest.id])
        try fixture.vault.verify(manifest.id, signingKey: fixture.keys.signingPrivate.publicKey)

        // Encrypted: the known call id is nowhere in the store's files; and every file is read-only.
        let folder = fixture.vault.directory.appendingPathComponent(manifest.id)
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
            let bytes = try Data(contentsOf: folder.appendingPathComponent(name))
            #expect(bytes.range(of: Data("known-call-id-7f3a9".utf8)) == nil, "\(name) holds the call id in clear")
            let mode = try FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(name).path)[.posixPermissions] as? Int
            #expect(mode == 0o444, "\(name) is \(String(mode ?? 0, radix: 8))")
        }
        // Never overwritten: the same name again is refused.
        #expect(throws: VaultError.self) { _ = try fixture.backUp(Data("other".utf8)) }

        let restored = fixture.directory.url.appendingPathComponent("restored.sql")
        try fixture.vault.restore(manifest.id, restoreKey: fixture.keys.restorePrivate, signingKey: fixture.keys.signingPrivate.publicKey, to: restored)
        #expect(try Data(contentsOf: restored) == data)
    }

    @Test func anInterruptedWriteIsRemovedByRemoveIncompleteButACompleteBackupNeverIs() throws {
        let fixture = try Fixture()
        defer { fixture.directory.remove() }
        // A write that fails half-way (the source broke off) leaves chunks and no manifest.
        var sent = false
        #expect(throws: VaultError.self) {
            _ = try fixture.vault.write(
                id: "wal-000000010000000000000003", source: "wal", schemaVersion: 0, restoreKey: fixture.keys.restorePublic,
                signingKey: fixture.keys.signingPrivate, chunkBytes: 1024
            ) {
                if sent { throw VaultError("the source broke off") }
                sent = true
                return Data(repeating: 7, count: 4096)
            }
        }
        let folder = fixture.vault.directory.appendingPathComponent("wal-000000010000000000000003")
        #expect(FileManager.default.fileExists(atPath: folder.path))
        #expect(fixture.vault.list().isEmpty, "not a backup: not listed")
        #expect(fixture.vault.removeIncomplete("wal-000000010000000000000003"))
        #expect(!FileManager.default.fileExists(atPath: folder.path))

        let manifest = try fixture.backUp(Data("whole".utf8))
        #expect(fixture.vault.removeIncomplete(manifest.id) == false)
        #expect(fixture.vault.list().map(\.id) == [manifest.id])
    }

    @Test func aRestoredFileIsForItsOwnerOnlyAndADirectoryIsNeverReplaced() throws {
        let fixture = try Fixture()
        defer { fixture.directory.remove() }
        let manifest = try fixture.backUp(Data("secret rows".utf8))
        let restored = fixture.directory.url.appendingPathComponent("restored.db")
        try fixture.vault.restore(manifest.id, restoreKey: fixture.keys.restorePrivate, signingKey: fixture.keys.signingPrivate.publicKey, to: restored)
        let mode = try FileManager.default.attributesOfItem(atPath: restored.path)[.posixPermissions] as? Int
        #expect(mode == 0o600, "restored file is \(String(mode ?? 0, radix: 8))")

        let directory = fixture.directory.url.appendingPathComponent("keep")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data("kept".utf8).write(to: directory.appendingPathComponent("file"))
        #expect(throws: VaultError.self) {
            try fixture.vault.restore(manifest.id, restoreKey: fixture.keys.restorePrivate, signingKey: fixture.keys.signingPrivate.publicKey, to: directory)
        }
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("file").path))
    }

    @Test func aFlippedByteOrAMissingChunkFailsVerifyNamingTheBackupAndTheChunk() throws {
        let fixture = try Fixture()
        defer { fixture.directory.remove() }
        let manifest = try fixture.backUp(Self.dump())
        let folder = fixture.vault.directory.appendingPathComponent(manifest.id)
        let chunk = folder.appendingPathComponent(manifest.chunks[1].file)
        var bytes = try Data(contentsOf: chunk)
        bytes[1000] ^= 0x01
        chmod(chunk.path, 0o644)
        try bytes.write(to: chunk)
        #expect(throws: VaultError("backup \(manifest.id): chunk 1 (chunk-000001) does not match its SHA-256: damaged")) {
            try fixture.vault.verify(manifest.id, signingKey: fixture.keys.signingPrivate.publicKey)
        }
        try FileManager.default.removeItem(at: folder.appendingPathComponent(manifest.chunks[2].file))
        bytes[1000] ^= 0x01
        try bytes.write(to: chunk)
        #expect(throws: VaultError("backup \(manifest.id): chunk 2 (chunk-000002) is missing")) {
            try fixture.vault.verify(manifest.id, signingKey: fixture.keys.signingPrivate.publicKey)
        }
    }

    @Test func theWrongPrivateKeyOrAnotherSigningKeyIsRefused() throws {
        let fixture = try Fixture()
        defer { fixture.directory.remove() }
        let manifest = try fixture.backUp(Data("a small database".utf8))
        let output = fixture.directory.url.appendingPathComponent("restored")
        #expect(throws: VaultError.self) {
            try fixture.vault.restore(
                manifest.id, restoreKey: Curve25519.KeyAgreement.PrivateKey(), signingKey: fixture.keys.signingPrivate.publicKey, to: output)
        }
        #expect(!FileManager.default.fileExists(atPath: output.path), "nothing is left behind by a failed restore")
        #expect(throws: VaultError("backup \(manifest.id): the manifest's signature does not verify with the backup service's key")) {
            try fixture.vault.verify(manifest.id, signingKey: Curve25519.Signing.PrivateKey().publicKey)
        }
    }

    @Test func keyFilesAreReadByTheirTagAndAKeyInTheWrongPlaceIsRefusedByName() throws {
        let directory = try TemporaryDirectory(prefix: "troncal-vault-keys")
        defer { directory.remove() }
        let keys = VaultKeys.generate()
        let publicFile = directory.url.appendingPathComponent("restore.pub")
        try VaultKeys.text(tag: VaultKeys.restorePublicTag, keys.restorePublic.rawRepresentation).write(to: publicFile, atomically: true, encoding: .utf8)
        #expect(try VaultKeys.restorePublic(publicFile).rawRepresentation == keys.restorePublic.rawRepresentation)
        #expect(throws: VaultError("\(publicFile.path) is not a troncal-restore-private key (it starts with 'troncal-restore-public')")) {
            _ = try VaultKeys.restorePrivate(publicFile)
        }
    }
}
