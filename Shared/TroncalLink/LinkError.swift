public import TroncalProtocol

/// The one error type of TroncalLink. Wire-level failures carry the `ErrorCode` the peer sent or that
/// the link decided (timeout, unavailable, connection_closed).
public struct LinkError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case tlsConfiguration = "tls_configuration"
        case bind
        /// The peer answered with an `error` envelope; `remote` holds it.
        case remote
        case timeout
        case unavailable
        case connectionClosed = "connection_closed"
        case forbidden
        case protocolViolation = "protocol_violation"
    }

    public var code: Code
    public var message: String
    /// The error the peer sent, for `.remote`.
    public var remote: ProtocolError?

    public init(_ code: Code, _ message: String, remote: ProtocolError? = nil) {
        self.code = code
        self.message = message
        self.remote = remote
    }

    public var description: String {
        if let remote { return "link \(code.rawValue): \(message) (\(remote))" }
        return "link \(code.rawValue): \(message)"
    }
}
