/// What the SIP stack should do with a received message, as decided by `SIPValidator`.
public enum SIPMessageDisposition: Hashable, Sendable {
    /// Well formed and acceptable to the stack; hand it to the transaction layer.
    case accept(SIPMessage)
    /// A request the stack must answer with an error response (400, 416, 420, 483, 505, ...).
    case reject(SIPRejection)
    /// Discard silently: a malformed response (responses are never answered), a malformed ACK, or input that is
    /// not recognisably a SIP request.
    case drop(SIPParseError)
}
