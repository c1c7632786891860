/// The fixed header of an RTP packet (RFC 3550 §5.1), read from a datagram without copying the payload.
public struct RTPHeader: Sendable, Hashable {
    public var marker: Bool
    public var payloadType: UInt8
    public var sequenceNumber: UInt16
    public var timestamp: UInt32
    public var ssrc: UInt32
    /// Offset of the payload from the start of the packet (after CSRCs and any header extension).
    public var payloadOffset: Int
    /// Payload length, excluding padding.
    public var payloadLength: Int

    /// Parses an RTP header; nil when the datagram is not RTP version 2 or its lengths don't add up.
    public init?(_ packet: UnsafeRawBufferPointer) {
        guard packet.count >= 12 else { return nil }
        let first = packet[0]
        guard first >> 6 == 2 else { return nil }
        let padding = first & 0x20 != 0
        let hasExtension = first & 0x10 != 0
        let csrcCount = Int(first & 0x0f)
        marker = packet[1] & 0x80 != 0
        payloadType = packet[1] & 0x7f
        sequenceNumber = UInt16(packet[2]) << 8 | UInt16(packet[3])
        timestamp = Self.uint32(packet, 4)
        ssrc = Self.uint32(packet, 8)
        var offset = 12 + 4 * csrcCount
        guard packet.count >= offset else { return nil }
        if hasExtension {
            guard packet.count >= offset + 4 else { return nil }
            let words = Int(packet[offset + 2]) << 8 | Int(packet[offset + 3])
            offset += 4 + 4 * words
            guard packet.count >= offset else { return nil }
        }
        var end = packet.count
        if padding {
            let count = Int(packet[packet.count - 1])
            guard count > 0, end - count >= offset else { return nil }
            end -= count
        }
        payloadOffset = offset
        payloadLength = end - offset
    }

    public init?(_ bytes: [UInt8]) {
        guard let header = bytes.withUnsafeBytes({ RTPHeader($0) }) else { return nil }
        self = header
    }

    /// Whether a datagram on an RTP port is RTCP (RFC 5761 §4: payload types 64-95 with the marker bit mean
    /// RTCP packet types 192-223).
    public static func isRTCP(_ packet: UnsafeRawBufferPointer) -> Bool {
        guard packet.count >= 2, packet[0] >> 6 == 2 else { return false }
        return (192...223).contains(packet[1])
    }

    static func uint32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }
}
