/// `status`: asks a service for its health, uptime and links; the operator CLI's `troncal status` sends it.
public struct StatusRequest: LinkRequest, Hashable {
    public typealias Reply = ServiceStatus
    public static let messageType = "status"
    public init() {}
}

/// Overall health of an instance.
public enum HealthState: String, Codable, Sendable, Hashable {
    /// Serving normally.
    case healthy
    /// Serving, but something it depends on is missing (e.g. a link with no reachable instance).
    case degraded
    /// Shutting down or unable to serve.
    case unhealthy
}

/// The state of one outbound link as seen by its client.
public struct LinkStatus: Codable, Sendable, Hashable {
    public var role: Role
    /// The endpoint currently connected, `host:port`, if any.
    public var connected: String?
    public var endpoints: [String]
    public var state: String

    public init(role: Role, connected: String?, endpoints: [String], state: String) {
        self.role = role
        self.connected = connected
        self.endpoints = endpoints
        self.state = state
    }
}

/// `status.reply`: what `/health` shows, over the link.
public struct ServiceStatus: LinkMessage, Hashable {
    public static let messageType = "status.reply"
    public var role: Role
    public var site: String
    public var instance: String
    public var version: String
    public var status: HealthState
    public var uptimeSeconds: Double
    /// The address the service's mutual-TLS link listens on, `host:port`.
    public var linkAddress: String
    /// The address of the admin HTTP port (`/health`, `/metrics`), `host:port`.
    public var adminAddress: String
    public var links: [LinkStatus]
    /// The operating system's process id of the instance.
    public var pid: Int32?
    /// Why the instance is `unhealthy` when it says (still starting: its listeners are not bound yet; shutting down).
    public var reason: String?
    /// The database it uses now: `sqlite`, or `postgres <host:port>` (with several hosts, the primary it follows).
    public var database: String?

    public init(
        role: Role, site: String, instance: String, version: String, status: HealthState, uptimeSeconds: Double,
        linkAddress: String, adminAddress: String, links: [LinkStatus], pid: Int32? = nil, reason: String? = nil,
        database: String? = nil
    ) {
        self.pid = pid
        self.reason = reason
        self.database = database
        self.role = role
        self.site = site
        self.instance = instance
        self.version = version
        self.status = status
        self.uptimeSeconds = uptimeSeconds
        self.linkAddress = linkAddress
        self.adminAddress = adminAddress
        self.links = links
    }
}
