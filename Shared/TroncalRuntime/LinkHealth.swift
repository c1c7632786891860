public import Logging
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
            try? await Task.sleep(for: interval)
        }
    }

    /// Pings each link once now.
    public func probeAll() async {
        for (role, client) in links {
            let ok: Bool
            do {
                _ = try await client.request(Ping(), timeout: timeout)
                ok = true
            } catch {
                ok = false
                if reachable[role] != false {
                    logger.warning("dependency unreachable", metadata: ["link": "\(role)", "reason": "\(error)"])
                }
            }
            if ok && reachable[role] == false { logger.info("dependency reachable again", metadata: ["link": "\(role)"]) }
            reachable[role] = ok
        }
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
