public import Foundation
public import Logging
public import ServiceLifecycle
public import TroncalLink
public import TroncalPKI
public import TroncalProtocol
public import TroncalStore

/// What a service instance is given when it starts: its configuration, identity, database and links.
public struct ServiceContext: Sendable {
    public let config: SiteConfig
    /// The directory of the configuration file; relative paths in it are resolved against this.
    public let configDirectory: URL
    public let instance: InstanceSettings
    public let credentials: SiteCA.Credentials
    public let logger: Logger
    /// The service's database, migrated to the build's schema; `nil` for stateless services (the SBC).
    public let store: (any SQLStore)?
    /// Clients for the roles the service depends on, each with every configured instance of that role.
    public let links: [Role: LinkClient]

    public init(
        config: SiteConfig, configDirectory: URL, instance: InstanceSettings, credentials: SiteCA.Credentials, logger: Logger,
        store: (any SQLStore)?, links: [Role: LinkClient]
    ) {
        self.config = config
        self.configDirectory = configDirectory
        self.instance = instance
        self.credentials = credentials
        self.logger = logger
        self.store = store
        self.links = links
    }

    /// The directory for this instance's own state (spools, caches): `dataDirectory/<instance>`.
    public var stateDirectory: URL {
        config.resolve(config.dataDirectory, relativeTo: configDirectory).appendingPathComponent(instance.name)
    }
}

/// One of Troncal's six services, as the runtime hosts it: a role, the roles it calls, its database schema,
/// the link messages it answers and any long-running parts of its own.
public protocol TroncalService: Sendable {
    static var role: Role { get }
    /// Roles this service sends requests to; the runtime opens a link to each and reports its health.
    static var dependencies: [Role] { get }
    /// The schema migrations of this service's database, oldest first; `nil` when it keeps no database.
    static var migrations: [Migration]? { get }

    init(context: ServiceContext) async throws
    /// Registers the link messages this service answers (`ping` and `status` are registered by the runtime).
    func register(_ handlers: inout LinkHandlers)
    /// Long-running parts (listeners, timers) that run beside the link and admin servers.
    var services: [any Service] { get }
    /// Why the instance cannot take traffic yet (e.g. its SIP listeners are not bound), or `nil` when it can. Until
    /// it is `nil`, `/health` answers `unhealthy` (HTTP 503) with this reason, so that nothing is sent to an instance
    /// that would refuse it.
    var notReadyReason: String? { get }
}

extension TroncalService {
    public var services: [any Service] { [] }
    public var notReadyReason: String? { nil }
}

extension SiteConfig {
    /// `path` as an absolute URL, relative ones taken from `directory`.
    public func resolve(_ path: String, relativeTo directory: URL) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : directory.appendingPathComponent(path)
    }
}
