public import Logging
internal import Metrics
public import ServiceLifecycle
public import TroncalLink
public import TroncalProtocol

/// Pings every service this one depends on, on a fixed interval, and keeps the last outcome per link for
/// `/health` and `status`. A dependency with no reachable instance makes the service `degraded`.
public actor LinkHealth: Service {
    public let links: [Role: LinkClient]
    let interval: Duration
    let timeout: Duration
    let logger: Logger
    private var reachable: [Role: Bool] = [:]

    public init(links: [Role: LinkClient], interval: Duration, timeout: Duration, logger: Logger) {
        self.links = links
        self.interval = interval
        self.timeout = timeout
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await probeAll()
            await Task.sleepUnlessShuttingDown(for: interval)
        }
    }

    /// The last ten probes of each link (latency, jitter, loss), also exported as `troncal_link_latency_milliseconds`,
    /// `troncal_link_jitter_milliseconds` and `troncal_link_loss_percent` with the label `target` (the role).
    public private(set) var windows: [Role: ProbeWindow] = [:]

    /// Pings each link once now.
    public func probeAll() async {
        for (role, client) in links {
            let ok: Bool
            let clock = ContinuousClock()
            let start = clock.now
            do {
                _ = try await client.request(Ping(), timeout: timeout)
                ok = true
                let elapsed = (clock.now - start).components
                record(role, Double(elapsed.seconds) * 1000 + Double(elapsed.attoseconds) / 1e15)
            } catch {
                ok = false
                record(role, nil)
                if reachable[role] != false {
                    logger.warning("dependency unreachable", metadata: ["link": "\(role)", "reason": "\(error)"])
                }
            }
            if ok && reachable[role] == false { logger.info("dependency reachable again", metadata: ["link": "\(role)"]) }
            reachable[role] = ok
        }
    }

    private func record(_ role: Role, _ roundTrip: Double?) {
        var window = windows[role] ?? ProbeWindow(size: 10)
        window.record(roundTrip)
        windows[role] = window
        let dimensions = [("target", role.rawValue)]
        if let latency = window.latencyMilliseconds { Gauge(label: "troncal_link_latency_milliseconds", dimensions: dimensions).record(latency) }
        if let jitter = window.jitterMilliseconds { Gauge(label: "troncal_link_jitter_milliseconds", dimensions: dimensions).record(jitter) }
        if let loss = window.lossPercent { Gauge(label: "troncal_link_loss_percent", dimensions: dimensions).record(loss) }
    }

    /// Each link's state, and whether all are reachable.
    public func snapshot() async -> (links: [LinkStatus], allReachable: Bool) {
        var statuses: [LinkStatus] = []
        for (role, client) in links.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            var status = await client.status()
            if reachable[role] == nil { status.state = "not yet probed" }
            statuses.append(status)
        }
        let all = links.keys.allSatisfy { reachable[$0] == true }
        return (statuses, all)
    }
}
