public import NIOCore
internal import NIOPosix

/// One call's media at a media endpoint (the PBX answering for an IVR, voicemail or music on hold): an RTP socket
/// from the endpoint's port range, what the far end sends turned into digits (RFC 4733 events, or in-band DTMF for
/// phones that send no events: once an event has arrived, in-band detection stops, so a digit is never taken twice),
/// and an `RTPSender` for prompts and music. Symmetric RTP: media goes where the far end's packets come from once
/// they come (a phone behind a NAT), to its SDP address before. Use it on its event loop only.
public final class MediaEndpoint {
    public let channel: any Channel
    public let sender: RTPSender
    public let codec: G711
    /// The far end's telephone-event payload type, when its SDP offered one.
    public let eventPayloadType: UInt8?
    /// Called on the event loop for each digit the far end pressed.
    public var onDigit: ((Character) -> Void)?
    /// Called on the event loop with each frame of the far end's audio, decoded and in sequence order (a jitter buffer
    /// absorbs reordering; a lost frame comes as silence): recording, silence detection.
    public var onAudio: (([Int16]) -> Void)?
    private var jitter = JitterBuffer()
    private var audioSource: UInt32?
    private var events = TelephoneEventReceiver()
    private var detector = DTMFDetector()
    private var eventsSeen = false
    private var latched = false
    /// Whether media follows the far end's first packets (symmetric RTP). Off where the endpoint sends to one party and
    /// may hear from another (music on hold: the held side gets the music whatever the holder sends).
    public var latches = true
    /// The address the far end's SDP named: media is latched only to a source of that IP (a stray packet from
    /// elsewhere cannot take the stream over).
    private let expectedIP: String?
    /// The negotiated payload type of the audio.
    public let audioPayloadType: UInt8

    public var port: Int { channel.localAddress?.port ?? 0 }

    init(channel: any Channel, remote: SocketAddress, codec: G711, payloadType: UInt8?, eventPayloadType: UInt8?) {
        self.channel = channel
        self.codec = codec
        self.eventPayloadType = eventPayloadType
        self.expectedIP = remote.ipAddress
        audioPayloadType = payloadType ?? codec.payloadType
        sender = RTPSender(channel: channel, destination: remote, codec: codec, eventPayloadType: eventPayloadType ?? 101)
        sender.audioPayloadType = audioPayloadType
    }

    /// Binds an even port of `ports` on `host` (trying up to 32 at random) and sends to `remote` with `codec` (under
    /// `payloadType` when the offer numbered it dynamically).
    public static func open(
        host: String, ports: ClosedRange<Int>, remote: SocketAddress, codec: G711, payloadType: UInt8? = nil, eventPayloadType: UInt8?,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<MediaEndpoint> {
        let evens = stride(from: ports.lowerBound + ports.lowerBound % 2, through: ports.upperBound, by: 2).map { $0 }
        let candidates = Array(evens.shuffled().prefix(32))
        func attempt(_ index: Int) -> EventLoopFuture<any Channel> {
            guard index < candidates.count else {
                return eventLoop.makeFailedFuture(MediaEndpointError("no free media port in \(ports.lowerBound)-\(ports.upperBound) on \(host)"))
            }
            return DatagramBootstrap(group: eventLoop).bind(host: host, port: candidates[index]).flatMapError { _ in attempt(index + 1) }
        }
        return attempt(0).flatMapThrowing { channel in
            let endpoint = MediaEndpoint(channel: channel, remote: remote, codec: codec, payloadType: payloadType, eventPayloadType: eventPayloadType)
            try channel.pipeline.syncOperations.addHandler(EndpointHandler(endpoint: endpoint))
            return endpoint
        }
    }

    /// The audio frames the jitter buffer still holds, handed to `onAudio` (at the end of a recording).
    public func flushAudio() {
        guard let onAudio else { return }
        for frame in jitter.drain() { onAudio(frame) }
    }

    public func close() {
        sender.stop()
        onDigit = nil
        onAudio = nil
        channel.close(promise: nil)
    }

    func received(_ envelope: AddressedEnvelope<ByteBuffer>) {
        let bytes = Array(envelope.data.readableBytesView)
        guard let header = RTPHeader(bytes), !bytes.withUnsafeBytes(RTPHeader.isRTCP) else { return }
        if latches, !latched, expectedIP == nil || envelope.remoteAddress.ipAddress == expectedIP {
            latched = true
            sender.redirect(to: envelope.remoteAddress)
        }
        let payload = bytes[header.payloadOffset..<(header.payloadOffset + header.payloadLength)]
        if let eventPayloadType, header.payloadType == eventPayloadType {
            eventsSeen = true
            if let digit = events.receive(payload: payload, timestamp: header.timestamp) { onDigit?(digit) }
        } else if header.payloadType == audioPayloadType {
            let samples = codec.decode(payload)
            if let onAudio {
                if audioSource != header.ssrc {
                    // A new source (the far end's stream restarted): its sequence numbers start afresh.
                    for frame in jitter.drain() { onAudio(frame) }
                    jitter = JitterBuffer(frameSamples: samples.count)
                    audioSource = header.ssrc
                }
                for frame in jitter.add(sequence: header.sequenceNumber, samples: samples) { onAudio(frame) }
            }
            if !eventsSeen {
                for digit in detector.process(samples) { onDigit?(digit) }
            }
        }
    }
}

public struct MediaEndpointError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

final class EndpointHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let endpoint: MediaEndpoint

    init(endpoint: MediaEndpoint) { self.endpoint = endpoint }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        endpoint.received(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A send that fails (an unreachable address) must not close the call's socket: the next packet may go.
    }
}

extension SessionDescription {
    /// A media endpoint's answer to `offer`: its first audio stream answered from `address:port` with the first
    /// G.711 codec the offer lists (PCMU or PCMA) and telephone-event when offered (in the offer's numbering), other
    /// streams rejected. Nil when the offer has no G.711 audio (the endpoint answers 488).
    public static func endpointAnswer(to offer: SessionDescription, address: String, port: Int, sessionID: String = "1")
        -> (answer: SessionDescription, codec: G711, payloadType: UInt8, eventPayloadType: UInt8?, remote: (address: String, port: Int))?
    {
        guard let index = offer.media.firstIndex(where: { $0.type == "audio" && $0.port != 0 }),
            let remote = offer.destination(ofMedia: index)
        else { return nil }
        let offered = offer.media[index]
        let codecs = offered.codecs
        guard let chosen = codecs.first(where: { G711(encoding: $0.encoding) != nil && $0.clockRate == 8000 }),
            let codec = G711(encoding: chosen.encoding)
        else { return nil }
        let event = codecs.first { $0.encoding.lowercased() == "telephone-event" && $0.clockRate == 8000 }
        let family = address.contains(":") ? "IP6" : "IP4"
        var answer = SessionDescription(
            sessionLines: [("v", "0"), ("o", "- \(sessionID) 1 IN \(family) \(address)"), ("s", "-"), ("c", "IN \(family) \(address)"), ("t", "0 0")],
            media: [])
        for (position, media) in offer.media.enumerated() {
            guard position == index else {
                answer.media.append(Media(type: media.type, port: 0, portCount: nil, proto: media.proto, formats: [media.formats.first ?? "0"], lines: []))
                continue
            }
            var lines: [(type: Character, value: String)] = [("a", "rtpmap:\(chosen.payloadType) \(codec.rawValue)/8000")]
            var formats = [chosen.payloadType]
            if let event {
                formats.append(event.payloadType)
                lines += [("a", "rtpmap:\(event.payloadType) telephone-event/8000"), ("a", "fmtp:\(event.payloadType) 0-15")]
            }
            // The endpoint sends and receives: what the offer allows (a held party's sendonly gets recvonly).
            let offered = offer.direction(ofMedia: index)
            lines += [("a", "ptime:20"), ("a", direction(sends: offered.receives, receives: offered.sends))]
            answer.media.append(Media(type: "audio", port: port, portCount: nil, proto: media.proto, formats: formats, lines: lines))
        }
        return (answer, codec, UInt8(chosen.payloadType) ?? codec.payloadType, event.flatMap { UInt8($0.payloadType) }, remote)
    }
}
