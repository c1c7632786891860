import Foundation
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

    /// A call pickup joins two offers: each party gets the other's address and port, with the formats both offered in
    /// its own order and numbering, and the other's direction; a party with nothing in common gets no answer.
    @Test func anAnswerBuiltFromAnotherPartysOfferKeepsTheOffersFormatsTheOtherAlsoOffered() throws {
        let caller = try SessionDescription(
            "v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8 0 101\r\n"
                + "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n")
        let picker = try SessionDescription(
            "v=0\r\no=b 2 2 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 50000 RTP/AVP 0 18 101\r\n"
                + "a=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n")
        let toCaller = try #require(SessionDescription.answer(to: caller, from: picker))
        #expect(toCaller.destination(ofMedia: 0)! == ("10.0.0.2", 50000))
        #expect(toCaller.media[0].formats == ["0", "101"])
        #expect(toCaller.text.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"))
        let toPicker = try #require(SessionDescription.answer(to: picker, from: caller))
        #expect(toPicker.destination(ofMedia: 0)! == ("10.0.0.1", 40000))
        #expect(toPicker.media[0].formats == ["0", "101"])
        #expect(!toPicker.text.contains("G729"))
        // Parses back as SDP.
        #expect((try? SessionDescription(toPicker.text)) != nil)

        let g729Only = try SessionDescription("v=0\r\no=c 3 3 IN IP4 10.0.0.3\r\ns=-\r\nc=IN IP4 10.0.0.3\r\nt=0 0\r\nm=audio 60000 RTP/AVP 18\r\n")
        #expect(SessionDescription.answer(to: caller, from: g729Only) == nil)
        // A hold (sendonly) on the other side is what the answer says; a sendonly offer is answered recvonly.
        let holding = try SessionDescription(picker.text + "a=sendonly\r\n")
        #expect(SessionDescription.answer(to: caller, from: holding)?.text.contains("a=sendonly") == true)
        #expect(SessionDescription.answer(to: holding, from: caller)?.text.contains("a=recvonly") == true)
        // The answer's origin is the other party's (its later offers carry the next version of that session).
        #expect(toCaller.text.contains("o=b 2 2 IN IP4 10.0.0.2\r\n"))
        // Only telephone-event in common is no audio: no answer. Another profile (SRTP) is no answer either.
        let eventsOnly = try SessionDescription(
            "v=0\r\no=c 3 3 IN IP4 10.0.0.3\r\ns=-\r\nc=IN IP4 10.0.0.3\r\nt=0 0\r\nm=audio 60000 RTP/AVP 18 101\r\na=rtpmap:101 telephone-event/8000\r\n")
        #expect(SessionDescription.answer(to: caller, from: eventsOnly) == nil)
        let secure = try SessionDescription(picker.text.replacingOccurrences(of: "RTP/AVP", with: "RTP/SAVP"))
        #expect(SessionDescription.answer(to: caller, from: secure) == nil)
    }
}
