internal import Foundation
public import Logging
internal import Metrics
public import NIOCore
public import TroncalCall
public import TroncalLink
internal import TroncalMedia
public import TroncalProtocol
public import TroncalSIP
import Synchronization

/// The SBC's calls over its event loops: the shell that hands each SIP message the border let through to the loop
/// its Call-ID hashes to (`CallLoopRouting`), where that call's `CallLayer` and `SBCCalls` live with its media relay,
/// routing link and spool writer. Messages of one dialog keep their arrival order: they come from one socket or
/// connection, whose loop hands them over in order, and are handled on one loop.
///
/// Per loop and not shared: transactions, timers, calls, relay ports (each loop has its share of the range), link
/// connections. Shared and lock-free: the admission counters (atomics). Shared behind a lock, off the path of calls
/// from trunks known by address: digest nonce counts, and the border's flood guard (`SIPFrontDoor`).
public final class CallEngine: Sendable {
    public struct Configuration: Sendable {
        /// The address written into Via, Contact and SDP.
        public var advertisedAddress: String
        public var site: String
        public var instance: String
        public var maximumCallDuration: Duration
        public var refuseUnknownSources: Bool
        /// SIP transactions held at once, over all loops (`sbc.maximumTransactions`).
        public var maximumTransactions: Int = 262_144
        public var timers: TransactionTimers
        /// Relay sessions each loop may have open or parked (its share of what file descriptors allow; see
        /// `MediaRelay`).
        public var relaySessionsPerLoop: Int = .max
        /// Relay sessions each loop binds at start (`sbc.relayPrebindSessions`).
        public var relayPrebindSessions: Int = 32
        /// The PBX instances' SIP addresses, where phones' REGISTERs are relayed (none: REGISTER gets 405).
        var registrars: [RegistrationRelay.Target] = []
        var registrarsInService = 0
        /// `sbc.maximumPendingRegistrations`, `sbc.registrationAttemptMilliseconds`.
        public var maximumPendingRegistrations: Int = 512
        public var registrationAttemptTimeout: Duration = .seconds(4)
        /// How often each loop sends billing its heartbeat with the checkpoints of its calls (`billing.calls`,
        /// `sbc.checkpointIntervalMilliseconds`); nil: none, and billing cannot close the calls of a lost SBC.
        public var checkpointInterval: Duration? = .seconds(1)
        var loopCount = 1

        /// Where REGISTERs go: each PBX instance's host and SIP port.
        /// The site's PBX instances: those in service first (`inService` of them share registrations and calls by
        /// hash), then the standby pool, tried last (not running until the capacity controller starts one).
        public mutating func setRegistrars(_ addresses: [(host: String, port: Int)], inService: Int? = nil) {
            registrars = addresses.map { RegistrationRelay.Target(host: $0.host, port: $0.port) }
            registrarsInService = min(addresses.count, inService ?? addresses.count)
        }

        public init(
            advertisedAddress: String, site: String, instance: String, maximumCallDuration: Duration = .seconds(14400),
            refuseUnknownSources: Bool = false, timers: TransactionTimers = TransactionTimers()
        ) {
            self.advertisedAddress = advertisedAddress
            self.site = site
            self.instance = instance
            self.maximumCallDuration = maximumCallDuration
            self.refuseUnknownSources = refuseUnknownSources
            self.timers = timers
        }
    }

    struct Loop: Sendable {
        let eventLoop: any EventLoop
        let calls: NIOLoopBound<SBCCalls>
    }

    let shared: SBCCallShared
    let loops: [Loop]
    let routing: CallLoopRouting
    private let nextProbeLoop = Atomic<Int>(0)

    /// The links of every loop towards routing and billing; nil when the site has no instance of that role.
    public struct Links: Sendable {
        public var routing: LinkClientSettings?
        public var billing: LinkClientSettings?
        /// Where per-call quality goes (`monitor.qos`); nil when the site has no monitor.
        public var monitor: LinkClientSettings?
        public var timeout: Duration
        /// Probes and suspicion of the instances of each role.
        public var membership: InstanceMembership.Settings

        public init(
            routing: LinkClientSettings?, billing: LinkClientSettings?, monitor: LinkClientSettings? = nil, timeout: Duration,
            membership: InstanceMembership.Settings = .init()
        ) {
            self.routing = routing
            self.billing = billing
            self.monitor = monitor
            self.timeout = timeout
            self.membership = membership
        }
    }

    /// Sets up one `SBCCalls` per loop of `group` (on its loop).
    public init(
        configuration: Configuration, admission: CallAdmission, group: any EventLoopGroup, transport: SIPTransport, spool: CallSummarySpool,
        mediaAddress: String, mediaPorts: ClosedRange<Int>, links: Links, logger: Logger
    ) async throws {
        let eventLoops = Array(group.makeIterator())
        var configuration = configuration
        configuration.loopCount = max(1, eventLoops.count)
        let shared = SBCCallShared(configuration: configuration, admission: admission, logger: logger)
        self.shared = shared
        let count = eventLoops.count
        routing = CallLoopRouting(loopCount: count)
        let shares = MediaRelay.shares(of: mediaPorts, count: count)
        // This run of the SBC: billing tells it from the one before (whose calls died with it) by this id.
        let identity = configuration.checkpointInterval.map {
            CallLinks.CheckpointIdentity(
                instance: "\(configuration.site)/\(configuration.instance)", boot: RandomID.uuidString(), startedAt: Date(),
                interval: .nanoseconds($0.nanoseconds))
        }
        var loops: [Loop] = []
        for (index, eventLoop) in eventLoops.enumerated() {
            let share = shares[index]
            let calls = try await eventLoop.submit {
                let layer = CallLayer(
                    configuration: .init(
                        timers: configuration.timers, maximumTransactions: max(1024, configuration.maximumTransactions / count),
                        loopIndex: index, loopCount: count),
                    now: CallLoop.now())
                let loop = CallLoop(index: index, eventLoop: eventLoop, layer: layer, transport: transport, logger: logger)
                let timeout = TimeAmount.nanoseconds(links.timeout.nanoseconds)
                let callLinks = CallLinks(
                    routing: links.routing.map { LoopLinkClient(settings: $0, eventLoop: eventLoop, membership: links.membership) },
                    billing: links.billing.map { LoopLinkClient(settings: $0, eventLoop: eventLoop, membership: links.membership) },
                    monitor: links.monitor.map { LoopLinkClient(settings: $0, eventLoop: eventLoop, membership: links.membership) }, timeout: timeout, eventLoop: eventLoop,
                    logger: logger, checkpoints: identity.map { identity in
                        var identity = identity
                        identity.beats = index == 0
                        return identity
                    })
                let calls = SBCCalls(
                    shared: shared, loop: loop, relay: MediaRelay(
                        bindAddress: mediaAddress, portRange: share, eventLoop: eventLoop, logger: logger,
                        capacity: configuration.relaySessionsPerLoop),
                    links: callLinks, spool: SpoolWriter(spool: spool, eventLoop: eventLoop, loopIndex: index, logger: logger))
                loop.application = calls
                return NIOLoopBound(calls, eventLoop: eventLoop)
            }.get()
            let prebind = min(configuration.relayPrebindSessions, configuration.relaySessionsPerLoop)
            // Relay sockets for the first calls, bound now rather than during the first second of traffic.
            try await eventLoop.flatSubmit { calls.value.relay.prebind(prebind) }.get()
            loops.append(Loop(eventLoop: eventLoop, calls: calls))
        }
        self.loops = loops
    }

    /// Calls in progress.
    public var callCount: Int { shared.admission.callCount }

    /// Starts every loop's heartbeats to billing (with the checkpoints of its calls): while the SIP service runs.
    public func startHeartbeats() {
        for loop in loops {
            let calls = loop.calls
            loop.eventLoop.execute { calls.value.links.startHeartbeats() }
        }
    }

    /// Sends what the loops have queued one last time and stops the heartbeats (the SIP service has stopped).
    public func stopHeartbeats() async {
        for loop in loops {
            let calls = loop.calls
            try? await loop.eventLoop.submit { calls.value.links.stopHeartbeats() }.get()
        }
    }

    /// A message the border let through, on the loop that received it: handled there if its call lives there, or
    /// handed to its call's loop (in order).
    public func receive(_ inbound: SIPInbound) {
        let callID = ((try? inbound.message.headers.callID()) ?? nil) ?? ""
        let loop = loops[routing.loopIndex(forCallID: callID)]
        if loop.eventLoop.inEventLoop {
            loop.calls.value.loop.receive(inbound)
        } else {
            let calls = loop.calls
            loop.eventLoop.execute { calls.value.loop.receive(inbound) }
        }
    }

    /// Client transactions of every loop still waiting for their final answer.
    func clientTransactionsAwaitingAnswer() async -> Int {
        var total = 0
        for loop in loops {
            let calls = loop.calls
            total += (try? await loop.eventLoop.submit { calls.value.loop.layer.transactions.clientsAwaitingAnswer }.get()) ?? 0
        }
        return total
    }

    /// Drains the SBC: new calls get 503 from now on; the calls in progress go on until they end or `bound` passes,
    /// then the answered ones still up are hung up on both sides (`SBC drained`) and their summaries spooled, and the
    /// ones still being set up are cancelled toward the carrier and refused with 503. Returns the calls left when it
    /// gave up waiting for their teardown (`teardown` after the hang-up).
    public func drain(within bound: Duration, teardown: Duration = .seconds(5)) async -> Int {
        shared.admission.startDraining()
        let logger = shared.logger
        logger.notice("SBC draining: new calls refused with 503", metadata: ["calls": "\(callCount)", "bound-seconds": "\(bound.components.seconds)"])
        let clock = ContinuousClock()
        let end = clock.now + bound
        // Cancelled (the process is being torn down): stop waiting, hang up at once.
        while callCount > 0, clock.now < end, (try? await Task.sleep(for: .milliseconds(100))) != nil {}
        if callCount > 0 {
            logger.warning("SBC drained: ending the calls still in progress (answered: hung up; being set up: cancelled)", metadata: ["calls": "\(callCount)"])
            for loop in loops {
                let calls = loop.calls
                try? await loop.eventLoop.submit { calls.value.hangUpAll(reason: "SBC drained") }.get()
            }
            let stop = clock.now + teardown
            while callCount > 0, clock.now < stop, (try? await Task.sleep(for: .milliseconds(100))) != nil {}
            // The CANCELs and BYEs just sent get their answers (and a cancelled INVITE's 487 its ACK) before the
            // transport closes, within the same bound.
            while await clientTransactionsAwaitingAnswer() > 0, clock.now < stop, (try? await Task.sleep(for: .milliseconds(100))) != nil {}
        }
        logger.notice("SBC drained", metadata: ["calls-left": "\(callCount)"])
        return callCount
    }

    /// Sends a SIP OPTIONS to a trunk for the routing core and waits for its final answer (or `timeout`).
    /// Closes the relay sockets parked for the next calls on every loop (at shutdown; a call's own sockets close when
    /// it ends).
    public func closeParkedRelays() async {
        for loop in loops {
            let calls = loop.calls
            try? await loop.eventLoop.submit { calls.value.relay.closeParked() }.get()
        }
    }

    public func probe(host: String, port: Int, transport: SIPTransportProtocol, timeout: Duration) async -> TrunkProbeResult {
        let loop = loops[nextProbeLoop.wrappingAdd(1, ordering: .relaxed).oldValue % loops.count]
        let calls = loop.calls
        let advertised = shared.configuration.advertisedAddress
        let result = loop.eventLoop.flatSubmit { () -> EventLoopFuture<TrunkProbeResult> in
            let calls = calls.value
            let promise = calls.loop.eventLoop.makePromise(of: TrunkProbeResult.self)
            calls.prepareLayer()
            calls.probes.start(
                host: host, port: port, transport: transport, timeout: timeout, advertisedAddress: advertised, layer: &calls.loop.layer,
                promise: promise)
            calls.loop.flush()
            return promise.futureResult
        }
        return (try? await result.get()) ?? TrunkProbeResult(status: nil, roundTripMilliseconds: nil, failure: "the SBC is shutting down")
    }
}

/// What every loop's calls share: settings, admission, the border, the log and the counters.
final class SBCCallShared: Sendable {
    let configuration: CallEngine.Configuration
    let admission: CallAdmission
    let logger: Logger
    /// One key for the flow tokens of every loop (a phone's flow may be used by a call on any loop).
    let flows = FlowTokens()
    /// The phones registered through this SBC, by flow.
    let phones = PhoneFlows()
    var frontDoor: SIPFrontDoor { admission.frontDoor }
    private let callsStarted = Counter(label: "troncal_sbc_calls_total")
    private let overload = Counter(label: "troncal_sbc_overload_total")
    private let refusals: [String: Counter]
    private let qualityReports: [String: Counter]
    /// By status class, 1xx to 6xx.
    private let registrations: [Int: Counter] = Dictionary(
        uniqueKeysWithValues: (1...6).map { ($0, Counter(label: "troncal_sbc_registrations_total", dimensions: [("status", "\($0)xx")])) })

    init(configuration: CallEngine.Configuration, admission: CallAdmission, logger: Logger) {
        self.configuration = configuration
        self.admission = admission
        self.logger = logger
        var refusals: [String: Counter] = [:]
        for reason in ["unknown-source", "sbc-full", "customer-limit", "sbc-draining"] {
            refusals[reason] = Counter(label: "troncal_sbc_calls_refused_total", dimensions: [("reason", reason)])
        }
        self.refusals = refusals
        var reports: [String: Counter] = [:]
        for result in ["accepted", "refused", "malformed"] {
            reports[result] = Counter(label: "troncal_sbc_quality_reports_total", dimensions: [("result", result)])
        }
        self.qualityReports = reports
    }

    func callStarted() { callsStarted.increment() }
    /// A relayed registration's final answer, counted by status class (`troncal_sbc_registrations_total{status}`).
    func registrationAnswered(_ status: Int) {
        registrations[min(6, max(1, status / 100))]?.increment()
    }
    func overloaded() { overload.increment() }
    func refused(_ reason: String) { refusals[reason]?.increment() }
    /// A phone's quality report: `accepted`, `refused` (not a customer, another event or body) or `malformed`.
    func qualityReport(_ result: String) { qualityReports[result]?.increment() }
}
