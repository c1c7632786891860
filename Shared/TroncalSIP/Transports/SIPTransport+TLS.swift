internal import NIOSSL

/// The TLS contexts of the listener and of outbound connections, from the configured files.
extension SIPTransport {
    private var trustRoots: NIOSSLTrustRoots {
        configuration.tlsTrustRootsPath.map { .file($0) } ?? .default
    }

    /// Our certificate chain and key, when configured.
    private func credentials() throws -> (chain: [NIOSSLCertificateSource], key: NIOSSLPrivateKeySource)? {
        guard let certificate = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath else { return nil }
        let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
        return (chain, .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
    }

    func makeServerTLSContext() throws -> NIOSSLContext {
        guard let (chain, key) = try credentials() else { throw SIPTransportError("TLS needs a certificate and a key") }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
        tls.minimumTLSVersion = .tlsv12
        switch configuration.tlsClientCertificates {
        case .none:
            tls.certificateVerification = .none
        case .optional:
            tls.certificateVerification = .optionalVerification
            tls.trustRoots = trustRoots
        case .required:
            tls.certificateVerification = .noHostnameVerification
            tls.trustRoots = trustRoots
        }
        return try NIOSSLContext(configuration: tls)
    }

    func makeClientTLSContext() throws -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .fullVerification
        tls.trustRoots = trustRoots
        if let (chain, key) = try credentials() {
            tls.certificateChain = chain
            tls.privateKey = key
        }
        return try NIOSSLContext(configuration: tls)
    }
}
