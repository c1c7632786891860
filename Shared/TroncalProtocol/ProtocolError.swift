/// The error codes of the wire protocol, sent in `{"type":"error","body":{"code":…,"message":…}}`.
public enum ErrorCode: String, Codable, Sendable, CaseIterable {
    /// The frame's length prefix exceeds the receiver's limit; the connection is closed after this reply.
    case frameTooLarge = "frame_too_large"
    /// The frame is not valid JSON.
    case badJSON = "bad_json"
    /// The JSON is not an envelope (a field is missing or of the wrong type).
    case badEnvelope = "bad_envelope"
    /// No handler for this message type.
    case unknownType = "unknown_type"
    /// The body's schema version is newer than the receiver knows.
    case unsupportedVersion = "unsupported_version"
    /// The sender's role (from its certificate) may not send this message type.
    case forbidden
    /// The body does not decode or fails validation.
    case badRequest = "bad_request"
    /// The handler failed; the message says why.
    case `internal`
    /// The request's deadline passed before a reply came.
    case timeout
    /// No instance of the target role could be reached.
    case unavailable
    /// The connection closed before the reply came.
    case connectionClosed = "connection_closed"
}

/// The error body of an `error` reply, and the one error type of TroncalProtocol.
public struct ProtocolError: Error, Codable, Sendable, Hashable, CustomStringConvertible, LinkMessage {
    public static let messageType = "error"

    public var code: ErrorCode
    public var message: String

    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
