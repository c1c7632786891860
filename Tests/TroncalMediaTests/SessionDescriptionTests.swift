import Testing
import TroncalMedia

@Suite("SDP parsing and media anchoring")
struct SessionDescriptionTests {
    let offer = """
        v=0\r
        o=user1 53655765 2353687637 IN IP4 192.0.2.10\r
        s=-\r
        c=IN IP4 192.0.2.10\r
        t=0 0\r
        m=audio 49170 RTP/AVP 0 8 18 101\r
        a=rtpmap:101 telephone-event/8000\r
        a=fmtp:101 0-15\r
        a=rtcp:49171\r
        a=sendrecv\r
        m=video 0 RTP/AVP 31\r

        """

    @Test func parsesConnectionPortsAndCodecs() throws {
        let sdp = try SessionDescription(offer)
        #expect(sdp.connectionAddress == "192.0.2.10")
        #expect(sdp.media.count == 2)
        #expect(sdp.destination(ofMedia: 0)! == ("192.0.2.10", 49170))
        #expect(sdp.media[0].codecs.map(\.encoding) == ["PCMU", "PCMA", "G729", "telephone-event"])
        #expect(sdp.text == offer)
    }

    @Test func anchoringRewritesOnlyAddressesAndPorts() throws {
        var sdp = try SessionDescription(offer)
        sdp.anchor(at: "203.0.113.5", ports: [30000, 30002])
        let text = sdp.text
        #expect(!text.contains("192.0.2.10"))
        #expect(text.contains("c=IN IP4 203.0.113.5\r\n"))
        #expect(text.contains("o=user1 53655765 2353687637 IN IP4 203.0.113.5\r\n"))
        #expect(text.contains("m=audio 30000 RTP/AVP 0 8 18 101\r\n"))
        #expect(text.contains("a=rtcp:30001\r\n"))
        #expect(text.contains("m=video 0 RTP/AVP 31\r\n"))  // a rejected stream stays rejected
        #expect(text.contains("a=fmtp:101 0-15\r\n"))
    }

    @Test(arguments: ["", "x", "v=0\r\nm=audio\r\n", "c=IN IP4 1.2.3.4\r\n", "v=0\r\nm=audio 99999 RTP/AVP 0\r\n", "v=0\r\nthis is not sdp\r\n"])
    func malformedBodiesAreRefused(_ body: String) {
        #expect(throws: SessionDescription.ParseError.self) { try SessionDescription(body) }
    }
}
