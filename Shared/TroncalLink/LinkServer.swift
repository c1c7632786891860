public import Logging
public import NIOCore
internal import Foundation
internal import Metrics
public import NIOPosix
internal import NIOSSL
internal import Synchronization
public import ServiceLifecycle
public import TroncalPKI
public import TroncalProtocol

/// The listening side of a mutual-TLS link: accepts peers whose certificate chains to the site CA, reads
/// their role from it, and answers their frames through `LinkHandlers`.
///
/// Bad input on one connection (an unknown CA, a frame over the limit, bad JSON, a truncated frame) is
/// answered with an error where possible, logged, counted, and never disturbs other connections.
public final class LinkServer: Service, Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var maximumFrameLength: Int
        /// How many requests one connection may have in flight before reading pauses.
        public var maximumConcurrentRequestsPerConnection: Int

        public init(host: String, port: Int, maximumFrameLength: Int = FrameDecoder.defaultMaximumFrameLength,
                    maximumConcurrentRequestsPerConnection: Int = 64) {
            self.host = host
            self.port = port
            self.maximumFrameLength = maximumFrameLength
            self.maximumConcurrentRequestsPerConnection = maximumConcurrentRequestsPerConnection
        }
    }

    let configuration: Configuration
    let handlers: LinkHandlers
    let sslContext: NIOSSLContext
    let logger: Logger
    let eventLoopGroup: any EventLoopGroup
    private let bound: EventLoopPromise<SocketAddress>

    private let connectionsAccepted = Counter(label: "troncal_link_connections_total")
    private let handshakeFailures = Counter(label: "troncal_link_handshake_failures_total")
    private let errorsSent = Counter(label: "troncal_link_errors_total")
    /// Requests refused because their sender had stopped waiting (`troncal_link_requests_expired_total{type}`),
    /// logged once per 10 s with the count since the last line: under overload there are many.
    private let expiredLog = Mutex<(next: ContinuousClock.Instant, count: Int)>((.now, 0))

    public init(
        configuration: Configuration, credentials: SiteCA.Credentials, handlers: LinkHandlers, logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws(LinkError) {
        self.configuration = configuration
        self.handlers = handlers
        self.sslContext = try LinkTLS.serverContext(credentials)
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.bound = eventLoopGroup.next().makePromise(of: SocketAddress.self)
    }

    /// The address the server listens on, once bound (useful with port 0). Throws if binding failed.
    public func listeningAddress() async throws -> SocketAddress {
        try await bound.futureResult.get()
    }

    public func run() async throws {
        let sslContext = self.sslContext
        let maximumFrameLength = configuration.maximumFrameLength
        let server: NIOAsyncChannel<NIOAsyncChannel<Frame, ByteBuffer>, Never>
        do {
            server = try await ServerBootstrap(group: eventLoopGroup)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 256)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .bind(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(NIOSSLServerHandler(context: sslContext))
                        try sync.addHandler(ByteToMessageHandler(FrameDecoder(maximumFrameLength: maximumFrameLength)))
                        try sync.addHandler(MessageToByteHandler(FrameEncoder()))
                        return try NIOAsyncChannel<Frame, ByteBuffer>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 16)))
                    }
                }
        } catch {
            let failure = LinkError(.bind, "cannot listen on \(configuration.host):\(configuration.port): \(error)")
            bound.fail(failure)
            throw failure
        }
        if let address = server.channel.localAddress {
            bound.succeed(address)
            logger.info("link listening", metadata: ["address": "\(address)"])
        }
        let serverChannel = server.channel
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        connectionsAccepted.increment()
                        group.addTask { await self.serve(connection) }
                    }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            serverChannel.close(promise: nil)
        }
        logger.info("link stopped")
    }

    private func serve(_ connection: NIOAsyncChannel<Frame, ByteBuffer>) async {
        let remote = connection.channel.remoteAddress.map { "\($0)" } ?? "unknown"
        var logger = self.logger
        logger[metadataKey: "peer-address"] = "\(remote)"
        do {
            try await connection.executeThenClose { inbound, outbound in
                var peer: PeerIdentity?
                try await withThrowingTaskGroup(of: Void.self) { group in
                    var inFlight = 0
                    for try await frame in inbound {
                        if peer == nil {
                            let certificate = try await connection.channel.nioSSL_peerCertificate().get()
                            do {
                                peer = try LinkTLS.identity(of: certificate)
                                logger[metadataKey: "peer"] = "\(peer!)"
                                logger.debug("link peer connected", metadata: ["role": "\(peer!.role)"])
                            } catch let error as LinkError {
                                logger.warning("link peer refused", metadata: ["reason": "\(error.message)"])
                                try await outbound.write(self.errorFrame(ProtocolError(.forbidden, error.message)))
                                return
                            }
                        }
                        guard let peer else { return }
                        switch frame {
                        case .tooLarge(let length):
                            errorsSent.increment()
                            logger.warning("link frame over the limit; closing", metadata: [
                                "length": "\(length)", "limit": "\(configuration.maximumFrameLength)",
                            ])
                            try await outbound.write(
                                self.errorFrame(ProtocolError(.frameTooLarge, "frame of \(length) bytes exceeds the limit of \(configuration.maximumFrameLength)")))
                            return
                        case .json(let buffer):
                            if inFlight >= configuration.maximumConcurrentRequestsPerConnection {
                                try await group.next()
                                inFlight -= 1
                            }
                            inFlight += 1
                            let json = Data(buffer.readableBytesView)
                            let logger = logger
                            group.addTask {
                                let result = await self.handlers.dispatch(json: json, from: peer)
                                if let error = result.error {
                                    self.errorsSent.increment()
                                    if error.code == .timeout {
                                        self.expired(type: result.type ?? "?", error, logger: logger)
                                    } else {
                                        logger.warning("link message refused", metadata: [
                                            "type": "\(result.type ?? "?")", "code": "\(error.code.rawValue)", "reason": "\(error.message)",
                                        ])
                                    }
                                }
                                if case .reply(let data) = result.outcome {
                                    try await outbound.write(ByteBuffer(bytes: data))
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
        } catch let error as NIOSSLError {
            handshakeFailures.increment()
            logger.warning("link TLS failure; connection closed", metadata: ["reason": "\(error)"])
        } catch let error as BoringSSLError {
            handshakeFailures.increment()
            logger.warning("link TLS handshake refused; connection closed", metadata: ["reason": "\(error)"])
        } catch let error as ProtocolError {
            logger.warning("link connection closed", metadata: ["reason": "\(error.message)"])
        } catch is CancellationError {
            return
        } catch {
            logger.debug("link connection closed", metadata: ["reason": "\(error)"])
        }
    }

    /// A request refused because its sender had stopped waiting: counted, and logged at most once per 10 s.
    private func expired(type: String, _ error: ProtocolError, logger: Logger) {
        Counter(label: "troncal_link_requests_expired_total", dimensions: [("type", type)]).increment()
        let now = ContinuousClock.now
        let count = expiredLog.withLock { state -> Int? in
            state.count += 1
            guard now >= state.next else { return nil }
            defer { state = (now + .seconds(10), 0) }
            return state.count
        }
        guard let count else { return }
        logger.warning("link requests refused: their senders had stopped waiting (overloaded?)", metadata: [
            "type": "\(type)", "requests": "\(count)", "reason": "\(error.message)",
        ])
    }

    private func errorFrame(_ error: ProtocolError) -> ByteBuffer {
        let head = EnvelopeHead(v: 1, id: RandomID.uuidString(), type: ProtocolError.messageType, from: handlers.localIdentity.description)
        let data = (try? EnvelopeEncoder.encode(Envelope(head: head, body: error))) ?? Data("{}".utf8)
        return ByteBuffer(bytes: data)
    }
}
