public import NIOCore
internal import Logging
public import TroncalLink
public import TroncalProtocol

/// The routing and billing links of one event loop's calls: questions go out and their answers come back on the
/// call's own loop (a `LoopLinkClient` per loop), and the one-way reports of a few milliseconds travel together in one
/// `routing.reports` frame; the quality of ended calls goes to the monitor in `monitor.qos` frames of up to a second
/// or 100 calls. Loop-confined.
final class CallLinks {
    let routing: LoopLinkClient?
    let billing: LoopLinkClient?
    let monitor: LoopLinkClient?
    let timeout: TimeAmount
    let eventLoop: any EventLoop
    let logger: Logger
    private var reports = RoutingReports()
    private var flushScheduled = false
    private var qualities: [CallQuality] = []
    private var qualityFlushScheduled = false
    static let qualityDelay = TimeAmount.seconds(1)
    static let qualityLimit = 100
    /// How long reports wait for company, and how many make a frame at most.
    static let batchDelay = TimeAmount.milliseconds(5)
    static let batchLimit = 200

    init(
        routing: LoopLinkClient?, billing: LoopLinkClient?, monitor: LoopLinkClient? = nil, timeout: TimeAmount, eventLoop: any EventLoop,
        logger: Logger
    ) {
        self.routing = routing
        self.billing = billing
        self.monitor = monitor
        self.timeout = timeout
        self.eventLoop = eventLoop
        self.logger = logger
    }

    /// `routing.route`; fails when no routing instance is configured or reachable.
    func route(_ request: RouteRequest) -> EventLoopFuture<RouteDecision> {
        guard let routing else { return eventLoop.makeFailedFuture(LinkError(.unavailable, "no routing instance is configured")) }
        return routing.request(request, timeout: timeout)
    }

    /// `billing.renew`.
    func renew(_ request: RenewRequest) -> EventLoopFuture<Authorization> {
        guard let billing else { return eventLoop.makeFailedFuture(LinkError(.unavailable, "no billing instance is configured")) }
        return billing.request(request, timeout: timeout).map(\.authorization)
    }

    func report(_ attempt: CallAttemptReport) {
        reports.attempts.append(attempt)
        queued()
    }

    func usage(_ usage: TrunkUsage) {
        reports.usage.append(usage)
        queued()
    }

    private func queued() {
        guard routing != nil else {
            reports = RoutingReports()
            return
        }
        if reports.count >= Self.batchLimit { return flush() }
        guard !flushScheduled else { return }
        flushScheduled = true
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.scheduleTask(in: Self.batchDelay) { bound.value.flush() }
    }

    /// Sends what is queued. A lost batch costs routing some statistics, never a call: it is logged, not retried.
    func flush() {
        flushScheduled = false
        guard let routing, !reports.isEmpty else { return }
        let batch = reports
        reports = RoutingReports()
        let logger = self.logger
        routing.send(batch, timeout: timeout).whenFailure { error in
            logger.info("routing reports not delivered", metadata: ["entries": "\(batch.count)", "reason": "\(error)"])
        }
    }

    /// Queues an ended call's quality for the monitor (dropped when the site has none).
    func quality(_ call: CallQuality) {
        guard monitor != nil else { return }
        qualities.append(call)
        if qualities.count >= Self.qualityLimit { return flushQuality() }
        guard !qualityFlushScheduled else { return }
        qualityFlushScheduled = true
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.scheduleTask(in: Self.qualityDelay) { bound.value.flushQuality() }
    }

    /// Sends the queued qualities. A lost batch costs the monitor statistics, never a call: logged, not retried.
    func flushQuality() {
        qualityFlushScheduled = false
        guard let monitor, !qualities.isEmpty else { return }
        let batch = QualityReports(calls: qualities)
        qualities = []
        let logger = self.logger
        monitor.send(batch, timeout: timeout).whenFailure { error in
            logger.info("call quality not delivered to the monitor", metadata: ["calls": "\(batch.calls.count)", "reason": "\(error)"])
        }
    }
}
