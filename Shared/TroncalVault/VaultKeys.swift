public import Crypto
public import Foundation

/// The keys of the backup store.
///
/// - The **restore key** (X25519, for HPKE): backups are encrypted to its public half, which is all the backup service
///   holds; the private half is needed only to restore or to read a backup's contents, and is kept offline.
/// - The **signing key** (Ed25519): the backup service signs every manifest with it; anyone with its public half can
///   check that a manifest is the one the service wrote.
///
/// Files hold one line: a tag and the key's raw bytes in base64 (`troncal-restore-public <base64>`), so that a key
/// put in the wrong place is refused by name rather than misread.
public enum VaultKeys {
    public typealias RestorePublicKey = Curve25519.KeyAgreement.PublicKey
    public typealias SigningPrivateKey = Curve25519.Signing.PrivateKey
    public typealias RestorePrivateKey = Curve25519.KeyAgreement.PrivateKey
    public typealias SigningPublicKey = Curve25519.Signing.PublicKey
    public static let restorePublicTag = "troncal-restore-public"
    public static let restorePrivateTag = "troncal-restore-private"
    public static let signingPrivateTag = "troncal-signing-private"
    public static let signingPublicTag = "troncal-signing-public"

    public struct Generated {
        public var restorePublic: Curve25519.KeyAgreement.PublicKey
        public var restorePrivate: Curve25519.KeyAgreement.PrivateKey
        public var signingPrivate: Curve25519.Signing.PrivateKey
    }

    public static func generate() -> Generated {
        let restore = Curve25519.KeyAgreement.PrivateKey()
        return Generated(restorePublic: restore.publicKey, restorePrivate: restore, signingPrivate: Curve25519.Signing.PrivateKey())
    }

    public static func text(tag: String, _ bytes: some DataProtocol) -> String { "\(tag) \(Data(bytes).base64EncodedString())\n" }

    /// The bytes of a key file with this tag; throws naming the file when it holds something else.
    public static func bytes(of file: URL, tag: String) throws(VaultError) -> Data {
        let text: String
        do {
            text = try String(contentsOf: file, encoding: .utf8)
        } catch {
            throw VaultError("cannot read the key file \(file.path): \(error.localizedDescription)")
        }
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ")
        guard parts.count == 2, parts[0] == tag, let data = Data(base64Encoded: String(parts[1])) else {
            let found = parts.first.map { "'\($0)'" } ?? "nothing"
            throw VaultError("\(file.path) is not a \(tag) key (it starts with \(found))")
        }
        return data
    }

    public static func restorePublic(_ file: URL) throws(VaultError) -> Curve25519.KeyAgreement.PublicKey {
        do { return try .init(rawRepresentation: try bytes(of: file, tag: restorePublicTag)) } catch let error as VaultError { throw error } catch {
            throw VaultError("\(file.path): not a valid restore public key")
        }
    }

    public static func restorePrivate(_ file: URL) throws(VaultError) -> Curve25519.KeyAgreement.PrivateKey {
        do { return try .init(rawRepresentation: try bytes(of: file, tag: restorePrivateTag)) } catch let error as VaultError { throw error } catch {
            throw VaultError("\(file.path): not a valid restore private key")
        }
    }

    public static func signingPrivate(_ file: URL) throws(VaultError) -> Curve25519.Signing.PrivateKey {
        do { return try .init(rawRepresentation: try bytes(of: file, tag: signingPrivateTag)) } catch let error as VaultError { throw error } catch {
            throw VaultError("\(file.path): not a valid signing private key")
        }
    }

    public static func signingPublic(_ file: URL) throws(VaultError) -> Curve25519.Signing.PublicKey {
        do { return try .init(rawRepresentation: try bytes(of: file, tag: signingPublicTag)) } catch let error as VaultError { throw error } catch {
            throw VaultError("\(file.path): not a valid signing public key")
        }
    }
}

public struct VaultError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
