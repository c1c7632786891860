public import Logging
public import NIOCore
internal import Foundation
public import NIOPosix
internal import NIOSSL
public import ServiceLifecycle
import Synchronization

/// The SIP transports of one process: UDP, TCP and TLS listeners, and sending over them.
///
/// Every received message passes the stack's strictness rules (`SIPValidator`) before `deliver` sees it:
/// malformed requests are answered with the stateless error response, malformed responses are dropped.
/// `deliver` runs on the event loop of the socket or connection the message came on, so messages of one
/// connection (or one UDP socket) arrive in order; it must not block.
public final class SIPTransport: Service, Sendable {
    public let configuration: SIPTransportConfiguration
    let logger: Logger
    let group: any EventLoopGroup
    let deliver: @Sendable (SIPInbound) -> Void
    private let metrics = SIPTransportMetrics()
    private let state = Mutex(State())
    private let ready: EventLoopPromise<Void>

    struct State {
        var udp: (any Channel)?
        var tcp: (any Channel)?
        var tls: (any Channel)?
        var connectionsPerAddress: [String: Int] = [:]
        var connections = 0
        var outbound: [String: any Channel] = [:]
        var stopped = false
    }

    public init(
        configuration: SIPTransportConfiguration, logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        deliver: @escaping @Sendable (SIPInbound) -> Void
    ) {
        self.configuration = configuration
        self.logger = logger
        self.group = group
        self.deliver = deliver
        self.ready = group.next().makePromise(of: Void.self)
    }

    /// Waits until every configured listener is bound (or throws why one could not be).
    public func waitUntilListening() async throws { try await ready.futureResult.get() }

    /// The bound address of each listener (useful with port 0).
    public var udpAddress: SocketAddress? { state.withLock { $0.udp?.localAddress } }
    public var tcpAddress: SocketAddress? { state.withLock { $0.tcp?.localAddress } }
    public var tlsAddress: SocketAddress? { state.withLock { $0.tls?.localAddress } }

    public func run() async throws {
        do {
            try await bind()
            ready.succeed(())
        } catch {
            ready.fail(error)
            await closeAll()
            throw error
        }
        logger.info("SIP listening", metadata: [
            "udp": "\(udpAddress.map { "\($0)" } ?? "-")", "tcp": "\(tcpAddress.map { "\($0)" } ?? "-")",
            "tls": "\(tlsAddress.map { "\($0)" } ?? "-")",
        ])
        // Run until cancelled or asked to shut down gracefully.
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                let closed = state.withLock { [$0.udp, $0.tcp, $0.tls].compactMap { $0?.closeFuture } }
                for future in closed { try? await future.get() }
            } onCancel: {
                self.closeListeners()
            }
        } onGracefulShutdown: {
            self.closeListeners()
        }
        await closeAll()
    }

    // MARK: - Sending

    /// Sends a response back the way its request came: over its connection for TCP/TLS (RFC 3261 §18.2.2),
    /// or to the source address of the datagram for UDP (which is also where `rport` says).
    public func respond(_ response: SIPResponse, to source: SIPSource) {
        var buffer = ByteBufferAllocator().buffer(capacity: 512)
        SIPMessage.response(response).write(into: &buffer)
        if let connection = source.connection, connection.isActive {
            connection.writeAndFlush(buffer, promise: nil)
        } else if source.transport == .udp, let udp = state.withLock({ $0.udp }) {
            udp.writeAndFlush(AddressedEnvelope(remoteAddress: source.remote, data: buffer), promise: nil)
        } else {
            logger.debug("response not sent: its connection is gone", metadata: ["to": "\(source)"])
        }
    }

    /// Sends a message to `host:port` over `transport`: UDP from the listening socket, TCP reusing an open
    /// connection to that address or opening one. Throws when the destination cannot be reached (a refused
    /// or reset connection: the caller treats that as a dead trunk).
    public func send(_ message: SIPMessage, to host: String, port: Int, transport: SIPTransportProtocol) async throws {
        var buffer = ByteBufferAllocator().buffer(capacity: 1024)
        message.write(into: &buffer)
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        switch transport {
        case .udp:
            guard let udp = state.withLock({ $0.udp }) else { throw SIPTransportError("no UDP listener to send from") }
            try await udp.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer))
        case .tcp:
            let channel = try await outboundConnection(to: address)
            try await channel.writeAndFlush(buffer)
        case .tls:
            throw SIPTransportError("outbound TLS is not configured on this transport")
        }
    }

    private func outboundConnection(to address: SocketAddress) async throws -> any Channel {
        let key = "\(address)"
        if let existing = state.withLock({ $0.outbound[key] }), existing.isActive { return existing }
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try self.installStreamPipeline(on: channel, transport: .tcp) }
            }
            .connect(to: address).get()
        state.withLock { $0.outbound[key] = channel }
        channel.closeFuture.whenComplete { _ in _ = self.state.withLock { $0.outbound.removeValue(forKey: key) } }
        return channel
    }

    // MARK: - Listening

    private func bind() async throws {
        let processor = SIPInboundProcessor(validator: SIPValidator(configuration: configuration.validator))
        let deliver = self.deliver
        let metrics = self.metrics
        let logger = self.logger
        if let port = configuration.udpPort {
            // No SO_REUSEADDR on UDP: on Linux it would let a second socket share the port.
            let channel = try await DatagramBootstrap(group: group)
                .channelOption(.maxMessagesPerRead, value: 16)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            SIPDatagramHandler(processor: processor, metrics: metrics, logger: logger, deliver: deliver))
                    }
                }
                .bind(host: configuration.host, port: port).get()
            state.withLock { $0.udp = channel }
        }
        if let port = configuration.tcpPort {
            let channel = try await serverBootstrap(transport: .tcp).bind(host: configuration.host, port: port).get()
            state.withLock { $0.tcp = channel }
        }
        if let port = configuration.tlsPort {
            let channel = try await serverBootstrap(transport: .tls).bind(host: configuration.host, port: port).get()
            state.withLock { $0.tls = channel }
        }
    }

    private func serverBootstrap(transport: SIPTransportProtocol) throws -> ServerBootstrap {
        let sslContext: NIOSSLContext?
        if transport == .tls {
            guard let certificate = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath else {
                throw SIPTransportError("TLS needs a certificate and a key")
            }
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            var tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            tls.minimumTLSVersion = .tlsv12
            sslContext = try NIOSSLContext(configuration: tls)
        } else {
            sslContext = nil
        }
        return ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 512)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard self.admit(channel) else {
                        channel.close(promise: nil)
                        return
                    }
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                    try self.installStreamPipeline(on: channel, transport: transport)
                }
            }
    }

    private func installStreamPipeline(on channel: any Channel, transport: SIPTransportProtocol) throws {
        let processor = SIPInboundProcessor(validator: SIPValidator(configuration: configuration.validator))
        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: TimeAmount(configuration.idleTimeout)))
        try channel.pipeline.syncOperations.addHandler(SIPStreamHandler(
            transport: transport, processor: processor, limits: configuration.validator.limits,
            stallTimeout: TimeAmount(configuration.stallTimeout), metrics: metrics, logger: logger, deliver: deliver))
    }

    /// Per-address and global connection limits: over either, the connection is closed at once and counted.
    private func admit(_ channel: any Channel) -> Bool {
        let ip = channel.remoteAddress?.ipAddress ?? "?"
        let admitted = state.withLock { state -> String? in
            if state.stopped { return "stopping" }
            if state.connections >= configuration.maximumConnections { return "global-limit" }
            if state.connectionsPerAddress[ip, default: 0] >= configuration.maximumConnectionsPerAddress { return "address-limit" }
            state.connections += 1
            state.connectionsPerAddress[ip, default: 0] += 1
            return nil
        }
        if let reason = admitted {
            metrics.refused(reason)
            logger.warning("SIP connection refused", metadata: ["source": "\(ip)", "reason": "\(reason)"])
            return false
        }
        channel.closeFuture.whenComplete { _ in
            self.state.withLock { state in
                state.connections -= 1
                state.connectionsPerAddress[ip, default: 1] -= 1
                if state.connectionsPerAddress[ip] == 0 { state.connectionsPerAddress[ip] = nil }
            }
        }
        return true
    }

    private func closeListeners() {
        let listeners = state.withLock { state -> [any Channel] in
            state.stopped = true
            return [state.udp, state.tcp, state.tls].compactMap { $0 }
        }
        for channel in listeners { channel.close(promise: nil) }
    }

    private func closeAll() async {
        closeListeners()
        let outbound = state.withLock { Array($0.outbound.values) }
        for channel in outbound { try? await channel.close() }
    }
}

/// A transport could not be set up or could not send.
public struct SIPTransportError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "SIP transport: \(message)" }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
