public import TroncalLink
public import TroncalProtocol
public import TroncalRuntime
public import TroncalStore

/// The `routing` service: the routing core: E.164 longest-prefix routing over several carriers, failover, carrier health and DIDs.
///
/// At this stage it runs under the shared runtime and answers `ping` and `status` on its link; its database is migrated at start-up (no tables yet).
public struct RoutingService: TroncalService {
    public static let role = Role.routing
    public static let dependencies: [Role] = [.billing]
    public static let migrations: [Migration]? = []

    let context: ServiceContext

    public init(context: ServiceContext) async throws {
        self.context = context
    }

    public func register(_ handlers: inout LinkHandlers) {}
}
