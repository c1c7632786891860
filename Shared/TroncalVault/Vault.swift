public import Crypto
public import Foundation

/// What a backup holds, written beside its chunks and signed by the backup service (`manifest.json`, `manifest.sig`).
public struct VaultManifest: Codable, Sendable, Equatable {
    public struct Chunk: Codable, Sendable, Equatable {
        public var index: Int
        public var file: String
        /// Size and SHA-256 of the stored (encrypted) bytes: checkable without the private key.
        public var bytes: Int
        public var sha256: String
    }

    public var format: Int
    public var id: String
    /// What was backed up (`billing`, `routing`, `site-config` …).
    public var source: String
    public var schemaVersion: Int
    public var createdAt: Date
    public var ciphersuite: String
    /// HPKE's encapsulated key for this backup (base64): with the restore private key it opens the chunks.
    public var encapsulatedKey: String
    public var chunkBytes: Int
    /// Size and SHA-256 of the whole backup before encryption: checked after a restore.
    public var plainBytes: Int
    public var plainSHA256: String
    public var chunks: [Chunk]
    /// What the source said of itself (row counts and checksums per table, for drills).
    public var metadata: [String: String]
}

/// A backup store: one directory per backup (`<id>/`), each chunk encrypted to the restore public key with HPKE
/// (X25519, HKDF-SHA256, ChaCha20-Poly1305; one encapsulation per backup, the chunk's position as associated data so
/// that chunks cannot be reordered), a SHA-256 per stored chunk, and a manifest signed with Ed25519.
///
/// Files are written once: to a temporary name, synced, made read-only (0444), then linked to their final name, which
/// fails if that name exists (never an overwrite), and the directory is synced.
public struct Vault: Sendable {
    public let directory: URL
    public static var ciphersuite: HPKE.Ciphersuite { .Curve25519_SHA256_ChachaPoly }
    public static let chunkBytes = 4 << 20

    public init(directory: URL) {
        self.directory = directory
    }

    // MARK: - Writing

    /// Backs up the bytes `read` gives (nil at the end) as backup `id`. Returns its manifest.
    public func write(
        id: String, source: String, schemaVersion: Int, metadata: [String: String] = [:], restoreKey: Curve25519.KeyAgreement.PublicKey,
        signingKey: Curve25519.Signing.PrivateKey, at now: Date = Date(), chunkBytes: Int = Vault.chunkBytes, read: () throws -> Data?
    ) throws -> VaultManifest {
        var writer = try Writer(vault: self, id: id, restoreKey: restoreKey, chunkBytes: chunkBytes)
        while let data = try read() { try writer.append(data) }
        return try writer.finish(source: source, schemaVersion: schemaVersion, metadata: metadata, signingKey: signingKey, at: now)
    }

    /// Backs up the bytes `read` gives (nil at the end), read asynchronously (from a link, a process), as backup `id`.
    /// If `read` throws, the backup stays without a manifest (not listed; `remove` deletes it).
    public func write(
        id: String, source: String, schemaVersion: Int, metadata: [String: String] = [:], restoreKey: Curve25519.KeyAgreement.PublicKey,
        signingKey: Curve25519.Signing.PrivateKey, at now: Date = Date(), chunkBytes: Int = Vault.chunkBytes,
        readAsync read: () async throws -> Data?
    ) async throws -> VaultManifest {
        var writer = try Writer(vault: self, id: id, restoreKey: restoreKey, chunkBytes: chunkBytes)
        while let data = try await read() { try writer.append(data) }
        return try writer.finish(source: source, schemaVersion: schemaVersion, metadata: metadata, signingKey: signingKey, at: now)
    }

    /// One backup being written: chunks sealed and stored as the bytes come, the manifest at the end.
    struct Writer {
        let vault: Vault
        let id: String
        let folder: URL
        let chunkBytes: Int
        var sender: HPKE.Sender
        var chunks: [VaultManifest.Chunk] = []
        var plain = SHA256()
        var plainBytes = 0
        var pending = Data()

        init(vault: Vault, id: String, restoreKey: Curve25519.KeyAgreement.PublicKey, chunkBytes: Int) throws {
            guard Vault.isSafeName(id) else { throw VaultError("'\(id)' is not a backup name (letters, digits, '-', '_', '.')") }
            self.vault = vault
            self.id = id
            self.chunkBytes = chunkBytes
            folder = vault.directory.appendingPathComponent(id)
            if FileManager.default.fileExists(atPath: folder.path) { throw VaultError("backup \(id) exists already: backups are never overwritten") }
            do {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            } catch {
                throw VaultError("cannot create \(folder.path): \(error.localizedDescription)")
            }
            sender = try HPKE.Sender(recipientKey: restoreKey, ciphersuite: Vault.ciphersuite, info: Data("troncal-backup \(id)".utf8))
        }

        mutating func append(_ data: Data) throws {
            plain.update(data: data)
            plainBytes += data.count
            pending.append(data)
            while pending.count >= chunkBytes {
                try flush(pending.prefix(chunkBytes))
                pending = Data(pending.dropFirst(chunkBytes))
            }
        }

        private mutating func flush(_ data: Data) throws {
            let index = chunks.count
            let sealed = try sender.seal(data, authenticating: Data("\(id)/\(index)".utf8))
            let name = String(format: "chunk-%06d", index)
            try Vault.writeOnce(sealed, to: folder.appendingPathComponent(name))
            chunks.append(.init(index: index, file: name, bytes: sealed.count, sha256: Vault.hex(SHA256.hash(data: sealed))))
        }

        mutating func finish(
            source: String, schemaVersion: Int, metadata: [String: String], signingKey: Curve25519.Signing.PrivateKey, at now: Date
        ) throws -> VaultManifest {
            if !pending.isEmpty || chunks.isEmpty { try flush(pending) }
            pending = Data()
            let manifest = VaultManifest(
                format: 1, id: id, source: source, schemaVersion: schemaVersion, createdAt: now, ciphersuite: "X25519-HKDF-SHA256-ChaCha20Poly1305",
                encapsulatedKey: sender.encapsulatedKey.base64EncodedString(), chunkBytes: chunkBytes, plainBytes: plainBytes,
                plainSHA256: Vault.hex(plain.finalize()), chunks: chunks, metadata: metadata)
            let document = try Vault.encoder.encode(manifest)
            try Vault.writeOnce(Data(try signingKey.signature(for: document).base64EncodedString().utf8), to: folder.appendingPathComponent("manifest.sig"))
            // The manifest last: a backup without one was interrupted and is not listed.
            try Vault.writeOnce(document, to: folder.appendingPathComponent("manifest.json"))
            Vault.sync(directory: folder)
            Vault.sync(directory: vault.directory)
            return manifest
        }
    }

    /// Backs up a file.
    public func write(
        id: String, source: String, schemaVersion: Int, metadata: [String: String] = [:], file: URL,
        restoreKey: Curve25519.KeyAgreement.PublicKey, signingKey: Curve25519.Signing.PrivateKey, at now: Date = Date()
    ) throws -> VaultManifest {
        guard let handle = try? FileHandle(forReadingFrom: file) else { throw VaultError("cannot read \(file.path)") }
        defer { try? handle.close() }
        return try write(
            id: id, source: source, schemaVersion: schemaVersion, metadata: metadata, restoreKey: restoreKey, signingKey: signingKey, at: now
        ) {
            let data = try handle.read(upToCount: 1 << 20) ?? Data()
            return data.isEmpty ? nil : data
        }
    }

    // MARK: - Reading

    /// The complete backups (those with a manifest), oldest first. Unreadable manifests are skipped here; `verify`
    /// reports them.
    public func list() -> [VaultManifest] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.compactMap { name in
            guard let data = try? Data(contentsOf: directory.appendingPathComponent(name).appendingPathComponent("manifest.json")) else { return nil }
            return try? Self.decoder.decode(VaultManifest.self, from: data)
        }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    /// Checks a backup without its private key: the manifest's signature, then every chunk's presence, size and
    /// SHA-256. Throws naming the backup and the first bad chunk.
    @discardableResult
    public func verify(_ id: String, signingKey: Curve25519.Signing.PublicKey) throws(VaultError) -> VaultManifest {
        let manifest = try signedManifest(id, signingKey: signingKey)
        let folder = directory.appendingPathComponent(id)
        for chunk in manifest.chunks {
            guard let data = try? Data(contentsOf: folder.appendingPathComponent(chunk.file)) else {
                throw VaultError("backup \(id): chunk \(chunk.index) (\(chunk.file)) is missing")
            }
            guard data.count == chunk.bytes, Self.hex(SHA256.hash(data: data)) == chunk.sha256 else {
                throw VaultError("backup \(id): chunk \(chunk.index) (\(chunk.file)) does not match its SHA-256: damaged")
            }
        }
        return manifest
    }

    /// Decrypts a verified backup into `output` (written to a temporary name, renamed when whole and its SHA-256
    /// matches). Throws when the private key is not the one the backup was made for.
    public func restore(
        _ id: String, restoreKey: Curve25519.KeyAgreement.PrivateKey, signingKey: Curve25519.Signing.PublicKey, to output: URL
    ) throws(VaultError) {
        let manifest = try verify(id, signingKey: signingKey)
        guard let encapsulated = Data(base64Encoded: manifest.encapsulatedKey) else { throw VaultError("backup \(id): bad encapsulated key") }
        var recipient: HPKE.Recipient
        do {
            recipient = try HPKE.Recipient(
                privateKey: restoreKey, ciphersuite: Self.ciphersuite, info: Data("troncal-backup \(id)".utf8), encapsulatedKey: encapsulated)
        } catch {
            throw VaultError("backup \(id): the restore key does not open it (\(error))")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: output.path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw VaultError("\(output.path) is a directory: a restore writes a file and never replaces a directory")
        }
        let temporary = output.deletingLastPathComponent().appendingPathComponent(".\(output.lastPathComponent).restoring-\(UUID().uuidString)")
        // Decrypted data is for its owner only (0600 from the start, never a moment readable by others).
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw VaultError("cannot write \(temporary.path): \(String(cString: strerror(errno)))") }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        var plain = SHA256()
        do {
            defer { try? handle.close() }
            for chunk in manifest.chunks {
                let sealed = try Data(contentsOf: directory.appendingPathComponent(id).appendingPathComponent(chunk.file))
                let opened: Data
                do {
                    opened = try recipient.open(sealed, authenticating: Data("\(id)/\(chunk.index)".utf8))
                } catch {
                    throw VaultError("backup \(id): chunk \(chunk.index) does not open with this restore key: the wrong private key, or a forged chunk")
                }
                plain.update(data: opened)
                // As plain bytes: corelibs Foundation traps writing a Data that is a slice (HPKE returns one).
                try handle.write(contentsOf: [UInt8](opened))
            }
            try handle.synchronize()
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error as? VaultError ?? VaultError("restoring backup \(id): \(error.localizedDescription)")
        }
        guard Self.hex(plain.finalize()) == manifest.plainSHA256 else {
            try? FileManager.default.removeItem(at: temporary)
            throw VaultError("backup \(id): the restored bytes do not match the manifest's SHA-256")
        }
        _ = try? FileManager.default.removeItem(at: output)
        do {
            try FileManager.default.moveItem(at: temporary, to: output)
        } catch {
            throw VaultError("cannot put the restored file at \(output.path): \(error.localizedDescription)")
        }
    }

    /// Deletes a backup (the store's side only: retention). Its files are read-only but the directory is the service's.
    public func remove(_ id: String) throws(VaultError) {
        guard Self.isSafeName(id) else { throw VaultError("'\(id)' is not a backup name") }
        let folder = directory.appendingPathComponent(id)
        // The manifest first: a half-removed backup is no longer listed.
        _ = unlink(folder.appendingPathComponent("manifest.json").path)
        do {
            try FileManager.default.removeItem(at: folder)
        } catch {
            throw VaultError("cannot remove backup \(id): \(error.localizedDescription)")
        }
    }

    /// Deletes what an interrupted write left of backup `id` (a folder without a manifest); a complete backup is
    /// never touched. Returns whether something was removed.
    @discardableResult
    public func removeIncomplete(_ id: String) -> Bool {
        guard Self.isSafeName(id) else { return false }
        let folder = directory.appendingPathComponent(id)
        guard FileManager.default.fileExists(atPath: folder.path),
            !FileManager.default.fileExists(atPath: folder.appendingPathComponent("manifest.json").path)
        else { return false }
        return (try? FileManager.default.removeItem(at: folder)) != nil
    }

    func signedManifest(_ id: String, signingKey: Curve25519.Signing.PublicKey) throws(VaultError) -> VaultManifest {
        guard Self.isSafeName(id) else { throw VaultError("'\(id)' is not a backup name") }
        let folder = directory.appendingPathComponent(id)
        guard let document = try? Data(contentsOf: folder.appendingPathComponent("manifest.json")) else {
            throw VaultError("backup \(id): no manifest (not a backup, or an interrupted one)")
        }
        guard let signatureText = try? Data(contentsOf: folder.appendingPathComponent("manifest.sig")),
            let signature = Data(base64Encoded: String(decoding: signatureText, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
            signingKey.isValidSignature(signature, for: document)
        else { throw VaultError("backup \(id): the manifest's signature does not verify with the backup service's key") }
        do {
            return try Self.decoder.decode(VaultManifest.self, from: document)
        } catch {
            throw VaultError("backup \(id): the manifest cannot be read: \(error)")
        }
    }

    // MARK: - Files

    /// Writes `data` under a temporary name, syncs it, makes it read-only and links it to `url`; fails if `url` exists.
    static func writeOnce(_ data: Data, to url: URL) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString)")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw VaultError("cannot create \(temporary.path): \(String(cString: strerror(errno)))") }
        var failure: String?
        data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                    return
                }
                offset += written
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        if failure == nil, fchmod(fd, 0o444) != 0 { failure = String(cString: strerror(errno)) }
        close(fd)
        defer { unlink(temporary.path) }
        if let failure { throw VaultError("cannot write \(url.path): \(failure)") }
        guard link(temporary.path, url.path) == 0 else {
            throw VaultError("cannot put \(url.path) in place: \(String(cString: strerror(errno))) (files in the store are never overwritten)")
        }
    }

    static func sync(directory: URL) {
        let fd = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    static func isSafeName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 128 && !name.hasPrefix(".")
            && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) }
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String { digest.map { String(format: "%02x", $0) }.joined() }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()
}
