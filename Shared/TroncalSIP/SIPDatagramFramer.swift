/// Frames UDP: one message per datagram. The message is cut to Content-Length (trailing octets are ignored,
/// RFC 3261 §18.3), runs to the end of the datagram without it, and a datagram of only CRLFs is a keep-alive.
public enum SIPDatagramFramer {
    /// One datagram's meaning.
    public enum Frame: Hashable, Sendable {
        /// The message bytes, trailing octets removed.
        case message([UInt8])
        /// CRLF keep-alive (nothing to answer).
        case keepAlive
    }

    /// Frames one datagram; throws when Content-Length is malformed or larger than the datagram.
    public static func frame(_ datagram: [UInt8], limits: SIPParserLimits = .default) throws(SIPParseError) -> Frame {
        guard datagram.contains(where: { $0 != 13 && $0 != 10 }) else { return .keepAlive }
        let lexed = SIPMessageLexer.lex(datagram, limits: limits)
        if let error = lexed.error { throw error }
        guard let body = lexed.body else { throw SIPParseError(.emptyMessage) }
        return .message(body.upperBound == datagram.count ? datagram : Array(datagram[..<body.upperBound]))
    }
}
