public import NIOSSL
public import TroncalPKI
import TroncalProtocol

/// Builds the TLS contexts of the mutual-TLS links: TLS 1.3 only, both sides present a certificate issued
/// by a trusted site CA, and the peer's role is then read from its certificate.
public enum LinkTLS {
    /// A server context: requires a client certificate that chains to `credentials.caCertificatePath`.
    public static func serverContext(_ credentials: SiteCA.Credentials) throws(LinkError) -> NIOSSLContext {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(credentials.certificatePath).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: credentials.keyPath, format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            configuration.minimumTLSVersion = .tlsv13
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .file(credentials.caCertificatePath)
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw LinkError(.tlsConfiguration, "cannot load TLS credentials \(credentials.certificatePath): \(error)")
        }
    }

    /// A client context presenting `credentials` and trusting only the site CA. Host names are not checked:
    /// instances are identified by the role, site and instance in their certificate instead.
    public static func clientContext(_ credentials: SiteCA.Credentials) throws(LinkError) -> NIOSSLContext {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(credentials.certificatePath).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: credentials.keyPath, format: .pem)
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.minimumTLSVersion = .tlsv13
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .file(credentials.caCertificatePath)
            configuration.certificateChain = chain
            configuration.privateKey = .privateKey(key)
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw LinkError(.tlsConfiguration, "cannot load TLS credentials \(credentials.certificatePath): \(error)")
        }
    }

    /// The identity in a peer's (already validated) certificate.
    static func identity(of certificate: NIOSSLCertificate?) throws(LinkError) -> PeerIdentity {
        guard let certificate else { throw LinkError(.forbidden, "peer presented no certificate") }
        let der: [UInt8]
        do {
            der = try certificate.toDERBytes()
        } catch {
            throw LinkError(.forbidden, "peer certificate cannot be read")
        }
        do {
            return try CertificateIdentity.identity(fromDER: der)
        } catch {
            throw LinkError(.forbidden, "peer certificate is not a Troncal instance certificate: \(error.message)")
        }
    }
}
