import NIOCore
import Testing
import TroncalSIP

/// Builds a request from header lines (CRLF added) with an empty body.
func request(_ headers: [String], startLine: String = "OPTIONS sip:bob@biloxi.example.com SIP/2.0", body: String = "")
    -> [UInt8]
{
    Array((([startLine] + headers).joined(separator: "\r\n") + "\r\n\r\n" + body).utf8)
}

/// The mandatory headers of a well-formed OPTIONS, to which a test adds its own.
let baseHeaders = [
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
    "Max-Forwards: 70",
    "To: Bob <sip:bob@biloxi.example.com>",
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
    "CSeq: 314159 OPTIONS",
]

@Suite struct SIPMessageParserTests {
    let parser = SIPMessageParser()

    @Test(arguments: [
        ("i", SIPHeaderName.callID), ("m", .contact), ("e", .contentEncoding), ("l", .contentLength),
        ("f", .from), ("t", .to), ("v", .via), ("k", .supported), ("s", .subject), ("c", .contentType),
        ("o", .event), ("r", .referTo), ("b", .referredBy), ("u", .allowEvents), ("x", .sessionExpires),
        ("y", .identity), ("a", .acceptContact), ("j", .rejectContact), ("d", .requestDisposition),
        ("n", .identityInfo), ("I", .callID), ("Call-ID", .callID), ("cALL-iD", .callID),
        ("MaX-fOrWaRdS", .maxForwards), ("WWW-Authenticate", .wwwAuthenticate), ("X-Carrier", .other), ("q", .other),
    ])
    func headerNamesAreRecognisedInAnyCaseAndCompactForm(name: String, expected: SIPHeaderName) throws {
        let message = try parser.parse(request(["\(name): 0"]))
        #expect(message.headers.first?.name == expected)
        #expect(message.headers.first.map { Array($0.rawName) } == Array(name.utf8))
    }

    @Test func compactAndLongFormsAreTheSameHeader() throws {
        let message = try parser.parse(
            request(baseHeaders.filter { !$0.hasPrefix("Call-ID") } + ["i: compact@host", "l: 0"]))
        #expect(try message.headers.callID() == "compact@host")
        #expect(try message.headers.contentLength() == 0)
    }

    @Test func foldedHeaderValuesAreLinearWhitespace() throws {
        let message = try parser.parse(request(["Subject: first\r\n\tsecond\r\n   third", "CSeq: 7\r\n INVITE"]))
        let subject = try #require(message.headers.first(.subject))
        #expect(subject.valueString == "first second third")
        #expect(Array(subject.raw) == Array("Subject: first\r\n\tsecond\r\n   third".utf8))
        #expect(try message.headers.cseq() == SIPCSeq(7, .invite))
    }

    @Test func leadingCRLFsBeforeTheStartLineAreIgnored() throws {
        let message = try parser.parse(Array("\r\n\r\n".utf8) + request(baseHeaders))
        #expect(message.isRequest)
    }

    @Test(arguments: [
        ("OPTIONS sip:a@b SIP/2.0\nVia: x\r\n\r\n", SIPParseError.Code.invalidLineEnding),
        ("OPTIONS sip:a@b SIP/2.0\r\nVia: x\n\r\n", .invalidLineEnding),
        ("OPTIONS sip:a@b SIP/2.0\r\nVia: x\ry\r\n\r\n", .invalidLineEnding),
        ("OPTIONS sip:a@b SIP/2.0\r\nVia x\r\n\r\n", .invalidHeaderLine),
        ("OPTIONS sip:a@b SIP/2.0\r\n: x\r\n\r\n", .invalidHeaderLine),
        ("OPTIONS sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n", .invalidHeaderLine),
        ("OPTIONS sip:a@b SIP/2.0\r\n folded: x\r\n\r\n", .invalidFolding),
        ("OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n", .unterminatedHeaderSection),
        ("OPTIONS sip:a@b SIP/2.0", .unterminatedHeaderSection),
        ("", .emptyMessage),
        ("\r\n\r\n", .emptyMessage),
        ("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5\r\n\r\nabc", .contentLengthExceedsDatagram),
        ("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -5\r\n\r\n", .invalidContentLength),
        ("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab", .conflictingContentLength),
        ("OPTIONS  sip:a@b SIP/2.0\r\n\r\n", .invalidStartLine),
        ("OPTIONS sip:a@b SIP/2.0 \r\n\r\n", .invalidStartLine),
        ("OPTIONS sip:a@b\r\n\r\n", .invalidStartLine),
        ("OPTIONS sip:a@b HTTP/1.1\r\n\r\n", .invalidVersion),
        ("OPT(IONS sip:a@b SIP/2.0\r\n\r\n", .invalidMethod),
        ("OPTIONS sip:a@ SIP/2.0\r\n\r\n", .invalidURI),
        ("SIP/2.0 99 Too Small\r\n\r\n", .invalidStatusCode),
        ("SIP/2.0 700 Too Big\r\n\r\n", .invalidStatusCode),
        ("SIP/2.0 2000 OK\r\n\r\n", .invalidStatusCode),
        ("SIP/2.0 200\r\n\r\n", .invalidStatusCode),
        ("SIP/2.0 200 O\u{01}K\r\n\r\n", .invalidReasonPhrase),
        ("SIP/2.0x 200 OK\r\n\r\n", .invalidVersion),
    ])
    func malformedFramingIsAnError(text: String, code: SIPParseError.Code) {
        #expect {
            _ = try parser.parse(Array(text.utf8))
        } throws: { error in
            (error as? SIPParseError)?.code == code
        }
    }

    @Test func limitsBoundMessageSizeHeaderCountAndLineLength() {
        let limits = SIPParserLimits(maxMessageSize: 512, maxHeaderCount: 4, maxLineLength: 64)
        let strict = SIPMessageParser(limits: limits)
        func code(_ bytes: [UInt8]) -> SIPParseError.Code? {
            do {
                _ = try strict.parse(bytes)
                return nil
            } catch {
                return error.code
            }
        }
        #expect(code(request(["X: " + String(repeating: "a", count: 600)])) == .messageTooLarge)
        #expect(code(request((0..<5).map { "X-\($0): v" })) == .tooManyHeaders)
        #expect(code(request((0..<4).map { "X-\($0): v" })) == nil)
        #expect(code(request(["X: " + String(repeating: "a", count: 70)])) == .lineTooLong)
        #expect(code(request(["X: a\r\n " + String(repeating: "a", count: 70)])) == .lineTooLong)
        #expect(
            code(request([], startLine: "OPTIONS sip:" + String(repeating: "a", count: 60) + "@b SIP/2.0"))
                == .lineTooLong)
        #expect(
            SIPParserLimits.default
                == SIPParserLimits(maxMessageSize: 65_536, maxHeaderCount: 128, maxLineLength: 8_192))
    }

    @Test func byteBufferAndRawPointerInputParseTheSame() throws {
        let bytes = try TestData.tortureMessage("mpart01")
        let fromArray = try parser.parse(bytes)
        let fromBuffer = try parser.parse(ByteBuffer(bytes: bytes))
        let fromPointer = try bytes.withUnsafeBytes { pointer in try parser.parse(pointer) }
        #expect(fromArray == fromBuffer)
        #expect(fromArray == fromPointer)
        var buffer = ByteBuffer()
        fromArray.write(into: &buffer)
        #expect(Array(buffer.readableBytesView) == fromArray.serialized())
    }

    @Test func aBuiltRequestSerialisesAndParsesBack() throws {
        var headers = SIPHeaders()
        headers.append(
            .via, SIPVia(transport: "TCP", host: "sbc.example.net", port: 5060, branch: "z9hG4bK-1").description)
        headers.append(.maxForwards, "70")
        headers.append(
            .from,
            SIPAddress(
                displayName: "Trunk \"7\"", uri: SIPURI(user: "7", host: "sbc.example.net"),
                parameters: [SIPParameter(name: "tag", value: "a1")]
            ).description)
        headers.append(
            .to,
            SIPAddress(
                uri: SIPURI(
                    user: "+34911234567", host: "carrier.example.com",
                    parameters: [SIPParameter(name: "user", value: "phone")])
            ).description)
        headers.append(.callID, "c-1@sbc")
        headers.append(.cseq, SIPCSeq(1, .invite).description)
        headers.append(SIPHeaderField(rawName: "X-Troncal-Route", value: "r1;cost=3")!)
        headers.append(.contentType, SIPMediaType.sdp.description)
        headers.append(.contentLength, "4")
        let request = SIPRequest(
            method: .invite, uri: SIPURI(user: "+34911234567", host: "carrier.example.com"), headers: headers,
            body: Array("v=0\n".utf8))
        let wire = SIPMessage.request(request).serialized()
        let parsed = try parser.parse(wire)
        #expect(parsed == .request(request))
        #expect(SIPValidator().disposition(forDatagram: wire).outcome == .accept)
        let from = try #require(try parsed.headers.from())
        #expect(from.displayNameString == "Trunk \"7\"")
        #expect(parsed.headers.first(named: "x-troncal-route")?.valueString == "r1;cost=3")
    }

    @Test func headersCanBeReplacedAndRemoved() throws {
        var headers = try parser.parse(request(baseHeaders + ["Max-Forwards: 69"])).headers
        headers.replace(.maxForwards, with: "10")
        #expect(headers.count(of: .maxForwards) == 1)
        #expect(try headers.maxForwards() == 10)
        #expect(headers.firstIndex { $0.name == .maxForwards } == 1)
        headers.removeAll(.via)
        #expect(!headers.contains(.via))
        #expect(SIPHeaderField(rawName: "Bad Name", value: "x") == nil)
        #expect(SIPHeaderField(rawName: "X-Ok", value: "a\r\nb") == nil)
    }

    @Test(arguments: [
        ("Via: SIP/2.0/UDP a;branch=1, SIP/2.0/UDP b;branch=2", 2),
        ("Contact: \"Doe, John\" <sip:j@x>, <sip:k@y;p=a,b>", 2),
        ("Route: <sip:a@b;lr>,<sip:c@d;lr>,\r\n <sip:e@f;lr>", 3),
        ("Supported:", 0),
        ("Authorization: Digest username=\"a\", realm=\"b\"", 1),
        ("Date: Sat, 13 Nov 2010 23:29:00 GMT", 1),
        ("WWW-Authenticate: Digest realm=\"a,b\", nonce=\"n\"", 1),
        ("X-Unknown: a, b", 1),
    ])
    func listHeadersSplitOnlyWhereTheGrammarAllows(line: String, count: Int) throws {
        let message = try parser.parse(request([line]))
        #expect(message.headers.first?.elements.count == count)
    }

    @Test func nonUTF8BytesInValuesAndReasonPhrasesAreKept() throws {
        var bytes = Array("SIP/2.0 200 ".utf8) + [0xFF, 0xFE, 0x80] + Array("\r\nX-Bin: ".utf8) + [0xC0, 0x00, 0x7F]
        bytes += Array("\r\n\r\n".utf8)
        guard case .response(let response) = try parser.parse(bytes) else {
            Issue.record("not a response")
            return
        }
        #expect(response.reasonPhrase == [0xFF, 0xFE, 0x80])
        #expect(Array(response.headers[0].value) == [0xC0, 0x00, 0x7F])
        #expect(SIPMessage.response(response).serialized() == bytes)
    }
}
