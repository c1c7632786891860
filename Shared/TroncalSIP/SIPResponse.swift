/// A SIP response: Status-Line, header fields and body. The reason phrase is kept as bytes since it may hold any
/// UTF-8 (or, from broken peers, non-UTF-8) text.
public struct SIPResponse: Hashable, Sendable {
    public var version: SIPVersion
    /// 100...699.
    public var statusCode: Int
    public var reasonPhrase: [UInt8]
    public var headers: SIPHeaders
    public var body: [UInt8]

    public init(
        statusCode: Int, reasonPhrase: String, version: SIPVersion = .sip20, headers: SIPHeaders = [],
        body: [UInt8] = []
    ) {
        self.version = version
        self.statusCode = statusCode
        self.reasonPhrase = Array(reasonPhrase.utf8)
        self.headers = headers
        self.body = body
    }

    /// The reason phrase as text (U+FFFD for bytes that are not UTF-8).
    public var reasonPhraseString: String { reasonPhrase.sipString }
}
