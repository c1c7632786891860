public import TroncalLink
public import TroncalProtocol
public import TroncalRuntime
public import TroncalStore

/// The `billing` service: billing and CDRs: rating, prepaid/postpaid authorization and call detail records that are never lost.
///
/// At this stage it runs under the shared runtime and answers `ping` and `status` on its link; its database is migrated at start-up (no tables yet).
public struct BillingService: TroncalService {
    public static let role = Role.billing
    public static let dependencies: [Role] = []
    public static let migrations: [Migration]? = []

    let context: ServiceContext

    public init(context: ServiceContext) async throws {
        self.context = context
    }

    public func register(_ handlers: inout LinkHandlers) {}
}
