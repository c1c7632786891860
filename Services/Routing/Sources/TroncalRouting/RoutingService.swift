public import Logging
internal import Foundation
internal import Metrics
public import TroncalLink
public import TroncalProtocol
public import TroncalRuntime
public import TroncalStore
public import ServiceLifecycle

/// The `routing` service: the routing core: E.164 longest-prefix routing over several carriers, failover, carrier
/// health and capacity, and DIDs.
///
/// It answers `routing.route` from the configured routes of the site configuration (`routing.routes`) and the
/// imported catalogs (carriers, plans, routes, rates, DIDs: `routing.import`, stored in its database): the ordered
/// carrier targets for the callee's longest matching prefix, or a refusal (403 blocked, 404 no route or an invalid
/// number, 503 no carrier in service or with room). The SBC reports each attempt's outcome with `routing.attempt`
/// and trunk seizures with `routing.usage`; with those and with OPTIONS probes sent through an SBC (`sbc.probe`),
/// `HealthBoard` takes failing trunks out of routes and puts them back when they answer again, and `TrunkLoad`
/// keeps full trunks out.
public struct RoutingService: TroncalService {
    /// Asks billing whether the customer may make this call; a refusal becomes the answer, a grant its maximum duration.
    static func authorize(
        _ decision: RouteDecision, request: RouteRequest, callee: String, billing: LinkClient, timeout: Duration, logger: Logger
    ) async -> RouteDecision {
        var decision = decision
        do {
            let authorization = try await billing.request(AuthorizeRequest(
                customer: request.customer, callee: callee, callID: request.callID, sbc: request.sbc, sbcBoot: request.sbcBoot), timeout: timeout)
            guard authorization.allowed else {
                return RouteDecision(
                    outcome: .reject, callee: callee, rejectStatus: authorization.status ?? 403, reason: "billing: \(authorization.reason ?? "not authorised")")
            }
            decision.maximumDurationSeconds = authorization.maximumDurationSeconds
            decision.renewable = authorization.renewable
            return decision
        } catch {
            logger.warning("billing could not authorise the call", metadata: [
                "call-id": "\(request.callID)", "customer": "\(request.customer)", "reason": "\(error)",
            ])
            return RouteDecision(outcome: .reject, callee: callee, rejectStatus: 503, reason: "billing unavailable: \(error)")
        }
    }

    public static let role = Role.routing
    public static let dependencies: [Role] = [.billing, .sbc]
    public static let migrations: [Migration]? = CatalogStore.migrations

    let context: ServiceContext
    public let catalogs: CatalogManager
    public let board: HealthBoard
    public let load: TrunkLoad
    public let quality: TrunkQualityBoard

    public init(context: ServiceContext) async throws {
        self.context = context
        do {
            catalogs = try await CatalogManager(settings: context.config.routing, store: context.store, logger: context.logger)
        } catch let error as NumberingError {
            throw ConfigError(file: "configuration", key: "routing", "the route table cannot be built: \(error)")
        }
        board = HealthBoard(failuresToTakeOut: context.config.routing.failuresToTakeOut, logger: context.logger)
        quality = TrunkQualityBoard(minimumMOS: context.config.routing.minimumTrunkMOS, logger: context.logger)
        load = TrunkLoad(seizureLifetime: TimeInterval(context.config.sbc.maximumCallSeconds + 600))
        let table = catalogs.table
        context.logger.info("route table loaded", metadata: [
            "routes": "\(table.count)", "trunks": "\(table.trunks.count)", "dids": "\(table.didCount)",
        ])
    }

    public var services: [any Service] {
        let routing = context.config.routing
        let catalogs = catalogs
        let refresher = CatalogRefresher(catalogs: catalogs, logger: context.logger)
        guard routing.probeIntervalMilliseconds > 0, let sbc = context.links[.sbc] else { return [refresher] }
        return [refresher, TrunkProber(
            trunks: { catalogs.table.trunks }, sbc: sbc, board: board, interval: .milliseconds(routing.probeIntervalMilliseconds),
            timeout: .milliseconds(routing.probeTimeoutMilliseconds), logger: context.logger)]
    }

    public func register(_ handlers: inout LinkHandlers) {
        let catalogs = catalogs
        let board = board
        let load = load
        let quality = quality
        let logger = context.logger
        let billing = context.config.routing.authorization == "required" ? context.links[.billing] : nil
        let billingTimeout = Duration.milliseconds(context.config.link.requestTimeoutMilliseconds)
        handlers.on(RouteRequest.self, from: [.sbc]) { request, peer in
            let now = Date()
            var decision = catalogs.table.decide(request, now: now) { trunk in
                guard board.isInService(trunk.key) else { return .outOfService }
                guard load.hasRoom(trunk, now: now) else { return .atCapacity }
                return quality.isDemoted(trunk.key, now: now) ? .demoted : .available
            }
            if let billing, decision.outcome == .route, let callee = decision.callee {
                decision = await Self.authorize(decision, request: request, callee: callee, billing: billing, timeout: billingTimeout, logger: logger)
            }
            Counter(label: "troncal_routing_decisions_total", dimensions: [("outcome", decision.outcome.rawValue)]).increment()
            if decision.outcome == .reject {
                logger.info("call refused by routing", metadata: [
                    "call-id": "\(request.callID)", "customer": "\(request.customer)", "status": "\(decision.rejectStatus ?? 0)",
                    "reason": "\(decision.reason ?? "")",
                ])
            }
            return decision
        }
        let recordAttempt: @Sendable (CallAttemptReport, Bool) -> Void = { report, copy in
            board.record(report)
            load.record(report)
            // A copy (the original went to another routing instance) updates the state, not the site's counters.
            guard !copy else { return }
            Counter(label: "troncal_routing_attempts_total", dimensions: [("carrier", report.carrier), ("result", report.result.rawValue)])
                .increment()
            logger.debug("call attempt", metadata: [
                "call-id": "\(report.callID)", "carrier": "\(report.carrier)", "trunk": "\(report.trunk)", "result": "\(report.result.rawValue)",
                "status": "\(report.status.map(String.init) ?? "-")",
            ])
        }
        handlers.onMessage(CallAttemptReport.self, from: [.sbc]) { report, _ in recordAttempt(report, false) }
        handlers.onMessage(TrunkUsage.self, from: [.sbc]) { usage, _ in
            load.record(usage)
        }
        handlers.onMessage(RoutingReports.self, from: [.sbc]) { reports, _ in
            for usage in reports.usage { load.record(usage) }
            for report in reports.attempts { recordAttempt(report, reports.copy ?? false) }
        }
        handlers.onMessage(TrunkQualityReport.self, from: [.monitor]) { report, _ in
            quality.update(report)
        }
        handlers.on(RoutingImport.self, from: [.operator]) { part, peer in
            try await catalogs.receive(part)
        }
        handlers.on(RoutingExport.self, from: [.operator]) { request, _ in
            try catalogs.export(request)
        }
        handlers.on(RoutingInspect.self, from: [.operator, .monitor]) { _, _ in
            let table = catalogs.table
            let catalog = catalogs.catalog
            let trunks = table.allTrunks.map { trunk in
                let status = board.status(of: trunk.key)
                let (inProgress, lastSecond) = load.load(of: trunk.key)
                let verdict = quality.verdict(trunk.key)
                return RoutingInspection.Trunk(
                    carrier: trunk.carrier, trunk: trunk.trunk, inService: status.inService, reason: status.reason,
                    consecutiveFailures: status.consecutiveFailures, answerSeizureRatio: status.answerSeizureRatio,
                    postDialDelayMilliseconds: status.postDialDelayMilliseconds, callsInProgress: inProgress, callsLastSecond: lastSecond,
                    maximumCalls: trunk.maximumCalls, maximumCallsPerSecond: trunk.maximumCallsPerSecond, mos: verdict?.mos,
                    qualityCalls: verdict?.calls, demoted: verdict?.demoted ?? false,
                    networkEffectivenessRatio: status.networkEffectivenessRatio)
            }
            return RoutingInspection(
                catalogs: RoutingCatalogKind.allCases.map {
                    RoutingInspection.Catalog(kind: $0, rows: catalog.rows(of: $0), generation: catalog.generations[$0] ?? 0)
                }, prefixes: table.count, trunks: trunks)
        }
    }
}

/// Every 2 s: were catalogs imported through another routing instance of the site? They are then in force here too.
struct CatalogRefresher: Service {
    let catalogs: CatalogManager
    let logger: Logger

    func run() async throws {
        // No store (catalogs from site.json only): nothing to pick up; stays until the service stops.
        guard catalogs.store != nil else { return await Task.sleepUnlessShuttingDown(for: .seconds(86_400 * 365)) }
        var failing = false
        while !Task.isCancelledOrShuttingDown {
            await Task.sleepUnlessShuttingDown(for: .seconds(2))
            do {
                try await catalogs.refresh()
                failing = false
            } catch {
                if !failing { logger.warning("catalogs imported elsewhere could not be checked; tried again every 2 s", metadata: ["reason": "\(error)"]) }
                failing = true
            }
        }
    }
}
