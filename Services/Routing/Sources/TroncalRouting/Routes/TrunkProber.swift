public import Logging
internal import Metrics
public import ServiceLifecycle
public import TroncalLink
public import TroncalProtocol
internal import TroncalRuntime
import Synchronization

/// The routing core's view of trunk health, shared by the `routing.route` handler, the attempt reports and the
/// prober.
public final class HealthBoard: Sendable {
    private let health: Mutex<CarrierHealth>
    let logger: Logger

    public init(failuresToTakeOut: Int, logger: Logger) {
        self.health = Mutex(CarrierHealth(failuresToTakeOut: failuresToTakeOut))
        self.logger = logger
    }

    public func isInService(_ trunk: CarrierHealth.Trunk) -> Bool { health.withLock { $0.isInService(trunk) } }

    public func status(of trunk: CarrierHealth.Trunk) -> CarrierHealth.Status { health.withLock { $0.status(of: trunk) } }

    public func record(_ report: CallAttemptReport) {
        let change = health.withLock { $0.record(report) }
        announce(change)
    }

    public func recordProbe(_ trunk: CarrierHealth.Trunk, alive: Bool, detail: String) {
        let change = health.withLock { $0.recordProbe(trunk, alive: alive, detail: detail) }
        announce(change)
    }

    private func announce(_ change: CarrierHealth.Change?) {
        switch change {
        case .takenOut(let trunk, let reason)?:
            Counter(label: "troncal_routing_trunk_changes_total", dimensions: [("carrier", trunk.carrier), ("change", "out")]).increment()
            logger.warning("trunk taken out of routes", metadata: ["carrier": "\(trunk.carrier)", "trunk": "\(trunk.trunk)", "reason": "\(reason)"])
        case .restored(let trunk)?:
            Counter(label: "troncal_routing_trunk_changes_total", dimensions: [("carrier", trunk.carrier), ("change", "restored")]).increment()
            logger.notice("trunk back in routes: it answers probes again", metadata: ["carrier": "\(trunk.carrier)", "trunk": "\(trunk.trunk)"])
        case nil:
            break
        }
    }
}

/// Probes every trunk of the route table with SIP OPTIONS through an SBC, every `interval`. An SBC that cannot
/// be reached says nothing about the trunks: such rounds are skipped, not counted against them.
public struct TrunkProber: Service {
    /// The trunks to probe, read again each round (an import may change them).
    let trunks: @Sendable () -> [RouteTarget]
    let sbc: LinkClient
    let board: HealthBoard
    let interval: Duration
    let timeout: Duration
    let logger: Logger

    public init(trunks: @escaping @Sendable () -> [RouteTarget], sbc: LinkClient, board: HealthBoard, interval: Duration, timeout: Duration, logger: Logger) {
        self.trunks = trunks
        self.sbc = sbc
        self.board = board
        self.interval = interval
        self.timeout = timeout
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let round = trunks()
            await withTaskGroup(of: Void.self) { group in
                for target in round {
                    group.addTask { await probe(target) }
                }
            }
            await Task.sleepUnlessShuttingDown(for: interval)
        }
    }

    func probe(_ target: RouteTarget) async {
        let trunk = CarrierHealth.Trunk(carrier: target.carrier, trunk: target.trunk)
        let request = TrunkProbe(
            host: target.host, port: target.port, transport: target.transport,
            timeoutMilliseconds: Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
        do {
            let result = try await sbc.request(request, timeout: timeout + .seconds(1))
            board.recordProbe(trunk, alive: result.isAlive, detail: result.status.map { "answered \($0)" } ?? (result.failure ?? "no answer"))
        } catch {
            logger.debug("trunk probe skipped: no SBC to send it", metadata: ["carrier": "\(target.carrier)", "reason": "\(error)"])
        }
    }
}
