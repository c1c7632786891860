public import Foundation
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
    /// The heartbeat of this run with its call checkpoints (`billing.calls`): who we are, how often, what is queued.
    struct CheckpointIdentity: Sendable {
        var instance: String
        var boot: String
        var startedAt: Date
        var interval: TimeAmount
        /// This loop sends a heartbeat every interval, empty or not; the other loops of the SBC only when they have
        /// checkpoints (one heartbeat per SBC is enough to say it lives).
        var beats = true
    }
    private let checkpointIdentity: CheckpointIdentity?
    private var answered: [CallSummary] = []
    private var ended: [CallSummary] = []
    private var checkpointInFlight = false
    /// The last heartbeat failed: logged once until one is delivered again.
    private var heartbeatFailing = false
    private var heartbeatTask: RepeatedTask?
    /// Checkpoints kept while billing does not take them; beyond this the oldest answered ones go (their CDRs still
    /// come from the spool when the calls end).
    static let checkpointLimit = 20_000
    /// How long reports wait for company, and how many make a frame at most.
    static let batchDelay = TimeAmount.milliseconds(5)
    static let batchLimit = 200

    init(
        routing: LoopLinkClient?, billing: LoopLinkClient?, monitor: LoopLinkClient? = nil, timeout: TimeAmount, eventLoop: any EventLoop,
        logger: Logger, checkpoints: CheckpointIdentity? = nil
    ) {
        self.checkpointIdentity = billing == nil ? nil : checkpoints
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
        var request = request
        if let identity = checkpointIdentity {
            // Billing releases the call's reservation at once if this run is lost before the answer.
            request.sbc = identity.instance
            request.sbcBoot = identity.boot
        }
        return routing.request(request, timeout: timeout)
    }

    /// `billing.renew`.
    func renew(_ request: RenewRequest) -> EventLoopFuture<Authorization> {
        guard let billing else { return eventLoop.makeFailedFuture(LinkError(.unavailable, "no billing instance is configured")) }
        return billing.request(request, timeout: timeout).map(\.authorization)
    }

    /// Starts this loop's heartbeats to billing (none when the site has no billing or checkpoints are off).
    func startHeartbeats() {
        guard let identity = checkpointIdentity, heartbeatTask == nil else { return }
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        heartbeatTask = eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: identity.interval) { _ in bound.value.sendCheckpoints() }
    }

    /// Sends the checkpoints still queued (the final summaries of the last calls) and stops.
    func stopHeartbeats() {
        guard let task = heartbeatTask else { return }
        sendCheckpoints()
        task.cancel()
        heartbeatTask = nil
    }

    /// An answered call's checkpoint (as if it ended now), sent at once (or right after the one in flight): a call
    /// answered just before the SBC dies still gets its CDR. The heartbeat's tick only carries what could not go then.
    func checkpoint(answered summary: CallSummary) {
        guard checkpointIdentity != nil else { return }
        answered.append(summary)
        if answered.count > Self.checkpointLimit { answered.removeFirst(answered.count - Self.checkpointLimit) }
        if heartbeatTask != nil { sendCheckpoints() }
    }

    /// An answered call's final summary, sent with the next heartbeat (billing keeps it until the CDR from the spool).
    func checkpoint(ended summary: CallSummary) {
        guard checkpointIdentity != nil else { return }
        ended.append(summary)
        if ended.count > Self.checkpointLimit { ended.removeFirst(ended.count - Self.checkpointLimit) }
    }

    /// One heartbeat with what is queued; one at a time per loop. What billing did not take goes with the next.
    func sendCheckpoints() {
        guard let identity = checkpointIdentity, let billing, !checkpointInFlight else { return }
        guard identity.beats || !answered.isEmpty || !ended.isEmpty else { return }
        let report = CallCheckpoints(
            instance: identity.instance, boot: identity.boot, startedAt: identity.startedAt, answered: Array(answered.prefix(500)),
            ended: Array(ended.prefix(500)))
        answered.removeFirst(report.answered.count)
        ended.removeFirst(report.ended.count)
        checkpointInFlight = true
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let logger = self.logger
        billing.request(report, timeout: timeout).hop(to: eventLoop).whenComplete { result in
            let links = bound.value
            links.checkpointInFlight = false
            switch result {
            case .failure(let error):
                links.answered.insert(contentsOf: report.answered, at: 0)
                links.ended.insert(contentsOf: report.ended, at: 0)
                if !links.heartbeatFailing {
                    logger.warning("heartbeat to billing not delivered: its checkpoints go with the next", metadata: [
                        "answered": "\(report.answered.count)", "ended": "\(report.ended.count)", "reason": "\(error)",
                    ])
                }
                links.heartbeatFailing = true
            case .success:
                if links.heartbeatFailing { logger.info("heartbeats to billing delivered again") }
                links.heartbeatFailing = false
                // Calls answered while this one was in flight go now, not at the next tick.
                if !links.answered.isEmpty, links.heartbeatTask != nil { links.sendCheckpoints() }
            }
        }
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
        var copy = batch
        copy.copy = true
        // Every routing instance gets the reports: each counts the load and judges the health of every trunk.
        routing.broadcast(batch, copy: copy, timeout: timeout).whenFailure { error in
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
