/// An RFC 4733 telephone-event payload (§2.3): the event (a DTMF key 0-15), the end bit, the volume (0 to -63 dBm0,
/// as a positive number) and the duration in timestamp units since the event began.
public struct TelephoneEvent: Sendable, Hashable {
    public var event: UInt8
    public var end: Bool
    public var volume: UInt8
    public var duration: UInt16

    public init(event: UInt8, end: Bool = false, volume: UInt8 = 10, duration: UInt16) {
        self.event = event
        self.end = end
        self.volume = volume & 0x3F
        self.duration = duration
    }

    /// Parses the 4-byte payload (more bytes are further events of a packet: only the first is read).
    public init?(payload: some Collection<UInt8>) {
        guard payload.count >= 4 else { return nil }
        let bytes = Array(payload.prefix(4))
        event = bytes[0]
        end = bytes[1] & 0x80 != 0
        volume = bytes[1] & 0x3F
        duration = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
    }

    public var payload: [UInt8] {
        [event, (end ? 0x80 : 0) | volume & 0x3F, UInt8(duration >> 8), UInt8(duration & 0xFF)]
    }

    /// The DTMF key of the event, nil for other events (tones, flash).
    public var digit: Character? { DTMF.digit(ofEvent: event) }

    /// The packets a sender sends for one key press (§2.5): every `packetMilliseconds` while the key is down, the
    /// duration growing, the first with the marker bit; then the end packet three times (the same timestamp all along:
    /// the event's start). Durations in 8 kHz units.
    public static func keyPress(_ digit: Character, milliseconds: Int = 100, packetMilliseconds: Int = 20) -> [(TelephoneEvent, marker: Bool)]? {
        guard let event = DTMF.event(of: digit) else { return nil }
        let step = packetMilliseconds * 8
        let total = min(Int(UInt16.max), milliseconds * 8)
        var packets: [(TelephoneEvent, marker: Bool)] = []
        var duration = step
        while duration < total {
            packets.append((TelephoneEvent(event: event, duration: UInt16(duration)), packets.isEmpty))
            duration += step
        }
        let end = TelephoneEvent(event: event, end: true, duration: UInt16(total))
        for _ in 0..<3 { packets.append((end, packets.isEmpty)) }
        return packets
    }
}

/// The receiving side of RFC 4733 for DTMF: one digit per event, however many packets carry it. An event is known by
/// its RTP timestamp (its start, the same in every packet of it): the digit is reported at the first packet of a new
/// timestamp, so that a lost start or lost end packets still give the digit exactly once, and retransmitted end
/// packets never give it twice.
public struct TelephoneEventReceiver: Sendable {
    /// The events seen lately (timestamp and event), so that packets of an earlier event arriving late or interleaved
    /// with the next one's are not taken for new presses.
    private var recent: [UInt64] = []

    public init() {}

    /// A telephone-event packet's payload and RTP timestamp: the digit when it starts a new event.
    public mutating func receive(payload: some Collection<UInt8>, timestamp: UInt32) -> Character? {
        guard let event = TelephoneEvent(payload: payload), let digit = event.digit else { return nil }
        let key = UInt64(timestamp) << 8 | UInt64(event.event)
        guard !recent.contains(key) else { return nil }
        recent.append(key)
        if recent.count > 8 { recent.removeFirst() }
        return digit
    }
}
