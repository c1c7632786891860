import Testing
import TroncalSIP

@Suite struct SIPValidatorTests {
    func outcome(
        _ bytes: [UInt8], _ configuration: SIPValidator.Configuration = .init(), transport: SIPTransportKind = .datagram
    )
        -> Outcome
    {
        SIPValidator(configuration: configuration).disposition(for: bytes, transport: transport).outcome
    }

    func replacing(_ prefix: String, with line: String?) -> [String] {
        var lines = baseHeaders.filter { !$0.hasPrefix(prefix) }
        if let line { lines.append(line) }
        return lines
    }

    @Test func wellFormedRequestIsAccepted() {
        #expect(outcome(request(baseHeaders)) == .accept)
    }

    @Test(arguments: ["Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards"])
    func missingMandatoryHeaderIsRejectedWith400(header: String) {
        #expect(outcome(request(replacing(header, with: nil))) == .reject(400))
    }

    @Test func requireWithUnknownOptionIsAnswered420ListingIt() throws {
        let bytes = request(baseHeaders + ["Require: 100rel, foo"])
        let validator = SIPValidator(configuration: .init(supportedOptionTags: ["100rel"]))
        guard case .reject(let rejection) = validator.disposition(forDatagram: bytes) else {
            Issue.record("expected 420")
            return
        }
        #expect(rejection.statusCode == 420)
        #expect(rejection.unsupportedOptionTags == ["foo"])
        let response = rejection.makeResponse(toTag: "t")
        #expect(try response.headers.optionTags(.unsupported) == ["foo"])
        #expect(outcome(request(baseHeaders + ["Require: 100rel"]), .init(supportedOptionTags: ["100rel"])) == .accept)
        // A proxy ignores Require and checks Proxy-Require instead.
        #expect(outcome(bytes, .init(role: .proxy)) == .accept)
        #expect(outcome(request(baseHeaders + ["Proxy-Require: foo"]), .init(role: .proxy)) == .reject(420))
        #expect(outcome(request(baseHeaders + ["Proxy-Require: foo"])) == .accept)
    }

    @Test func malformedACKIsDroppedNeverAnswered() {
        let ack = request(
            replacing("CSeq", with: "CSeq: 1 ACK").filter { !$0.hasPrefix("Call-ID") },
            startLine: "ACK sip:bob@biloxi.example.com SIP/2.0")
        #expect(outcome(ack) == .drop)
        #expect(outcome(Array("ACK  sip:x@y SIP/2.0\r\n\r\n".utf8)) == .drop)
        let good = request(replacing("CSeq", with: "CSeq: 1 ACK"), startLine: "ACK sip:bob@biloxi.example.com SIP/2.0")
        #expect(outcome(good) == .accept)
    }

    @Test func streamRequiresContentLength() {
        #expect(outcome(request(baseHeaders), transport: .stream) == .reject(400))
        #expect(outcome(request(baseHeaders + ["l: 0"]), transport: .stream) == .accept)
        let response = Array(
            ("SIP/2.0 200 OK\r\n" + baseHeaders.filter { !$0.hasPrefix("Max") }.joined(separator: "\r\n") + "\r\n\r\n")
                .utf8)
        #expect(outcome(response, transport: .stream) == .drop)
        #expect(outcome(response, transport: .datagram) == .accept)
    }

    @Test func rfc2543ToleranceDoesNotExtendToRFC3261Requests() {
        // A magic-cookie branch claims RFC 3261: Max-Forwards is then required even with 2543 compatibility.
        #expect(outcome(request(replacing("Max-Forwards", with: nil))) == .reject(400))
        let old = replacing("Via", with: "Via: SIP/2.0/UDP old.example.com").filter { !$0.hasPrefix("Max") }
        #expect(outcome(request(old)) == .accept)
        #expect(outcome(request(old), .init(rfc2543Compatibility: false)) == .reject(400))
    }

    @Test func uriSchemeSupportIsConfigured() {
        let tel = request(baseHeaders, startLine: "OPTIONS tel:+34911234567 SIP/2.0")
        #expect(outcome(tel) == .accept)
        #expect(outcome(tel, .init(supportedURISchemes: ["sip", "sips"])) == .reject(416))
    }

    @Test func responsesAreNeverAnswered() {
        let bad = Array("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n".utf8)
        #expect(outcome(bad) == .drop)
        let version = Array(("SIP/3.0 200 OK\r\n" + baseHeaders.joined(separator: "\r\n") + "\r\n\r\n").utf8)
        #expect(outcome(version) == .drop)
    }

    /// Only input shaped like "METHOD SP …" gets an answer (a 400); anything else is not SIP and is dropped.
    @Test(arguments: [
        ([UInt8](), Outcome.drop), (Array("\r\n".utf8), .drop), ([0, 1, 2, 3], .drop), (Array("hello".utf8), .drop),
        (Array("hello world\r\n\r\n".utf8), .reject(400)), (Array("GET / HTTP/1.1\r\n\r\n".utf8), .reject(400)),
        (Array("SIP/2.0 200 OK\r\n".utf8), .drop),
    ])
    func nonSIPInputIsDroppedUnlessShapedLikeARequest(bytes: [UInt8], expected: Outcome) {
        #expect(outcome(bytes) == expected)
    }

    @Test func oversizedRequestIsAnswered513() {
        let bytes = request(baseHeaders + ["X-Pad: " + String(repeating: "p", count: 70_000)])
        #expect(outcome(bytes) == .reject(513))
    }

    @Test func duplicateContentLengthEvenIfEqualIs400() {
        #expect(outcome(request(baseHeaders + ["Content-Length: 0", "l: 0"])) == .reject(400))
    }

    @Test func rejectionOfUnparseableRequestStillCopiesTheHeadersItCould() throws {
        let bytes = request(baseHeaders + ["Broken header line"])
        guard case .reject(let rejection) = SIPValidator().disposition(forDatagram: bytes) else {
            Issue.record("expected a rejection")
            return
        }
        #expect(rejection.error.code == .invalidHeaderLine)
        let response = rejection.makeResponse(toTag: "z")
        #expect(response.statusCode == 400)
        #expect(try response.headers.cseq() == SIPCSeq(314_159, .options))
        #expect(try response.headers.to()?.tag == "z")
        #expect(try response.headers.from()?.tag == "1928301774")
    }

    @Test func errorDescriptionsNeverEchoMessageContent() {
        let bytes = request(replacing("From", with: "From: secret-subscriber-4711 <sip:x@y"))
        guard case .reject(let rejection) = SIPValidator().disposition(forDatagram: bytes) else {
            Issue.record("expected a rejection")
            return
        }
        #expect(!rejection.error.description.contains("secret"))
        #expect(rejection.error.header == .from)
    }

    @Test func responseWithSeveralViasIsForAProxyNotAUserAgent() {
        let twoVias = Array(
            ("SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP proxy.example.net;branch=z9hG4bK1\r\n"
                + "Via: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK2\r\n"
                + baseHeaders.filter { !$0.hasPrefix("Via") && !$0.hasPrefix("Max") }.joined(separator: "\r\n")
                + "\r\nContent-Length: 0\r\n\r\n").utf8)
        #expect(outcome(twoVias) == .drop)
        #expect(outcome(twoVias, .init(role: .proxy)) == .accept)
    }

    @Test func ackAndCancelAreNotRefusedForRequire() {
        let ack = request(
            replacing("CSeq", with: "CSeq: 314159 ACK") + ["Require: foo"], startLine: "ACK sip:bob@biloxi.example.com SIP/2.0")
        #expect(outcome(ack) == .accept)
        let cancel = request(
            replacing("CSeq", with: "CSeq: 314159 CANCEL") + ["Require: foo"],
            startLine: "CANCEL sip:bob@biloxi.example.com SIP/2.0")
        #expect(outcome(cancel) == .accept)
    }
}
