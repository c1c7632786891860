internal import Foundation
internal import NIOCore
internal import TroncalMedia

/// What the PBX plays to a party put on hold, and where its media lives.
struct PBXMediaSettings {
    /// The address its media sockets bind and its SDP names.
    var address: String
    var ports: ClosedRange<Int>
    /// Hold music, 8 kHz.
    var holdMusic: [Int16]

    /// The built-in hold tune: a slow arpeggio (C, E, G, E) of soft sine notes with short rests, about 3 s, looped.
    static let builtInTune: [Int16] = {
        var samples: [Int16] = []
        for frequency in [523.25, 659.25, 783.99, 659.25, 587.33, 698.46, 880.0, 698.46] {
            var note = ToneGenerator(frequencies: [frequency], amplitude: 4000)
            samples += note.next(milliseconds: 300) + [Int16](repeating: 0, count: 400)
        }
        return samples
    }()
}

/// A call on hold: the PBX's media endpoint playing music to the party that did not ask for it.
struct PBXHold {
    var endpoint: MediaEndpoint
}

extension SessionDescription {
    /// Whether the first audio stream of an offer puts the other side on hold (`sendonly` or `inactive`, or a
    /// connection address of 0.0.0.0 as RFC 2543 phones still send).
    var isHold: Bool {
        guard let index = media.firstIndex(where: { $0.type == "audio" }) else { return false }
        if destination(ofMedia: index)?.address == "0.0.0.0" { return true }
        return !direction(ofMedia: index).receives
    }

    /// The PBX's offer to a party it plays music to: its address and port, one G.711 codec, `sendonly`.
    static func holdMusicOffer(address: String, port: Int, codec: G711, payloadType: UInt8) -> SessionDescription? {
        let family = address.contains(":") ? "IP6" : "IP4"
        return try? SessionDescription(
            "v=0\r\no=- \(port) 1 IN \(family) \(address)\r\ns=-\r\nc=IN \(family) \(address)\r\nt=0 0\r\n"
                + "m=audio \(port) RTP/AVP \(payloadType)\r\na=rtpmap:\(payloadType) \(codec.rawValue)/8000\r\na=ptime:20\r\na=sendonly\r\n")
    }
}
