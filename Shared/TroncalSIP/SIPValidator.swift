/// The one place that decides how the SIP stack answers a received message (RFC 3261 §8.2 and §16.3,
/// RFC 4475): accept it, reject it with a status code, or drop it. Application-level answers (404, 415, 406,
/// 501, 401, ...) are left to the layer above; this decides what any UAS or proxy must answer.
public struct SIPValidator: Sendable {
    /// Whether the element checking the message forwards requests (a proxy checks Max-Forwards and
    /// Proxy-Require) or consumes them (a UAS or B2BUA checks Require).
    public enum Role: Hashable, Sendable {
        case proxy
        case userAgent
    }

    /// Validation policy, fixed at start-up.
    public struct Configuration: Hashable, Sendable {
        public var role: Role
        public var limits: SIPParserLimits
        /// Accept RFC 2543 requests (top Via without an `z9hG4bK` branch) that lack Max-Forwards, and, over
        /// streams, Content-Length (RFC 3261 keeps 2543 compatibility; RFC 4475 §3.4.1).
        public var rfc2543Compatibility: Bool
        /// Request-URI schemes served; any other gets 416 (lower-case).
        public var supportedURISchemes: Set<String>
        /// Option tags this element implements; Require (UAS) or Proxy-Require (proxy) naming others gets 420.
        public var supportedOptionTags: Set<String>

        public init(
            role: Role = .userAgent, limits: SIPParserLimits = .default, rfc2543Compatibility: Bool = true,
            supportedURISchemes: Set<String> = ["sip", "sips", "tel"], supportedOptionTags: Set<String> = []
        ) {
            self.role = role
            self.limits = limits
            self.rfc2543Compatibility = rfc2543Compatibility
            self.supportedURISchemes = supportedURISchemes
            self.supportedOptionTags = supportedOptionTags
        }
    }

    public var configuration: Configuration

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Decides on one UDP datagram: Content-Length larger than the datagram is a 400, octets after the body
    /// are ignored, and without Content-Length the body is the rest of the datagram.
    public func disposition(forDatagram bytes: [UInt8]) -> SIPMessageDisposition {
        disposition(for: bytes, transport: .datagram)
    }

    /// Decides on one message cut out of a TCP/TLS stream by `SIPStreamFramer`.
    public func disposition(forStreamMessage bytes: [UInt8]) -> SIPMessageDisposition {
        disposition(for: bytes, transport: .stream)
    }

    public func disposition(for bytes: [UInt8], transport: SIPTransportKind) -> SIPMessageDisposition {
        let lexed = SIPMessageLexer.lex(bytes, limits: configuration.limits)
        let headers = SIPHeaders(lexed.headers)
        let startLine = lexed.startLine.map { bytes[$0] } ?? firstLine(of: bytes)
        let isResponse = SIPMessageParser.looksLikeResponse(startLine)
        if let error = lexed.error {
            return refuse(error, isResponse: isResponse, startLine: startLine, headers: headers)
        }
        guard let body = lexed.body else {
            return refuse(SIPParseError(.emptyMessage), isResponse: isResponse, startLine: startLine, headers: headers)
        }
        let message: SIPMessage
        do {
            message = try SIPMessageParser.assemble(
                startLine: startLine, headers: headers, body: Array(bytes[body]))
        } catch {
            return refuse(error, isResponse: isResponse, startLine: startLine, headers: headers)
        }
        return disposition(for: message, transport: transport, hasContentLength: lexed.contentLength != nil)
    }

    /// Decides on an already parsed message (checks everything but framing).
    public func disposition(for message: SIPMessage, transport: SIPTransportKind) -> SIPMessageDisposition {
        disposition(for: message, transport: transport, hasContentLength: message.headers.contains(.contentLength))
    }

    private func disposition(
        for message: SIPMessage, transport: SIPTransportKind, hasContentLength: Bool
    ) -> SIPMessageDisposition {
        switch message {
        case .response(let response):
            do throws(SIPParseError) {
                guard response.version == .sip20 else { throw SIPParseError(.unsupportedVersion) }
                _ = try checkHeaders(response.headers, isRequest: false)
                if transport == .stream, !hasContentLength {
                    throw SIPParseError(.missingContentLength, header: .contentLength)
                }
                try checkResponseRouting(response)
                return .accept(message)
            } catch {
                return .drop(error)
            }
        case .request(let request):
            return validate(request, transport: transport, hasContentLength: hasContentLength, message: message)
        }
    }

    private func validate(
        _ request: SIPRequest, transport: SIPTransportKind, hasContentLength: Bool, message: SIPMessage
    ) -> SIPMessageDisposition {
        func reject(_ status: Int, _ reason: String, _ error: SIPParseError, unsupported: [String] = [])
            -> SIPMessageDisposition
        {
            // An ACK is never answered (RFC 3261 §17.2.1/§8.2): a bad one is dropped.
            if request.method == .ack { return .drop(error) }
            return .reject(
                SIPRejection(
                    statusCode: status, reasonPhrase: reason, error: error, method: request.method,
                    headers: request.headers, unsupportedOptionTags: unsupported))
        }
        guard request.version == .sip20 else {
            return reject(505, "Version Not Supported", SIPParseError(.unsupportedVersion))
        }
        let summary: HeaderSummary
        do {
            summary = try checkHeaders(request.headers, isRequest: true)
        } catch {
            return reject(400, "Bad Request", error)
        }
        // RFC 2543 elements send no magic cookie; without compatibility, Max-Forwards and a branch are required.
        let isRFC2543 = !(summary.topVia?.hasRFC3261Branch ?? false)
        let tolerate2543 = configuration.rfc2543Compatibility && isRFC2543
        if summary.maxForwards == nil, !tolerate2543 {
            return reject(400, "Bad Request", SIPParseError(.missingHeader, header: .maxForwards))
        }
        if let branch = summary.topVia?.branch, branch == SIPVia.magicCookie {
            // RFC 4475 §3.2.1: a bare magic cookie cannot identify a transaction; we take the "reject" option
            // rather than falling back to RFC 2543 matching, since the sender claims RFC 3261.
            return reject(400, "Bad Request", SIPParseError(.invalidBranch, header: .via))
        }
        if summary.topVia?.branch == nil, !tolerate2543 {
            return reject(400, "Bad Request", SIPParseError(.invalidBranch, header: .via, detail: "missing branch"))
        }
        if summary.cseq?.method != request.method {
            return reject(400, "Bad Request", SIPParseError(.cseqMethodMismatch, header: .cseq))
        }
        if transport == .stream, !hasContentLength, !tolerate2543 {
            return reject(400, "Bad Request", SIPParseError(.missingContentLength, header: .contentLength))
        }
        if !request.uri.headers.isEmpty {
            // RFC 3261 §19.1.1: headers are not allowed in a Request-URI; RFC 4475 §3.1.2.11 lets us answer 400.
            return reject(400, "Bad Request", SIPParseError(.headersInRequestURI))
        }
        if !configuration.supportedURISchemes.contains(request.uri.scheme.description.lowercased()) {
            return reject(416, "Unsupported URI Scheme", SIPParseError(.unsupportedURIScheme))
        }
        if configuration.role == .proxy, summary.maxForwards == 0 {
            return reject(483, "Too Many Hops", SIPParseError(.valueOutOfRange, header: .maxForwards, detail: "zero"))
        }
        let checked: SIPHeaderName? =
            switch configuration.role {
            case .proxy: .proxyRequire
            // ACK and CANCEL are never refused for Require (RFC 3261 §8.2.2.3).
            case .userAgent: request.method == .cancel || request.method == .ack ? nil : .require
            }
        if let checked {
            let tags = (try? request.headers.optionTags(checked)) ?? []
            let unsupported = tags.filter { !configuration.supportedOptionTags.contains($0) }
            if !unsupported.isEmpty {
                let error = SIPParseError(.invalidHeaderValue, header: checked, detail: "unsupported option")
                return reject(420, "Bad Extension", error, unsupported: unsupported)
            }
        }
        return .accept(message)
    }

    /// A UA sends requests with one Via, so a response with more is not for it (RFC 3261 §8.1.3.3); a proxy never
    /// forwards a response to a broadcast or unspecified address (RFC 4475 §3.3.10).
    private func checkResponseRouting(_ response: SIPResponse) throws(SIPParseError) {
        let vias = try response.headers.via()
        switch configuration.role {
        case .userAgent:
            guard vias.count == 1 else {
                throw SIPParseError(.invalidHeaderValue, header: .via, detail: "response with more than one Via")
            }
        case .proxy:
            guard vias.count >= 2 else { return }
            let next = vias[1]
            for host in [next.host, next.received, next.maddr].compactMap({ $0 })
            where host == "255.255.255.255" || host == "0.0.0.0" {
                throw SIPParseError(.invalidHeaderValue, header: .via, detail: "next hop is not a unicast address")
            }
        }
    }

    private struct HeaderSummary {
        var topVia: SIPVia?
        var cseq: SIPCSeq?
        var maxForwards: UInt8?
    }

    /// Parses every header the stack understands, in one pass over the fields, and checks that the mandatory ones
    /// are present (RFC 3261 §8.1.1) and that single-valued ones appear once.
    private func checkHeaders(_ headers: SIPHeaders, isRequest: Bool) throws(SIPParseError) -> HeaderSummary {
        var summary = HeaderSummary()
        // One bit per header name (raw values stay below 128).
        var seen: UInt128 = 0
        func bit(_ name: SIPHeaderName) -> UInt128 { 1 << UInt128(name.rawValue) }
        func once(_ name: SIPHeaderName) throws(SIPParseError) {
            guard seen & bit(name) == 0 else { throw SIPParseError(.duplicateHeader, header: name) }
            seen |= bit(name)
        }
        for field in headers {
            switch field.name {
            case .via:
                try SIPHeaders.parseVia(field) { via in
                    if summary.topVia == nil { summary.topVia = via }
                }
            case .from, .to:
                try once(field.name)
                _ = try SIPHeaders.parseFromOrTo(field)
            case .callID:
                try once(.callID)
                _ = try SIPHeaders.parseCallID(field)
            case .cseq:
                try once(.cseq)
                summary.cseq = try SIPCSeq.parse(field.value)
            case .maxForwards:
                try once(.maxForwards)
                if isRequest { summary.maxForwards = try SIPHeaders.parseMaxForwards(field) }
            case .contentLength:
                try once(.contentLength)
                _ = try SIPHeaders.parseContentLength(field)
            case .contentType:
                try once(.contentType)
                _ = try SIPMediaType.parse(field.value, header: .contentType)
            case .expires:
                try once(.expires)
                _ = try SIPHeaders.deltaSeconds(field.value, header: .expires)
            case .contact:
                if field.value.elementsEqual("*".utf8) {
                    guard headers.count(of: .contact) == 1 else {
                        throw SIPParseError(.invalidHeaderValue, header: .contact, detail: "* with other contacts")
                    }
                } else {
                    for element in field.elements { _ = try SIPHeaders.parseContact(element) }
                }
            case .route, .recordRoute:
                try SIPHeaders.parseNameAddrList(field) { _ in }
            case .require, .proxyRequire, .supported, .unsupported:
                try SIPHeaders.parseOptionTags(field) { _ in }
            case .authorization, .proxyAuthorization, .wwwAuthenticate, .proxyAuthenticate:
                _ = try SIPAuthHeaderValue.parse(field.value, header: field.name)
            default:
                break
            }
        }
        guard summary.topVia != nil else { throw SIPParseError(.missingHeader, header: .via) }
        for name in [SIPHeaderName.from, .to, .callID, .cseq] where seen & bit(name) == 0 {
            throw SIPParseError(.missingHeader, header: name)
        }
        return summary
    }

    /// A malformed message: responses and non-SIP input are dropped, requests answered 400 (505 is only given
    /// for a well-formed version other than 2.0).
    private func refuse(
        _ error: SIPParseError, isResponse: Bool, startLine: ArraySlice<UInt8>, headers: SIPHeaders
    ) -> SIPMessageDisposition {
        if isResponse { return .drop(error) }
        guard let space = startLine.firstIndex(of: UInt8(ascii: " ")),
            let method = SIPMethod(bytes: startLine[..<space])
        else { return .drop(error) }
        if method == .ack { return .drop(error) }
        if error.code == .messageTooLarge {
            return .reject(
                SIPRejection(
                    statusCode: 513, reasonPhrase: "Message Too Large", error: error, method: method, headers: headers))
        }
        return .reject(
            SIPRejection(statusCode: 400, reasonPhrase: "Bad Request", error: error, method: method, headers: headers))
    }

    /// The first line when the lexer could not delimit one (for deciding request vs response).
    private func firstLine(of bytes: [UInt8]) -> ArraySlice<UInt8> {
        var start = 0
        while start + 1 < bytes.count, bytes[start] == 13, bytes[start + 1] == 10 { start += 2 }
        let limit = min(bytes.count, start + configuration.limits.maxLineLength)
        let end = bytes[start..<limit].firstIndex(where: { $0 == 13 || $0 == 10 }) ?? limit
        return bytes[start..<end]
    }
}
