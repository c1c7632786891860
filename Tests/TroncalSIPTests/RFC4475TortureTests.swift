import Foundation
import Testing
import TroncalSIP

/// How the SIP stack must handle one RFC 4475 message, derived from `expected_handling` in index.csv.
struct TortureCase: Sendable, CustomStringConvertible {
    let name: String
    /// As a UAS/B2BUA with RFC 2543 compatibility (the default configuration), over UDP.
    let outcome: Outcome
    /// As a proxy, when it differs.
    var proxyOutcome: Outcome? = nil
    /// Without RFC 2543 compatibility, when it differs.
    var strictOutcome: Outcome? = nil
    /// The answer index.csv names that belongs to the layer above the stack (registrar, UAS application), not
    /// to the validator: 415, 406, 501, 404, 401.
    var applicationAnswers: Set<Int> = []

    var description: String { name }

    /// One row per file. Where the RFC offers a choice ("reject OR liberally accept"), the comment says which
    /// option the stack takes.
    static let all: [TortureCase] = [
        TortureCase(name: "wsinv", outcome: .accept),
        TortureCase(name: "intmeth", outcome: .accept, applicationAnswers: [404, 501]),
        TortureCase(name: "esc01", outcome: .accept),
        TortureCase(name: "lwsdisp", outcome: .accept),
        TortureCase(name: "dblreq", outcome: .accept),  // REGISTER processed, trailing INVITE octets ignored
        TortureCase(name: "transports", outcome: .accept),
        TortureCase(name: "mpart01", outcome: .accept),
        TortureCase(name: "unreason", outcome: .accept),
        TortureCase(name: "noreason", outcome: .accept),
        TortureCase(name: "badinv01", outcome: .reject(400)),
        TortureCase(name: "clerr", outcome: .reject(400)),  // UDP: Content-Length larger than the datagram
        TortureCase(name: "ncl", outcome: .reject(400)),
        TortureCase(name: "scalar02", outcome: .reject(400)),  // CSeq > 2^32-1 (Max-Forwards 300 alone also 400)
        TortureCase(name: "scalarlg", outcome: .drop),  // a response: never answered
        TortureCase(name: "lwsruri", outcome: .reject(400)),
        TortureCase(name: "lwsstart", outcome: .reject(400)),  // RFC allows liberal acceptance; the strict option
        TortureCase(name: "trws", outcome: .reject(400)),  // RFC allows liberal acceptance; the strict option
        TortureCase(name: "escruri", outcome: .reject(400)),  // "may respond 400": headers never belong in an R-URI
        TortureCase(name: "baddate", outcome: .accept),  // RFC allows ignoring Date; the stack never uses it
        TortureCase(name: "regbadct", outcome: .reject(400)),  // the "reasonable" option; no <> inference
        TortureCase(name: "badaspec", outcome: .reject(400)),  // the "reasonable" option
        TortureCase(name: "baddn", outcome: .reject(400)),  // the "reasonable" option
        TortureCase(name: "badvers", outcome: .reject(505)),
        TortureCase(name: "mismatch01", outcome: .reject(400)),
        TortureCase(name: "bigcode", outcome: .drop),  // a response: never answered
        TortureCase(name: "badbranch", outcome: .reject(400)),  // reject, rather than RFC 2543 matching
        TortureCase(name: "insuf", outcome: .reject(400)),
        TortureCase(name: "unkscm", outcome: .reject(416)),
        TortureCase(name: "novelsc", outcome: .reject(416), applicationAnswers: [404]),  // soap.beep is never acceptable: 416
        TortureCase(name: "unksm2", outcome: .accept, applicationAnswers: [400]),  // the registrar's 400, not the stack's
        TortureCase(name: "invut", outcome: .accept, applicationAnswers: [415]),
        TortureCase(name: "regaut01", outcome: .accept, applicationAnswers: [401]),  // 401 by the registrar
        TortureCase(name: "mcl01", outcome: .reject(400)),
        // Parses; a UA drops a response with two Vias (RFC 3261 §8.1.3.3), a proxy one whose next hop is broadcast.
        TortureCase(name: "bcast", outcome: .drop),
        TortureCase(name: "zeromf", outcome: .accept, proxyOutcome: .reject(483)),
        TortureCase(name: "cparam01", outcome: .accept),
        TortureCase(name: "regescrt", outcome: .accept),
        TortureCase(name: "sdp01", outcome: .accept, applicationAnswers: [406, 400]),  // 406 (or 400) by the UAS application
        TortureCase(name: "inv2543", outcome: .accept, strictOutcome: .reject(400)),
    ]

    static let byName: [String: TortureCase] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
}

@Suite struct RFC4475TortureTests {
    static let userAgent = SIPValidator()
    static let proxy = SIPValidator(configuration: .init(role: .proxy))
    static let strict = SIPValidator(configuration: .init(rfc2543Compatibility: false))

    @Test func everyIndexedMessageHasAnExpectationAndAFile() throws {
        let index = try TestData.tortureIndex()
        #expect(index.count == TortureCase.all.count)
        for row in index {
            let name = try #require(row["name"])
            #expect(TortureCase.byName[name] != nil, "no expectation for \(name)")
            #expect(row["file"] == name + ".sip")
            let bytes = try TestData.tortureMessage(name)
            #expect(String(bytes.count) == row["bytes"], "\(name) size differs from index")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: TestData.torture.path).filter {
            $0.hasSuffix(".sip")
        }
        #expect(Set(files) == Set(index.compactMap { $0["file"] }))
    }

    /// The table agrees with the index text: every status code the index names is either the stack's answer
    /// or listed as an application-level answer, "valid" messages are accepted, and "discard"/"drop" means drop.
    @Test func expectationTableFollowsIndexText() throws {
        for row in try TestData.tortureIndex() {
            let name = try #require(row["name"])
            let handling = try #require(row["expected_handling"])
            let rfcClass = try #require(row["rfc_class"])
            let expected = try #require(TortureCase.byName[name])
            // Status codes the text asks for ("respond 400", "reject as malformed (400)", "; 416 if", "or 400",
            // "else 404", "endpoint 501"), and the ones it rules out ("NOT 416"); other numbers (Max-Forwards>255,
            // "> 699", "Warning 399") are not answers.
            let codes = Set(
                handling.matches(of: /(?:respond|responds|error|with|else|endpoint|;|\bor|\()\s*\(?([1-6]\d\d)\b/)
                    .compactMap { Int($0.output.1) })
            let forbidden = Set(handling.matches(of: /NOT ([1-6]\d\d)\b/).compactMap { Int($0.output.1) })
            var ours: Set<Int> = []
            for outcome in [expected.outcome, expected.proxyOutcome, expected.strictOutcome].compactMap({ $0 }) {
                if case .reject(let code) = outcome { ours.insert(code) }
            }
            #expect(codes.subtracting(ours).subtracting(expected.applicationAnswers).isEmpty, "\(name): \(handling)")
            #expect(ours.isDisjoint(with: forbidden), "\(name): \(handling)")
            if rfcClass == "valid" || rfcClass.hasPrefix("valid (") { #expect(expected.outcome == .accept, "\(name)") }
            if handling.contains("discard silently") || handling.contains("drop silently") {
                #expect(expected.outcome == .drop, "\(name)")
            }
        }
    }

    @Test(arguments: TortureCase.all)
    func datagramIsHandledAsIndexSays(_ torture: TortureCase) throws {
        let bytes = try TestData.tortureMessage(torture.name)
        let disposition = Self.userAgent.disposition(forDatagram: bytes)
        #expect(disposition.outcome == torture.outcome, "\(torture.name): \(disposition)")
        let asProxy = Self.proxy.disposition(forDatagram: bytes)
        #expect(asProxy.outcome == (torture.proxyOutcome ?? torture.outcome), "\(torture.name) as proxy: \(asProxy)")
        let strict = Self.strict.disposition(forDatagram: bytes)
        #expect(strict.outcome == (torture.strictOutcome ?? torture.outcome), "\(torture.name) strict: \(strict)")
    }

    @Test(arguments: ["baddn", "baddn+CRLF"])
    func baddnIsRejectedAsShippedAndWithCRLFAppended(_ variant: String) throws {
        var bytes = try TestData.tortureMessage("baddn")
        if variant.hasSuffix("+CRLF") { bytes += Array("\r\n".utf8) }
        let disposition = Self.userAgent.disposition(forDatagram: bytes)
        guard case .reject(let rejection) = disposition else {
            Issue.record("expected a rejection, got \(disposition)")
            return
        }
        #expect(rejection.statusCode == 400)
        #expect(rejection.method == .options)
        // The 400 can still be built: Via, From, To, Call-ID and CSeq copied from what was lexed.
        let response = rejection.makeResponse(toTag: "x1")
        #expect(response.headers.contains(.via))
        #expect(response.headers.contains(.callID))
        #expect(response.headers.contains(.cseq))
    }

    /// Every message the parser takes (also those the validator then refuses) survives parse → serialise → parse.
    @Test(arguments: TortureCase.all)
    func parseSerialiseParseIsStableAndHeadersAreByteExact(_ torture: TortureCase) throws {
        let original = try TestData.tortureMessage(torture.name)
        let parser = SIPMessageParser()
        guard let first = try? parser.parse(original) else {
            #expect(torture.outcome != .accept, "\(torture.name) must parse")
            return
        }
        let wire = first.serialized()
        let second = try parser.parse(wire)
        #expect(second == first)
        #expect(second.serialized() == wire)
        // Start line and header section are reproduced byte for byte (only trailing datagram octets go).
        let headerEnd = try #require(firstEmptyLine(original))
        #expect(Array(wire.prefix(headerEnd)) == Array(original.prefix(headerEnd)))
        #expect(
            Self.userAgent.disposition(forDatagram: wire).outcome
                == Self.userAgent.disposition(forDatagram: original).outcome)
    }

    @Test func unknownHeadersOfWsinvSurviveByteExact() throws {
        let bytes = try TestData.tortureMessage("wsinv")
        let message = try SIPMessageParser().parse(bytes)
        let unusual = try #require(message.headers.first(named: "UnknownHeaderWithUnusualValue"))
        #expect(unusual.name == .other)
        #expect(Array(unusual.raw) == Array("UnknownHeaderWithUnusualValue: ;;,,;;,;".utf8))
        #expect(Array(unusual.value) == Array(";;,,;;,;".utf8))
        let newFangled = try #require(message.headers.first(named: "newfangledheader"))
        #expect(
            Array(newFangled.raw) == Array("NewFangledHeader:   newfangled value\r\n continued newfangled value".utf8))
        #expect(newFangled.valueString == "newfangled value continued newfangled value")
        let wire = message.serialized()
        #expect(contains(wire, Array("\r\nUnknownHeaderWithUnusualValue: ;;,,;;,;\r\n".utf8)))
    }

    @Test func wsinvTypedValuesSurviveWhitespaceAndFolding() throws {
        let message = try SIPMessageParser().parse(try TestData.tortureMessage("wsinv"))
        let headers = message.headers
        #expect(try headers.maxForwards() == 68)
        #expect(try headers.cseq() == SIPCSeq(9, .invite))
        #expect(try headers.contentLength() == 150)
        #expect(try headers.to()?.tag == "1918181833n")
        let from = try #require(try headers.from())
        #expect(from.tag == "98asjd8")
        #expect(from.displayName == Array("J Rosenberg \\\"".utf8))
        let vias = try headers.via()
        #expect(vias.map(\.transport) == ["UDP", "TCP", "UDP"])
        #expect(vias.map(\.host) == ["192.0.2.2", "spindle.example.com", "192.168.255.111"])
        #expect(vias.map(\.branch) == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"])
        guard case .addresses(let contacts) = try headers.contacts() else {
            Issue.record("expected addresses")
            return
        }
        #expect(contacts.count == 1)
        #expect(contacts[0].displayName == Array("Quoted string \"\"".utf8))
        #expect(contacts[0].parameters["newparam"] == "newvalue")
        #expect(contacts[0].parameters.contains("secondparam"))
        #expect(contacts[0].parameters["q"] == "0.33")
        #expect(headers.first(.subject)?.value.isEmpty == true)
        let route = try headers.route()
        #expect(route.first?.uri.parameter("lr") != nil)
    }

    @Test func esc01EscapesAreDecodedOnceNeverRecursively() throws {
        let message = try SIPMessageParser().parse(try TestData.tortureMessage("esc01"))
        guard case .request(let request) = message else {
            Issue.record("not a request")
            return
        }
        #expect(request.uri.user == "sips%3Auser%40example.com")
        #expect(request.uri.unescapedUser == Array("sips:user@example.com".utf8))
        #expect(try message.headers.to()?.uri.unescapedUser == Array("user".utf8))
        #expect(try message.headers.from()?.uri.unescapedUser == Array("I have spaces".utf8))
        guard case .addresses(let contacts) = try message.headers.contacts(), let contact = contacts.first else {
            Issue.record("no contact")
            return
        }
        #expect(contact.uri.unescapedUser == Array("caller".utf8))
        #expect(contact.uri.parameter("lr") != nil)
        #expect(contact.uri.parameterValue("name") == "value%41")
        #expect(contact.uri.parameterValue("name") != "valueA")
        #expect(contact.uri.isEquivalent(to: SIPURI("sip:caller@host5.example.net;lr;name=value%2541")!))
        #expect(!contact.uri.isEquivalent(to: SIPURI("sip:caller@host5.example.net;lr;name=valueA")!))
    }

    @Test func intmethKeepsExtensionMethodAndOddBytes() throws {
        let message = try SIPMessageParser().parse(try TestData.tortureMessage("intmeth"))
        guard case .request(let request) = message else {
            Issue.record("not a request")
            return
        }
        #expect(request.method == .extension("!interesting-Method0123456789_*+`.%indeed'~"))
        #expect(request.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        #expect(request.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        let to = try #require(try request.headers.to())
        #expect(to.displayName == Array("BEL:\u{07} NUL:\u{00} DEL:\u{7F}".utf8))
        #expect(try request.headers.cseq()?.method == request.method)
        #expect(try request.headers.callID() == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{")
    }

    @Test func responsesKeepReasonPhraseBytes() throws {
        let unreason = try SIPMessageParser().parse(try TestData.tortureMessage("unreason"))
        guard case .response(let response) = unreason else {
            Issue.record("not a response")
            return
        }
        #expect(response.statusCode == 200)
        #expect(response.reasonPhraseString.hasPrefix("= 2**3 * 5**2 но сто девяносто девять"))
        guard case .response(let empty) = try SIPMessageParser().parse(try TestData.tortureMessage("noreason")) else {
            Issue.record("not a response")
            return
        }
        #expect(empty.statusCode == 100)
        #expect(empty.reasonPhrase.isEmpty)
    }

    @Test func dblreqIgnoresTrailingOctetsOfTheDatagram() throws {
        let disposition = Self.userAgent.disposition(forDatagram: try TestData.tortureMessage("dblreq"))
        guard case .request(let request) = disposition.acceptedMessage else {
            Issue.record("not accepted: \(disposition)")
            return
        }
        #expect(request.method == .register)
        #expect(request.body.isEmpty)
    }

    @Test func inv2543BodyIsTheRestOfTheDatagram() throws {
        let bytes = try TestData.tortureMessage("inv2543")
        let disposition = Self.userAgent.disposition(forDatagram: bytes)
        let message = try #require(disposition.acceptedMessage)
        #expect(message.body.count == 105)
        #expect(message.body.starts(with: Array("v=0\r\n".utf8)))
    }

    @Test func mpart01BodyIsFramedByContentLengthDespiteNULs() throws {
        let message = try SIPMessageParser().parse(try TestData.tortureMessage("mpart01"))
        #expect(message.body.count == 553)
        #expect(message.body.contains(0))
        #expect(try message.headers.contentType()?.parameters["boundary"] == "7a9cbec02ceef655")
    }

    @Test func rejectionsCarryWhatTheResponseNeeds() throws {
        let disposition = Self.userAgent.disposition(forDatagram: try TestData.tortureMessage("unkscm"))
        guard case .reject(let rejection) = disposition else {
            Issue.record("expected rejection")
            return
        }
        #expect(rejection.error.code == .unsupportedURIScheme)
        let response = rejection.makeResponse(toTag: "abc")
        #expect(response.statusCode == 416)
        #expect(try response.headers.to()?.tag == "abc")
        #expect(try response.headers.cseq() == SIPCSeq(3_923_423, .options))
        #expect(try response.headers.contentLength() == 0)
        let reparsed = try SIPMessageParser().parse(SIPMessage.response(response).serialized())
        #expect(SIPValidator().disposition(for: reparsed, transport: .datagram).outcome == .accept)
    }
}

func firstEmptyLine(_ bytes: [UInt8]) -> Int? {
    guard bytes.count >= 4 else { return nil }
    for index in 0...(bytes.count - 4) where bytes[index..<(index + 4)].elementsEqual([13, 10, 13, 10]) {
        return index + 4
    }
    return nil
}

func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard needle.count <= haystack.count else { return false }
    for index in 0...(haystack.count - needle.count)
    where haystack[index..<(index + needle.count)].elementsEqual(needle) {
        return true
    }
    return false
}
