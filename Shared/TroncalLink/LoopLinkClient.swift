public import Logging
public import NIOCore
internal import Foundation
internal import Metrics
internal import NIOPosix
internal import NIOSSL
public import TroncalPKI
public import TroncalProtocol

/// What every loop's client of one role shares: the role's endpoints, our identity and the TLS context (made once).
public struct LinkClientSettings: Sendable {
    public let role: Role
    public let endpoints: [LinkEndpoint]
    let identity: PeerIdentity
    let sslContext: NIOSSLContext
    let logger: Logger
    /// How long one connection attempt (TCP + TLS) may take at most.
    public var connectTimeout: TimeAmount
    public var maximumFrameLength: Int

    public init(
        role: Role, endpoints: [LinkEndpoint], credentials: SiteCA.Credentials, logger: Logger, connectTimeout: Duration = .seconds(2),
        maximumFrameLength: Int = FrameDecoder.defaultMaximumFrameLength
    ) throws(LinkError) {
        self.role = role
        self.endpoints = endpoints
        self.identity = credentials.identity
        self.sslContext = try LinkTLS.clientContext(credentials)
        var logger = logger
        logger[metadataKey: "link"] = "\(role)"
        self.logger = logger
        self.connectTimeout = TimeAmount(connectTimeout)
        self.maximumFrameLength = maximumFrameLength
    }
}

/// A link client confined to one event loop, for callers that live on that loop (the SBC's calls): its connection is
/// opened on the loop, so a request is written, answered and completed on the caller's own thread with no actor, no
/// task and no hop. Same failover as `LinkClient`: a connection that fails, closes or misses a deadline is dropped
/// and the next instance is tried, each failed endpoint waiting out a backoff (100 ms doubling to 5 s).
///
/// Not thread-safe: every method must be called on `eventLoop`, and its futures complete there.
public final class LoopLinkClient {
    struct Connection: Sendable {
        var channel: any Channel
        var handler: NIOLoopBound<ClientConnectionHandler>
        var endpointIndex: Int
        var peer: PeerIdentity
    }

    public let settings: LinkClientSettings
    public let eventLoop: any EventLoop
    public var role: Role { settings.role }
    private var connection: Connection?
    private var connecting: EventLoopFuture<Connection>?
    private var preferred = 0
    private var backoff: [Int: (until: NIODeadline, delay: TimeAmount)] = [:]
    /// Why the last connection attempt or connection failed.
    public private(set) var lastError: String?
    /// Request ids: a random prefix per client and a counter (unique on every connection of this client).
    private let idPrefix = String(RandomID.uuidString().prefix(8))
    private var nextID: UInt64 = 0
    private let requestsFailed: Counter

    public init(settings: LinkClientSettings, eventLoop: any EventLoop) {
        self.settings = settings
        self.eventLoop = eventLoop
        self.requestsFailed = Counter(label: "troncal_link_requests_failed_total", dimensions: [("role", settings.role.rawValue)])
    }

    private var bound: NIOLoopBound<LoopLinkClient> { NIOLoopBound(self, eventLoop: eventLoop) }

    private func makeID() -> String {
        nextID &+= 1
        return "\(idPrefix)-\(nextID)"
    }

    /// Sends a request; the future fails with `LinkError` (`.remote` with the peer's error, `.timeout`, `.unavailable`,
    /// `.connectionClosed`, `.protocolViolation`).
    public func request<R: LinkRequest>(_ request: R, timeout: TimeAmount) -> EventLoopFuture<R.Reply> {
        let deadline = NIODeadline.now() + timeout
        let id = makeID()
        let frame: ByteBuffer
        do {
            frame = ByteBuffer(bytes: try EnvelopeEncoder.encode(
                Envelope(head: EnvelopeHead(v: R.version, id: id, type: R.messageType, from: settings.identity.description), body: request)))
        } catch {
            return eventLoop.makeFailedFuture(LinkError(.protocolViolation, error.message))
        }
        let client = bound
        let type = R.messageType
        let exchanged: EventLoopFuture<InboundEnvelope> = connected(before: deadline).flatMap { (connection: Connection) -> EventLoopFuture<InboundEnvelope> in
            client.value.exchange(frame, id: id, type: type, on: connection, deadline: deadline, timeout: timeout)
        }
        let peer = settings.role.rawValue
        return exchanged.flatMapThrowing { (reply: InboundEnvelope) throws -> R.Reply in
            try reply.reply(to: R.self, from: peer)
        }
    }

    /// Writes a request frame and waits for the reply with its id until `deadline`; a failure drops the connection.
    private func exchange(
        _ frame: ByteBuffer, id: String, type: String, on connection: Connection, deadline: NIODeadline, timeout: TimeAmount
    ) -> EventLoopFuture<InboundEnvelope> {
        let promise = eventLoop.makePromise(of: InboundEnvelope.self)
        let handler = connection.handler
        handler.value.register(id: id, promise: promise)
        connection.channel.writeAndFlush(frame, promise: nil)
        let timer = eventLoop.scheduleTask(deadline: deadline) {
            _ = handler.value.expire(id: id, error: LinkError(.timeout, "\(type) got no reply within \(timeout)"))
        }
        let client = bound
        return promise.futureResult.always { _ in timer.cancel() }.flatMapErrorThrowing { error -> InboundEnvelope in
            client.value.requestsFailed.increment()
            let failure = error as? LinkError ?? LinkError(.connectionClosed, "\(error)")
            client.value.drop(connection, reason: failure.message)
            throw failure
        }
    }

    /// Sends a one-way message; the future completes once it is written to a connection.
    public func send<M: LinkMessage>(_ message: M, timeout: TimeAmount) -> EventLoopFuture<Void> {
        let deadline = NIODeadline.now() + timeout
        let frame: ByteBuffer
        do {
            frame = ByteBuffer(bytes: try EnvelopeEncoder.encode(
                Envelope(head: EnvelopeHead(v: M.version, id: makeID(), type: M.messageType, from: settings.identity.description), body: message)))
        } catch {
            return eventLoop.makeFailedFuture(LinkError(.protocolViolation, error.message))
        }
        let client = bound
        return connected(before: deadline).flatMap { connection in
            connection.channel.writeAndFlush(frame).flatMapErrorThrowing { error in
                client.value.drop(connection, reason: "\(error)")
                throw LinkError(.connectionClosed, "cannot send \(M.messageType): \(error)")
            }
        }
    }

    /// Closes the connection, if any.
    public func close() {
        connection?.channel.close(promise: nil)
        connection = nil
    }

    // MARK: - Connecting with failover

    private func connected(before deadline: NIODeadline) -> EventLoopFuture<Connection> {
        if let connection, connection.channel.isActive { return eventLoop.makeSucceededFuture(connection) }
        connection = nil
        if let connecting { return connecting }
        let client = bound
        let attempt = connectToSomeEndpoint(before: deadline).always { result in
            let client = client.value
            client.connecting = nil
            if case .success(let connection) = result { client.connection = connection }
        }
        connecting = attempt
        return attempt
    }

    private func connectToSomeEndpoint(before deadline: NIODeadline) -> EventLoopFuture<Connection> {
        let endpoints = settings.endpoints
        guard !endpoints.isEmpty else {
            return eventLoop.makeFailedFuture(LinkError(.unavailable, "no endpoints configured for role \(settings.role)"))
        }
        let now = NIODeadline.now()
        let order = (0..<endpoints.count).map { (preferred + $0) % endpoints.count }
        // Endpoints out of backoff first, in preference order; then the others, soonest first.
        let ready = order.filter { (backoff[$0]?.until ?? now) <= now }
        let waiting = order.filter { (backoff[$0]?.until ?? now) > now }.sorted { (backoff[$0]?.until ?? now) < (backoff[$1]?.until ?? now) }
        return attempt(ready + waiting, deadline: deadline, failures: [])
    }

    private func attempt(_ remaining: [Int], deadline: NIODeadline, failures: [String]) -> EventLoopFuture<Connection> {
        guard let index = remaining.first, deadline > NIODeadline.now() else {
            let detail = failures.isEmpty ? "deadline passed before any attempt" : failures.joined(separator: "; ")
            return eventLoop.makeFailedFuture(LinkError(.unavailable, "no instance of \(settings.role) reachable (\(detail))"))
        }
        let rest = Array(remaining.dropFirst())
        let client = bound
        if let until = backoff[index]?.until, until > NIODeadline.now() {
            guard until < deadline else { return attempt([], deadline: deadline, failures: failures) }
            return eventLoop.flatScheduleTask(deadline: until) { client.value.attempt([index] + rest, deadline: deadline, failures: failures) }
                .futureResult
        }
        let endpoint = settings.endpoints[index]
        let timeout = min(deadline - NIODeadline.now(), settings.connectTimeout)
        return connect(endpoint, index: index, timeout: timeout).map { connection in
            let client = client.value
            client.backoff[index] = nil
            client.preferred = index
            client.lastError = nil
            client.settings.logger.info("link connected", metadata: ["endpoint": "\(endpoint)", "peer": "\(connection.peer)"])
            return connection
        }.flatMapError { error in
            let client = client.value
            let previous = client.backoff[index]?.delay ?? .milliseconds(50)
            let delay = min(previous * 2, .seconds(5))
            client.backoff[index] = (NIODeadline.now() + delay, delay)
            client.lastError = "\(endpoint): \(error)"
            client.settings.logger.warning("link endpoint unreachable", metadata: ["endpoint": "\(endpoint)", "reason": "\(error)"])
            return client.attempt(rest, deadline: deadline, failures: failures + ["\(endpoint): \(error)"])
        }
    }

    private func connect(_ endpoint: LinkEndpoint, index: Int, timeout: TimeAmount) -> EventLoopFuture<Connection> {
        let sslContext = settings.sslContext
        let maximumFrameLength = settings.maximumFrameLength
        let expectedRole = settings.role
        let eventLoop = self.eventLoop
        let handshake = eventLoop.makePromise(of: Void.self)
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: nil))
                    try sync.addHandler(ByteToMessageHandler(FrameDecoder(maximumFrameLength: maximumFrameLength)))
                    try sync.addHandler(MessageToByteHandler(FrameEncoder()))
                    try sync.addHandler(ClientConnectionHandler(handshake: handshake))
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .flatMapErrorThrowing { error -> any Channel in
                // No channel, no handshake: complete its promise (a second completion is ignored).
                handshake.fail(error)
                throw error
            }
            .flatMap { channel -> EventLoopFuture<Connection> in
                let timer = eventLoop.scheduleTask(in: timeout) {
                    handshake.fail(LinkError(.timeout, "TLS handshake did not finish within \(timeout)"))
                }
                return handshake.futureResult.always { _ in timer.cancel() }
                    .flatMap { channel.nioSSL_peerCertificate() }
                    .flatMapThrowing { certificate -> Connection in
                        let peer = try LinkTLS.identity(of: certificate)
                        guard peer.role == expectedRole else {
                            throw LinkError(.forbidden, "\(endpoint) presented a certificate of role \(peer.role), expected \(expectedRole)")
                        }
                        let handler = try channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self)
                        return Connection(channel: channel, handler: NIOLoopBound(handler, eventLoop: eventLoop), endpointIndex: index, peer: peer)
                    }
                    .flatMapErrorThrowing { error in
                        channel.close(promise: nil)
                        throw error
                    }
            }
    }

    private func drop(_ dropped: Connection, reason: String) {
        guard let connection, connection.channel === dropped.channel else { return }
        settings.logger.warning("link connection dropped; next request tries the next instance", metadata: [
            "endpoint": "\(settings.endpoints[dropped.endpointIndex])", "reason": "\(reason)",
        ])
        lastError = reason
        connection.channel.close(promise: nil)
        self.connection = nil
        if settings.endpoints.count > 1 {
            preferred = (dropped.endpointIndex + 1) % settings.endpoints.count
            backoff[dropped.endpointIndex] = (NIODeadline.now() + .milliseconds(500), .milliseconds(500))
        }
    }
}
