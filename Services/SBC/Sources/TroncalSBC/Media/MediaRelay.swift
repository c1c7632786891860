public import Logging
public import NIOCore
internal import Foundation
internal import Metrics
public import NIOPosix
public import TroncalMedia
public import TroncalProtocol
import Synchronization

/// Relays one call's media through the SBC: the caller sends RTP to `callerPort`, the callee to
/// `calleePort` (RTCP on each port + 1), and each packet goes out of the other side's socket to where that
/// side's SDP said, or to where its packets actually come from once they do (symmetric RTP, for NAT).
///
/// All four sockets of a session live on one event loop, so relaying and counting never take a lock or
/// hop to an actor per packet.
public final class MediaRelaySession: Sendable {
    public let callerPort: Int
    public let calleePort: Int
    let eventLoop: any EventLoop
    private let state: NIOLoopBoundBox<RelayState>
    private let channels: [any Channel]

    struct RelayState {
        var destination: [B2BUACall.Leg: SocketAddress] = [:]
        var latched: Set<B2BUACall.Leg> = []
        var rtcpDestination: [B2BUACall.Leg: SocketAddress] = [:]
        /// Statistics of what each leg sent.
        var statistics: [B2BUACall.Leg: RTPStreamStatistics] = [.caller: RTPStreamStatistics(), .callee: RTPStreamStatistics()]
        var codec: [B2BUACall.Leg: String] = [:]
        /// Sender-report NTP middles relayed to a leg, with the local time they left (for that leg's RTT).
        var senderReportsSent: [B2BUACall.Leg: [UInt32: UInt64]] = [:]
        var roundTrip: [B2BUACall.Leg: Double] = [:]
        var dropped = 0
    }

    init(callerPort: Int, calleePort: Int, eventLoop: any EventLoop, channels: [any Channel], state: NIOLoopBoundBox<RelayState>) {
        self.callerPort = callerPort
        self.calleePort = calleePort
        self.eventLoop = eventLoop
        self.channels = channels
        self.state = state
    }

    /// Where to send a leg's media, from its SDP (until its own packets show its real address).
    public func setDestination(_ leg: B2BUACall.Leg, host: String, port: Int, codec: String? = nil) {
        guard let address = try? SocketAddress(ipAddress: host, port: port) else { return }
        let rtcp = try? SocketAddress(ipAddress: host, port: port + 1)
        eventLoop.execute { [state] in
            if !state.value.latched.contains(leg) { state.value.destination[leg] = address }
            if state.value.rtcpDestination[leg] == nil { state.value.rtcpDestination[leg] = rtcp }
            if let codec { state.value.codec[leg] = codec }
        }
    }

    /// The codec both directions use (the negotiated one): what their MOS is computed for.
    public func setCodec(_ codec: String) {
        eventLoop.execute { [state] in
            state.value.codec[.caller] = codec
            state.value.codec[.callee] = codec
        }
    }

    /// The quality of both directions so far, as the call summary carries it.
    public func streamReports() async -> [CallSummary.StreamReport] {
        let box = state
        return (try? await eventLoop.submit {
            var reports: [CallSummary.StreamReport] = []
            for (leg, direction) in [(B2BUACall.Leg.caller, "caller-to-callee"), (.callee, "callee-to-caller")] {
                let statistics = box.value.statistics[leg] ?? RTPStreamStatistics()
                guard statistics.packets > 0 else { continue }
                let codec = box.value.codec[leg] ?? "PCMU"
                let quality = StreamQuality.rate(statistics, codec: codec, roundTripMilliseconds: box.value.roundTrip[leg])
                reports.append(CallSummary.StreamReport(
                    direction: direction, codec: codec, packets: quality.packets, bytes: quality.bytes, lost: quality.lost,
                    jitterMilliseconds: quality.jitterMilliseconds, roundTripMilliseconds: quality.roundTripMilliseconds,
                    rFactor: quality.rFactor, mos: quality.mos))
            }
            return reports
        }.get()) ?? []
    }

    /// Closes the session's sockets.
    public func close() async {
        for channel in channels { try? await channel.close() }
    }

    // MARK: - Packet path (on the event loop)

    /// A packet arrived on `leg`'s socket (RTP or RTCP): count it and send it out of the other leg's socket.
    static func relay(
        _ envelope: AddressedEnvelope<ByteBuffer>, from leg: B2BUACall.Leg, rtcp: Bool, state: NIOLoopBoundBox<RelayState>,
        out: any Channel
    ) {
        let other: B2BUACall.Leg = leg == .caller ? .callee : .caller
        let now = NIODeadline.now().uptimeNanoseconds
        var buffer = envelope.data
        buffer.withUnsafeReadableBytes { bytes in
            if rtcp {
                if let report = RTCPReport(bytes) {
                    // This leg answers sender reports we relayed to it: its RTT to the SBC.
                    for block in report.blocks {
                        if let sent = state.value.senderReportsSent[leg]?[block.lastSenderReport] {
                            let elapsed = Double(now - sent) / 1e6 - Double(block.delaySinceLastSenderReport) * 1000 / 65536
                            if elapsed >= 0 { state.value.roundTrip[leg] = elapsed }
                        }
                    }
                    if let middle = report.ntpMiddle {
                        var sent = state.value.senderReportsSent[other] ?? [:]
                        if sent.count > 16 { sent.removeAll() }
                        sent[middle] = now
                        state.value.senderReportsSent[other] = sent
                    }
                }
            } else if let header = RTPHeader(bytes) {
                state.value.statistics[leg]?.record(header, size: bytes.count, arrivalNanoseconds: Int64(now))
            }
        }
        // Symmetric RTP: the first packet from a leg shows where its media really comes from.
        if rtcp {
            state.value.rtcpDestination[leg] = envelope.remoteAddress
        } else if !state.value.latched.contains(leg) {
            state.value.latched.insert(leg)
            state.value.destination[leg] = envelope.remoteAddress
        }
        let target = rtcp ? state.value.rtcpDestination[other] : state.value.destination[other]
        guard let target else {
            state.value.dropped += 1
            return
        }
        buffer = envelope.data
        out.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: buffer), promise: nil)
    }
}

/// Opens relay sessions on ports from a pool, on a given local address.
public final class MediaRelay: Sendable {
    public let bindAddress: String
    let group: any EventLoopGroup
    let logger: Logger
    private let pool: Mutex<RelayPortPool>
    private let relayed = Counter(label: "troncal_sbc_media_sessions_total")
    private let exhausted = Counter(label: "troncal_sbc_media_ports_exhausted_total")

    public init(bindAddress: String, portRange: ClosedRange<Int>, logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.bindAddress = bindAddress
        self.group = group
        self.logger = logger
        self.pool = Mutex(RelayPortPool(range: portRange))
    }

    public var portsAvailable: Int { pool.withLock { $0.available } }

    /// Opens the four sockets of a call. Throws when the port range is exhausted or a port cannot be bound
    /// (it is then skipped and the next tried).
    public func openSession() async throws -> MediaRelaySession {
        let loop = group.next()
        var attempts = 0
        while attempts < 8 {
            attempts += 1
            guard let callerPort = pool.withLock({ $0.allocate() }) else { break }
            guard let calleePort = pool.withLock({ $0.allocate() }) else {
                pool.withLock { $0.release(callerPort) }
                break
            }
            do {
                let session = try await open(callerPort: callerPort, calleePort: calleePort, on: loop)
                relayed.increment()
                return session
            } catch {
                logger.warning("media port unusable; trying others", metadata: ["ports": "\(callerPort),\(calleePort)", "reason": "\(error)"])
                pool.withLock {
                    $0.release(callerPort)
                    $0.release(calleePort)
                }
            }
        }
        exhausted.increment()
        throw MediaRelayError(message: "no free media relay ports (\(portsAvailable) left)")
    }

    /// Returns a session's ports to the pool after closing it.
    public func release(_ session: MediaRelaySession) async {
        await session.close()
        pool.withLock {
            $0.release(session.callerPort)
            $0.release(session.calleePort)
        }
    }

    private func open(callerPort: Int, calleePort: Int, on loop: any EventLoop) async throws -> MediaRelaySession {
        let state = try await loop.submit { NIOLoopBoundBox(MediaRelaySession.RelayState(), eventLoop: loop) }.get()
        var channels: [any Channel] = []
        do {
            for port in [callerPort, callerPort + 1, calleePort, calleePort + 1] {
                // No SO_REUSEADDR: on Linux it would let another socket share a relay port.
                channels.append(try await DatagramBootstrap(group: loop)
                    .bind(host: bindAddress, port: port).get())
            }
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
        let (callerRTP, callerRTCP, calleeRTP, calleeRTCP) = (channels[0], channels[1], channels[2], channels[3])
        try await loop.submit {
            try callerRTP.pipeline.syncOperations.addHandler(RelayHandler(leg: .caller, rtcp: false, state: state, out: calleeRTP))
            try callerRTCP.pipeline.syncOperations.addHandler(RelayHandler(leg: .caller, rtcp: true, state: state, out: calleeRTCP))
            try calleeRTP.pipeline.syncOperations.addHandler(RelayHandler(leg: .callee, rtcp: false, state: state, out: callerRTP))
            try calleeRTCP.pipeline.syncOperations.addHandler(RelayHandler(leg: .callee, rtcp: true, state: state, out: callerRTCP))
        }.get()
        return MediaRelaySession(callerPort: callerPort, calleePort: calleePort, eventLoop: loop, channels: channels, state: state)
    }
}

/// Hands each datagram of one socket to the relay path.
final class RelayHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let leg: B2BUACall.Leg
    let rtcp: Bool
    let state: NIOLoopBoundBox<MediaRelaySession.RelayState>
    let out: any Channel

    init(leg: B2BUACall.Leg, rtcp: Bool, state: NIOLoopBoundBox<MediaRelaySession.RelayState>, out: any Channel) {
        self.leg = leg
        self.rtcp = rtcp
        self.state = state
        self.out = out
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        MediaRelaySession.relay(unwrapInboundIn(data), from: leg, rtcp: rtcp, state: state, out: out)
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
