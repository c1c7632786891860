import Foundation
import TroncalMedia

/// Key presses for sipp to send: RFC 4733 events in a pcap file (`play_pcap_audio`), or in-band tones in raw µ-law
/// (`rtp_stream`), for phones that send no events.
enum DTMFMedia {
    /// A pcap (Ethernet, IPv4, UDP, RTP) of `keys` as telephone-events (payload type 101), each pressed 160 ms and sent as
    /// sipp's own dtmf_2833 captures are: 8 packets every 20 ms with a growing duration, then 3 end packets; `gap`
    /// milliseconds between keys. Each key has its own RTP timestamp.
    static func pcap(_ keys: String, gapMilliseconds: Int = 400) -> Data {
        var out = Data()
        func u16(_ value: Int, big: Bool = false) {
            let bytes = [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)]
            out.append(contentsOf: big ? bytes.reversed() : bytes)
        }
        func u32(_ value: Int, big: Bool = false) {
            let bytes = [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 24 & 0xFF)]
            out.append(contentsOf: big ? bytes.reversed() : bytes)
        }
        // Global header: little-endian magic, version 2.4, Ethernet.
        u32(0xA1B2_C3D4)
        u16(2)
        u16(4)
        u32(0)
        u32(0)
        u32(65535)
        u32(1)
        var microseconds = 0
        var sequence = 1000
        // Each file its own timestamps, as a phone's clock runs on between key presses (the receiver takes a repeated
        // timestamp and event for a retransmission of the same press).
        var timestamp = Int.random(in: 0..<(1 << 30))
        for key in keys {
            guard let event = DTMF.event(of: key) else { continue }
            var packets: [(marker: Bool, end: Bool, duration: Int)] = (1...8).map { (marker: $0 == 1, end: false, duration: $0 * 160) }
            packets += Array(repeating: (marker: false, end: true, duration: 8 * 160), count: 3)
            for (index, packet) in packets.enumerated() {
                var rtp: [UInt8] = [0x80, (packet.marker ? 0x80 : 0) | 101, UInt8(sequence >> 8 & 0xFF), UInt8(sequence & 0xFF)]
                rtp += [UInt8(timestamp >> 24 & 0xFF), UInt8(timestamp >> 16 & 0xFF), UInt8(timestamp >> 8 & 0xFF), UInt8(timestamp & 0xFF)]
                rtp += [0x12, 0x34, 0x56, 0x78]
                rtp += [event, (packet.end ? 0x80 : 0) | 10, UInt8(packet.duration >> 8 & 0xFF), UInt8(packet.duration & 0xFF)]
                sequence += 1
                let udpLength = 8 + rtp.count
                let ipLength = 20 + udpLength
                let frame = 14 + ipLength
                u32(microseconds / 1_000_000)
                u32(microseconds % 1_000_000)
                u32(frame)
                u32(frame)
                out.append(contentsOf: [UInt8](repeating: 0, count: 12) + [0x08, 0x00])
                out.append(contentsOf: [0x45, 0x00])
                u16(ipLength, big: true)
                out.append(contentsOf: [0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1])
                u16(6000, big: true)
                u16(6002, big: true)
                u16(udpLength, big: true)
                u16(0)
                out.append(contentsOf: rtp)
                if index < 7 { microseconds += 20_000 }
            }
            microseconds += gapMilliseconds * 1000
            timestamp += 8 * (160 + gapMilliseconds)
        }
        return out
    }

    /// Raw µ-law (8 kHz) of `keys` as in-band tones, 120 ms each with 300 ms of silence between, after `leading` ms of
    /// silence and before 500 ms more.
    static func inBand(_ keys: String, leadingMilliseconds: Int = 500) -> Data {
        var samples = [Int16](repeating: 0, count: leadingMilliseconds * 8)
        for key in keys {
            guard var tone = ToneGenerator.dtmf(key) else { continue }
            samples += tone.next(milliseconds: 120) + [Int16](repeating: 0, count: 2400)
        }
        samples += [Int16](repeating: 0, count: 4000)
        return Data(G711.muLaw.encode(samples))
    }

    /// Raw µ-law of a 1 kHz tone.
    static func tone(hertz: Double = 1000, milliseconds: Int) -> Data {
        var tone = ToneGenerator(frequencies: [hertz], amplitude: 8000)
        return Data(G711.muLaw.encode(tone.next(milliseconds: milliseconds)))
    }
}
