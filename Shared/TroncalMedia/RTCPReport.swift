/// What Troncal reads from RTCP sender and receiver reports (RFC 3550 §6.4): per report block the loss,
/// jitter and the LSR/DLSR pair that gives the round-trip time.
public struct RTCPReport: Sendable, Hashable {
    public struct Block: Sendable, Hashable {
        public var ssrc: UInt32
        public var fractionLost: UInt8
        public var cumulativeLost: Int32
        public var extendedHighestSequence: UInt32
        public var jitter: UInt32
        /// Middle 32 bits of the NTP timestamp of the last SR received from this source (0: none).
        public var lastSenderReport: UInt32
        /// Delay since that SR, in 1/65536 s.
        public var delaySinceLastSenderReport: UInt32
    }

    public var senderSSRC: UInt32
    /// For sender reports: the middle 32 bits of its NTP timestamp (what the peer will echo as LSR).
    public var ntpMiddle: UInt32?
    public var blocks: [Block]

    /// Parses the first SR or RR of a (compound) RTCP packet; nil if there is none or it is malformed.
    public init?(_ packet: UnsafeRawBufferPointer) {
        var offset = 0
        while offset + 4 <= packet.count {
            let first = packet[offset]
            guard first >> 6 == 2 else { return nil }
            let count = Int(first & 0x1f)
            let type = packet[offset + 1]
            let length = ((Int(packet[offset + 2]) << 8 | Int(packet[offset + 3])) + 1) * 4
            guard offset + length <= packet.count, length >= 8 else { return nil }
            if type == 200 || type == 201 {
                senderSSRC = RTPHeader.uint32(packet, offset + 4)
                var cursor = offset + 8
                if type == 200 {
                    guard length >= 28 else { return nil }
                    ntpMiddle = RTPHeader.uint32(packet, offset + 10)
                    cursor += 20
                } else {
                    ntpMiddle = nil
                }
                var blocks: [Block] = []
                for _ in 0..<count {
                    guard cursor + 24 <= offset + length else { return nil }
                    let lostWord = RTPHeader.uint32(packet, cursor + 4)
                    var cumulative = Int32(bitPattern: lostWord << 8) >> 8
                    if cumulative == 0x7fffff { cumulative = 0 }
                    blocks.append(Block(
                        ssrc: RTPHeader.uint32(packet, cursor), fractionLost: UInt8(lostWord >> 24), cumulativeLost: cumulative,
                        extendedHighestSequence: RTPHeader.uint32(packet, cursor + 8), jitter: RTPHeader.uint32(packet, cursor + 12),
                        lastSenderReport: RTPHeader.uint32(packet, cursor + 16),
                        delaySinceLastSenderReport: RTPHeader.uint32(packet, cursor + 20)))
                    cursor += 24
                }
                self.blocks = blocks
                return
            }
            offset += length
        }
        return nil
    }

    /// Round-trip time from a report block (RFC 3550 §6.4.1): arrival − LSR − DLSR, all in NTP middle-32
    /// units (1/65536 s). `arrivalNTPMiddle` is the middle 32 bits of the NTP time the report arrived.
    public static func roundTripMilliseconds(block: Block, arrivalNTPMiddle: UInt32) -> Double? {
        guard block.lastSenderReport != 0 else { return nil }
        let rtt = arrivalNTPMiddle &- block.lastSenderReport &- block.delaySinceLastSenderReport
        guard rtt < 0x8000_0000 else { return nil }  // negative: clocks disagree
        return Double(rtt) * 1000 / 65536
    }
}
