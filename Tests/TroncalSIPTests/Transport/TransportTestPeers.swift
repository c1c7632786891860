import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import TroncalSIP

/// What a test peer received, and whether the server closed the connection; tests poll it with `eventually`.
final class ReceivedBytes: Sendable {
    private let state = Mutex<(bytes: [UInt8], closed: Bool)>(([], false))

    var bytes: [UInt8] { state.withLock { $0.bytes } }
    var isClosed: Bool { state.withLock { $0.closed } }

    func append(_ buffer: ByteBuffer) { state.withLock { $0.bytes += buffer.readableBytesView } }
    func markClosed() { state.withLock { $0.closed = true } }

    /// Status codes of the complete responses received so far, in order.
    var statusCodes: [Int] {
        var framer = SIPStreamFramer()
        framer.append(bytes)
        var codes: [Int] = []
        while case .message(let message)? = try? framer.next() {
            if case .response(let response)? = try? SIPMessageParser().parse(message) { codes.append(response.statusCode) }
        }
        return codes
    }
}

/// Feeds what a connection reads into `ReceivedBytes`.
private final class CollectingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let received: ReceivedBytes

    init(_ received: ReceivedBytes) { self.received = received }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { received.append(unwrapInboundIn(data)) }

    func channelInactive(context: ChannelHandlerContext) {
        received.markClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// A TCP or TLS client connection sending raw bytes to a transport under test.
struct StreamPeer: Sendable {
    let channel: any Channel
    let received: ReceivedBytes

    static func connect(to address: SocketAddress, tls: NIOSSLContext? = nil) async throws -> StreamPeer {
        let received = ReceivedBytes()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: nil))
                    }
                    try channel.pipeline.syncOperations.addHandler(CollectingHandler(received))
                }
            }
            .connect(to: address).get()
        return StreamPeer(channel: channel, received: received)
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    func sendByteAtATime(_ bytes: [UInt8]) async throws {
        for byte in bytes { try await channel.writeAndFlush(ByteBuffer(bytes: [byte])) }
    }

    func close() async { try? await channel.close() }
}

/// A UDP socket on loopback sending datagrams to a transport under test and collecting what comes back.
struct DatagramPeer: Sendable {
    let channel: any Channel
    private let collected: DatagramLog

    static func bind() async throws -> DatagramPeer {
        let collected = DatagramLog()
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DatagramCollector(collected))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return DatagramPeer(channel: channel, collected: collected)
    }

    var port: Int? { channel.localAddress?.port }

    /// Datagrams received so far, as (sender, payload).
    var datagrams: [(from: SocketAddress, bytes: [UInt8])] { collected.items.withLock { $0 } }

    var statusCodes: [Int] {
        datagrams.compactMap { datagram in
            if case .response(let response)? = try? SIPMessageParser().parse(datagram.bytes) { response.statusCode } else { nil }
        }
    }

    func send(_ bytes: [UInt8], to address: SocketAddress) async throws {
        try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: bytes)))
    }

    func close() async { try? await channel.close() }
}

private final class DatagramLog: Sendable {
    let items = Mutex<[(from: SocketAddress, bytes: [UInt8])]>([])
}

private final class DatagramCollector: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let log: DatagramLog

    init(_ log: DatagramLog) { self.log = log }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        log.items.withLock { $0.append((envelope.remoteAddress, Array(envelope.data.readableBytesView))) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

/// A well-formed OPTIONS with the given Call-ID, optionally with `rport` in its Via and a Via host that is not
/// the packet's source (a phone behind NAT).
func optionsRequest(callID: String, viaHost: String = "127.0.0.1", rport: Bool = false) -> [UInt8] {
    Array(
        """
        OPTIONS sip:sbc@127.0.0.1 SIP/2.0\r
        Via: SIP/2.0/UDP \(viaHost):5999\(rport ? ";rport" : "");branch=z9hG4bK-\(callID)\r
        Max-Forwards: 70\r
        From: <sip:probe@127.0.0.1>;tag=p1\r
        To: <sip:sbc@127.0.0.1>\r
        Call-ID: \(callID)\r
        CSeq: 1 OPTIONS\r
        Content-Length: 0\r
        \r

        """.utf8)
}
