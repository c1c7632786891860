/// Where and how the SIP transports listen, and the limits they enforce.
public struct SIPTransportConfiguration: Sendable {
    public var host: String
    /// UDP port; nil to not listen on UDP. 0 picks a free port.
    public var udpPort: Int?
    public var tcpPort: Int?
    public var tlsPort: Int?
    /// PEM files of the TLS server certificate chain and key, required when `tlsPort` is set.
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    public var validator: SIPValidator.Configuration
    /// A TCP/TLS connection with a partial message pending this long is closed (RFC 3261 §18.3 leaves it to
    /// the implementation; RFC 4475 §3.1.2.2 expects a close).
    public var stallTimeout: Duration
    /// A connection with no traffic this long is closed.
    public var idleTimeout: Duration
    /// Concurrent TCP+TLS connections allowed from one IP address; further ones are closed at once.
    public var maximumConnectionsPerAddress: Int
    public var maximumConnections: Int

    public init(
        host: String = "0.0.0.0", udpPort: Int? = 5060, tcpPort: Int? = 5060, tlsPort: Int? = nil, tlsCertificatePath: String? = nil,
        tlsKeyPath: String? = nil, validator: SIPValidator.Configuration = .init(), stallTimeout: Duration = .seconds(32),
        idleTimeout: Duration = .seconds(3600), maximumConnectionsPerAddress: Int = 64, maximumConnections: Int = 10_000
    ) {
        self.host = host
        self.udpPort = udpPort
        self.tcpPort = tcpPort
        self.tlsPort = tlsPort
        self.tlsCertificatePath = tlsCertificatePath
        self.tlsKeyPath = tlsKeyPath
        self.validator = validator
        self.stallTimeout = stallTimeout
        self.idleTimeout = idleTimeout
        self.maximumConnectionsPerAddress = maximumConnectionsPerAddress
        self.maximumConnections = maximumConnections
    }
}
