internal import Logging
import Synchronization
public import NIOCore
internal import NIOPosix

extension SIPTransport {
    /// Sends a response back the way its request came: over its connection for TCP/TLS (RFC 3261 §18.2.2),
    /// or to the source address of the datagram for UDP (which is also where `rport` says), from the UDP socket of the
    /// calling loop when there is one.
    public func respond(_ response: SIPResponse, to source: SIPSource) {
        var buffer = ByteBufferAllocator().buffer(capacity: 512)
        SIPMessage.response(response).write(into: &buffer)
        if let connection = source.connection, connection.isActive {
            connection.writeAndFlush(buffer, promise: nil)
        } else if source.transport == .udp, let udp = datagramChannel() {
            udp.writeAndFlush(AddressedEnvelope(remoteAddress: source.remote, data: buffer), promise: nil)
        } else {
            logger.debug("response not sent: its connection is gone", metadata: ["to": "\(source)"])
        }
    }

    /// Sends a message to `host:port` over `transport`: UDP from a listening socket (so replies come back to it),
    /// TCP or TLS reusing the connection to that destination or opening one (TLS verifies the server's certificate
    /// against `tlsTrustRootsPath`, and presents ours when configured). Concurrent sends to one destination share one
    /// connection. Throws when the destination cannot be reached (a refused or reset connection, a failed handshake:
    /// the caller treats that as a dead trunk). Host names are resolved off the event loops.
    public func send(_ message: SIPMessage, to host: String, port: Int, transport: SIPTransportProtocol) async throws {
        var buffer = ByteBufferAllocator().buffer(capacity: 1024)
        message.write(into: &buffer)
        try await send(buffer, to: host, port: port, transport: transport).get()
    }

    /// The serialised form of `send(_:to:port:transport:)`, without a task: the future fails when the destination
    /// cannot be reached. Writes from one thread keep their order.
    public func send(_ buffer: ByteBuffer, to host: String, port: Int, transport: SIPTransportProtocol) -> EventLoopFuture<Void> {
        let host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let loop = group.any()
        switch transport {
        case .udp:
            guard let udp = datagramChannel() else { return loop.makeFailedFuture(SIPTransportError("no UDP listener to send from")) }
            if let address = try? SocketAddress(ipAddress: host, port: port) {
                return udp.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer))
            }
            // getaddrinfo blocks: run it on NIO's thread pool, not on an event loop.
            return NIOThreadPool.singleton.runIfActive(eventLoop: udp.eventLoop) {
                try SocketAddress.makeAddressResolvingHost(host, port: port)
            }.flatMap { address in
                udp.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer))
            }
        case .tcp, .tls:
            return outboundConnection(to: Destination(transport: transport, host: host, port: port)).flatMap { channel in
                channel.writeAndFlush(buffer)
            }
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
        } else if source.transport == .udp, let udp = datagramChannel() {
            udp.writeAndFlush(AddressedEnvelope(remoteAddress: source.remote, data: buffer)).whenFailure(onFailure)
        } else {
            onFailure(SIPTransportError("no way back to \(source)"))
        }
    }

    /// The UDP socket of the calling event loop, or the first one.
    func datagramChannel() -> (any Channel)? {
        state.withLock { state in
            guard !state.stopped else { return nil }
            if state.udp.count > 1, let current = MultiThreadedEventLoopGroup.currentEventLoop,
                let own = state.udp.first(where: { $0.eventLoop === current })
            {
                return own
            }
            return state.udp.first
        }
    }
}
