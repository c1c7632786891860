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
///
/// UDP listens on `udpSockets` sockets bound to one port (SO_REUSEPORT), each on its own event loop of `group`; TCP
/// and TLS connections are spread over the group's loops. Sending is in `SIPTransport+Sending.swift`, outbound
/// connections in `SIPTransport+Connections.swift`, TLS set-up in `SIPTransport+TLS.swift`.
///
/// Shutting down (cancellation or graceful shutdown of `run()`) stops the listeners, then closes every open TCP/TLS
/// connection, accepted or opened, and returns once they are closed.
public final class SIPTransport: Service, Sendable {
    public let configuration: SIPTransportConfiguration
    let logger: Logger
    let group: any EventLoopGroup
    let deliver: @Sendable (SIPInbound) -> Void
    let metrics = SIPTransportMetrics()
    let state = Mutex(State())
    private let ready: EventLoopPromise<Void>
    /// Completed when shutdown is asked for or a listener closes on its own: either ends `run()`.
    private let stopRequested: EventLoopPromise<Void>

    struct State {
        /// The UDP sockets, the first one first.
        var udp: [any Channel] = []
        var udpReceiveBuffer: Int?
        var tcp: (any Channel)?
        var tls: (any Channel)?
        /// The context outbound TLS connections are made with, once the transport runs.
        var clientTLS: NIOSSLContext?
        var connectionsPerAddress: [String: Int] = [:]
        var connections = 0
        /// Every open TCP/TLS connection, accepted or opened, so that shutting down can close them.
        var open: [ObjectIdentifier: any Channel] = [:]
        /// Outbound connections by destination, including ones still being set up, so that concurrent sends to one
        /// destination share a connection.
        var outbound: [Destination: EventLoopFuture<any Channel>] = [:]
        var stopped = false
        /// Every configured listener is bound (set once `run()` has bound them, cleared when it stops).
        var listening = false
    }

    /// Where an outbound TCP/TLS connection goes: the host as given (it is the TLS server name), and the port.
    struct Destination: Hashable, Sendable {
        var transport: SIPTransportProtocol
        var host: String
        var port: Int
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
        self.stopRequested = group.next().makePromise(of: Void.self)
    }

    deinit {
        // Never run: the promises must not be left unfulfilled (completing a fulfilled one does nothing).
        ready.fail(SIPTransportError("the transport was released without running"))
        stopRequested.succeed(())
    }

    /// Waits until every configured listener is bound (or throws why one could not be).
    public func waitUntilListening() async throws { try await ready.futureResult.get() }

    /// Whether every configured listener is bound and the transport has not stopped: what a service's `/health` waits
    /// for before it says it can take traffic.
    public var isListening: Bool { state.withLock { $0.listening && !$0.stopped } }

    /// The bound address of each listener (useful with port 0).
    public var udpAddress: SocketAddress? { state.withLock { $0.udp.first?.localAddress } }
    /// The receive buffer the kernel granted the UDP sockets (nil when none was asked for).
    public var udpReceiveBufferBytes: Int? { state.withLock { $0.udpReceiveBuffer } }
    public var tcpAddress: SocketAddress? { state.withLock { $0.tcp?.localAddress } }
    public var tlsAddress: SocketAddress? { state.withLock { $0.tls?.localAddress } }

    /// The UDP socket bound on `eventLoop`, or the first one when none is (nil before the transport listens).
    public func udpChannel(for eventLoop: any EventLoop) -> (any Channel)? {
        state.withLock { state in
            guard !state.stopped else { return nil }
            return state.udp.first { $0.eventLoop === eventLoop } ?? state.udp.first
        }
    }

    /// The port a transport's listener is bound to (the configured one until it is bound).
    public func port(of transport: SIPTransportProtocol) -> Int {
        let bound: SocketAddress? = state.withLock {
            switch transport {
            case .udp: $0.udp.first?.localAddress
            case .tcp: $0.tcp?.localAddress
            case .tls: $0.tls?.localAddress
            }
        }
        if let port = bound?.port { return port }
        switch transport {
        case .udp: return configuration.udpPort ?? 5060
        case .tcp: return configuration.tcpPort ?? 5060
        case .tls: return configuration.tlsPort ?? 5061
        }
    }

    public func run() async throws {
        do {
            try await bind()
            state.withLock { $0.listening = true }
            ready.succeed(())
        } catch {
            ready.fail(error)
            await closeAll()
            throw error
        }
        logger.info("SIP listening", metadata: [
            "udp": "\(udpAddress.map { "\($0)" } ?? "-")", "udp-sockets": "\(state.withLock { $0.udp.count })",
            "tcp": "\(tcpAddress.map { "\($0)" } ?? "-")", "tls": "\(tlsAddress.map { "\($0)" } ?? "-")",
        ])
        // Run until cancelled, asked to shut down gracefully, or a listener fails; a transport with no listener
        // (outbound only) runs until stopped too.
        for listener in state.withLock({ $0.udp + [$0.tcp, $0.tls].compactMap { $0 } }) {
            listener.closeFuture.whenComplete { _ in self.stopRequested.succeed(()) }
        }
        let graceful = configuration.stopsOnGracefulShutdown
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                try? await stopRequested.futureResult.get()
            } onCancel: {
                self.closeListeners()
            }
        } onGracefulShutdown: {
            if graceful { self.closeListeners() }
        }
        await closeAll()
    }

    /// Stops the listeners; `run()` then closes every connection and returns.
    public func stop() { closeListeners() }

    // MARK: - Listening

    private func bind() async throws {
        do {
            let clientTLS = try makeClientTLSContext()
            state.withLock { $0.clientTLS = clientTLS }
        } catch {
            // Only outbound TLS needs it: a UDP/TCP-only element still starts.
            logger.warning("SIP outbound TLS unavailable", metadata: ["reason": "\(error)"])
        }
        if let port = configuration.udpPort {
            try await naming("UDP", port) { try await self.bindUDP(port: port) }
        }
        if let port = configuration.tcpPort {
            let channel = try await naming("TCP", port) { try await self.serverBootstrap(transport: .tcp).bind(host: self.configuration.host, port: port).get() }
            state.withLock { $0.tcp = channel }
        }
        if let port = configuration.tlsPort {
            let channel = try await naming("TLS", port) { try await self.serverBootstrap(transport: .tls).bind(host: self.configuration.host, port: port).get() }
            state.withLock { $0.tls = channel }
        }
    }

    /// Runs a listener's bind, naming the transport and address in its error (a port in use says which).
    private func naming<T>(_ transport: String, _ port: Int, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw SIPTransportError("cannot listen for SIP over \(transport) on \(configuration.host):\(port): \(error)")
        }
    }

    /// One socket per loop (up to `udpSockets`), the first on `port` (0: any), the others on the port it got.
    private func bindUDP(port: Int) async throws {
        let loops = Array(group.makeIterator())
        let count = max(1, min(configuration.udpSockets, loops.count))
        let processor = SIPInboundProcessor(validator: SIPValidator(configuration: configuration.validator))
        let deliver = self.deliver
        let metrics = self.metrics
        let logger = self.logger
        var bound = port
        if count > 1 {
            // SO_REUSEPORT would let a second process (of the same user) join the port silently and take a share of the
            // traffic. A plain bind first fails if anything holds the port already (an SBC started twice on one port),
            // and picks the port for port 0; the sockets of the group then bind to it.
            let probe = try await DatagramBootstrap(group: loops[0]).bind(host: configuration.host, port: port).get()
            bound = probe.localAddress?.port ?? port
            try await probe.close()
        }
        for index in 0..<count {
            var bootstrap = DatagramBootstrap(group: loops[index])
                .channelOption(.maxMessagesPerRead, value: 16)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            SIPDatagramHandler(processor: processor, metrics: metrics, logger: logger, deliver: deliver))
                    }
                }
            // No SO_REUSEADDR on UDP: on Linux it would let a second socket share the port. SO_REUSEPORT only with several
            // sockets, and the kernel lets only sockets of the same user join the group.
            if count > 1 {
                bootstrap = bootstrap.channelOption(
                    ChannelOptions.Types.SocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
            }
            if let bytes = configuration.udpReceiveBufferBytes {
                bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(bytes))
            }
            let channel = try await bootstrap.bind(host: configuration.host, port: bound).get()
            if index == 0, count == 1, let actual = channel.localAddress?.port { bound = actual }
            if index == 0, let asked = configuration.udpReceiveBufferBytes {
                // Linux doubles what it grants (for its own bookkeeping) and caps it at net.core.rmem_max.
                let granted = try? await channel.getOption(.socketOption(.so_rcvbuf)).get()
                let usable = granted.map { Int($0) / 2 }
                state.withLock { $0.udpReceiveBuffer = usable }
                if let usable, usable < asked {
                    logger.warning("SIP UDP receive buffer smaller than configured: raise net.core.rmem_max", metadata: [
                        "asked-bytes": "\(asked)", "granted-bytes": "\(usable)",
                    ])
                }
            }
            state.withLock { $0.udp.append(channel) }
        }
    }

    private func serverBootstrap(transport: SIPTransportProtocol) throws -> ServerBootstrap {
        let sslContext = transport == .tls ? try makeServerTLSContext() : nil
        return ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 512)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard self.admit(channel, transport: transport) else {
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

    func installStreamPipeline(on channel: any Channel, transport: SIPTransportProtocol) throws {
        let processor = SIPInboundProcessor(validator: SIPValidator(configuration: configuration.validator))
        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: TimeAmount(configuration.idleTimeout)))
        try channel.pipeline.syncOperations.addHandler(SIPStreamHandler(
            transport: transport, processor: processor, limits: configuration.validator.limits,
            stallTimeout: TimeAmount(configuration.stallTimeout), metrics: metrics, logger: logger, deliver: deliver))
    }

    private func closeListeners() {
        let listeners = state.withLock { state -> [any Channel] in
            state.stopped = true
            return state.udp + [state.tcp, state.tls].compactMap { $0 }
        }
        for channel in listeners { channel.close(promise: nil) }
        stopRequested.succeed(())
    }

    /// Stops the listeners, then closes every open connection and waits until they are closed.
    private func closeAll() async {
        closeListeners()
        let open = state.withLock { Array($0.open.values) }
        for channel in open { channel.close(promise: nil) }
        for channel in open { try? await channel.closeFuture.get() }
    }
}

/// A transport could not be set up or could not send.
public struct SIPTransportError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "SIP transport: \(message)" }
}

