import Testing
import TroncalSIP

@Suite struct SIPURITests {
    @Test(arguments: [
        "sip:alice@atlanta.com",
        "sips:alice@atlanta.com",
        "sip:alice:secretword@atlanta.com;transport=tcp",
        "sip:+1-212-555-1212:1234@gateway.com;user=phone",
        "sip:alice@192.0.2.4",
        "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
        "sip:alice;day=tuesday@atlanta.com",
        "sip:[2001:db8::10]:5070",
        "sip:bob@[::ffff:192.0.2.1];transport=tls",
        "sip:carrier.example.net.",
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
        "tel:+1-201-555-0123",
        "tel:+34911234567;ext=22",
        "tel:7042;phone-context=example.com",
        "tel:863-1234;phone-context=+1-914-555",
        "http://www.example.com",
        "urn:service:sos",
    ])
    func validURIRendersAsReceived(_ text: String) throws {
        let uri = try #require(SIPURI(text))
        #expect(uri.description == text)
    }

    @Test func componentsAreSplitPerScheme() throws {
        let sip = try #require(
            SIPURI("sips:+1-212-555-1212:pw@gw.example.com:5061;user=phone;lr?subject=x&priority=urgent"))
        #expect(sip.scheme == .sips)
        #expect(sip.user == "+1-212-555-1212")
        #expect(sip.password == "pw")
        #expect(sip.host == "gw.example.com")
        #expect(sip.port == 5061)
        #expect(sip.parameterValue("user") == "phone")
        #expect(sip.parameter("lr") != nil)
        #expect(sip.headers == [.init(name: "subject", value: "x"), .init(name: "priority", value: "urgent")])
        let tel = try #require(SIPURI("tel:+34-91-123-4567;ext=9"))
        #expect(tel.scheme == .tel)
        #expect(tel.user == "+34-91-123-4567")
        #expect(tel.parameterValue("ext") == "9")
        let other = try #require(SIPURI("soap.beep://192.0.2.103:3002"))
        #expect(other.scheme == .other("soap.beep"))
        #expect(other.opaque == "//192.0.2.103:3002")
    }

    @Test(arguments: [
        "sip:", "sip:@host", "sip:user@", "sip:user@host:99999", "sip:user@host;", "sip:user@-host",
        "sip:user@host:port",
        "sip:user@host;a=", "sip:us er@host", "sip:user@[::1", "sip:user@host?x", "sip:user@host?", "sip:a@b@c",
        "sip:user@host%41", "sip:us%4@host", "sip:user@1.2.3.256", "sip:user@[1::2::3]", "tel:", "tel:1234", "tel:+",
        "tel:+12a4", "1sip:x", "sip", ":x", "mailto:", "nobody knows:x",
    ])
    func invalidURIIsRefused(_ text: String) {
        #expect(SIPURI(text) == nil)
    }

    /// RFC 3261 §19.1.4 examples.
    @Test(arguments: [
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
        ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
        (
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ),
        (
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x"
        ),
        ("tel:+1-201-555-0123", "tel:+12015550123"),
    ])
    func equivalentURIsCompareEqual(lhs: String, rhs: String) throws {
        let a = try #require(SIPURI(lhs))
        let b = try #require(SIPURI(rhs))
        #expect(a.isEquivalent(to: b))
        #expect(b.isEquivalent(to: a))
    }

    /// RFC 3261 §19.1.4 counter-examples.
    @Test(arguments: [
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
        ("sip:a@h;name=value%2541", "sip:a@h;name=valueA"),
    ])
    func differentURIsCompareDifferent(lhs: String, rhs: String) throws {
        let a = try #require(SIPURI(lhs))
        let b = try #require(SIPURI(rhs))
        #expect(!a.isEquivalent(to: b))
    }

    @Test func percentDecodingIsSinglePass() {
        #expect(SIPURI.percentDecoded("value%2541") == Array("value%41".utf8))
        #expect(SIPURI.percentDecoded("%zz%4") == Array("%zz%4".utf8))
        #expect(SIPURI.percentDecoded("I%20have%20spaces") == Array("I have spaces".utf8))
    }
}
