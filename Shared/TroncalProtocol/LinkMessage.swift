/// A message that travels in an envelope's `body`. Each type has a fixed wire name and a schema version.
public protocol LinkMessage: Codable, Sendable {
    /// The envelope `type`, e.g. `routing.route`.
    static var messageType: String { get }
    /// The schema version of this message's body, carried in the envelope's `v`. A receiver refuses a
    /// version higher than the one it knows with `unsupported_version`.
    static var version: Int { get }
}

extension LinkMessage {
    public static var version: Int { 1 }
}

/// A message that expects exactly one reply of type `Reply` (or an `error`).
public protocol LinkRequest: LinkMessage {
    associatedtype Reply: LinkMessage
    /// Whether sending the request again to another instance (after one did not answer in time) is harmless: a
    /// read, or a write keyed by an id the receiver stores once (a CDR id, a reservation by call id). Link clients
    /// with several instances resend such requests when the first instance is slow; others are sent once.
    static var retryable: Bool { get }
}

extension LinkRequest {
    public static var retryable: Bool { false }
}

/// A body with no fields, encoded as `{}`.
public struct EmptyBody: Codable, Sendable, Hashable {
    public init() {}
}
