public import Logging
public import ServiceLifecycle
public import TroncalLink
internal import TroncalPKI
public import TroncalProtocol
public import TroncalRuntime
public import TroncalSIP
public import TroncalStore

/// The `sbc` service: the SBC edge, the only service facing the Internet.
///
/// It listens for SIP on the site's `sip.*` ports (UDP, TCP, TLS), applies the SIP stack's strictness rules,
/// then the border defenses (`SIPFrontDoor`: allow/deny lists, flood guard, scanner blocking). Call handling
/// (the B2BUA, media relay and routing) is wired in by the SBC edge issue; it keeps no database (a
/// compromised SBC is wiped and replaced).
public struct SBCService: TroncalService {
    public static let role = Role.sbc
    public static let dependencies: [Role] = [.routing, .billing]
    public static let migrations: [Migration]? = nil

    let context: ServiceContext
    /// The SIP listeners (their bound addresses are useful with port 0).
    public let transport: SIPTransport
    let frontDoor: SIPFrontDoor

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
        let box = TransportReference()
        let transport = SIPTransport(configuration: configuration, logger: context.logger) { inbound in
            if case .respond(let response) = frontDoor.decide(inbound) {
                box.transport?.respond(response, to: inbound.source)
            }
        }
        box.transport = transport
        self.transport = transport
    }

    public func register(_ handlers: inout LinkHandlers) {}

    public var services: [any Service] { [transport] }
}

/// Lets the transport's delivery closure answer through the transport itself.
final class TransportReference: @unchecked Sendable {
    // @unchecked: set once, before the transport runs and can deliver anything; only read afterwards.
    var transport: SIPTransport?
}
