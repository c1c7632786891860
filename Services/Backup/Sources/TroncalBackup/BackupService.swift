public import TroncalLink
public import TroncalProtocol
public import TroncalRuntime
public import TroncalStore

/// The `backup` service: backups of every database to isolated, encrypted, checksummed storage.
///
/// At this stage it runs under the shared runtime and answers `ping` and `status` on its link; its database is migrated at start-up (no tables yet).
public struct BackupService: TroncalService {
    public static let role = Role.backup
    public static let dependencies: [Role] = []
    public static let migrations: [Migration]? = []

    let context: ServiceContext

    public init(context: ServiceContext) async throws {
        self.context = context
    }

    public func register(_ handlers: inout LinkHandlers) {}
}
