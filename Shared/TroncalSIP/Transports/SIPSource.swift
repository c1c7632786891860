public import NIOCore

/// Which transport a message came over or goes out on.
public enum SIPTransportProtocol: String, Sendable, Hashable, Codable {
    case udp, tcp, tls

    public var isReliable: Bool { self != .udp }
}

/// Where a received message came from: the transport, the peer's and our addresses, and for TCP/TLS the
/// connection it arrived on (responses go back over it, RFC 3261 §18.2.2).
public struct SIPSource: Sendable, CustomStringConvertible {
    public var transport: SIPTransportProtocol
    public var remote: SocketAddress
    public var local: SocketAddress?
    /// The connection for TCP and TLS; nil for UDP.
    public var connection: (any Channel)?

    public init(transport: SIPTransportProtocol, remote: SocketAddress, local: SocketAddress?, connection: (any Channel)?) {
        self.transport = transport
        self.remote = remote
        self.local = local
        self.connection = connection
    }

    /// The peer's IP address as text.
    public var remoteIP: String { remote.ipAddress ?? "?" }
    public var remotePort: Int { remote.port ?? 0 }

    public var description: String { "\(transport.rawValue):\(remoteIP):\(remotePort)" }
}

/// A message the transport accepted, with its origin.
public struct SIPInbound: Sendable {
    public var message: SIPMessage
    public var source: SIPSource
}
