/// How a message arrived, which changes framing rules: over a datagram transport (UDP) Content-Length may be
/// absent (the body is the rest of the datagram); over a stream (TCP, TLS) it is mandatory (RFC 3261 §18.3).
public enum SIPTransportKind: Hashable, Sendable {
    case datagram
    case stream
}
