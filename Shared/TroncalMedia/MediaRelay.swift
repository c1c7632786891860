public import Logging
public import NIOCore
internal import Metrics
internal import NIOPosix

/// The media relay of one event loop: it opens relay sessions (four UDP sockets each: RTP and RTCP for the caller's
/// side and the callee's) on ports from its own share of the configured range, on its loop. The calls of a loop and
/// their media then share one thread: relaying, counting and the call's questions about quality take no lock and no
/// hop. Every method must be called on `eventLoop`.
///
/// Sockets are reused: a released session's four sockets stay bound, parked (what arrives on them is dropped), and
/// a new call takes the oldest parked set once it has been parked for `quarantine` (so that the last packets of the
/// ended call are not relayed into the new one), instead of creating and binding four new sockets: creating them was
/// an eighth of the SBC's CPU per call. At most `idleLimit` sets are parked; beyond it the oldest is closed and its
/// ports go back to the pool. Parked sets count against `capacity` (sessions open or parked, the loop's share of what
/// the process's file descriptors allow): at that limit, or when the ports run out, the oldest parked set is reused
/// before its quarantine ends rather than a call refused.
public final class MediaRelay {
    public let bindAddress: String
    public let eventLoop: any EventLoop
    let logger: Logger
    private var pool: RelayPortPool
    private var parked = CircularBuffer<(session: MediaRelaySession, since: NIODeadline)>()
    /// Released sessions kept bound for reuse, at most.
    public let idleLimit: Int
    /// Sessions open or parked, at most, before parked ones are reused early.
    public let capacity: Int
    /// Sessions in use by calls.
    public private(set) var active = 0
    /// How long a released session's sockets stay parked before another call may take them.
    public let quarantine: TimeAmount
    private let relayed: Counter
    private let exhausted: Counter

    /// `metricsPrefix` names the service in the relay's metrics (`troncal_sbc_media_sessions_total`).
    public init(
        bindAddress: String, portRange: ClosedRange<Int>, eventLoop: any EventLoop, logger: Logger, metricsPrefix: String = "troncal_sbc",
        idleLimit: Int = 1024, capacity: Int = .max, quarantine: TimeAmount = .seconds(1)
    ) {
        self.bindAddress = bindAddress
        self.eventLoop = eventLoop
        self.logger = logger
        self.pool = RelayPortPool(range: portRange)
        self.idleLimit = max(0, idleLimit)
        self.capacity = max(1, capacity)
        self.quarantine = quarantine
        relayed = Counter(label: "\(metricsPrefix)_media_sessions_total")
        exhausted = Counter(label: "\(metricsPrefix)_media_ports_exhausted_total")
    }

    /// Splits `range` into `count` shares of whole RTP/RTCP pairs, one per loop.
    public static func shares(of range: ClosedRange<Int>, count: Int) -> [ClosedRange<Int>] {
        let first = range.lowerBound % 2 == 0 ? range.lowerBound : range.lowerBound + 1
        let pairs = max(0, (range.upperBound - first + 1) / 2)
        let count = max(1, count)
        return (0..<count).map { index in
            let start = first + 2 * (pairs * index / count)
            let end = first + 2 * (pairs * (index + 1) / count) - 1
            return start...max(start, end)
        }
    }

    /// RTP/RTCP port pairs free (each call takes two), parked ones included.
    public var portsAvailable: Int { pool.available + 2 * parked.count }

    /// Released sessions whose sockets are parked for reuse.
    public var parkedSessions: Int { parked.count }

    /// Opens a call's four sockets, or reuses a parked set. Fails when the loop's ports are exhausted; a port that
    /// cannot be bound is skipped and the next pair tried.
    public func openSession() -> EventLoopFuture<MediaRelaySession> {
        let now = NIODeadline.now()
        if let oldest = parked.first, now - oldest.since >= quarantine || pool.available < 2 || active + parked.count >= capacity {
            parked.removeFirst()
            relayed.increment()
            active += 1
            return eventLoop.makeSucceededIsolatedFuture(oldest.session.reused()).nonisolated()
        }
        return open(attempt: 1).assumeIsolated().map { session in
            self.relayed.increment()
            self.active += 1
            return session
        }.nonisolated()
    }

    private func open(attempt: Int) -> EventLoopFuture<MediaRelaySession> {
        guard attempt <= 8, let callerPort = pool.allocate() else { return exhaustedFailure() }
        guard let calleePort = pool.allocate() else {
            pool.release(callerPort)
            return exhaustedFailure()
        }
        let session = MediaRelaySession(callerPort: callerPort, calleePort: calleePort, eventLoop: eventLoop)
        return session.bind(on: bindAddress).assumeIsolated().map { _ in
            session
        }.flatMapError { error in
            let relay = self
            relay.logger.warning("media port unusable; trying others", metadata: ["ports": "\(callerPort),\(calleePort)", "reason": "\(error)"])
            relay.pool.release(callerPort)
            relay.pool.release(calleePort)
            return relay.open(attempt: attempt + 1).assumeIsolated()
        }.nonisolated()
    }

    private func exhaustedFailure() -> EventLoopFuture<MediaRelaySession> {
        exhausted.increment()
        return eventLoop.makeFailedFuture(MediaRelayError(message: "no free media relay ports (\(pool.available) pairs left)"))
    }

    /// Ends a session: its sockets are parked for reuse (the oldest parked set closed when more than `idleLimit`
    /// are), or closed and their ports returned to the pool (reused last).
    public func release(_ session: MediaRelaySession) {
        guard session.park() else { return }
        active -= 1
        parked.append((session, NIODeadline.now()))
        while parked.count > idleLimit {
            close(parked.removeFirst().session)
        }
    }

    /// Opens `count` sessions ahead of the first calls and parks them ready for use (no quarantine), so that the
    /// first second of traffic does not pay for creating sockets. Never more than `idleLimit`; ports that cannot be
    /// bound are skipped as in `openSession`.
    public func prebind(_ count: Int) -> EventLoopFuture<Void> {
        let count = min(count, idleLimit - parked.count, capacity - active - parked.count, pool.available / 2)
        guard count > 0 else { return eventLoop.makeSucceededVoidFuture() }
        // One after another on the loop (sessions are loop-confined, so no gathering across futures).
        var chain = eventLoop.makeSucceededVoidFuture()
        for _ in 0..<count {
            chain = chain.assumeIsolated().flatMap { () -> EventLoopFuture<Void> in
                self.open(attempt: 1).assumeIsolated().map { session in
                    if session.park() { self.parked.append((session, NIODeadline.uptimeNanoseconds(0))) }
                }.recover { _ in }.nonisolated()
            }.nonisolated()
        }
        return chain
    }

    /// Closes every parked set (at shutdown, or to give the ports back).
    public func closeParked() {
        while let oldest = parked.popFirst() { close(oldest.session) }
    }

    private func close(_ session: MediaRelaySession) {
        guard session.close() else { return }
        pool.release(session.callerPort)
        pool.release(session.calleePort)
    }
}

/// One call's media through the SBC: the caller sends RTP to `callerPort`, the callee to `calleePort` (RTCP on each
/// port + 1), and each packet goes out of the other side's socket to where that side's SDP said, or to where its
/// packets actually come from once they do (symmetric RTP, for NAT). Confined to its relay's event loop.
public final class MediaRelaySession {
    public enum Side: String, Sendable, Hashable { case caller, callee }

    public let callerPort: Int
    public let calleePort: Int
    let eventLoop: any EventLoop
    var destination: [Side: SocketAddress] = [:]
    var latched: Set<Side> = []
    /// The address each side's latest SDP named.
    var announced: [Side: SocketAddress] = [:]
    var rtcpDestination: [Side: SocketAddress] = [:]
    /// Statistics of what each side sent.
    var statistics: [Side: RTPStreamStatistics] = [.caller: RTPStreamStatistics(), .callee: RTPStreamStatistics()]
    var codec: [Side: String] = [:]
    /// Sender-report NTP middles relayed to a side, with the local time they left (for that side's RTT).
    var senderReportsSent: [Side: [UInt32: UInt64]] = [:]
    var roundTrip: [Side: Double] = [:]
    public private(set) var dropped = 0
    private var channels: [any Channel] = []
    private var handlers: [RelayHandler] = []
    private var closed = false
    /// Released: what arrives is dropped until the sockets are reused or closed.
    private(set) var parked = false

    init(callerPort: Int, calleePort: Int, eventLoop: any EventLoop) {
        self.callerPort = callerPort
        self.calleePort = calleePort
        self.eventLoop = eventLoop
    }

    /// Where to send a side's media, from its SDP (until its own packets show its real address). A new address in a
    /// later SDP (a re-INVITE: a held call resumed, media moved to another server) is followed at once and learnt again
    /// from that side's next packets; the same address again leaves what its packets showed (symmetric RTP).
    public func setDestination(_ side: Side, host: String, port: Int, codec: String? = nil) {
        guard let address = try? SocketAddress(ipAddress: host, port: port) else { return }
        if announced[side] != address {
            announced[side] = address
            destination[side] = address
            latched.remove(side)
            rtcpDestination[side] = try? SocketAddress(ipAddress: host, port: port + 1)
        } else if !latched.contains(side) {
            destination[side] = address
        }
        if let codec { self.codec[side] = codec }
    }

    /// The codec both directions use (the negotiated one): what their MOS is computed for.
    public func setCodec(_ codec: String) {
        self.codec[.caller] = codec
        self.codec[.callee] = codec
    }

    /// The quality of both directions so far (directions that carried no packet are left out).
    public func streamReports() -> [RelayStreamReport] {
        var reports: [RelayStreamReport] = []
        for (side, direction) in [(Side.caller, "caller-to-callee"), (.callee, "callee-to-caller")] {
            let statistics = self.statistics[side] ?? RTPStreamStatistics()
            guard statistics.packets > 0 else { continue }
            let codec = self.codec[side] ?? "PCMU"
            reports.append(RelayStreamReport(
                direction: direction, quality: StreamQuality.rate(statistics, codec: codec, roundTripMilliseconds: roundTrip[side])))
        }
        return reports
    }

    // MARK: - Sockets

    func bind(on address: String) -> EventLoopFuture<Void> {
        let ports = [callerPort, callerPort + 1, calleePort, calleePort + 1]
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        var future = eventLoop.makeSucceededVoidFuture()
        for port in ports {
            future = future.flatMap {
                // No SO_REUSEADDR: on Linux it would let another socket share a relay port.
                DatagramBootstrap(group: bound.value.eventLoop).bind(host: address, port: port).map { channel in
                    bound.value.channels.append(channel)
                }
            }
        }
        return future.flatMapThrowing {
            let session = bound.value
            let channels = session.channels
            let (callerRTP, callerRTCP, calleeRTP, calleeRTCP) = (channels[0], channels[1], channels[2], channels[3])
            session.handlers = [
                RelayHandler(side: .caller, rtcp: false, session: session, out: calleeRTP),
                RelayHandler(side: .caller, rtcp: true, session: session, out: calleeRTCP),
                RelayHandler(side: .callee, rtcp: false, session: session, out: callerRTP),
                RelayHandler(side: .callee, rtcp: true, session: session, out: callerRTCP),
            ]
            for (channel, handler) in zip(channels, session.handlers) { try channel.pipeline.syncOperations.addHandler(handler) }
        }.flatMapErrorThrowing { error in
            _ = bound.value.close()
            throw error
        }
    }

    /// Releases the session, its sockets left bound; false when parked or closed already.
    func park() -> Bool {
        guard !closed, !parked else { return false }
        parked = true
        return true
    }

    /// A new session on this one's parked sockets, with nothing of the old call (destinations, latching, counts).
    func reused() -> MediaRelaySession {
        let fresh = MediaRelaySession(callerPort: callerPort, calleePort: calleePort, eventLoop: eventLoop)
        fresh.channels = channels
        fresh.handlers = handlers
        for handler in handlers { handler.session = fresh }
        channels = []
        handlers = []
        closed = true
        return fresh
    }

    /// Closes the sockets; false when closed already.
    func close() -> Bool {
        guard !closed else { return false }
        closed = true
        for channel in channels { channel.close(promise: nil) }
        channels = []
        handlers = []
        return true
    }

    // MARK: - Packet path

    /// A packet arrived on `side`'s socket (RTP or RTCP): count it and send it out of the other side's socket.
    func relay(_ envelope: AddressedEnvelope<ByteBuffer>, from side: Side, rtcp: Bool, out: any Channel) {
        guard !parked else {
            dropped += 1
            return
        }
        let other: Side = side == .caller ? .callee : .caller
        let now = NIODeadline.now().uptimeNanoseconds
        envelope.data.withUnsafeReadableBytes { bytes in
            if rtcp {
                if let report = RTCPReport(bytes) {
                    // This side answers sender reports we relayed to it: its RTT to the SBC.
                    for block in report.blocks {
                        if let sent = senderReportsSent[side]?[block.lastSenderReport] {
                            let elapsed = Double(now - sent) / 1e6 - Double(block.delaySinceLastSenderReport) * 1000 / 65536
                            if elapsed >= 0 { roundTrip[side] = elapsed }
                        }
                    }
                    if let middle = report.ntpMiddle {
                        var sent = senderReportsSent[other] ?? [:]
                        if sent.count > 16 { sent.removeAll() }
                        sent[middle] = now
                        senderReportsSent[other] = sent
                    }
                }
            } else if let header = RTPHeader(bytes) {
                statistics[side]?.record(header, size: bytes.count, arrivalNanoseconds: Int64(now))
            }
        }
        // Symmetric RTP: the first packet from a side shows where its media really comes from.
        if rtcp {
            rtcpDestination[side] = envelope.remoteAddress
        } else if !latched.contains(side) {
            latched.insert(side)
            destination[side] = envelope.remoteAddress
        }
        guard let target = rtcp ? rtcpDestination[other] : destination[other] else {
            dropped += 1
            return
        }
        out.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: envelope.data), promise: nil)
    }
}

/// One direction's quality at the time of asking.
public struct RelayStreamReport: Sendable, Hashable {
    /// `caller-to-callee` or `callee-to-caller`.
    public var direction: String
    public var quality: StreamQuality
}

/// Hands each datagram of one socket to its session.
final class RelayHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let side: MediaRelaySession.Side
    let rtcp: Bool
    /// The session the socket serves now (a parked socket set passes to the next call's session).
    var session: MediaRelaySession
    let out: any Channel

    init(side: MediaRelaySession.Side, rtcp: Bool, session: MediaRelaySession, out: any Channel) {
        self.side = side
        self.rtcp = rtcp
        self.session = session
        self.out = out
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        session.relay(unwrapInboundIn(data), from: side, rtcp: rtcp, out: out)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP port unreachable and the like on UDP: the peer is gone for now; keep relaying.
    }
}

/// The relay could not open a session.
public struct MediaRelayError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { "media relay: \(message)" }
}
