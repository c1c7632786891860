import Foundation
import SIPCore

/// `SIPBench speed`: messages parsed per second (parse only, and parse + validate) for a typical carrier
/// INVITE with SDP and a 200 OK. `SIPBench alloc KIND N`: does N parses of KIND and nothing else, for an
/// allocation profiler (scripts/bench runs it under valgrind's DHAT, with N = 0 as the baseline).
@main
enum SIPBench {
    static let invite = message(
        start: "INVITE sip:+34911234567@sbc.example.net;user=phone SIP/2.0",
        headers: [
            "Via: SIP/2.0/UDP 198.51.100.23:5060;branch=z9hG4bK-524287-1---c1d5f2b1;rport",
            "Max-Forwards: 70",
            "Contact: <sip:+34600111222@198.51.100.23:5060;transport=udp>",
            "To: <sip:+34911234567@sbc.example.net;user=phone>",
            "From: \"Alice\" <sip:+34600111222@carrier.example.com;user=phone>;tag=4b3c2a1f",
            "Call-ID: 8a7d0f2c-5b1e-4c3d-9e8f-1a2b3c4d5e6f@198.51.100.23",
            "CSeq: 1 INVITE",
            "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK, INFO",
            "Supported: timer, 100rel, replaces",
            "Session-Expires: 1800;refresher=uac",
            "P-Asserted-Identity: <sip:+34600111222@carrier.example.com;user=phone>",
            "User-Agent: CarrierSwitch/9.1",
            "Content-Type: application/sdp",
        ],
        body: "v=0\r\no=- 3811428733 3811428733 IN IP4 198.51.100.23\r\ns=-\r\nc=IN IP4 198.51.100.23\r\nt=0 0\r\n"
            + "m=audio 40000 RTP/AVP 8 0 18 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:18 G729/8000\r\n"
            + "a=fmtp:18 annexb=no\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n")

    static let ok = message(
        start: "SIP/2.0 200 OK",
        headers: [
            "Via: SIP/2.0/UDP 198.51.100.23:5060;branch=z9hG4bK-524287-1---c1d5f2b1;rport=5060;received=198.51.100.23",
            "Record-Route: <sip:203.0.113.5;lr>",
            "Contact: <sip:callee@203.0.113.9:5060>",
            "To: <sip:+34911234567@sbc.example.net;user=phone>;tag=as5f2c1d7e",
            "From: \"Alice\" <sip:+34600111222@carrier.example.com;user=phone>;tag=4b3c2a1f",
            "Call-ID: 8a7d0f2c-5b1e-4c3d-9e8f-1a2b3c4d5e6f@198.51.100.23",
            "CSeq: 1 INVITE",
            "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS",
            "Supported: timer",
            "Server: CarrierSwitch/9.1",
            "Content-Type: application/sdp",
        ],
        body: "v=0\r\no=- 1 1 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\nm=audio 50000 RTP/AVP 8 101\r\n"
            + "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n")

    static func message(start: String, headers: [String], body: String) -> [UInt8] {
        Array((([start] + headers + ["Content-Length: \(body.utf8.count)", "", ""]).joined(separator: "\r\n") + body).utf8)
    }

    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        if arguments.first == "alloc", arguments.count == 3, let count = Int(arguments.last ?? "") {
            let bytes = arguments.dropFirst().first == "ok" ? ok : invite
            let parser = SIPMessageParser()
            var accepted = 0
            for _ in 0..<count where (try? parser.parse(bytes)) != nil { accepted += 1 }
            exit(accepted == count ? 0 : 1)
        }
        let validator = SIPValidator()
        let parser = SIPMessageParser()
        var rows: [(String, Double)] = []
        for (name, bytes) in [("INVITE", invite), ("200 OK", ok)] {
            guard (try? parser.parse(bytes)) != nil, case .accept = validator.disposition(forDatagram: bytes) else {
                FileHandle.standardError.write(Data("\(name) sample does not parse\n".utf8))
                exit(1)
            }
            rows.append(("\(name) parse", rate { _ = try? parser.parse(bytes) }))
            rows.append(("\(name) parse+validate", rate { _ = validator.disposition(forDatagram: bytes) }))
        }
        for (name, perSecond) in rows {
            FileHandle.standardOutput.write(Data("\(name.padding(toLength: 24, withPad: " ", startingAt: 0)) \(Int(perSecond)) msg/s\n".utf8))
        }
        let byName = Dictionary(uniqueKeysWithValues: rows)
        if let a = byName["INVITE parse"], let b = byName["INVITE parse+validate"], let c = byName["200 OK parse"] {
            FileHandle.standardOutput.write(Data(String(format: "ratios: INVITE parse/parse+validate %.2f, 200 OK/INVITE parse %.2f\n", a / b, c / a).utf8))
        }
    }

    /// Runs `body` in batches for about a second (after a warm-up) and returns calls per second.
    static func rate(_ body: () -> Void) -> Double {
        let clock = ContinuousClock()
        for _ in 0..<2000 { body() }
        var iterations = 0
        let start = clock.now
        while clock.now - start < .seconds(1) {
            for _ in 0..<1000 { body() }
            iterations += 1000
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Double(iterations) / seconds
    }
}
