public import TroncalLink
public import TroncalProtocol
public import TroncalRuntime
public import TroncalStore

/// The `pbx` service: the hosted multi-tenant PBX: extensions, registration, ring groups, IVR, voicemail.
///
/// Built so far: the tenant catalogs (tenants, extensions, ring groups, time conditions, DIDs) imported, exported and
/// inspected over the link (`pbx.import`, `pbx.export`, `pbx.inspect`, from the operator), stored in its database and
/// loaded at start. Registration and calls come next (docs/pbx.md).
public struct PBXService: TroncalService {
    public static let role = Role.pbx
    public static let dependencies: [Role] = []
    public static let migrations: [Migration]? = PBXCatalogManager.migrations

    let context: ServiceContext
    let catalogs: PBXCatalogManager

    public init(context: ServiceContext) async throws {
        self.context = context
        catalogs = try await PBXCatalogManager(store: context.store, instance: context.instance.name, logger: context.logger)
    }

    public func register(_ handlers: inout LinkHandlers) {
        let catalogs = self.catalogs
        handlers.on(PBXImport.self, from: [.operator]) { request, _ in try await catalogs.receive(request) }
        handlers.on(PBXExport.self, from: [.operator]) { request, _ in try catalogs.export(request) }
        handlers.on(PBXInspect.self, from: [.operator, .monitor]) { request, _ in catalogs.inspect(request) }
    }
}
