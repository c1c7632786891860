/// A request to be answered with an error, with what is needed to build the response statelessly.
public struct SIPRejection: Hashable, Sendable {
    public var statusCode: Int
    public var reasonPhrase: String
    /// Why; safe to log.
    public var error: SIPParseError
    /// The request method, when the Request-Line could be read.
    public var method: SIPMethod?
    /// The header fields that could be lexed (possibly fewer than sent), from which the response copies Via,
    /// From, To, Call-ID and CSeq (RFC 3261 §8.2.6.2).
    public var headers: SIPHeaders
    /// For 420 Bad Extension: the option tags to list in Unsupported.
    public var unsupportedOptionTags: [String]

    public init(
        statusCode: Int, reasonPhrase: String, error: SIPParseError, method: SIPMethod? = nil,
        headers: SIPHeaders = [], unsupportedOptionTags: [String] = []
    ) {
        self.statusCode = statusCode
        self.reasonPhrase = reasonPhrase
        self.error = error
        self.method = method
        self.headers = headers
        self.unsupportedOptionTags = unsupportedOptionTags
    }

    /// The error response per RFC 3261 §8.2.6: every Via, From, To (with `toTag` added when it has none), Call-ID
    /// and CSeq copied byte-exact, Unsupported for 420, Content-Length 0.
    public func makeResponse(toTag: String? = nil) -> SIPResponse {
        var headers = SIPHeaders()
        for field in self.headers where field.name == .via { headers.append(field) }
        for name in [SIPHeaderName.from, .to, .callID, .cseq] {
            guard let field = self.headers.first(name) else { continue }
            if name == .to, let toTag, !toTag.isEmpty, toTag.utf8.allSatisfy(\.isSIPTokenChar),
                let to = try? self.headers.to(), to.tag == nil
            {
                headers.append(SIPHeaderField(.to, valueBytes: field.unfoldedValue + Array(";tag=\(toTag)".utf8)))
            } else {
                headers.append(field)
            }
        }
        if statusCode == 420, !unsupportedOptionTags.isEmpty {
            headers.append(.unsupported, unsupportedOptionTags.joined(separator: ", "))
        }
        headers.append(.contentLength, "0")
        return SIPResponse(statusCode: statusCode, reasonPhrase: reasonPhrase, headers: headers)
    }
}
