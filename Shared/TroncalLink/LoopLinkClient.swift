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

/// A link client confined to one event loop, for callers that live on that loop (the SBC's calls): its connections
/// are opened on the loop, so a request is written, answered and completed on the caller's own thread with no actor,
/// no task and no hop.
///
/// With several instances of the role, the alive ones share the requests in turn (a connection to each), and an
/// ``InstanceMembership`` decides who is alive: a broken link (refused, reset, closed) takes an instance out at once;
/// an instance that misses probes (`ping` every 500 ms) is suspected after two and gets no new requests, and is
/// declared dead only after the suspicion has lasted 30 s, both stretched when this machine itself is late (Lifeguard).
/// A retryable request (``LinkRequest/retryable``) that an instance does not answer within ``attemptTimeout`` is sent
/// to the next instance while its deadline lasts. A failed endpoint waits out a backoff (100 ms doubling to 5 s)
/// before it is dialled again.
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
    /// How long one instance is given (at least; half the request's timeout when that is longer) to answer a
    /// retryable request before the next instance is asked.
    public var attemptTimeout: TimeAmount = .milliseconds(1_500)
    private var connections: [Int: Connection] = [:]
    private var connecting: [Int: EventLoopFuture<Connection>] = [:]
    private var backoff: [Int: (until: NIODeadline, delay: TimeAmount)] = [:]
    public private(set) var membership: InstanceMembership
    private var probeTimer: Scheduled<Void>?
    private var probesRunning = false
    /// Why the last connection attempt or connection failed.
    public private(set) var lastError: String?
    /// Request ids: a random prefix per client and a counter (unique on every connection of this client).
    private let idPrefix = String(RandomID.uuidString().prefix(8))
    private var nextID: UInt64 = 0
    private let requestsFailed: Counter
    private let requestsRetried: Counter
    private let membershipChanges: Counter

    public init(settings: LinkClientSettings, eventLoop: any EventLoop, membership: InstanceMembership.Settings = .init()) {
        self.settings = settings
        self.eventLoop = eventLoop
        self.membership = InstanceMembership(count: settings.endpoints.count, settings: membership, now: .now())
        self.requestsFailed = Counter(label: "troncal_link_requests_failed_total", dimensions: [("role", settings.role.rawValue)])
        self.requestsRetried = Counter(label: "troncal_link_requests_retried_total", dimensions: [("role", settings.role.rawValue)])
        self.membershipChanges = Counter(label: "troncal_link_membership_changes_total", dimensions: [("role", settings.role.rawValue)])
    }

    private var bound: NIOLoopBound<LoopLinkClient> { NIOLoopBound(self, eventLoop: eventLoop) }

    private func makeID() -> String {
        nextID &+= 1
        return "\(idPrefix)-\(nextID)"
    }

    /// Each instance's state, for `status` and tests: `host:port` → alive, suspect or dead.
    public var instanceStates: [(endpoint: LinkEndpoint, state: InstanceMembership.State)] {
        settings.endpoints.indices.map { (settings.endpoints[$0], membership.state($0)) }
    }

    /// Sends a request; the future fails with `LinkError` (`.remote` with the peer's error, `.timeout`, `.unavailable`,
    /// `.connectionClosed`, `.protocolViolation`).
    public func request<R: LinkRequest>(_ request: R, timeout: TimeAmount) -> EventLoopFuture<R.Reply> {
        let deadline = NIODeadline.now() + timeout
        startProbing()
        let peer = settings.role.rawValue
        let order = membership.order()
        return attempt(request, order: order, deadline: deadline, timeout: timeout).flatMapThrowing { reply in
            try reply.reply(to: R.self, from: peer)
        }
    }

    /// Sends `request` to the first instance of `order` that can take it; a retryable request that gets no answer in
    /// time, or any request whose connection could not be made, goes on to the next.
    private func attempt<R: LinkRequest>(
        _ request: R, order: [Int], deadline: NIODeadline, timeout: TimeAmount
    ) -> EventLoopFuture<InboundEnvelope> {
        guard let index = order.first, deadline > NIODeadline.now() else {
            let reason = lastError.map { " (\($0))" } ?? ""
            return eventLoop.makeFailedFuture(LinkError(.unavailable, "no instance of \(settings.role) answered\(reason)"))
        }
        let rest = Array(order.dropFirst())
        let retry = R.retryable && !rest.isEmpty
        let attemptDeadline =
            retry ? min(deadline, NIODeadline.now() + max(attemptTimeout, .nanoseconds(timeout.nanoseconds / 2))) : deadline
        let id = makeID()
        // The receiver starts no work after this attempt's deadline (RequestDeadline).
        let ttl = Int(max(0, (attemptDeadline - NIODeadline.now()).nanoseconds / 1_000_000))
        let frame: ByteBuffer
        do {
            frame = ByteBuffer(bytes: try EnvelopeEncoder.encode(
                Envelope(
                    head: EnvelopeHead(v: R.version, id: id, type: R.messageType, from: settings.identity.description, ttl: ttl),
                    body: request)))
        } catch {
            return eventLoop.makeFailedFuture(LinkError(.protocolViolation, error.message))
        }
        let client = bound
        let type = R.messageType
        let promise = eventLoop.makePromise(of: InboundEnvelope.self)
        connection(index, before: attemptDeadline, waitForBackoff: rest.isEmpty).whenComplete { result in
            let client = client.value
            switch result {
            case .failure(let error):
                // Nothing was sent: the next instance may take it, whatever the request.
                guard !rest.isEmpty else {
                    let reason = (error as? LinkError)?.message ?? "\(error)"
                    return promise.fail(LinkError(
                        .unavailable, "no instance of \(client.settings.role) reachable (\(client.settings.endpoints[index]): \(reason))"))
                }
                promise.completeWith(client.attempt(request, order: rest, deadline: deadline, timeout: timeout))
            case .success(let connection):
                let exchanged = client.exchange(frame, id: id, type: type, on: connection, deadline: attemptDeadline, timeout: timeout)
                promise.completeWith(exchanged.flatMapError { error in
                    let failure = error as? LinkError ?? LinkError(.connectionClosed, "\(error)")
                    guard retry, failure.code != .remote, failure.code != .protocolViolation, deadline > NIODeadline.now() else {
                        return client.eventLoop.makeFailedFuture(failure)
                    }
                    client.requestsRetried.increment()
                    client.settings.logger.warning("link request sent to the next instance", metadata: [
                        "type": "\(type)", "endpoint": "\(client.settings.endpoints[index])", "reason": "\(failure.message)",
                    ])
                    return client.attempt(request, order: rest, deadline: deadline, timeout: timeout)
                })
            }
        }
        return promise.futureResult
    }

    /// Writes a request frame and waits for the reply with its id until `deadline`. A closed connection is a dead
    /// instance; a missed deadline counts as a missed probe (suspicion, not death).
    private func exchange(
        _ frame: ByteBuffer, id: String, type: String, on connection: Connection, deadline: NIODeadline, timeout: TimeAmount
    ) -> EventLoopFuture<InboundEnvelope> {
        let promise = eventLoop.makePromise(of: InboundEnvelope.self)
        let handler = connection.handler
        handler.value.register(id: id, promise: promise)
        connection.channel.writeAndFlush(frame, promise: nil)
        let timer = eventLoop.scheduleTask(deadline: deadline) {
            _ = handler.value.expire(id: id, error: LinkError(.timeout, "\(type) got no reply in time"))
        }
        let client = bound
        let index = connection.endpointIndex
        return promise.futureResult.always { result in
            timer.cancel()
            let client = client.value
            switch result {
            case .success:
                client.note(client.membership.answered(index, now: .now()))
            case .failure(let error):
                client.requestsFailed.increment()
                let failure = error as? LinkError ?? LinkError(.connectionClosed, "\(error)")
                switch failure.code {
                case .remote:
                    client.note(client.membership.answered(index, now: .now()))
                case .timeout:
                    client.note(client.membership.missedProbe(index, now: .now()))
                default:
                    client.drop(connection, reason: failure.message)
                }
            }
        }
    }

    /// Sends a one-way message to an alive instance; the future completes once it is written to a connection.
    public func send<M: LinkMessage>(_ message: M, timeout: TimeAmount) -> EventLoopFuture<Void> {
        let deadline = NIODeadline.now() + timeout
        let frame: ByteBuffer
        do {
            frame = ByteBuffer(bytes: try EnvelopeEncoder.encode(
                Envelope(head: EnvelopeHead(v: M.version, id: makeID(), type: M.messageType, from: settings.identity.description), body: message)))
        } catch {
            return eventLoop.makeFailedFuture(LinkError(.protocolViolation, error.message))
        }
        startProbing()
        return firstConnection(membership.order(), before: deadline).flatMap { connection in
            let client = self.bound
            return connection.channel.writeAndFlush(frame).flatMapErrorThrowing { error in
                client.value.drop(connection, reason: "\(error)")
                throw LinkError(.connectionClosed, "cannot send \(M.messageType): \(error)")
            }
        }
    }

    /// Sends a one-way message to every instance that can take it: `message` to the first in turn (alive first),
    /// `copy` to each of the others. Instances that cannot be reached now (in backoff, refused) are skipped; the
    /// future succeeds when at least one got its frame.
    public func broadcast<M: LinkMessage>(_ message: M, copy: M, timeout: TimeAmount) -> EventLoopFuture<Void> {
        let deadline = NIODeadline.now() + timeout
        let order = membership.order()
        guard order.count > 1 else { return send(message, timeout: timeout) }
        startProbing()
        var frames: [ByteBuffer] = []
        do {
            for (position, _) in order.enumerated() {
                let body = position == 0 ? message : copy
                frames.append(ByteBuffer(bytes: try EnvelopeEncoder.encode(
                    Envelope(head: EnvelopeHead(v: M.version, id: makeID(), type: M.messageType, from: settings.identity.description), body: body))))
            }
        } catch {
            return eventLoop.makeFailedFuture(LinkError(.protocolViolation, error.message))
        }
        let client = bound
        let writes = zip(order, frames).map { index, frame in
            connection(index, before: deadline, waitForBackoff: false).flatMap { connection in
                connection.channel.writeAndFlush(frame).flatMapErrorThrowing { error in
                    client.value.drop(connection, reason: "\(error)")
                    throw LinkError(.connectionClosed, "cannot send \(M.messageType): \(error)")
                }
            }.map { true }.recover { _ in false }
        }
        return EventLoopFuture.whenAllSucceed(writes, on: eventLoop).flatMapThrowing { sent in
            guard sent.contains(true) else {
                throw LinkError(.unavailable, "no instance of \(client.value.settings.role) reachable (\(client.value.lastError ?? "none tried"))")
            }
        }
    }

    private func firstConnection(_ order: [Int], before deadline: NIODeadline) -> EventLoopFuture<Connection> {
        guard let index = order.first else {
            return eventLoop.makeFailedFuture(LinkError(.unavailable, "no instance of \(settings.role) reachable (\(lastError ?? "none tried"))"))
        }
        let rest = Array(order.dropFirst())
        let client = bound
        return connection(index, before: deadline, waitForBackoff: rest.isEmpty).flatMapError { _ in
            client.value.firstConnection(rest, before: deadline)
        }
    }

    /// Closes every connection and stops probing.
    public func close() {
        probeTimer?.cancel()
        probeTimer = nil
        for connection in connections.values { connection.channel.close(promise: nil) }
        connections = [:]
    }

    // MARK: - Connections

    /// The connection to instance `index`, opened when there is none. An endpoint in backoff fails at once unless
    /// `waitForBackoff` (it is the last one to try) and the backoff ends before the deadline.
    private func connection(_ index: Int, before deadline: NIODeadline, waitForBackoff: Bool) -> EventLoopFuture<Connection> {
        if let connection = connections[index], connection.channel.isActive { return eventLoop.makeSucceededFuture(connection) }
        connections[index] = nil
        if let pending = connecting[index] { return pending }
        let endpoint = settings.endpoints[index]
        let client = bound
        if let until = backoff[index]?.until, until > NIODeadline.now() {
            guard waitForBackoff, until < deadline else {
                return eventLoop.makeFailedFuture(LinkError(.unavailable, "\(endpoint) is in backoff after: \(lastError ?? "a failure")"))
            }
            return eventLoop.flatScheduleTask(deadline: until) {
                client.value.connection(index, before: deadline, waitForBackoff: true)
            }.futureResult
        }
        let timeout = min(deadline - NIODeadline.now(), settings.connectTimeout)
        guard timeout > .zero else {
            return eventLoop.makeFailedFuture(LinkError(.timeout, "no time left to connect to \(endpoint)"))
        }
        let attempt = connect(endpoint, index: index, timeout: timeout).map { (connection: Connection) -> Connection in
            let client = client.value
            client.backoff[index] = nil
            client.connections[index] = connection
            client.lastError = nil
            client.settings.logger.info("link connected", metadata: ["endpoint": "\(endpoint)", "peer": "\(connection.peer)"])
            connection.channel.closeFuture.whenComplete { [client = NIOLoopBound(client, eventLoop: client.eventLoop)] _ in
                let client = client.value
                guard client.connections[index]?.channel === connection.channel else { return }
                client.connections[index] = nil
                client.note(client.membership.linkFailed(index, now: .now(), reason: "connection closed"))
            }
            return connection
        }.flatMapErrorThrowing { (error: any Error) throws -> Connection in
            let client = client.value
            let previous = client.backoff[index]?.delay ?? .milliseconds(50)
            let delay = min(previous * 2, .seconds(5))
            client.backoff[index] = (NIODeadline.now() + delay, delay)
            client.lastError = "\(endpoint): \(error)"
            // Once per outage: an instance already dead (or a standby not started) is redialled quietly.
            let level: Logger.Level = client.membership.state(index) == .dead ? .debug : .warning
            client.settings.logger.log(level: level, "link endpoint unreachable", metadata: ["endpoint": "\(endpoint)", "reason": "\(error)"])
            if let failure = error as? LinkError, failure.code == .timeout {
                // A handshake that did not finish in time may be a paused or starved instance: suspicion only.
                client.note(client.membership.missedProbe(index, now: .now()))
            } else {
                client.note(client.membership.linkFailed(index, now: .now(), reason: "\(error)"))
            }
            throw error
        }.always { _ in
            client.value.connecting[index] = nil
        }
        connecting[index] = attempt
        return attempt
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
        let index = dropped.endpointIndex
        guard let connection = connections[index], connection.channel === dropped.channel else { return }
        settings.logger.warning("link connection dropped; requests go to the other instances", metadata: [
            "endpoint": "\(settings.endpoints[index])", "reason": "\(reason)",
        ])
        lastError = reason
        connections[index] = nil
        connection.channel.close(promise: nil)
        note(membership.linkFailed(index, now: .now(), reason: reason))
        if settings.endpoints.count > 1 {
            backoff[index] = (NIODeadline.now() + .milliseconds(500), .milliseconds(500))
        }
    }

    // MARK: - Probing

    /// Starts the probe loop (with several instances only), once.
    private func startProbing() {
        guard settings.endpoints.count > 1, probeTimer == nil else { return }
        scheduleProbeRound()
    }

    private func scheduleProbeRound() {
        let client = bound
        let interval = membership.settings.probeInterval
        let due = NIODeadline.now() + interval
        probeTimer = eventLoop.scheduleTask(deadline: due) {
            client.value.probeRound(lateness: NIODeadline.now() - due)
        }
    }

    /// Pings every connected instance and redials the others; then schedules the next round.
    private func probeRound(lateness: TimeAmount) {
        guard !probesRunning else { return scheduleProbeRound() }
        probesRunning = true
        let client = bound
        let timeout = membership.probeTimeout
        var probes: [EventLoopFuture<Bool>] = []
        for index in settings.endpoints.indices {
            let deadline = NIODeadline.now() + timeout
            let probe = connection(index, before: deadline, waitForBackoff: false).flatMap { connection in
                let id = client.value.makeID()
                let frame: ByteBuffer
                do {
                    frame = ByteBuffer(bytes: try EnvelopeEncoder.encode(Envelope(
                        head: EnvelopeHead(v: Ping.version, id: id, type: Ping.messageType, from: client.value.settings.identity.description),
                        body: Ping())))
                } catch {
                    return client.value.eventLoop.makeFailedFuture(error)
                }
                return client.value.exchange(frame, id: id, type: Ping.messageType, on: connection, deadline: deadline, timeout: timeout)
                    .map { _ in () }
            }.map { true }.recover { _ in false }
            probes.append(probe)
        }
        EventLoopFuture.whenAllComplete(probes, on: eventLoop).whenComplete { results in
            let client = client.value
            let answered = (try? results.get())?.allSatisfy { (try? $0.get()) == true } ?? false
            client.membership.probeRound(lateness: lateness, allAnswered: answered)
            client.probesRunning = false
            if client.probeTimer != nil { client.scheduleProbeRound() }
        }
    }

    /// Logs a membership change and counts it.
    private func note(_ event: InstanceMembership.Event?) {
        guard let event else { return }
        membershipChanges.increment()
        switch event {
        case .suspected(let index, let missed):
            settings.logger.warning("link instance suspected: no new requests until it answers", metadata: [
                "endpoint": "\(settings.endpoints[index])", "missed-probes": "\(missed)", "local-health": "\(membership.localHealth)",
            ])
        case .declaredDead(let index, let reason):
            settings.logger.warning("link instance declared dead", metadata: [
                "endpoint": "\(settings.endpoints[index])", "reason": "\(reason)",
            ])
            if let connection = connections[index] {
                connections[index] = nil
                connection.channel.close(promise: nil)
            }
        case .recovered(let index, let from):
            settings.logger.info("link instance back in service", metadata: [
                "endpoint": "\(settings.endpoints[index])", "was": "\(from)",
            ])
        }
    }
}
