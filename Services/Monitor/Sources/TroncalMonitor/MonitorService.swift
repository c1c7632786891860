public import TroncalLink
public import TroncalProtocol
public import TroncalRuntime
public import TroncalStore

/// The `monitor` service: monitoring of links, servers and voice quality, alarms and the control rules.
///
/// At this stage it runs under the shared runtime and answers `ping` and `status` on its link; its database is migrated at start-up (no tables yet).
public struct MonitorService: TroncalService {
    public static let role = Role.monitor
    public static let dependencies: [Role] = []
    public static let migrations: [Migration]? = []

    let context: ServiceContext

    public init(context: ServiceContext) async throws {
        self.context = context
    }

    public func register(_ handlers: inout LinkHandlers) {}
}
