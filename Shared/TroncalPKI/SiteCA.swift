public import Foundation
public import TroncalProtocol
internal import Crypto
internal import X509
internal import SwiftASN1
internal import Glibc

/// A site's certificate authority on disk, and the instance certificates it issues.
///
/// Layout of the directory: `ca.crt`, `ca.key`, then `<instance>.crt` and `<instance>.key` per instance.
/// Keys are ECDSA P-256 in PKCS#8 PEM, written with mode 0600. Instance certificates carry the site in O,
/// the role in OU and the instance name in CN, and are valid for both TLS server and client use.
public struct SiteCA: Sendable {
    public let directory: URL
    public let site: String

    public static let caCertificateFile = "ca.crt"
    public static let caKeyFile = "ca.key"

    /// The files of one instance's credentials.
    public struct Credentials: Sendable, Hashable {
        public var identity: PeerIdentity
        public var certificatePath: String
        public var keyPath: String
        public var caCertificatePath: String
    }

    public var caCertificatePath: String { directory.appendingPathComponent(Self.caCertificateFile).path }

    /// Creates a new CA for `site` in `directory` (created if missing). Refuses to overwrite an existing CA.
    public static func create(
        in directory: URL, site: String, validityDays: Int = 3650, now: Date = Date()
    ) throws(PKIError) -> SiteCA {
        guard PeerIdentity.isValidName(site) else {
            throw PKIError(.invalidName, "site name '\(site)' must be 1-63 characters of a-z, 0-9 and -")
        }
        let ca = SiteCA(directory: directory, site: site)
        let fm = FileManager.default
        if fm.fileExists(atPath: ca.caCertificatePath) {
            throw PKIError(.alreadyExists, "a CA already exists at \(ca.caCertificatePath)")
        }
        do {
            try fm.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw PKIError(.unwritable, "cannot create \(directory.path): \(error.localizedDescription)")
        }
        let key = P256.Signing.PrivateKey()
        let pem: String
        do {
            let name = try DistinguishedName {
                OrganizationName(site)
                OrganizationalUnitName("ca")
                CommonName("Troncal site CA \(site)")
            }
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
            }
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(),
                publicKey: Certificate.PublicKey(key.publicKey),
                notValidBefore: now.addingTimeInterval(-3600),
                notValidAfter: now.addingTimeInterval(Double(validityDays) * 86400),
                issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
                issuerPrivateKey: Certificate.PrivateKey(key))
            pem = try certificate.serializeAsPEM().pemString
        } catch {
            throw PKIError(.invalidCertificate, "cannot build the CA certificate: \(error)")
        }
        try write(key.pemRepresentation, to: directory.appendingPathComponent(caKeyFile), mode: 0o600)
        try write(pem, to: directory.appendingPathComponent(caCertificateFile), mode: 0o644)
        return ca
    }

    /// Opens the CA in `directory`, reading the site from its certificate.
    public static func open(_ directory: URL) throws(PKIError) -> SiteCA {
        let path = directory.appendingPathComponent(caCertificateFile).path
        guard FileManager.default.fileExists(atPath: path) else {
            throw PKIError(.missingCA, "no CA at \(path); run `troncal pki init` first")
        }
        let certificate = try loadCertificate(path)
        var site: String?
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.organizationName {
                site = String(attribute.value)
            }
        }
        guard let site, PeerIdentity.isValidName(site) else {
            throw PKIError(.invalidCertificate, "CA certificate \(path) names no valid site (O)")
        }
        return SiteCA(directory: directory, site: site)
    }

    /// The paths of an instance's credentials (whether or not they exist yet).
    public func credentials(role: Role, instance: String) -> Credentials {
        Credentials(
            identity: PeerIdentity(role: role, site: site, instance: instance),
            certificatePath: directory.appendingPathComponent("\(instance).crt").path,
            keyPath: directory.appendingPathComponent("\(instance).key").path,
            caCertificatePath: caCertificatePath)
    }

    /// Issues a key and certificate for one instance. Refuses to overwrite unless `replace` is set.
    @discardableResult
    public func issue(
        role: Role, instance: String, validityDays: Int = 825, replace: Bool = false, now: Date = Date(),
        hostnames: [String] = ["localhost"], ipAddresses: [[UInt8]] = [[127, 0, 0, 1]]
    ) throws(PKIError) -> Credentials {
        guard PeerIdentity.isValidName(instance) else {
            throw PKIError(.invalidName, "instance name '\(instance)' must be 1-63 characters of a-z, 0-9 and -")
        }
        let credentials = credentials(role: role, instance: instance)
        if !replace && FileManager.default.fileExists(atPath: credentials.certificatePath) {
            throw PKIError(.alreadyExists, "\(credentials.certificatePath) exists; pass --replace to reissue")
        }
        let caCertificate = try Self.loadCertificate(caCertificatePath)
        let caKey = try loadCAKey()
        let key = P256.Signing.PrivateKey()
        let pem: String
        do {
            let subject = try DistinguishedName {
                OrganizationName(site)
                OrganizationalUnitName(role.rawValue)
                CommonName(instance)
            }
            var names: [GeneralName] = hostnames.map { .dnsName($0) }
            names.append(.dnsName("\(instance).\(site).troncal"))
            names += ipAddresses.map { .ipAddress(ASN1OctetString(contentBytes: $0[...])) }
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyAgreement: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames(names)
                SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
                AuthorityKeyIdentifier(keyIdentifier: try caCertificate.extensions.subjectKeyIdentifier?.keyIdentifier)
            }
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(),
                publicKey: Certificate.PublicKey(key.publicKey),
                notValidBefore: now.addingTimeInterval(-3600),
                notValidAfter: now.addingTimeInterval(Double(validityDays) * 86400),
                issuer: caCertificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions, issuerPrivateKey: Certificate.PrivateKey(caKey))
            pem = try certificate.serializeAsPEM().pemString
        } catch {
            throw PKIError(.invalidCertificate, "cannot build the certificate of \(instance): \(error)")
        }
        try Self.write(key.pemRepresentation, to: URL(fileURLWithPath: credentials.keyPath), mode: 0o600)
        try Self.write(pem, to: URL(fileURLWithPath: credentials.certificatePath), mode: 0o644)
        return credentials
    }

    private func loadCAKey() throws(PKIError) -> P256.Signing.PrivateKey {
        let path = directory.appendingPathComponent(Self.caKeyFile).path
        do {
            let pem = try String(contentsOfFile: path, encoding: .utf8)
            return try P256.Signing.PrivateKey(pemRepresentation: pem)
        } catch {
            throw PKIError(.unreadable, "cannot read the CA key \(path)")
        }
    }

    static func loadCertificate(_ path: String) throws(PKIError) -> Certificate {
        let pem: String
        do {
            pem = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw PKIError(.unreadable, "cannot read \(path)")
        }
        do {
            return try Certificate(pemEncoded: pem)
        } catch {
            throw PKIError(.invalidCertificate, "\(path) is not a PEM certificate")
        }
    }

    /// Writes a file beside the target with `mode` from the start (a key is never readable by others, not
    /// even briefly), then renames it into place.
    private static func write(_ text: String, to url: URL, mode: Int) throws(PKIError) {
        let temporary = url.path + ".tmp"
        unlink(temporary)
        let descriptor = Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode_t(mode))
        guard descriptor >= 0 else {
            throw PKIError(.unwritable, "cannot write \(url.path): \(String(cString: strerror(errno)))")
        }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor)
        Glibc.close(descriptor)
        guard written == bytes.count, synced == 0, rename(temporary, url.path) == 0 else {
            unlink(temporary)
            throw PKIError(.unwritable, "cannot write \(url.path): \(String(cString: strerror(errno)))")
        }
    }
}
