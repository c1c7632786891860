public import Logging
internal import Metrics
public import TroncalLink
public import TroncalProtocol
public import TroncalRuntime
public import TroncalStore
public import ServiceLifecycle

/// The `routing` service: the routing core: E.164 longest-prefix routing over several carriers, failover, carrier
/// health and DIDs.
///
/// It answers `routing.route` from the route table of the site configuration (`routing.routes`): the ordered
/// carrier targets for the callee's longest matching prefix, or a refusal (403 blocked, 404 no route or an
/// invalid number, 503 no carrier in service). The SBC reports each attempt's outcome with `routing.attempt`;
/// with those and with OPTIONS probes sent through an SBC (`sbc.probe`), `HealthBoard` takes failing trunks
/// out of routes and puts them back when they answer again.
public struct RoutingService: TroncalService {
    public static let role = Role.routing
    public static let dependencies: [Role] = [.billing, .sbc]
    public static let migrations: [Migration]? = []

    let context: ServiceContext
    let table: RouteTable
    public let board: HealthBoard

    public init(context: ServiceContext) async throws {
        self.context = context
        do {
            table = try RouteTable(context.config.routing)
        } catch {
            throw ConfigError(file: "configuration", key: "routing", "the route table cannot be built: \(error)")
        }
        board = HealthBoard(failuresToTakeOut: context.config.routing.failuresToTakeOut, logger: context.logger)
        context.logger.info("route table loaded", metadata: ["routes": "\(table.count)", "trunks": "\(table.trunks.count)"])
    }

    public var services: [any Service] {
        let routing = context.config.routing
        guard routing.probeIntervalMilliseconds > 0, let sbc = context.links[.sbc] else { return [] }
        return [TrunkProber(
            trunks: table.trunks, sbc: sbc, board: board, interval: .milliseconds(routing.probeIntervalMilliseconds),
            timeout: .milliseconds(routing.probeTimeoutMilliseconds), logger: context.logger)]
    }

    public func register(_ handlers: inout LinkHandlers) {
        let table = table
        let board = board
        let logger = context.logger
        handlers.on(RouteRequest.self, from: [.sbc]) { request, peer in
            let decision = table.decide(request, inService: board.isInService)
            Counter(label: "troncal_routing_decisions_total", dimensions: [("outcome", decision.outcome.rawValue)]).increment()
            if decision.outcome == .reject {
                logger.info("call refused by routing", metadata: [
                    "call-id": "\(request.callID)", "customer": "\(request.customer)", "status": "\(decision.rejectStatus ?? 0)",
                    "reason": "\(decision.reason ?? "")",
                ])
            }
            return decision
        }
        handlers.onMessage(CallAttemptReport.self, from: [.sbc]) { report, peer in
            board.record(report)
            Counter(label: "troncal_routing_attempts_total", dimensions: [("carrier", report.carrier), ("result", report.result.rawValue)])
                .increment()
            logger.debug("call attempt", metadata: [
                "call-id": "\(report.callID)", "carrier": "\(report.carrier)", "trunk": "\(report.trunk)", "result": "\(report.result.rawValue)",
                "status": "\(report.status.map(String.init) ?? "-")",
            ])
        }
    }
}
