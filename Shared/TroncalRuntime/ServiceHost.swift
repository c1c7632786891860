public import Foundation
public import Logging
internal import NIOCore
import Synchronization
public import Prometheus
public import ServiceLifecycle
public import UnixSignals
public import TroncalLink
public import TroncalPKI
public import TroncalProtocol
internal import TroncalStore

/// Runs one service instance: opens and migrates its database, starts its mutual-TLS link (answering
/// `ping`, `status` and the service's own messages), its admin HTTP port, its link health probes and its own
/// parts, all in one `ServiceGroup` that shuts down gracefully on SIGTERM or SIGINT.
public struct ServiceHost<S: TroncalService>: Sendable {
    public let config: SiteConfig
    public let configDirectory: URL
    public let instance: InstanceSettings
    public let registry: PrometheusCollectorRegistry
    public let logger: Logger

    public init(config: SiteConfig, configPath: String, instanceName: String, registry: PrometheusCollectorRegistry, logger: Logger) throws(ConfigError) {
        guard let instance = config.instance(named: instanceName) else {
            throw ConfigError(file: configPath, key: "instances", "no instance named '\(instanceName)'")
        }
        guard instance.role == S.role else {
            throw ConfigError(file: configPath, key: "instances", "instance '\(instanceName)' has role \(instance.role), not \(S.role)")
        }
        self.config = config
        self.configDirectory = URL(fileURLWithPath: configPath).deletingLastPathComponent()
        self.instance = instance
        self.registry = registry
        var logger = logger
        logger[metadataKey: "site"] = "\(config.site)"
        logger[metadataKey: "instance"] = "\(instance.name)"
        logger.logLevel = Logger.Level(rawValue: config.logging.level) ?? .info
        self.logger = logger
    }

    /// Starts everything and runs until a signal (or `gracefulShutdown`) ends it.
    public func run(gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        let started = ContinuousClock.now
        let pki = try SiteCA.open(config.resolve(config.pkiDirectory, relativeTo: configDirectory))
        let credentials = pki.credentials(role: S.role, instance: instance.name)
        guard FileManager.default.fileExists(atPath: credentials.certificatePath) else {
            throw PKIError(.missingCA, "no certificate for \(instance.name) at \(credentials.certificatePath); run `troncal pki issue --role \(S.role) --instance \(instance.name)`")
        }
        let timeout = Duration.milliseconds(config.link.requestTimeoutMilliseconds)
        var links: [Role: LinkClient] = [:]
        for role in S.dependencies {
            let endpoints = config.instances(of: role).map { LinkEndpoint(host: $0.host, port: $0.linkPort) }
            links[role] = try LinkClient(
                role: role, endpoints: endpoints, credentials: credentials, logger: logger,
                maximumFrameLength: config.link.maximumFrameBytes)
        }
        let store = try await openStore()
        let context = ServiceContext(
            config: config, configDirectory: configDirectory, instance: instance, credentials: credentials, logger: logger,
            store: store, links: links)
        let service = try await S(context: context)

        let health = LinkHealth(
            links: links, interval: .milliseconds(config.link.probeIntervalMilliseconds), timeout: timeout, logger: logger)
        let identity = credentials.identity
        let instance = self.instance
        let shuttingDown = ShutdownFlag()
        let status: @Sendable () async -> ServiceStatus = {
            let snapshot = await health.snapshot()
            let notReady = service.notReadyReason
            let reason = shuttingDown.isSet ? "shutting down" : notReady.map { "starting: \($0)" }
            let state: HealthState = reason != nil ? .unhealthy : (snapshot.allReachable ? .healthy : .degraded)
            return ServiceStatus(
                role: identity.role, site: identity.site, instance: identity.instance, version: TroncalVersion.current,
                status: state, uptimeSeconds: (ContinuousClock.now - started).seconds,
                linkAddress: LinkEndpoint(host: instance.host, port: instance.linkPort).description,
                adminAddress: LinkEndpoint(host: instance.adminHost, port: instance.adminPort).description,
                links: snapshot.links, pid: getpid(), reason: reason, database: Self.databaseDescription(store))
        }
        var handlers = LinkHandlers(localIdentity: identity)
        handlers.on(Ping.self, from: nil) { _, _ in
            Pong(role: identity.role, site: identity.site, instance: identity.instance, version: TroncalVersion.current)
        }
        handlers.on(StatusRequest.self, from: [.operator, .monitor]) { _, _ in await status() }
        service.register(&handlers)
        if let sqlite = store as? SQLiteStore {
            let snapshots = SnapshotDesk(
                database: sqlite.configuration.path, service: S.role.rawValue, instance: instance.name, frameLimit: config.link.maximumFrameBytes,
                logger: logger)
            handlers.on(BackupSnapshotRequest.self, from: [.backup]) { request, _ in try await snapshots.answer(request) }
        } else if store != nil {
            handlers.on(BackupSnapshotRequest.self, from: [.backup]) { _, _ in
                throw ProtocolError(.unavailable, "this instance stores in PostgreSQL: the backup service dumps that database with pg_dump")
            }
        }

        let linkServer = try LinkServer(
            configuration: .init(host: instance.host, port: instance.linkPort, maximumFrameLength: config.link.maximumFrameBytes),
            credentials: credentials, handlers: handlers, logger: logger)
        let admin = AdminServer(host: instance.adminHost, port: instance.adminPort, registry: registry, logger: logger, health: status)
        let dataDirectory = config.resolve(config.dataDirectory, relativeTo: configDirectory).path
        try? FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let host = HostMetrics(dataDirectory: dataDirectory, logger: logger)

        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: linkServer), .init(service: admin), .init(service: health), .init(service: host),
                ] + service.services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
                    // Last, so that the group's graceful shutdown (in reverse order) reaches it first: `/health` says
                    // "shutting down" while the service's own services drain.
                    + [.init(service: ShutdownNotice(flag: shuttingDown))],
                gracefulShutdownSignals: gracefulShutdownSignals, cancellationSignals: [], logger: logger))
        logger.info("service starting", metadata: [
            "role": "\(S.role)", "link": "\(instance.host):\(instance.linkPort)", "admin": "\(instance.adminHost):\(instance.adminPort)",
        ])
        do {
            try await withGracefulShutdownHandler {
                try await group.run()
            } onGracefulShutdown: {
                shuttingDown.set()
            }
        } catch {
            try? await store?.close()
            throw error
        }
        for client in links.values { await client.close() }
        try? await store?.close()
        logger.info("service stopped")
    }

    private func openStore() async throws -> (any SQLStore)? {
        guard let migrations = S.migrations else { return nil }
        let dataDirectory = config.resolve(config.dataDirectory, relativeTo: configDirectory)
        let store = try await StoreBridge.open(config.store, dataDirectory: dataDirectory, instance: instance.name, logger: logger)
        do {
            try await StoreBridge.migrate(store, service: S.role.rawValue, migrations: migrations, logger: logger)
        } catch {
            try? await store.close()
            throw error
        }
        return store
    }

    /// What `status` says of the database: none, `sqlite`, or the PostgreSQL server the pool uses now.
    static func databaseDescription(_ store: (any SQLStore)?) -> String? {
        guard let store else { return nil }
        if let postgres = store as? PostgresStore {
            return postgres.configuration.candidates.count > 1
                ? "postgres primary \(postgres.currentServer)" : "postgres \(postgres.currentServer)"
        }
        return store.backend.rawValue
    }
}

/// Sets the flag when the service group's graceful shutdown reaches it (SIGTERM), then ends.
struct ShutdownNotice: Service {
    let flag: ShutdownFlag
    func run() async throws {
        try? await gracefulShutdown()
        flag.set()
    }
}

/// Set once when graceful shutdown begins, so `/health` reports `unhealthy` while draining.
final class ShutdownFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
