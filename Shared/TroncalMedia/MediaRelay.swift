public import Logging
public import NIOCore
internal import Metrics
internal import NIOPosix

/// The media relay of one event loop: it opens relay sessions (four UDP sockets each: RTP and RTCP for the caller's
/// side and the callee's) on ports from its own share of the configured range, on its loop. The calls of a loop and
/// their media then share one thread: relaying, counting and the call's questions about quality take no lock and no
/// hop. Every method must be called on `eventLoop`.
public final class MediaRelay {
    public let bindAddress: String
    public let eventLoop: any EventLoop
    let logger: Logger
    private var pool: RelayPortPool
    private let relayed: Counter
    private let exhausted: Counter

    /// `metricsPrefix` names the service in the relay's metrics (`troncal_sbc_media_sessions_total`).
    public init(bindAddress: String, portRange: ClosedRange<Int>, eventLoop: any EventLoop, logger: Logger, metricsPrefix: String = "troncal_sbc") {
        self.bindAddress = bindAddress
        self.eventLoop = eventLoop
        self.logger = logger
        self.pool = RelayPortPool(range: portRange)
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

    /// RTP/RTCP port pairs free (each call takes two).
    public var portsAvailable: Int { pool.available }

    /// Opens a call's four sockets. Fails when the loop's ports are exhausted; a port that cannot be bound is skipped
    /// and the next pair tried.
    public func openSession() -> EventLoopFuture<MediaRelaySession> {
        open(attempt: 1)
    }

    private func open(attempt: Int) -> EventLoopFuture<MediaRelaySession> {
        guard attempt <= 8, let callerPort = pool.allocate() else { return exhaustedFailure() }
        guard let calleePort = pool.allocate() else {
            pool.release(callerPort)
            return exhaustedFailure()
        }
        let session = MediaRelaySession(callerPort: callerPort, calleePort: calleePort, eventLoop: eventLoop)
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        return session.bind(on: bindAddress).map { _ in
            bound.value.relayed.increment()
            return session
        }.flatMapError { error in
            let relay = bound.value
            relay.logger.warning("media port unusable; trying others", metadata: ["ports": "\(callerPort),\(calleePort)", "reason": "\(error)"])
            relay.pool.release(callerPort)
            relay.pool.release(calleePort)
            return relay.open(attempt: attempt + 1)
        }
    }

    private func exhaustedFailure() -> EventLoopFuture<MediaRelaySession> {
        exhausted.increment()
        return eventLoop.makeFailedFuture(MediaRelayError(message: "no free media relay ports (\(pool.available) pairs left)"))
    }

    /// Closes a session's sockets and returns its ports to the pool (they are reused last).
    public func release(_ session: MediaRelaySession) {
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
    var rtcpDestination: [Side: SocketAddress] = [:]
    /// Statistics of what each side sent.
    var statistics: [Side: RTPStreamStatistics] = [.caller: RTPStreamStatistics(), .callee: RTPStreamStatistics()]
    var codec: [Side: String] = [:]
    /// Sender-report NTP middles relayed to a side, with the local time they left (for that side's RTT).
    var senderReportsSent: [Side: [UInt32: UInt64]] = [:]
    var roundTrip: [Side: Double] = [:]
    public private(set) var dropped = 0
    private var channels: [any Channel] = []
    private var closed = false

    init(callerPort: Int, calleePort: Int, eventLoop: any EventLoop) {
        self.callerPort = callerPort
        self.calleePort = calleePort
        self.eventLoop = eventLoop
    }

    /// Where to send a side's media, from its SDP (until its own packets show its real address).
    public func setDestination(_ side: Side, host: String, port: Int, codec: String? = nil) {
        guard let address = try? SocketAddress(ipAddress: host, port: port) else { return }
        if !latched.contains(side) { destination[side] = address }
        if rtcpDestination[side] == nil { rtcpDestination[side] = try? SocketAddress(ipAddress: host, port: port + 1) }
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
            try callerRTP.pipeline.syncOperations.addHandler(RelayHandler(side: .caller, rtcp: false, session: session, out: calleeRTP))
            try callerRTCP.pipeline.syncOperations.addHandler(RelayHandler(side: .caller, rtcp: true, session: session, out: calleeRTCP))
            try calleeRTP.pipeline.syncOperations.addHandler(RelayHandler(side: .callee, rtcp: false, session: session, out: callerRTP))
            try calleeRTCP.pipeline.syncOperations.addHandler(RelayHandler(side: .callee, rtcp: true, session: session, out: callerRTCP))
        }.flatMapErrorThrowing { error in
            _ = bound.value.close()
            throw error
        }
    }

    /// Closes the sockets; false when closed already.
    func close() -> Bool {
        guard !closed else { return false }
        closed = true
        for channel in channels { channel.close(promise: nil) }
        channels = []
        return true
    }

    // MARK: - Packet path

    /// A packet arrived on `side`'s socket (RTP or RTCP): count it and send it out of the other side's socket.
    func relay(_ envelope: AddressedEnvelope<ByteBuffer>, from side: Side, rtcp: Bool, out: any Channel) {
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
    let session: MediaRelaySession
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
