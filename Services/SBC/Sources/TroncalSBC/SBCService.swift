public import TroncalLink
public import TroncalProtocol
public import TroncalRuntime
public import TroncalStore

/// The `sbc` service: the SBC edge, the only service facing the Internet: SIP over UDP/TCP/TLS, defenses, B2BUA calls and media relay.
///
/// At this stage it runs under the shared runtime and answers `ping` and `status` on its link; it keeps no database (a compromised SBC is wiped and replaced).
public struct SBCService: TroncalService {
    public static let role = Role.sbc
    public static let dependencies: [Role] = [.routing, .billing]
    public static let migrations: [Migration]? = nil

    let context: ServiceContext

    public init(context: ServiceContext) async throws {
        self.context = context
    }

    public func register(_ handlers: inout LinkHandlers) {}
}
