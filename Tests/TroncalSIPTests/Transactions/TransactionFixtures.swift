import Testing
import TroncalSIP

/// The transports a transaction can run over, for tables that must hold on each of them.
enum TestTransport: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case udp = "UDP"
    case tcp = "TCP"
    case tls = "TLS"

    var isReliable: Bool { self != .udp }
    var testDescription: String { rawValue }
}

/// Messages for the transaction tests, built as text and parsed, so they carry real raw header fields.
enum TransactionFixtures {
    struct NotARequest: Error {}
    struct NotAResponse: Error {}

    static let inviteBranch = "z9hG4bK74bf9"
    static let inviteSentBy = "pc33.atlanta.example.com:5060"
    /// The To tag the far end puts on its responses.
    static let responseTag = "a6c85cf"

    /// A request as a UAC (or the SBC's client side) sends it: two Via values (the top one ours), two Route
    /// headers, a Timestamp and a body, so an ACK or CANCEL built from it shows what it copies and what not.
    static func request(
        _ method: SIPMethod = .invite, branch: String = inviteBranch, sentBy: String = inviteSentBy,
        toTag: String? = nil, cseq: UInt32 = 314_159, cseqMethod: SIPMethod? = nil, withVia: Bool = true
    ) throws -> SIPRequest {
        let body = method == .invite ? "v=0\r\n" : ""
        var lines = ["\(method.name) sip:bob@biloxi.example.com SIP/2.0"]
        if withVia {
            lines += [
                "Via: SIP/2.0/UDP \(sentBy);branch=\(branch)",
                "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKuac1;received=192.0.2.10",
            ]
        }
        lines += [
            "Max-Forwards: 70",
            "Route: <sip:edge1.example.net;lr>",
            "Route: <sip:edge2.example.net;lr>",
            "From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl",
            "To: Bob <sip:bob@biloxi.example.com>" + (toTag.map { ";tag=\($0)" } ?? ""),
            "Call-ID: 3848276298220188511@atlanta.example.com",
            "CSeq: \(cseq) \((cseqMethod ?? (method == .ack ? .invite : method)).name)",
            "Timestamp: 54",
            "Contact: <sip:alice@pc33.atlanta.example.com>",
        ]
        if !body.isEmpty { lines.append("Content-Type: application/sdp") }
        lines.append("Content-Length: \(body.utf8.count)")
        return try parseRequest(lines.joined(separator: "\r\n") + "\r\n\r\n" + body)
    }

    /// The ACK a peer sends for our non-2xx final response: same branch, To with our tag (§17.1.1.3).
    static func ack(for request: SIPRequest) throws -> SIPRequest {
        let branch = ((try? request.headers.topVia()) ?? nil)?.branch ?? inviteBranch
        return try self.request(.ack, branch: branch, toTag: responseTag)
    }

    /// A response to `request` from the next hop: its Via values, From, To (tagged above 100), Call-ID, CSeq.
    static func response(
        _ status: Int, to request: SIPRequest, toTag: String? = responseTag, cseqMethod: SIPMethod? = nil
    )
        throws -> SIPResponse
    {
        var lines = ["SIP/2.0 \(status) Reason"]
        for field in request.headers {
            switch field.name {
            case .via, .from, .callID: lines.append(field.rawString)
            case .to:
                lines.append(status > 100 && toTag != nil ? "\(field.rawString);tag=\(toTag ?? "")" : field.rawString)
            case .cseq:
                if let cseqMethod, let cseq = try request.headers.cseq() {
                    lines.append("CSeq: \(cseq.sequenceNumber) \(cseqMethod.name)")
                } else {
                    lines.append(field.rawString)
                }
            default: continue
            }
        }
        lines.append("Content-Length: 0")
        guard
            case .response(let response) = try SIPMessageParser().parse(
                Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8))
        else {
            throw NotAResponse()
        }
        return response
    }

    static func parseRequest(_ text: String) throws -> SIPRequest {
        try parseRequest(Array(text.utf8))
    }

    static func parseRequest(_ bytes: [UInt8]) throws -> SIPRequest {
        guard case .request(let request) = try SIPMessageParser().parse(bytes) else { throw NotARequest() }
        return request
    }

    /// An RFC 4475 torture message, optionally edited as text (they are ASCII).
    static func torture(_ name: String, editing edit: (String) -> String = { $0 }) throws -> SIPRequest {
        try parseRequest(edit(String(decoding: try TestData.tortureMessage(name), as: UTF8.self)))
    }
}

extension SIPHeaderField {
    /// The whole field as text, for rebuilding messages in tests.
    var rawString: String { String(decoding: raw, as: UTF8.self) }
}

extension SIPMessage {
    /// `INVITE`, `ACK`, `486`: enough to read a timeline.
    var summary: String {
        switch self {
        case .request(let request): request.method.name
        case .response(let response): String(response.statusCode)
        }
    }
}

extension Duration {
    /// Seconds written as a decimal in a table (`1.5`), exact to the millisecond.
    static func at(_ seconds: Double) -> Duration { .milliseconds(Int64((seconds * 1000).rounded())) }
}
