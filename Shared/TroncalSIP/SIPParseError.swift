/// The one error type of TroncalSIP: what went wrong (`code`) and where (header, byte offset), never the message
/// bytes or credentials themselves, so it is safe to log.
public struct SIPParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong; callers switch on it.
    public enum Code: String, Hashable, Sendable, CaseIterable {
        /// The input is larger than `SIPParserLimits.maxMessageSize`.
        case messageTooLarge
        /// More header fields than `SIPParserLimits.maxHeaderCount`.
        case tooManyHeaders
        /// A start line or header field is longer than `SIPParserLimits.maxLineLength`.
        case lineTooLong
        /// No start line at all (empty input or only CRLFs).
        case emptyMessage
        /// A bare CR or LF where CRLF is required.
        case invalidLineEnding
        /// The header section does not end with an empty line.
        case unterminatedHeaderSection
        /// The start line is neither a Request-Line nor a Status-Line.
        case invalidStartLine
        /// The method is not a token.
        case invalidMethod
        /// The SIP-Version is not `SIP/digits.digits`.
        case invalidVersion
        /// The SIP-Version is well formed but not 2.0 (answer 505).
        case unsupportedVersion
        /// The status code is not three digits in 100...699.
        case invalidStatusCode
        /// The reason phrase holds a control character.
        case invalidReasonPhrase
        /// A header line has no colon or its name is not a token.
        case invalidHeaderLine
        /// A continuation line with no header field before it.
        case invalidFolding
        /// A header field value does not follow its grammar.
        case invalidHeaderValue
        /// A URI does not follow the grammar of its scheme.
        case invalidURI
        /// The Request-URI scheme is not one the stack serves (answer 416).
        case unsupportedURIScheme
        /// The Request-URI carries a `?headers` component, which RFC 3261 §19.1.1 forbids there.
        case headersInRequestURI
        /// A header that must be present is missing.
        case missingHeader
        /// A header that may appear once appears more than once.
        case duplicateHeader
        /// A number is larger than its field allows (CSeq > 2^32-1, Max-Forwards > 255, port > 65535).
        case valueOutOfRange
        /// Content-Length is negative or not a number.
        case invalidContentLength
        /// Content-Length appears more than once with different values (a stream cannot be resynchronised).
        case conflictingContentLength
        /// Content-Length claims more octets than the datagram holds.
        case contentLengthExceedsDatagram
        /// A message over a stream transport lacks Content-Length.
        case missingContentLength
        /// The CSeq method differs from the Request-Line method.
        case cseqMethodMismatch
        /// The top Via branch is the bare magic cookie or otherwise unusable as a transaction id.
        case invalidBranch
        /// A stream framer was fed bytes after it reported an unrecoverable error.
        case streamClosed
        /// A digest challenge or credentials header is malformed or misses a required parameter.
        case invalidDigestParameter
        /// The digest algorithm is not MD5, SHA-256 or SHA-512-256 (with or without -sess).
        case unsupportedDigestAlgorithm
    }

    /// What went wrong.
    public var code: Code
    /// The header field involved, when there is one.
    public var header: SIPHeaderName?
    /// Byte offset in the input where the problem was seen, when known.
    public var offset: Int?
    /// A short fixed explanation (never message content).
    public var detail: String?

    public init(_ code: Code, header: SIPHeaderName? = nil, offset: Int? = nil, detail: String? = nil) {
        self.code = code
        self.header = header
        self.offset = offset
        self.detail = detail
    }

    public var description: String {
        var text = "SIPParseError(\(code.rawValue)"
        if let header { text += ", header: \(header.canonicalName)" }
        if let offset { text += ", offset: \(offset)" }
        if let detail { text += ", \(detail)" }
        return text + ")"
    }
}
