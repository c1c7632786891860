public import Logging
public import ServiceLifecycle
public import TroncalLink
internal import TroncalPKI
public import TroncalProtocol
public import TroncalRuntime
public import TroncalSIP
public import TroncalStore
internal import NIOCore
internal import NIOPosix
internal import Foundation

/// The `sbc` service: the SBC edge, the only service facing the Internet.
///
/// It listens for SIP on the site's `sip.*` ports (UDP, TCP, TLS), applies the SIP stack's strictness rules,
/// then the border defenses (`SIPFrontDoor`: allow/deny lists, flood guard, scanner blocking), then hands
/// what passed to the `CallEngine`, which runs each call on one of `sbc.eventLoops` event loops: customers by source
/// address and digest, the B2BUA per call with its media relay, targets from the routing core over the link,
/// summaries to the local spool. It keeps no database (a compromised SBC is wiped and replaced).
public struct SBCService: TroncalService {
    public static let role = Role.sbc
    public static let dependencies: [Role] = [.routing, .billing]
    public static let migrations: [Migration]? = nil

    let context: ServiceContext
    /// The SIP listeners (their bound addresses are useful with port 0).
    public let transport: SIPTransport
    let frontDoor: SIPFrontDoor
    /// The calls (for tests and status).
    public let engine: CallEngine
    public let spool: CallSummarySpool
    /// The event loops of SIP and calls.
    public let eventLoops: Int

    public init(context: ServiceContext) async throws {
        self.context = context
        let sip = context.config.sip
        let accessList = try AccessList(allow: sip.allow, deny: sip.deny)
        var flood = FloodGuard.Configuration()
        flood.requestsPerWindow = sip.requestsPerWindow
        flood.authenticatedRequestsPerWindow = sip.authenticatedRequestsPerWindow
        flood.requestsPerWindowPerAddress = sip.requestsPerWindowPerAddress
        flood.windowSeconds = sip.windowSeconds
        flood.banSeconds = sip.banSeconds
        flood.maximumAuthenticationFailures = sip.maximumAuthenticationFailures
        let frontDoor = SIPFrontDoor(
            accessList: accessList, refusedSources: SIPFrontDoor.RefusedSources(rawValue: sip.refusedSources) ?? .drop,
            floodGuard: flood, logger: context.logger)
        self.frontDoor = frontDoor
        let sbc = context.config.sbc
        // One event loop per core unless told otherwise: the SIP sockets, the calls, their relay sockets and link
        // connections all live on these threads, a call on one of them.
        let eventLoops = sbc.eventLoops > 0 ? sbc.eventLoops : System.coreCount
        self.eventLoops = eventLoops
        let group = MultiThreadedEventLoopGroup(numberOfThreads: eventLoops)
        let usesSiteCertificate = sip.tlsCertificatePath.isEmpty
        var configuration = SIPTransportConfiguration(
            host: sip.listenAddress, udpPort: sip.udpPort, tcpPort: sip.tcpPort, tlsPort: sip.tlsPort,
            tlsCertificatePath: usesSiteCertificate ? context.credentials.certificatePath : sip.tlsCertificatePath,
            tlsKeyPath: usesSiteCertificate ? context.credentials.keyPath : sip.tlsKeyPath,
            stallTimeout: .milliseconds(Int(sip.stallTimeoutSeconds * 1000)), maximumConnectionsPerAddress: sip.maximumConnectionsPerAddress)
        configuration.udpSockets = eventLoops
        // The SBC drains before it stops listening (SIPService).
        configuration.stopsOnGracefulShutdown = false
        configuration.udpReceiveBufferBytes = sip.udpReceiveBufferBytes > 0 ? sip.udpReceiveBufferBytes : nil
        let advertised = sbc.advertised(listenAddress: sip.listenAddress, instance: context.instance.name, instanceHost: context.instance.host)
        let mediaAddress = sbc.mediaBindAddress(advertised: advertised, instance: context.instance.name, instanceHost: context.instance.host)
        let spool = try CallSummarySpool(directory: context.stateDirectory.appendingPathComponent("cdr-spool"), logger: context.logger)
        self.spool = spool
        spool.recoverOpenSegments()
        // Each call holds four relay sockets: more calls than file descriptors allow would fail in the middle (relay
        // ports, spool files, connections). Raise the soft limit to the hard one and admit only what fits.
        let budget = FileDescriptorBudget.raise()
        let maximumCalls = min(sbc.maximumCalls, budget.calls)
        if maximumCalls < sbc.maximumCalls {
            context.logger.warning("fewer calls admitted than sbc.maximumCalls: the process may open too few files", metadata: [
                "maximum-calls": "\(maximumCalls)", "configured": "\(sbc.maximumCalls)", "open-files-limit": "\(budget.limit)",
            ])
        }
        let admission = CallAdmission(
            customers: CustomerDirectory(sbc.customers),
            carriers: CustomerDirectory(sbc.carriers.map { CustomerSettings(id: $0.id, addresses: $0.addresses) }), realm: sbc.realm,
            digestAlgorithms: sbc.digestAlgorithms.compactMap { DigestAlgorithm(token: $0) }, maximumCalls: maximumCalls,
            maximumCallsPerCustomer: sbc.maximumCallsPerCustomer, frontDoor: frontDoor, logger: context.logger)
        var engineConfiguration = CallEngine.Configuration(
            advertisedAddress: advertised, site: context.config.site, instance: context.instance.name,
            maximumCallDuration: .seconds(sbc.maximumCallSeconds), refuseUnknownSources: sip.refusedSources == "refuse")
        engineConfiguration.maximumTransactions = sbc.maximumTransactions
        engineConfiguration.relaySessionsPerLoop = max(1, maximumCalls / eventLoops)
        engineConfiguration.relayPrebindSessions = sbc.relayPrebindSessions
        engineConfiguration.maximumPendingRegistrations = sbc.maximumPendingRegistrations
        engineConfiguration.registrationAttemptTimeout = .milliseconds(max(200, sbc.registrationAttemptMilliseconds))
        engineConfiguration.checkpointInterval = sbc.checkpointIntervalMilliseconds > 0 ? .milliseconds(sbc.checkpointIntervalMilliseconds) : nil
        // The PBX standby pool last: tried only when the instances in service do not answer.
        let pbxs = context.config.instances(of: .pbx).filter { $0.sipPort > 0 }
        let pbxOrder = pbxs.filter { !$0.standby } + pbxs.filter(\.standby)
        engineConfiguration.setRegistrars(pbxOrder.map { (host: $0.host, port: $0.sipPort) }, inService: pbxs.filter { !$0.standby }.count)
        let timeout = Duration.milliseconds(context.config.link.requestTimeoutMilliseconds)
        var membership = InstanceMembership.Settings()
        membership.suspicion = .seconds(Int64(context.config.link.suspicionSeconds))
        let links = try CallEngine.Links(
            routing: Self.linkSettings(.routing, context: context), billing: Self.linkSettings(.billing, context: context),
            monitor: Self.linkSettings(.monitor, context: context), timeout: timeout, membership: membership)
        let box = EngineReference()
        let transport = SIPTransport(configuration: configuration, logger: context.logger, group: group) { inbound in
            switch frontDoor.decide(inbound) {
            case .respond(let response): box.transport?.respond(response, to: inbound.source)
            case .ignore: break
            case .process: box.engine?.receive(inbound)
            }
        }
        let engine = try await CallEngine(
            configuration: engineConfiguration, admission: admission, group: group, transport: transport, spool: spool,
            mediaAddress: mediaAddress, mediaPorts: sbc.mediaPortMin...sbc.mediaPortMax,
            links: links, logger: context.logger)
        box.transport = transport
        box.engine = engine
        self.engine = engine
        self.transport = transport
    }

    /// The settings of every loop's link to `role`, from the instances of the site (nil when it has none).
    static func linkSettings(_ role: Role, context: ServiceContext) throws -> LinkClientSettings? {
        let endpoints = context.config.instances(of: role).map { LinkEndpoint(host: $0.host, port: $0.linkPort) }
        guard !endpoints.isEmpty else { return nil }
        return try LinkClientSettings(
            role: role, endpoints: endpoints, credentials: context.credentials, logger: context.logger,
            maximumFrameLength: context.config.link.maximumFrameBytes)
    }

    public func register(_ handlers: inout LinkHandlers) {
        let engine = engine
        handlers.on(TrunkProbe.self, from: [.routing]) { probe, _ in
            guard let transport = SIPTransportProtocol(rawValue: probe.transport) else {
                return TrunkProbeResult(status: nil, roundTripMilliseconds: nil, failure: "unknown transport \(probe.transport)")
            }
            return await engine.probe(
                host: probe.host, port: probe.port, transport: transport, timeout: .milliseconds(max(100, min(probe.timeoutMilliseconds, 32000))))
        }
    }

    public var notReadyReason: String? {
        transport.isListening ? nil : "SIP listeners not bound"
    }

    public var services: [any Service] {
        var services: [any Service] = []
        let sbc = context.config.sbc
        if sbc.keepAliveSeconds > 0 {
            services.append(
                PhoneKeepAlive(
                    phones: engine.shared.phones, transport: transport, interval: .seconds(sbc.keepAliveSeconds),
                    advertisedAddress: engine.shared.configuration.advertisedAddress, logger: context.logger))
        }
        if let billing = context.links[.billing] {
            services.append(
                SpoolShipper(spool: spool, billing: billing, timeout: .milliseconds(context.config.link.requestTimeoutMilliseconds), logger: context.logger))
        }
        // Last: a graceful stop goes in reverse order, so the calls drain while the shipper and the keep-alives still run.
        services.append(SIPService(
            transport: transport, engine: engine, drain: .seconds(sbc.drainSeconds), grace: .seconds(sbc.drainGraceSeconds), logger: context.logger))
        return services
    }
}

/// The SIP listeners and the calls. At a graceful stop the SBC drains (`CallEngine.drain`, `sbc.drainSeconds`) and
/// only then stops listening, so that the BYEs and ACKs of calls in progress still arrive. When it stops, the relay
/// sockets parked for the next calls are closed too.
struct SIPService: Service {
    let transport: SIPTransport
    let engine: CallEngine
    var drain: Duration = .seconds(30)
    /// New calls are still taken this long after the stop began (`sbc.drainGraceSeconds`), while `/health` says the
    /// SBC is stopping and keepalived moves the floating address away.
    var grace: Duration = .zero
    var logger: Logger?

    func run() async throws {
        let transport = transport
        let engine = engine
        let drain = drain
        let grace = grace
        let logger = logger
        // Billing hears from this SBC while it takes calls; after the last one it falls silent, and billing closes
        // whatever the last heartbeat left open.
        engine.startHeartbeats()
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await transport.run() }
                group.addTask {
                    // Returns when the graceful shutdown begins; throws when the service is cancelled instead.
                    try await gracefulShutdown()
                    if grace > .zero {
                        logger?.notice("SBC stopping: /health says so; new calls still taken while the floating address moves",
                                       metadata: ["grace-seconds": "\(grace.components.seconds)"])
                        try? await Task.sleep(for: grace)
                    }
                    _ = await engine.drain(within: drain)
                    transport.stop()
                }
                // The transport ends first (stopped, or a listener failed): nothing left to drain for.
                try await group.next()
                group.cancelAll()
                try? await group.waitForAll()
            }
        } catch {
            await engine.stopHeartbeats()
            await engine.closeParkedRelays()
            throw error
        }
        await engine.stopHeartbeats()
        await engine.closeParkedRelays()
    }
}

/// Lets the transport's delivery closure reach the engine and the transport, both made after it.
final class EngineReference: @unchecked Sendable {
    // @unchecked: both are set once, before the transport runs and can deliver anything; only read afterwards.
    var transport: SIPTransport?
    var engine: CallEngine?
}

/// How many calls the process's open-file limit leaves room for.
struct FileDescriptorBudget {
    var limit: Int
    var calls: Int

    /// Descriptors kept for everything but relay sockets: listeners, connections, links, the store, spool files, logs.
    static let reserve = 1024
    /// Per call: four relay sockets (open for a call or parked for the next one), and a share of the spool segments.
    static let perCall = 5

    /// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the budget.
    static func raise() -> FileDescriptorBudget {
        var limits = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0 else { return FileDescriptorBudget(limit: -1, calls: Int.max) }
        if limits.rlim_cur < limits.rlim_max {
            var raised = limits
            raised.rlim_cur = limits.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limits = raised }
        }
        let current = UInt64(limits.rlim_cur)
        let limit = current > UInt64(Int32.max) ? Int(Int32.max) : Int(current)
        return FileDescriptorBudget(limit: limit, calls: max(1, (limit - reserve) / perCall))
    }
}
