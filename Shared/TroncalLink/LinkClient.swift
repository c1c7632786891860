public import Logging
public import NIOCore
internal import Foundation
internal import Metrics
public import NIOPosix
internal import NIOSSL
public import TroncalPKI
public import TroncalProtocol

/// An address of one instance of a role, `host:port`.
public struct LinkEndpoint: Sendable, Hashable, Codable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// The calling side of a link to one role, with several endpoints (instances) of that role.
///
/// Requests go to the connected instance; a connection that fails, closes or misses a deadline is dropped
/// and the next instance is tried, each failed endpoint waiting out an exponential backoff (100 ms doubling
/// to 5 s) before it is tried again. A retryable request (``LinkRequest/retryable``) with several instances gets half
/// its timeout (at least 1.5 s) on one instance, then goes to the next while its deadline lasts. The server's
/// certificate must name the expected role.
public actor LinkClient {
    public let role: Role
    public let endpoints: [LinkEndpoint]
    let identity: PeerIdentity
    let sslContext: NIOSSLContext
    let logger: Logger
    let eventLoopGroup: any EventLoopGroup
    let maximumFrameLength: Int
    /// How long one connection attempt (TCP + TLS) may take at most.
    public var connectTimeout: Duration

    private struct Connection {
        var channel: any Channel
        var handler: NIOLoopBound<ClientConnectionHandler>
        var endpointIndex: Int
        var peer: PeerIdentity
    }

    private var connection: Connection?
    private var connecting: Task<Connection, any Error>?
    private var preferred = 0
    private var backoff: [Int: (until: NIODeadline, delay: Duration)] = [:]
    private var lastError: String?

    private let requestsFailed: Counter

    public init(
        role: Role, endpoints: [LinkEndpoint], credentials: SiteCA.Credentials, logger: Logger,
        connectTimeout: Duration = .seconds(2), maximumFrameLength: Int = FrameDecoder.defaultMaximumFrameLength,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws(LinkError) {
        self.role = role
        self.endpoints = endpoints
        self.identity = credentials.identity
        self.sslContext = try LinkTLS.clientContext(credentials)
        var logger = logger
        logger[metadataKey: "link"] = "\(role)"
        self.logger = logger
        self.connectTimeout = connectTimeout
        self.maximumFrameLength = maximumFrameLength
        self.eventLoopGroup = eventLoopGroup
        self.requestsFailed = Counter(label: "troncal_link_requests_failed_total", dimensions: [("role", role.rawValue)])
    }

    /// Sends a request and waits for its reply until `timeout`. Throws `LinkError`: `.remote` with the
    /// peer's error, `.timeout`, `.unavailable` (no instance reachable) or `.connectionClosed`.
    public func request<R: LinkRequest>(_ request: R, timeout: Duration = .seconds(5)) async throws(LinkError) -> R.Reply {
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        guard R.retryable, endpoints.count > 1 else { return try await attempt(request, deadline: deadline, timeout: timeout) }
        // A retryable request gets half its time (at least 1.5 s) on one instance, then goes to the next while its
        // deadline lasts: a paused or starved instance costs it a delay, not a failure.
        let slice = TimeAmount.nanoseconds(max(TimeAmount(timeout).nanoseconds / 2, 1_500_000_000))
        var lastError: LinkError?
        for _ in 0..<endpoints.count {
            let now = NIODeadline.now()
            guard deadline > now else { break }
            do throws(LinkError) {
                return try await attempt(request, deadline: min(deadline, now + slice), timeout: timeout)
            } catch {
                guard error.code != .remote, error.code != .protocolViolation, error.code != .forbidden else { throw error }
                lastError = error
                logger.warning("link request sent to the next instance", metadata: ["type": "\(R.messageType)", "reason": "\(error.message)"])
            }
        }
        throw lastError ?? LinkError(.timeout, "\(R.messageType) got no reply within \(timeout)")
    }

    private func attempt<R: LinkRequest>(_ request: R, deadline: NIODeadline, timeout: Duration) async throws(LinkError) -> R.Reply {
        let current = try await connected(before: deadline)
        let id = RandomID.uuidString()
        // The receiver starts no work after this attempt's deadline (RequestDeadline).
        let ttl = Int(max(0, (deadline - NIODeadline.now()).nanoseconds / 1_000_000))
        let head = EnvelopeHead(v: R.version, id: id, type: R.messageType, from: identity.description, ttl: ttl)
        let frame: ByteBuffer
        do {
            frame = ByteBuffer(bytes: try EnvelopeEncoder.encode(Envelope(head: head, body: request)))
        } catch {
            throw LinkError(.protocolViolation, error.message)
        }
        let promise = current.channel.eventLoop.makePromise(of: InboundEnvelope.self)
        let handler = current.handler
        let channel = current.channel
        let remaining = deadline - NIODeadline.now()
        channel.eventLoop.execute {
            handler.value.register(id: id, promise: promise)
            channel.writeAndFlush(frame, promise: nil)
            let timer = channel.eventLoop.scheduleTask(in: remaining) {
                _ = handler.value.expire(id: id, error: LinkError(.timeout, "\(R.messageType) got no reply in time (timeout \(timeout))"))
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        let reply: InboundEnvelope
        do {
            reply = try await promise.futureResult.get()
        } catch let error as LinkError {
            requestsFailed.increment()
            dropConnection(current, reason: error.message, retire: error.code == .timeout)
            throw error
        } catch {
            requestsFailed.increment()
            dropConnection(current, reason: "\(error)")
            throw LinkError(.connectionClosed, "\(error)")
        }
        return try reply.reply(to: R.self, from: "\(current.peer)")
    }

    /// Sends a one-way message (no reply expected). Returns once it is written to a connection.
    public func send<M: LinkMessage>(_ message: M, timeout: Duration = .seconds(5)) async throws(LinkError) {
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        let current = try await connected(before: deadline)
        let head = EnvelopeHead(v: M.version, id: RandomID.uuidString(), type: M.messageType, from: identity.description)
        do {
            let data = try EnvelopeEncoder.encode(Envelope(head: head, body: message))
            try await current.channel.writeAndFlush(ByteBuffer(bytes: data))
        } catch {
            dropConnection(current, reason: "\(error)")
            throw LinkError(.connectionClosed, "cannot send \(M.messageType): \(error)")
        }
    }

    /// The link's state for `/health` and `status`.
    public func status() -> LinkStatus {
        let connected = connection.flatMap { $0.channel.isActive ? endpoints[$0.endpointIndex].description : nil }
        let state = connected != nil ? "connected" : (lastError.map { "down: \($0)" } ?? "idle")
        return LinkStatus(role: role, connected: connected, endpoints: endpoints.map(\.description), state: state)
    }

    /// Closes the connection, if any.
    public func close() async {
        connecting?.cancel()
        if let connection { try? await connection.channel.close() }
        connection = nil
    }

    // MARK: - Connecting with failover

    private func connected(before deadline: NIODeadline) async throws(LinkError) -> Connection {
        if let connection, connection.channel.isActive { return connection }
        connection = nil
        let task: Task<Connection, any Error>
        if let connecting {
            task = connecting
        } else {
            task = Task { try await self.connectToSomeEndpoint(before: deadline) }
            connecting = task
        }
        do {
            let result = try await task.value
            connecting = nil
            connection = result
            return result
        } catch let error as LinkError {
            connecting = nil
            throw error
        } catch {
            connecting = nil
            throw LinkError(.unavailable, "\(error)")
        }
    }

    private func connectToSomeEndpoint(before deadline: NIODeadline) async throws(LinkError) -> Connection {
        guard !endpoints.isEmpty else { throw LinkError(.unavailable, "no endpoints configured for role \(role)") }
        let now = NIODeadline.now()
        let order = (0..<endpoints.count).map { (preferred + $0) % endpoints.count }
        // Endpoints out of backoff first, in preference order; then the others, soonest first.
        let ready = order.filter { (backoff[$0]?.until ?? now) <= now }
        let waiting = order.filter { (backoff[$0]?.until ?? now) > now }
            .sorted { (backoff[$0]?.until ?? now) < (backoff[$1]?.until ?? now) }
        var failures: [String] = []
        for index in ready + waiting {
            if let until = backoff[index]?.until, until > NIODeadline.now() {
                guard until < deadline else { break }
                try? await Task.sleep(for: .nanoseconds((until - NIODeadline.now()).nanoseconds))
            }
            let remaining = deadline - NIODeadline.now()
            guard remaining > .zero else { break }
            let endpoint = endpoints[index]
            do {
                let timeout = min(remaining, TimeAmount(connectTimeout))
                let connection = try await connect(endpoint, index: index, timeout: timeout)
                backoff[index] = nil
                preferred = index
                lastError = nil
                logger.info("link connected", metadata: ["endpoint": "\(endpoint)", "peer": "\(connection.peer)"])
                return connection
            } catch {
                let previous = backoff[index]?.delay ?? .milliseconds(50)
                let delay = min(previous * 2, .seconds(5))
                backoff[index] = (NIODeadline.now() + TimeAmount(delay), delay)
                failures.append("\(endpoint): \(error)")
                lastError = "\(endpoint): \(error)"
                logger.warning("link endpoint unreachable", metadata: ["endpoint": "\(endpoint)", "reason": "\(error)"])
            }
        }
        let detail = failures.isEmpty ? "deadline passed before any attempt" : failures.joined(separator: "; ")
        throw LinkError(.unavailable, "no instance of \(role) reachable (\(detail))")
    }

    private func connect(_ endpoint: LinkEndpoint, index: Int, timeout: TimeAmount) async throws -> Connection {
        let sslContext = self.sslContext
        let maximumFrameLength = self.maximumFrameLength
        let expectedRole = role
        let channel = try await ClientBootstrap(group: eventLoopGroup)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: endpoint.host, port: endpoint.port) { channel in
                channel.eventLoop.makeCompletedFuture { channel }
            }
        let handshake = channel.eventLoop.makePromise(of: Void.self)
        let bound: NIOLoopBound<ClientConnectionHandler> = try await channel.eventLoop.submit {
            let handler = ClientConnectionHandler(handshake: handshake)
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: nil))
            try sync.addHandler(ByteToMessageHandler(FrameDecoder(maximumFrameLength: maximumFrameLength)))
            try sync.addHandler(MessageToByteHandler(FrameEncoder()))
            try sync.addHandler(handler)
            return NIOLoopBound(handler, eventLoop: channel.eventLoop)
        }.get()
        let timer = channel.eventLoop.scheduleTask(in: timeout) {
            handshake.fail(LinkError(.timeout, "TLS handshake did not finish within \(timeout)"))
        }
        do {
            try await handshake.futureResult.get()
            timer.cancel()
            let certificate = try await channel.nioSSL_peerCertificate().get()
            let peer = try LinkTLS.identity(of: certificate)
            guard peer.role == expectedRole else {
                throw LinkError(.forbidden, "\(endpoint) presented a certificate of role \(peer.role), expected \(expectedRole)")
            }
            return Connection(channel: channel, handler: bound, endpointIndex: index, peer: peer)
        } catch {
            timer.cancel()
            try? await channel.close()
            throw error
        }
    }

    /// Stops using the connection; the next request goes to the next instance. `retire` (a request timed out: the
    /// instance is slow, perhaps on that request alone): the requests still waiting on it are not failed with it, the
    /// connection closes once they are answered or expire. Otherwise it closes at once.
    private func dropConnection(_ dropped: Connection, reason: String, retire: Bool = false) {
        guard let connection, connection.channel === dropped.channel else { return }
        logger.warning("link connection dropped; next request tries the next instance", metadata: [
            "endpoint": "\(endpoints[dropped.endpointIndex])", "reason": "\(reason)",
        ])
        lastError = reason
        if retire {
            let handler = dropped.handler
            let channel = dropped.channel
            channel.eventLoop.execute { handler.value.retire(channel) }
        } else {
            connection.channel.close(promise: nil)
        }
        self.connection = nil
        if endpoints.count > 1 {
            preferred = (dropped.endpointIndex + 1) % endpoints.count
            backoff[dropped.endpointIndex] = (NIODeadline.now() + .milliseconds(500), .milliseconds(500))
        }
    }
}


extension InboundEnvelope {
    /// The typed reply to a request of type `R`: an `error` envelope becomes a `.remote` LinkError, any other type a
    /// protocol violation.
    func reply<R: LinkRequest>(to request: R.Type, from peer: String) throws(LinkError) -> R.Reply {
        if head.type == ProtocolError.messageType {
            let remote = (try? body(as: ProtocolError.self)) ?? ProtocolError(.internal, "undecodable error reply")
            throw LinkError(.remote, "\(peer) refused \(R.messageType)", remote: remote)
        }
        guard head.type == R.Reply.messageType else {
            throw LinkError(.protocolViolation, "expected \(R.Reply.messageType), got \(head.type)")
        }
        do {
            return try body(as: R.Reply.self)
        } catch {
            throw LinkError(.protocolViolation, error.message)
        }
    }
}
