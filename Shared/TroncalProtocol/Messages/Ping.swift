/// `ping`: a liveness check every service answers, from any role.
public struct Ping: LinkRequest, Hashable {
    /// Retryable: a liveness check.
    public static var retryable: Bool { true }
    public typealias Reply = Pong
    public static let messageType = "ping"
    public init() {}
}

/// `pong`: the reply to `ping`, naming who answered.
public struct Pong: LinkMessage, Hashable {
    public static let messageType = "pong"
    public var role: Role
    public var site: String
    public var instance: String
    public var version: String

    public init(role: Role, site: String, instance: String, version: String) {
        self.role = role
        self.site = site
        self.instance = instance
        self.version = version
    }
}
