public import NIOCore

/// Parses one SIP message from bytes (a UDP datagram or a message cut out by `SIPStreamFramer`): start line,
/// header fields kept raw, body framed by Content-Length (trailing octets ignored; without Content-Length the
/// body is the rest of the input). Header values are only checked when read or by `SIPValidator`.
public struct SIPMessageParser: Sendable {
    public var limits: SIPParserLimits

    public init(limits: SIPParserLimits = .default) {
        self.limits = limits
    }

    public func parse(_ bytes: [UInt8]) throws(SIPParseError) -> SIPMessage {
        let lexed = SIPMessageLexer.lex(bytes, limits: limits)
        if let error = lexed.error { throw error }
        guard let startLine = lexed.startLine, let body = lexed.body else { throw SIPParseError(.emptyMessage) }
        return try Self.assemble(
            startLine: bytes[startLine], headers: SIPHeaders(lexed.headers), body: Array(bytes[body]))
    }

    /// Parses the start line and puts the message together.
    static func assemble(startLine: ArraySlice<UInt8>, headers: SIPHeaders, body: [UInt8]) throws(SIPParseError)
        -> SIPMessage
    {
        switch try parseStartLine(startLine) {
        case .request(let method, let uri, let version):
            return .request(SIPRequest(method: method, uri: uri, version: version, headers: headers, body: body))
        case .response(let version, let code, let reason):
            var response = SIPResponse(
                statusCode: code, reasonPhrase: "", version: version, headers: headers, body: body)
            response.reasonPhrase = Array(reason)
            return .response(response)
        }
    }

    public func parse(_ buffer: ByteBuffer) throws(SIPParseError) -> SIPMessage {
        try parse(Array(buffer.readableBytesView))
    }

    public func parse(_ bytes: UnsafeRawBufferPointer) throws(SIPParseError) -> SIPMessage {
        try parse(Array(bytes))
    }

    enum StartLine {
        case request(SIPMethod, SIPURI, SIPVersion)
        case response(SIPVersion, Int, ArraySlice<UInt8>)
    }

    /// Whether a start line begins like a Status-Line (`SIP/`), i.e. the message is a response.
    static func looksLikeResponse(_ line: ArraySlice<UInt8>) -> Bool {
        line.count >= 4 && line.prefix(4).equalsCaseInsensitive("sip/")
    }

    /// Request-Line = Method SP Request-URI SP SIP-Version; Status-Line = SIP-Version SP Status-Code SP
    /// Reason-Phrase. Exactly one SP between elements (RFC 4475 §3.1.2.9/§3.1.2.10 are rejected).
    static func parseStartLine(_ line: ArraySlice<UInt8>) throws(SIPParseError) -> StartLine {
        let space = UInt8(ascii: " ")
        if looksLikeResponse(line) {
            guard let firstSpace = line.firstIndex(of: space),
                let version = SIPVersion(bytes: line[..<firstSpace])
            else { throw SIPParseError(.invalidVersion, offset: 0) }
            let codeStart = firstSpace + 1
            let codeEnd = codeStart + 3
            guard codeEnd < line.endIndex, line[codeEnd] == space,
                case .value(let code) = SIPDecimal<UInt16>(line[codeStart..<codeEnd]), (100...699).contains(code)
            else { throw SIPParseError(.invalidStatusCode, offset: codeStart - line.startIndex) }
            let reason = line[(codeEnd + 1)...]
            // Reason-Phrase: any text but control characters (HTAB allowed); bytes >= 0x80 are not checked as UTF-8.
            if let bad = reason.firstIndex(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) {
                throw SIPParseError(.invalidReasonPhrase, offset: bad - line.startIndex)
            }
            return .response(version, Int(code), reason)
        }
        guard let firstSpace = line.firstIndex(of: space), let lastSpace = line.lastIndex(of: space),
            firstSpace < lastSpace
        else { throw SIPParseError(.invalidStartLine, offset: 0) }
        guard let method = SIPMethod(bytes: line[..<firstSpace]) else { throw SIPParseError(.invalidMethod, offset: 0) }
        let uriBytes = line[(firstSpace + 1)..<lastSpace]
        guard !uriBytes.isEmpty, !uriBytes.contains(space),
            !uriBytes.contains(where: { $0 <= 0x20 || $0 >= 0x7F })
        else { throw SIPParseError(.invalidStartLine, offset: firstSpace + 1 - line.startIndex) }
        guard let version = SIPVersion(bytes: line[(lastSpace + 1)...]) else {
            throw SIPParseError(.invalidVersion, offset: lastSpace + 1 - line.startIndex)
        }
        let uri: SIPURI
        do {
            uri = try SIPURI.parse(uriBytes)
        } catch {
            throw SIPParseError(
                .invalidURI, offset: (error.offset ?? 0) + firstSpace + 1 - line.startIndex, detail: error.detail)
        }
        return .request(method, uri, version)
    }
}
