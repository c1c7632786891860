/// Where and how the SIP transports listen, and the limits they enforce.
public struct SIPTransportConfiguration: Sendable {
    public var host: String
    /// UDP port; nil to not listen on UDP. 0 picks a free port.
    public var udpPort: Int?
    public var tcpPort: Int?
    public var tlsPort: Int?
    /// PEM files of the TLS server certificate chain and key, required when `tlsPort` is set; also presented as the
    /// client certificate on outbound TLS connections when set.
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    /// PEM file of the certificate authorities trusted for TLS peers: client certificates on the listener, server
    /// certificates on outbound connections. nil: the system's trust store.
    public var tlsTrustRootsPath: String?
    /// Whether the TLS listener asks clients for a certificate, and whether it insists on one.
    public var tlsClientCertificates: ClientCertificatePolicy
    public var validator: SIPValidator.Configuration
    /// A TCP/TLS connection with a partial message pending this long is closed (RFC 3261 §18.3 leaves it to
    /// the implementation; RFC 4475 §3.1.2.2 expects a close).
    public var stallTimeout: Duration
    /// A connection with no traffic this long is closed.
    public var idleTimeout: Duration
    /// Concurrent TCP+TLS connections allowed from one IP address; further ones are closed at once.
    public var maximumConnectionsPerAddress: Int
    public var maximumConnections: Int
    /// UDP sockets bound to `udpPort`, one per event loop of the transport's group (SO_REUSEPORT when more than one):
    /// the kernel spreads sources over them, and each loop sends from its own socket without a thread hop.
    public var udpSockets: Int = 1
    /// SO_RCVBUF asked for each UDP socket; nil keeps the kernel's default. The kernel may grant less
    /// (`net.core.rmem_max`): `SIPTransport.udpReceiveBufferBytes` tells what it got.
    public var udpReceiveBufferBytes: Int?
    /// Whether `run()` stops the listeners when the service group begins its graceful shutdown. An element that drains
    /// first (the SBC) sets it to false and calls `stop()` itself when done.
    public var stopsOnGracefulShutdown = true

    public init(
        host: String = "0.0.0.0", udpPort: Int? = 5060, tcpPort: Int? = 5060, tlsPort: Int? = nil, tlsCertificatePath: String? = nil,
        tlsKeyPath: String? = nil, validator: SIPValidator.Configuration = .init(), stallTimeout: Duration = .seconds(32),
        idleTimeout: Duration = .seconds(3600), maximumConnectionsPerAddress: Int = 64, maximumConnections: Int = 10_000,
        tlsTrustRootsPath: String? = nil, tlsClientCertificates: ClientCertificatePolicy = .none
    ) {
        self.host = host
        self.udpPort = udpPort
        self.tcpPort = tcpPort
        self.tlsPort = tlsPort
        self.tlsCertificatePath = tlsCertificatePath
        self.tlsKeyPath = tlsKeyPath
        self.tlsTrustRootsPath = tlsTrustRootsPath
        self.tlsClientCertificates = tlsClientCertificates
        self.validator = validator
        self.stallTimeout = stallTimeout
        self.idleTimeout = idleTimeout
        self.maximumConnectionsPerAddress = maximumConnectionsPerAddress
        self.maximumConnections = maximumConnections
    }

    /// Client certificates on the TLS listener: not asked for, verified when presented, or required.
    public enum ClientCertificatePolicy: String, Sendable, Hashable, Codable {
        case none
        case optional
        case required
    }
}
