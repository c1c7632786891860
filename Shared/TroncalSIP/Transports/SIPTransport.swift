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
/// Shutting down (cancellation or graceful shutdown of `run()`) stops the listeners, then closes every open TCP/TLS
/// connection, accepted or opened, and returns once they are closed.
public final class SIPTransport: Service, Sendable {
    public let configuration: SIPTransportConfiguration
    let logger: Logger
    let group: any EventLoopGroup
    let deliver: @Sendable (SIPInbound) -> Void
    private let metrics = SIPTransportMetrics()
    private let state = Mutex(State())
    private let ready: EventLoopPromise<Void>
    /// Completed when shutdown is asked for or a listener closes on its own: either ends `run()`.
    private let stopRequested: EventLoopPromise<Void>

    struct State {
        var udp: (any Channel)?
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

    /// The bound address of each listener (useful with port 0).
    public var udpAddress: SocketAddress? { state.withLock { $0.udp?.localAddress } }
    public var tcpAddress: SocketAddress? { state.withLock { $0.tcp?.localAddress } }
    public var tlsAddress: SocketAddress? { state.withLock { $0.tls?.localAddress } }

    /// The port a transport's listener is bound to (the configured one until it is bound).
    public func port(of transport: SIPTransportProtocol) -> Int {
        let bound: SocketAddress? = state.withLock {
            switch transport {
            case .udp: $0.udp?.localAddress
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
        // Run until cancelled, asked to shut down gracefully, or a listener fails; a transport with no listener
        // (outbound only) runs until stopped too.
        for listener in state.withLock({ [$0.udp, $0.tcp, $0.tls].compactMap { $0 } }) {
            listener.closeFuture.whenComplete { _ in self.stopRequested.succeed(()) }
        }
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                try? await stopRequested.futureResult.get()
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

    /// Sends a message to `host:port` over `transport`: UDP from the listening socket (so replies come back to it),
    /// TCP or TLS reusing the connection to that destination or opening one (TLS verifies the server's certificate
    /// against `tlsTrustRootsPath`, and presents ours when configured). Concurrent sends to one destination share one
    /// connection. Throws when the destination cannot be reached (a refused or reset connection, a failed handshake:
    /// the caller treats that as a dead trunk). Host names are resolved off the event loops.
    public func send(_ message: SIPMessage, to host: String, port: Int, transport: SIPTransportProtocol) async throws {
        var buffer = ByteBufferAllocator().buffer(capacity: 1024)
        message.write(into: &buffer)
        let host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        switch transport {
        case .udp:
            guard let udp = state.withLock({ $0.stopped ? nil : $0.udp }) else { throw SIPTransportError("no UDP listener to send from") }
            let address = try await Self.resolve(host, port: port)
            try await udp.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer))
        case .tcp, .tls:
            let channel = try await outboundConnection(to: Destination(transport: transport, host: host, port: port))
            try await channel.writeAndFlush(buffer)
        }
    }

    /// Sends without waiting, keeping the order of calls made from one thread: over UDP to an IP address the
    /// datagram is queued at once; anything else (a TCP/TLS connection to open, a name to resolve) goes through
    /// `send` in a task. `onFailure` hears of a destination that cannot be reached.
    public func sendWithoutWaiting(
        _ message: SIPMessage, to host: String, port: Int, transport: SIPTransportProtocol,
        onFailure: @escaping @Sendable (any Error) -> Void = { _ in }
    ) {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if transport == .udp, let address = try? SocketAddress(ipAddress: bare, port: port),
            let udp = state.withLock({ $0.stopped ? nil : $0.udp })
        {
            var buffer = ByteBufferAllocator().buffer(capacity: 1024)
            message.write(into: &buffer)
            udp.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer)).whenFailure(onFailure)
            return
        }
        Task {
            do { try await self.send(message, to: bare, port: port, transport: transport) } catch { onFailure(error) }
        }
    }

    /// Sends a request (or response) back to where a message came from: over its connection for TCP/TLS, to its
    /// source address for UDP. Used for requests towards a customer behind NAT, who is reachable only that way.
    public func send(_ message: SIPMessage, over source: SIPSource, onFailure: @escaping @Sendable (any Error) -> Void = { _ in }) {
        var buffer = ByteBufferAllocator().buffer(capacity: 1024)
        message.write(into: &buffer)
        if let connection = source.connection {
            guard connection.isActive else { return onFailure(SIPTransportError("the connection to \(source) is closed")) }
            connection.writeAndFlush(buffer).whenFailure(onFailure)
        } else if source.transport == .udp, let udp = state.withLock({ $0.udp }) {
            udp.writeAndFlush(AddressedEnvelope(remoteAddress: source.remote, data: buffer)).whenFailure(onFailure)
        } else {
            onFailure(SIPTransportError("no way back to \(source)"))
        }
    }

    private static func resolve(_ host: String, port: Int) async throws -> SocketAddress {
        if let address = try? SocketAddress(ipAddress: host, port: port) { return address }
        // getaddrinfo blocks: run it on NIO's thread pool, not on an event loop or the cooperative pool.
        return try await NIOThreadPool.singleton.runIfActive { try SocketAddress.makeAddressResolvingHost(host, port: port) }
    }

    private func outboundConnection(to destination: Destination, retry: Bool = true) async throws -> any Channel {
        let (future, promise) = try state.withLock {
            state throws(SIPTransportError) -> (EventLoopFuture<any Channel>, EventLoopPromise<any Channel>?) in
            if state.stopped { throw SIPTransportError("the transport is stopped") }
            if let existing = state.outbound[destination] { return (existing, nil) }
            let promise = group.next().makePromise(of: (any Channel).self)
            state.outbound[destination] = promise.futureResult
            return (promise.futureResult, promise)
        }
        if let promise { connect(to: destination, completing: promise) }
        let channel = try await future.get()
        if channel.isActive || !retry { return channel }
        // Closed, and its entry not yet removed: forget it and connect afresh, once.
        forget(destination, future)
        return try await outboundConnection(to: destination, retry: false)
    }

    private func connect(to destination: Destination, completing promise: EventLoopPromise<any Channel>) {
        let sslContext = state.withLock { $0.clientTLS }
        if destination.transport == .tls, sslContext == nil {
            promise.fail(SIPTransportError("outbound TLS is unavailable: the transport is not running, or its TLS setup failed at start"))
            forget(destination, promise.futureResult)
            return
        }
        let tls = destination.transport == .tls ? sslContext : nil
        // SNI and certificate names are for host names; a peer addressed by IP is checked against its IP SANs.
        let serverName = (try? SocketAddress(ipAddress: destination.host, port: 0)) == nil ? destination.host : nil
        ClientBootstrap(group: group)
            .connectTimeout(.seconds(5))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try self.installStreamPipeline(on: channel, transport: destination.transport)
                }
            }
            .connect(host: destination.host, port: destination.port)
            .cascade(to: promise)
        promise.futureResult.whenComplete { result in
            switch result {
            case .success(let channel):
                self.track(channel)
                channel.closeFuture.whenComplete { _ in self.forget(destination, promise.futureResult) }
            case .failure(let error):
                self.logger.info("SIP connection failed", metadata: [
                    "to": "\(destination.transport.rawValue):\(destination.host):\(destination.port)", "reason": "\(error)",
                ])
                self.forget(destination, promise.futureResult)
            }
        }
    }

    private func forget(_ destination: Destination, _ future: EventLoopFuture<any Channel>) {
        state.withLock { state in
            if let current = state.outbound[destination], current === future { state.outbound[destination] = nil }
        }
    }

    /// Remembers an open connection until it closes; one that opens after shutdown began is closed at once.
    private func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let stopped = state.withLock { state in
            if !state.stopped { state.open[id] = channel }
            return state.stopped
        }
        if stopped {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { _ in _ = self.state.withLock { $0.open.removeValue(forKey: id) } }
    }

    // MARK: - Listening

    private func bind() async throws {
        do {
            let clientTLS = try makeClientTLSContext()
            state.withLock { $0.clientTLS = clientTLS }
        } catch {
            // Only outbound TLS needs it: a UDP/TCP-only element still starts.
            logger.warning("SIP outbound TLS unavailable", metadata: ["reason": "\(error)"])
        }
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
        let sslContext = transport == .tls ? try makeServerTLSContext() : nil
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

    private var trustRoots: NIOSSLTrustRoots {
        configuration.tlsTrustRootsPath.map { .file($0) } ?? .default
    }

    /// Our certificate chain and key, when configured.
    private func credentials() throws -> (chain: [NIOSSLCertificateSource], key: NIOSSLPrivateKeySource)? {
        guard let certificate = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath else { return nil }
        let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
        return (chain, .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
    }

    private func makeServerTLSContext() throws -> NIOSSLContext {
        guard let (chain, key) = try credentials() else { throw SIPTransportError("TLS needs a certificate and a key") }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
        tls.minimumTLSVersion = .tlsv12
        switch configuration.tlsClientCertificates {
        case .none:
            tls.certificateVerification = .none
        case .optional:
            tls.certificateVerification = .optionalVerification
            tls.trustRoots = trustRoots
        case .required:
            tls.certificateVerification = .noHostnameVerification
            tls.trustRoots = trustRoots
        }
        return try NIOSSLContext(configuration: tls)
    }

    private func makeClientTLSContext() throws -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .fullVerification
        tls.trustRoots = trustRoots
        if let (chain, key) = try credentials() {
            tls.certificateChain = chain
            tls.privateKey = key
        }
        return try NIOSSLContext(configuration: tls)
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
        track(channel)
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

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
