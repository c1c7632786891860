internal import Logging
import Synchronization
internal import Foundation
internal import NIOCore
internal import NIOPosix
internal import NIOSSL

/// Outbound TCP/TLS connections (shared per destination) and the admission of inbound ones.
extension SIPTransport {
    /// The connection to a destination: the open one, the one being opened, or a new one. A closed connection whose
    /// entry is not yet forgotten is replaced once.
    func outboundConnection(to destination: Destination, retry: Bool = true) -> EventLoopFuture<any Channel> {
        let lookup: Result<(EventLoopFuture<any Channel>, EventLoopPromise<any Channel>?), SIPTransportError> = state.withLock { state in
            if state.stopped { return .failure(SIPTransportError("the transport is stopped")) }
            if let existing = state.outbound[destination] { return .success((existing, nil)) }
            let promise = group.next().makePromise(of: (any Channel).self)
            state.outbound[destination] = promise.futureResult
            return .success((promise.futureResult, promise))
        }
        switch lookup {
        case .failure(let error):
            return group.any().makeFailedFuture(error)
        case .success(let (future, promise)):
            if let promise { connect(to: destination, completing: promise) }
            guard retry else { return future }
            return future.flatMap { channel in
                if channel.isActive { return channel.eventLoop.makeSucceededFuture(channel) }
                self.forget(destination, future)
                return self.outboundConnection(to: destination, retry: false)
            }
        }
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

    func forget(_ destination: Destination, _ future: EventLoopFuture<any Channel>) {
        state.withLock { state in
            if let current = state.outbound[destination], current === future { state.outbound[destination] = nil }
        }
    }

    /// Remembers an open connection until it closes; one that opens after shutdown began is closed at once.
    func track(_ channel: any Channel) {
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

    /// Per-address and global connection limits: over either, the connection is closed at once and counted. An
    /// admitted connection is also the way to its remote address: a request sent to that address and port over its
    /// transport goes over it (RFC 5626 flows: a phone behind a NAT that registered over TCP or TLS is reachable only
    /// over the connection it opened; nothing listens at its ephemeral port).
    func admit(_ channel: any Channel, transport: SIPTransportProtocol) -> Bool {
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
        let flow: (Destination, EventLoopFuture<any Channel>)? = channel.remoteAddress?.port.map { port in
            let destination = Destination(transport: transport, host: ip, port: port)
            let future = channel.eventLoop.makeSucceededFuture(channel)
            state.withLock { $0.outbound[destination] = future }
            return (destination, future)
        }
        channel.closeFuture.whenComplete { _ in
            if let (destination, future) = flow { self.forget(destination, future) }
            self.state.withLock { state in
                state.connections -= 1
                state.connectionsPerAddress[ip, default: 1] -= 1
                if state.connectionsPerAddress[ip] == 0 { state.connectionsPerAddress[ip] = nil }
            }
        }
        return true
    }
}
