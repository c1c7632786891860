public import TroncalProtocol

/// The configuration of one site: one JSON file, read by every service instance of the site and by the
/// operator CLI. Every key has a default (see `docs/configuration.md`); relative paths are resolved against
/// the directory of the file.
public struct SiteConfig: Codable, Sendable, Equatable {
    /// The site's name: 1-63 characters of a-z, 0-9 and -. Written into every certificate.
    public var site: String = "site-a"
    /// Where the site CA and the instance certificates live.
    public var pkiDirectory: String = "pki"
    /// Where the services keep their SQLite databases, spools and other state.
    public var dataDirectory: String = "data"
    public var logging: LoggingSettings = LoggingSettings()
    public var link: LinkSettings = LinkSettings()
    public var store: StoreSettings = StoreSettings()
    public var sip: SIPSettings = SIPSettings()
    public var sbc: SBCSettings = SBCSettings()
    public var routing: RoutingSettings = RoutingSettings()
    public var billing: BillingSettings = BillingSettings()
    public var monitor: MonitorSettings = MonitorSettings()
    public var backup: BackupSettings = BackupSettings()
    public var pbx: PBXSettings = PBXSettings()
    /// Every instance of the site: its role, name and addresses. At least one per role.
    public var instances: [InstanceSettings] = Role.services.map { InstanceSettings.default(for: $0) }

    public init() {}

    /// The instance named `name`, if configured.
    public func instance(named name: String) -> InstanceSettings? {
        instances.first { $0.name == name }
    }

    /// The instances of a role, in file order (the order links try them in).
    public func instances(of role: Role) -> [InstanceSettings] {
        instances.filter { $0.role == role }
    }

    /// A copy with every port moved by `offset`, for running several sites side by side on one machine.
    public func shiftingPorts(by offset: Int) -> SiteConfig {
        var copy = self
        copy.sip.udpPort += offset
        copy.sip.tcpPort += offset
        copy.sip.tlsPort += offset
        copy.monitor.webPort += offset
        copy.instances = instances.map { instance in
            var shifted = instance
            shifted.linkPort += offset
            shifted.adminPort += offset
            if shifted.sipPort > 0 { shifted.sipPort += offset }
            return shifted
        }
        return copy
    }
}

/// `logging`: how much the services log.
public struct LoggingSettings: Codable, Sendable, Equatable {
    /// One of trace, debug, info, notice, warning, error, critical.
    public var level: String = "info"
    public init() {}
}

/// `link`: the mutual-TLS links between services.
public struct LinkSettings: Codable, Sendable, Equatable {
    /// Frames longer than this are refused and the connection closed.
    public var maximumFrameBytes: Int = 1 << 20
    /// Default deadline of a request.
    public var requestTimeoutMilliseconds: Int = 5000
    /// How often each service pings the services it depends on (shown as link health).
    public var probeIntervalMilliseconds: Int = 2000
    /// How long an SBC keeps an instance that stopped answering its probes suspected (no new requests) before it
    /// declares it dead, before the local health multiplier (docs/resilience.md).
    public var suspicionSeconds: Int = 30
    public init() {}
}

/// `store`: the database of the services that keep state.
public struct StoreSettings: Codable, Sendable, Equatable {
    /// `sqlite` (embedded, one file per instance under `dataDirectory/db`) or `postgres`.
    public var backend: String = "sqlite"
    public var postgres: PostgresSettings = PostgresSettings()
    public init() {}
}

/// `store.postgres`: the PostgreSQL server, when `store.backend` is `postgres`.
public struct PostgresSettings: Codable, Sendable, Equatable {
    public var host: String = "127.0.0.1"
    public var port: Int = 5432
    public var user: String = "troncal"
    public var password: String = ""
    public var database: String = "troncal"
    /// A Unix socket directory's socket path; when set, used instead of host and port.
    public var unixSocketPath: String = ""
    /// Every server of a replicated cluster (`host:port`, primary and standbys in any order); when set, `host` and
    /// `port` are not used and the store follows the primary (see docs/store.md).
    public var hosts: [String] = []
    /// With `hosts`: how often the store checks that its server is still the primary.
    public var primaryCheckIntervalMilliseconds: Int = 1_000
    /// With `hosts`: how long a statement that could not run waits for a primary.
    public var failoverWaitSeconds: Int = 30
    /// TLS to the server: `disable`, `prefer` or `require` (a verified certificate); empty: `disable` for loopback
    /// and Unix sockets, `require` for any other host.
    public var tls: String = ""
    /// The CA (PEM) that signed the server's certificate; empty: the system's trust store.
    public var tlsCACertificatePath: String = ""
    public init() {}
}

/// `sip`: where the SBC listens for SIP, and its border defenses.
public struct SIPSettings: Codable, Sendable, Equatable {
    public var listenAddress: String = "0.0.0.0"
    public var udpPort: Int = 5060
    public var tcpPort: Int = 5060
    public var tlsPort: Int = 5061
    /// PEM certificate chain and key for SIP over TLS; empty: the SBC instance's site certificate.
    public var tlsCertificatePath: String = ""
    public var tlsKeyPath: String = ""
    /// Source networks allowed to send SIP (CIDR); empty allows every source not denied.
    public var allow: [String] = []
    /// Source networks always refused (CIDR).
    public var deny: [String] = []
    /// `drop` (say nothing) or `refuse` (answer 403) to requests from sources the lists refuse.
    public var refusedSources: String = "drop"
    /// Requests one IP:port (or account) may send per window before a ban.
    public var requestsPerWindow: Int = 50
    /// The higher limit for sources that authenticated.
    public var authenticatedRequestsPerWindow: Int = 200
    /// Requests per window from one IP address across all its ports.
    public var requestsPerWindowPerAddress: Int = 500
    public var windowSeconds: Double = 2
    public var banSeconds: Double = 300
    /// Digest failures from one source before it is banned.
    public var maximumAuthenticationFailures: Int = 5
    /// A TCP/TLS connection whose partial message is pending this long is closed.
    public var stallTimeoutSeconds: Double = 32
    /// Concurrent TCP/TLS connections allowed from one IP address.
    public var maximumConnectionsPerAddress: Int = 64
    /// The kernel receive buffer asked for each SIP UDP socket (SO_RCVBUF). A flood fills a small buffer in
    /// milliseconds while the SBC is busy, and what arrives then (a carrier's 200, a customer's ACK) is lost with it.
    /// Linux grants at most `net.core.rmem_max`; the SBC logs what it got.
    public var udpReceiveBufferBytes: Int = 4 << 20
    public init() {}
}

/// One entry of `instances`: a service instance and its addresses.
public struct InstanceSettings: Codable, Sendable, Equatable {
    public var role: Role
    /// Unique in the site; also the certificate's CN and the name of its files.
    public var name: String
    /// The address the link listens on and that peers connect to.
    public var host: String
    public var linkPort: Int
    /// The admin HTTP port (`/health`, `/metrics`) listens here.
    public var adminHost: String
    public var adminPort: Int
    /// A PBX instance's SIP port (UDP and TCP) on `host`, where the site's SBCs relay registrations and calls (never
    /// exposed); 0 for the other roles. Default 5070.
    public var sipPort: Int
    /// In the site's standby pool: configured (certificates, addresses, known to its peers) but not started until the
    /// capacity controller takes it into service (`monitor.capacity.mode` `act`, docs/capacity.md).
    public var standby: Bool = false

    public init(
        role: Role, name: String, host: String = "127.0.0.1", linkPort: Int, adminHost: String = "127.0.0.1", adminPort: Int, sipPort: Int? = nil
    ) {
        self.role = role
        self.name = name
        self.host = host
        self.linkPort = linkPort
        self.adminHost = adminHost
        self.adminPort = adminPort
        self.sipPort = sipPort ?? Self.defaultSIPPort(for: role)
    }

    /// 5070 for a PBX, 0 (none) for the other roles.
    public static func defaultSIPPort(for role: Role) -> Int { role == .pbx ? 5070 : 0 }

    /// The default link port of each role: sbc 7101, routing 7102, billing 7103, pbx 7104, backup 7105, monitor 7106.
    public static func defaultLinkPort(for role: Role) -> Int { 7100 + (Role.services.firstIndex(of: role).map { $0 + 1 } ?? 0) }
    /// The default admin port of each role: sbc 8101 … monitor 8106.
    public static func defaultAdminPort(for role: Role) -> Int { 8100 + (Role.services.firstIndex(of: role).map { $0 + 1 } ?? 0) }

    public static func `default`(for role: Role) -> InstanceSettings {
        InstanceSettings(role: role, name: "\(role.rawValue)-1", linkPort: defaultLinkPort(for: role), adminPort: defaultAdminPort(for: role))
    }

    enum CodingKeys: String, CodingKey { case role, name, host, linkPort, adminHost, adminPort, sipPort, standby }

    /// Only `role` and `name` are required; addresses default to loopback and the role's default ports.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        role = try container.decode(Role.self, forKey: .role)
        name = try container.decode(String.self, forKey: .name)
        host = try container.decodeIfPresent(String.self, forKey: .host) ?? "127.0.0.1"
        linkPort = try container.decodeIfPresent(Int.self, forKey: .linkPort) ?? Self.defaultLinkPort(for: role)
        adminHost = try container.decodeIfPresent(String.self, forKey: .adminHost) ?? "127.0.0.1"
        adminPort = try container.decodeIfPresent(Int.self, forKey: .adminPort) ?? Self.defaultAdminPort(for: role)
        sipPort = try container.decodeIfPresent(Int.self, forKey: .sipPort) ?? Self.defaultSIPPort(for: role)
        standby = try container.decodeIfPresent(Bool.self, forKey: .standby) ?? false
    }
}
