public import Logging
public import ServiceLifecycle
public import TroncalLink
internal import TroncalPKI
public import TroncalProtocol
public import TroncalRuntime
public import TroncalSIP
public import TroncalStore
internal import NIOPosix
internal import Foundation

/// The `sbc` service: the SBC edge, the only service facing the Internet.
///
/// It listens for SIP on the site's `sip.*` ports (UDP, TCP, TLS), applies the SIP stack's strictness rules,
/// then the border defenses (`SIPFrontDoor`: allow/deny lists, flood guard, scanner blocking), then hands
/// what passed to the `CallEngine`: customers by source address and digest, the B2BUA per call with its
/// media relay, targets from the routing core over the link, summaries to the local spool. It keeps no
/// database (a compromised SBC is wiped and replaced).
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
    public let relay: MediaRelay
    public let spool: CallSummarySpool

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
        let usesSiteCertificate = sip.tlsCertificatePath.isEmpty
        let configuration = SIPTransportConfiguration(
            host: sip.listenAddress, udpPort: sip.udpPort, tcpPort: sip.tcpPort, tlsPort: sip.tlsPort,
            tlsCertificatePath: usesSiteCertificate ? context.credentials.certificatePath : sip.tlsCertificatePath,
            tlsKeyPath: usesSiteCertificate ? context.credentials.keyPath : sip.tlsKeyPath,
            stallTimeout: .milliseconds(Int(sip.stallTimeoutSeconds * 1000)), maximumConnectionsPerAddress: sip.maximumConnectionsPerAddress)
        let sbc = context.config.sbc
        let advertised = sbc.advertised(listenAddress: sip.listenAddress)
        let relay = MediaRelay(
            bindAddress: sbc.mediaListenAddress.isEmpty ? advertised : sbc.mediaListenAddress, portRange: sbc.mediaPortMin...sbc.mediaPortMax,
            logger: context.logger)
        self.relay = relay
        let spool = try CallSummarySpool(directory: context.stateDirectory.appendingPathComponent("cdr-spool"), logger: context.logger)
        self.spool = spool
        // SIP listeners and the call engine's timers share one event loop: a message received, its transaction timers and
        // the answers sent all stay on that thread, with no wake-up of another loop per message.
        let sipLoop = MultiThreadedEventLoopGroup.singleton.next()
        // Each call holds four relay sockets: more calls than file descriptors allow would fail in the middle (relay
        // ports, spool files, connections). Raise the soft limit to the hard one and admit only what fits.
        let budget = FileDescriptorBudget.raise()
        let maximumCalls = min(sbc.maximumCalls, budget.calls)
        if maximumCalls < sbc.maximumCalls {
            context.logger.warning("fewer calls admitted than sbc.maximumCalls: the process may open too few files", metadata: [
                "maximum-calls": "\(maximumCalls)", "configured": "\(sbc.maximumCalls)", "open-files-limit": "\(budget.limit)",
            ])
        }
        var engineConfiguration = CallEngine.Configuration(
                advertisedAddress: advertised, site: context.config.site, instance: context.instance.name, realm: sbc.realm,
                digestAlgorithms: sbc.digestAlgorithms.compactMap { DigestAlgorithm(token: $0) },
                maximumCalls: maximumCalls, maximumCallsPerCustomer: sbc.maximumCallsPerCustomer,
                maximumCallDuration: .seconds(sbc.maximumCallSeconds), refuseUnknownSources: sip.refusedSources == "refuse")
        engineConfiguration.maximumTransactions = sbc.maximumTransactions
        let engine = CallEngine(
            configuration: engineConfiguration,
            customers: CustomerDirectory(sbc.customers),
            carriers: CustomerDirectory(sbc.carriers.map { CustomerSettings(id: $0.id, addresses: $0.addresses) }),
            router: context.links[.routing].map {
                LinkCallRouter(client: $0, billing: context.links[.billing], timeout: .milliseconds(context.config.link.requestTimeoutMilliseconds))
            }
                ?? NoRouter(),
            sink: spool, relay: relay, frontDoor: frontDoor, logger: context.logger, loop: sipLoop)
        self.engine = engine
        let box = TransportReference()
        let transport = SIPTransport(configuration: configuration, logger: context.logger, group: sipLoop) { inbound in
            switch frontDoor.decide(inbound) {
            case .respond(let response): box.transport?.respond(response, to: inbound.source)
            case .ignore: break
            case .process: engine.receive(inbound)
            }
        }
        box.transport = transport
        engine.attach(transport)
        self.transport = transport
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

    public var services: [any Service] {
        guard let billing = context.links[.billing] else { return [transport] }
        return [transport, SpoolShipper(spool: spool, billing: billing, timeout: .milliseconds(context.config.link.requestTimeoutMilliseconds), logger: context.logger)]
    }
}

/// Lets the transport's delivery closure answer through the transport itself.
final class TransportReference: @unchecked Sendable {
    // @unchecked: set once, before the transport runs and can deliver anything; only read afterwards.
    var transport: SIPTransport?
}

/// How many calls the process's open-file limit leaves room for.
struct FileDescriptorBudget {
    var limit: Int
    var calls: Int

    /// Descriptors kept for everything but relay sockets: listeners, connections, links, the store, spool files, logs.
    static let reserve = 1024
    /// Per call: four relay sockets, and one spool file while its summary is written.
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
