public import NIOCore

/// One RTP stream a media endpoint sends (a prompt, music on hold, a tone): G.711 audio in 20 ms packets of 160
/// samples, paced on the channel's event loop against the clock of its start (packet n leaves at start + n × 20 ms,
/// so a late wake-up does not shift the rest of the stream), and RFC 4733 events between them. Sequence numbers and
/// timestamps run on across everything sent (a new prompt continues the stream; the marker bit flags each new
/// talk-spurt). Not thread-safe: use it on its event loop only.
public final class RTPSender {
    public let channel: any Channel
    public private(set) var destination: SocketAddress
    public let codec: G711
    /// The payload type of telephone-event as the far end numbered it in its SDP (often 101).
    public var eventPayloadType: UInt8
    /// The payload type of the audio as negotiated (0 or 8, or a dynamic number the offer gave G.711).
    public var audioPayloadType: UInt8
    public let ssrc: UInt32
    private var sequence: UInt16
    private var timestamp: UInt32
    private var queue: [Int16] = []
    private var offset = 0
    private var repeats = false
    private var task: Scheduled<Void>?
    private var start: NIODeadline = .now()
    private var sentPackets = 0
    private var newSpurt = true
    private var finished: (() -> Void)?
    private var nextDigitAt: NIODeadline = .uptimeNanoseconds(0)
    private var origin: (at: NIODeadline, timestamp: UInt32)
    private var digitTasks: [Scheduled<Void>] = []

    public static let samplesPerPacket = 160
    public static let packetInterval = TimeAmount.milliseconds(20)

    public init(channel: any Channel, destination: SocketAddress, codec: G711, eventPayloadType: UInt8 = 101, ssrc: UInt32 = .random(in: 1...UInt32.max)) {
        self.channel = channel
        self.destination = destination
        self.codec = codec
        self.eventPayloadType = eventPayloadType
        self.audioPayloadType = codec.payloadType
        self.ssrc = ssrc
        sequence = .random(in: 0...UInt16.max)
        timestamp = .random(in: 0...UInt32.max)
        origin = (.now(), timestamp)
    }

    /// The RTP clock (8 kHz) at `deadline`: the stream's timestamps follow real time from its creation.
    private func clock(at deadline: NIODeadline) -> UInt32 {
        origin.timestamp &+ UInt32(truncatingIfNeeded: max(0, (deadline - origin.at).nanoseconds) / 125_000)
    }

    /// Packets sent so far (audio and events).
    public var packetsSent: Int { sentPackets }
    public var isPlaying: Bool { task != nil }

    /// Where the far end wants its media now (after a re-INVITE, or where its first packet came from).
    public func redirect(to address: SocketAddress) { destination = address }

    /// Plays `samples` (8 kHz) from now, replacing what was playing; `repeating` loops it (music on hold) until
    /// `stop()`; otherwise `done` runs after its last packet.
    public func play(_ samples: [Int16], repeating: Bool = false, done: (() -> Void)? = nil) {
        channel.eventLoop.preconditionInEventLoop()
        task?.cancel()
        queue = samples
        offset = 0
        repeats = repeating && !samples.isEmpty
        finished = done
        newSpurt = true
        start = .now()
        // The timestamp keeps time through a pause (RFC 3550 §5.1): the receiver's jitter estimate stays right.
        timestamp = clock(at: start)
        schedule(packet: 0)
    }

    /// Stops the stream (what was queued is dropped; `done` does not run).
    public func stop() {
        task?.cancel()
        task = nil
        for digit in digitTasks { digit.cancel() }
        digitTasks = []
        queue = []
        finished = nil
    }

    /// Sends one RFC 4733 key press now: its packets 20 ms apart (the end packet three times), on a timestamp of its
    /// own, beside any audio playing.
    /// Key presses sent one after another: the next starts after the last one's end and a 40 ms gap.
    public func sendDigit(_ digit: Character, milliseconds: Int = 100) {
        guard let packets = TelephoneEvent.keyPress(digit, milliseconds: milliseconds) else { return }
        let begin = max(.now(), nextDigitAt)
        // The event's timestamp is the stream's clock when its first packet leaves (distinct for each press: the same
        // key twice is two events); the audio's clock is not moved.
        let eventTimestamp = clock(at: begin)
        // The earlier presses have all been sent: forget their tasks.
        if begin > nextDigitAt { digitTasks = [] }
        for (index, packet) in packets.enumerated() {
            let at = begin + .milliseconds(Int64(20 * min(index, packets.count - 3)))
            digitTasks.append(channel.eventLoop.assumeIsolated().scheduleTask(deadline: at) {
                self.send(payload: packet.0.payload, payloadType: self.eventPayloadType, marker: packet.marker, timestamp: eventTimestamp)
            })
        }
        nextDigitAt = begin + .milliseconds(Int64(20 * (packets.count - 3) + 40))
    }

    private func schedule(packet index: Int) {
        let deadline = start + Self.packetInterval * Int64(index)
        task = channel.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.sendNextFrame(index: index)
        }
    }

    private func sendNextFrame(index: Int) {
        guard offset < queue.count else {
            task = nil
            let done = finished
            finished = nil
            done?()
            return
        }
        var frame = Array(queue[offset..<min(queue.count, offset + Self.samplesPerPacket)])
        offset += frame.count
        if repeats, offset >= queue.count { offset = 0 }
        if frame.count < Self.samplesPerPacket { frame += [Int16](repeating: 0, count: Self.samplesPerPacket - frame.count) }
        send(payload: codec.encode(frame), payloadType: audioPayloadType, marker: newSpurt, timestamp: timestamp)
        newSpurt = false
        timestamp &+= UInt32(Self.samplesPerPacket)
        schedule(packet: index + 1)
    }

    private func send(payload: [UInt8], payloadType: UInt8, marker: Bool, timestamp: UInt32) {
        var buffer = channel.allocator.buffer(capacity: 12 + payload.count)
        buffer.writeInteger(UInt8(0x80))
        buffer.writeInteger((marker ? 0x80 : 0) | payloadType & 0x7F)
        buffer.writeInteger(sequence)
        buffer.writeInteger(timestamp)
        buffer.writeInteger(ssrc)
        buffer.writeBytes(payload)
        sequence &+= 1
        sentPackets += 1
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: destination, data: buffer), promise: nil)
    }
}
