import Testing
import TroncalSIP

/// Parses `line` as the only header of an otherwise empty request.
func headers(_ lines: String...) throws -> SIPHeaders {
    try SIPMessageParser().parse(request(lines)).headers
}

func parseErrorCode(_ body: () throws(SIPParseError) -> Void) -> SIPParseError.Code? {
    do {
        try body()
        return nil
    } catch {
        return error.code
    }
}

@Suite struct SIPHeaderValueTests {
    @Test func viaCarriesBranchReceivedAndRPort() throws {
        let via = try #require(
            try headers("Via: SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;received=192.0.2.1;rport=5060")
                .topVia())
        #expect(via.transport == "UDP")
        #expect(via.host == "pc33.atlanta.com")
        #expect(via.port == 5066)
        #expect(via.branch == "z9hG4bK776asdhds")
        #expect(via.hasRFC3261Branch)
        #expect(via.received == "192.0.2.1")
        #expect(via.hasRPort)
        #expect(via.rport == 5060)
        let request = try #require(try headers("Via: SIP/2.0/TLS [2001:db8::9:1]:5061;rport;branch=z9hG4bKx").topVia())
        #expect(request.host == "[2001:db8::9:1]")
        #expect(request.hasRPort && request.rport == nil)
        #expect(
            SIPVia(transport: "TCP", host: "a.example", port: 5060, branch: "z9hG4bK1").description
                == "SIP/2.0/TCP a.example:5060;branch=z9hG4bK1")
    }

    @Test(arguments: [
        "Via: SIP/2.0/UDP", "Via: SIP/2.0 host", "Via: SIP/2.0/UDP host;branch",
        "Via: SIP/2.0/UDP host;received=example.com",
        "Via: SIP/2.0/UDP host;rport=70000", "Via: SIP/2.0/UDP host;ttl=300", "Via: SIP/2.0/UDP host:99999",
        "Via: SIP/2.0/UDP host;;", "Via: SIP/2.0/UDP host,", "Via: SIP/2.0/UDPhost", "Via: SIP/2.0/UDP ho$t",
    ])
    func malformedViaIsRefused(_ line: String) throws {
        let parsed = try headers(line)
        #expect(throws: SIPParseError.self) { try parsed.via() }
    }

    @Test(arguments: [
        ("To: sip:bob@example.com", nil as String?, "sip:bob@example.com", nil as String?),
        ("To: <sip:bob@example.com>;tag=a6c85cf", nil, "sip:bob@example.com", "a6c85cf"),
        ("To: Bob <sip:bob@example.com>", "Bob", "sip:bob@example.com", nil),
        ("To: Bob  Smith\t<sip:bob@example.com>", "Bob  Smith", "sip:bob@example.com", nil),
        ("To: \"Bob \\\"B\\\" Smith\" <sip:bob@example.com>", "Bob \"B\" Smith", "sip:bob@example.com", nil),
        ("To: \"\" <sip:bob@example.com>", "", "sip:bob@example.com", nil),
        ("To: bob<sip:bob@example.com>", "bob", "sip:bob@example.com", nil),
        ("To: sip:bob@example.com;tag=x", nil, "sip:bob@example.com", "x"),
        ("To: <tel:+34911234567>", nil, "tel:+34911234567", nil),
        ("To: isbn:2983792873", nil, "isbn:2983792873", nil),
    ])
    func addressFormsParse(line: String, display: String?, uri: String, tag: String?) throws {
        let to = try #require(try headers(line).to())
        #expect(to.displayNameString == display)
        #expect(to.uri.description == uri)
        #expect(to.tag == tag)
    }

    @Test(arguments: [
        "To: Bell, Alexander <sip:a@b>", "To: < sip:a@b>", "To: <sip:a@b >", "To: \"unterminated <sip:a@b>",
        "To: <sip:a@b", "To: sip:a@b?subject=x", "To: <sip:a@b>;tag=\"quoted\"", "To: <sip:a@b> junk", "To: ",
        "To: <sip:a@b>;tag",
    ])
    func malformedAddressIsRefused(_ line: String) throws {
        let parsed = try headers(line)
        #expect(throws: SIPParseError.self) { try parsed.to() }
    }

    @Test func contactListsWildcardAndParameters() throws {
        guard
            case .addresses(let list) = try headers("Contact: <sip:a@b>;q=0.7;expires=3600, \"X\" <sip:c@d>;q=1")
                .contacts()
        else {
            Issue.record("expected addresses")
            return
        }
        #expect(list.count == 2)
        #expect(list[0].parameters["expires"] == "3600")
        #expect(try headers("Contact: *").contacts() == .wildcard)
        for bad in [
            "Contact: <sip:a@b>;q=2", "Contact: <sip:a@b>;q=0.1234", "Contact: <sip:a@b>;expires=soon",
            "Contact: <sip:a@b>,",
        ] {
            let parsed = try headers(bad)
            #expect(throws: SIPParseError.self, "\(bad)") { try parsed.contacts() }
        }
        // Overlarge expires values are clamped, not refused (RFC 3261 §20.19).
        #expect(try headers("Expires: 99999999999999999999").expires() == UInt32.max)
    }

    @Test func routeRequiresNameAddr() throws {
        #expect(try headers("Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>").route().count == 2)
        let parsed = try headers("Record-Route: sip:p1.example.com;lr")
        #expect(throws: SIPParseError.self) { try parsed.recordRoute() }
    }

    @Test(arguments: [
        ("CSeq: 4711 INVITE", SIPParseError.Code?.none),
        ("CSeq: 0009\r\n  INVITE", nil),
        ("CSeq: 4294967295 BYE", nil),
        ("CSeq: 4294967296 BYE", .valueOutOfRange),
        ("CSeq: 12INVITE", .invalidHeaderValue),
        ("CSeq: -1 INVITE", .invalidHeaderValue),
        ("CSeq: 1", .invalidHeaderValue),
        ("CSeq: 1 INVITE extra", .invalidHeaderValue),
    ])
    func cseqGrammarAndRange(line: String, code: SIPParseError.Code?) throws {
        let parsed = try headers(line)
        let result = parseErrorCode { () throws(SIPParseError) in _ = try parsed.cseq() }
        #expect(result == code)
    }

    @Test(arguments: [
        ("Max-Forwards: 70", SIPParseError.Code?.none),
        ("Max-Forwards: 0068", nil),
        ("Max-Forwards: 255", nil),
        ("Max-Forwards: 256", .valueOutOfRange),
        ("Max-Forwards: -1", .invalidHeaderValue),
        ("Max-Forwards: seven", .invalidHeaderValue),
    ])
    func maxForwardsRange(line: String, code: SIPParseError.Code?) throws {
        let parsed = try headers(line)
        let result = parseErrorCode { () throws(SIPParseError) in _ = try parsed.maxForwards() }
        #expect(result == code)
    }

    @Test(arguments: ["Call-ID: a@b@c", "Call-ID: with space", "Call-ID: @host", "Call-ID: x@"])
    func malformedCallIDIsRefused(_ line: String) throws {
        let parsed = try headers(line)
        #expect(throws: SIPParseError.self) { try parsed.callID() }
    }

    @Test func duplicateSingleHeadersAreRefused() throws {
        let parsed = try headers("From: <sip:a@b>;tag=1", "From: <sip:c@d>;tag=2")
        #expect(throws: SIPParseError(.duplicateHeader, header: .from)) { try parsed.from() }
    }

    @Test func contentTypeOptionTagsAndAuthValues() throws {
        let parsed = try headers(
            "Content-Type: multipart/mixed ; boundary=\"x y\"", "Require: 100rel, timer", "Supported: replaces",
            "Proxy-Authenticate: Digest realm=\"atlanta.com\", qop=\"auth\", nonce=\"n1\", algorithm=SHA-256",
            "Authorization: NoOneKnowsThisScheme opaque-data=here")
        let type = try #require(try parsed.contentType())
        #expect(type.matches(SIPMediaType(type: "MULTIPART", subtype: "Mixed")))
        #expect(type.parameters["boundary"] == "x y")
        #expect(try parsed.optionTags(.require) == ["100rel", "timer"])
        let challenge = try DigestChallenge(try #require(try parsed.authValues(.proxyAuthenticate).first))
        #expect(challenge.algorithm == .sha256)
        #expect(challenge.realm == "atlanta.com")
        let unknown = try #require(try parsed.authValues(.authorization).first)
        #expect(unknown.scheme == "NoOneKnowsThisScheme")
        #expect(!unknown.isDigest)
        #expect(unknown.parameters["opaque-data"] == "here")
    }

    @Test func builtHeaderValuesCannotInjectHeaders() throws {
        let field = SIPHeaderField(.subject, value: "hi\r\nVia: SIP/2.0/UDP evil")
        #expect(!field.raw.contains(13) && !field.raw.contains(10))
        let address = SIPAddress(
            displayName: "Eve\r\nX: y \"q\" \\ \u{07}", uri: SIPURI(user: "eve", host: "example.com"))
        let rendered = SIPHeaderField(.from, value: address.description)
        #expect(!rendered.raw.contains(13) && !rendered.raw.contains(10))
        let reparsed = try #require(try SIPHeaders([rendered]).from())
        #expect(reparsed.displayName == Array("Eve  X: y \"q\" \\ \u{07}".utf8))
    }

    @Test func displayNamesWithControlAndNonUTF8BytesRoundTrip() throws {
        let message = try SIPMessageParser().parse(try TestData.tortureMessage("intmeth"))
        let to = try #require(try message.headers.to())
        let rewritten = SIPHeaderField(.to, valueBytes: to.serialized)
        #expect(try SIPHeaders([rewritten]).to() == to)
        var binary = to
        binary.displayName = [0xFF, 0x00, 0x80]
        #expect(
            try SIPHeaders([SIPHeaderField(.to, valueBytes: binary.serialized)]).to()?.displayName == [
                0xFF, 0x00, 0x80,
            ])
    }
}
