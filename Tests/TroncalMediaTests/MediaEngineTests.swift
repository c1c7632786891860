import Foundation
import NIOCore
import NIOPosix
import Synchronization
import TestSupport
import Testing
import TroncalMedia

/// The PBX's media engine pieces: G.711, WAV files, tones, in-band DTMF (Goertzel) and RFC 4733 events; checked
/// against the reference values of G.711 and against `sox` where a real tool can say what a file holds.
@Suite("Media engine: G.711, WAV, tones, DTMF")
struct MediaEngineTests {
    static let sox = URL(fileURLWithPath: "/usr/bin/sox")
    static var hasSox: Bool { FileManager.default.isExecutableFile(atPath: sox.path) }

    @Test func g711EncodesAndDecodesTheReferenceValues() {
        // µ-law: +0 is 0xFF, full scale 0x80 / 0x00, decoding to ±32124.
        #expect(G711.muLaw.encode(0) == 0xFF)
        #expect(G711.muLaw.encode(32767) == 0x80)
        #expect(G711.muLaw.encode(-32768) == 0x00)
        #expect(G711.muLaw.decode(0x80) == 32124 && G711.muLaw.decode(0x00) == -32124 && G711.muLaw.decode(0xFF) == 0)
        // A-law: 0 is 0xD5 (decoding to 8), full scale 0xAA / 0x2A, decoding to ±32256.
        #expect(G711.aLaw.encode(0) == 0xD5)
        #expect(G711.aLaw.decode(0xD5) == 8 && G711.aLaw.decode(0x55) == -8)
        #expect(G711.aLaw.encode(32767) == 0xAA && G711.aLaw.decode(0xAA) == 32256)
        #expect(G711.aLaw.encode(-32768) == 0x2A && G711.aLaw.decode(0x2A) == -32256)
        // Every code decodes to a value that encodes back to it (µ-law's second zero, 0x7F, aside).
        for byte in UInt8.min...UInt8.max where byte != 0x7F {
            #expect(G711.muLaw.encode(G711.muLaw.decode(byte)) == byte, "µ-law \(byte)")
            #expect(G711.aLaw.encode(G711.aLaw.decode(byte)) == byte, "A-law \(byte)")
        }
        // Companding keeps the sign and roughly the size: a sample decodes within its segment's step.
        for sample in stride(from: -32768, through: 32767, by: 97).map(Int16.init) {
            for codec in G711.allCases {
                let back = Int(codec.decode(codec.encode(sample)))
                let error = abs(back - Int(sample))
                #expect(error <= max(16, abs(Int(sample)) / 16), "\(codec) \(sample) → \(back)")
            }
        }
    }

    /// sox decodes every G.711 byte to the same sample as the tables here.
    @Test(.enabled(if: hasSox, "sox is not installed"), arguments: G711.allCases)
    func g711DecodingMatchesSox(_ codec: G711) async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-g711")
        defer { directory.remove() }
        let raw = directory.url.appendingPathComponent("all.raw")
        try Data((0...255).map(UInt8.init)).write(to: raw)
        let pcm = directory.url.appendingPathComponent("all.pcm")
        let encoding = codec == .muLaw ? "mu-law" : "a-law"
        let (status, output) = try await ChildProcess.run(
            Self.sox, ["-t", "raw", "-r", "8000", "-c", "1", "-e", encoding, "-b", "8", raw.path, "-t", "raw", "-e", "signed-integer", "-b", "16", "-L", pcm.path])
        #expect(status == 0, "\(output)")
        let bytes = Array(try Data(contentsOf: pcm))
        let soxSamples = stride(from: 0, to: bytes.count - 1, by: 2).map { Int16(bitPattern: UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8) }
        #expect(soxSamples == (0...255).map { codec.decode(UInt8($0)) })
    }

    /// The dominant frequency of samples by zero crossings (for a clean tone).
    static func frequency(of samples: [Int16], sampleRate: Double = 8000) -> Double {
        var crossings = 0
        for (a, b) in zip(samples, samples.dropFirst()) where (a < 0) != (b < 0) { crossings += 1 }
        return Double(crossings) / 2 / (Double(samples.count) / sampleRate)
    }

    @Test(.enabled(if: hasSox, "sox is not installed"), arguments: [WAVFile.Format.pcm16, .muLaw, .aLaw])
    func aWAVWrittenHereIsReadBySoxAsTheToneItHolds(_ format: WAVFile.Format) async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-wav")
        defer { directory.remove() }
        var tone = ToneGenerator(frequencies: [1000], amplitude: 12000)
        let file = directory.url.appendingPathComponent("tone.wav")
        try WAVFile(format: format, samples: tone.next(milliseconds: 1000)).write(to: file)
        let (status, output) = try await ChildProcess.run(Self.sox, [file.path, "-n", "stat"])
        #expect(status == 0, "\(output)")
        let rough = output.split(separator: "\n").first { $0.hasPrefix("Rough   frequency:") }
            .flatMap { Double($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
        #expect(rough.map { abs($0 - 1000) < 30 } == true, "sox stat: \(output)")
        #expect(output.contains("Length (seconds):      1.000000"), "\(output)")
        // And it reads back as written (G.711 through its companding).
        let back = try WAVFile(contentsOf: file)
        #expect(back.format == format && back.sampleRate == 8000 && back.samples.count == 8000)
        #expect(abs(Self.frequency(of: back.samples) - 1000) < 5)
    }

    @Test(.enabled(if: hasSox, "sox is not installed"), arguments: ["mu-law", "a-law", "signed-integer"])
    func aWAVMadeBySoxIsReadAsItsSamples(_ encoding: String) async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-wav")
        defer { directory.remove() }
        let file = directory.url.appendingPathComponent("sox.wav")
        let (status, output) = try await ChildProcess.run(
            Self.sox, ["-n", "-r", "8000", "-c", "1", "-e", encoding, "-b", encoding == "signed-integer" ? "16" : "8", file.path, "synth", "0.5", "sine", "440"])
        #expect(status == 0, "\(output)")
        let wav = try WAVFile(contentsOf: file)
        #expect(wav.samples.count == 4000 && wav.sampleRate == 8000)
        #expect(abs(Self.frequency(of: wav.samples) - 440) < 5)
    }

    @Test func aFileThatIsNotAMono8kHzWAVIsRefusedWithTheReason() throws {
        var stereo = WAVFile(samples: [1, 2, 3, 4]).bytes
        stereo[22] = 2
        #expect(throws: WAVFile.ReadError(reason: "2 channels (mono only)")) { try WAVFile(bytes: stereo) }
        #expect(throws: WAVFile.ReadError(reason: "no RIFF/WAVE header")) { try WAVFile(bytes: Array("ID3 an mp3".utf8)) }
        var float = WAVFile(samples: [1, 2]).bytes
        float[20] = 3
        #expect(throws: WAVFile.ReadError(reason: "format 3 (only 16-bit PCM, µ-law and A-law are read)")) { try WAVFile(bytes: float) }
        #expect(throws: WAVFile.ReadError(reason: "a sample rate of 16000 Hz (8000 only)")) { try WAVFile(bytes: WAVFile(sampleRate: 16000, samples: [1]).bytes) }
        let truncated = Array(WAVFile(samples: [1, 2]).bytes.prefix(30))
        #expect(throws: WAVFile.ReadError.self) { try WAVFile(bytes: truncated) }
        // Odd-sized chunks are padded: a file with an odd-length chunk before the data is read.
        var padded = Array(WAVFile(samples: [5, 6, 7]).bytes)
        let list: [UInt8] = Array("LIST".utf8) + [3, 0, 0, 0, 65, 66, 67, 0]
        padded.insert(contentsOf: list, at: 36)
        #expect(try WAVFile(bytes: padded).samples == [5, 6, 7])
    }

    /// Presses as a phone makes them: 80 ms of the pair, 60 ms of silence.
    static func keyed(_ digits: String, noise: Double = 0) -> [Int16] {
        var samples: [Int16] = []
        var random = SystemRandomNumberGenerator()
        for digit in digits {
            var generator = ToneGenerator.dtmf(digit)!
            samples += generator.next(milliseconds: 80) + [Int16](repeating: 0, count: 480)
        }
        guard noise > 0 else { return samples }
        return samples.map { Int16(clamping: Int($0) + Int(Double.random(in: -noise...noise, using: &random))) }
    }

    @Test func everyKeyOfTheKeypadIsDetectedOnceInBand() {
        var detector = DTMFDetector()
        let keys = "0123456789*#ABCD"
        #expect(String(detector.process(Self.keyed(keys))) == keys)
        // The same key twice, with the gap between: two digits.
        var again = DTMFDetector()
        #expect(String(again.process(Self.keyed("55"))) == "55")
        // With noise at about -30 dB of the tones.
        var noisy = DTMFDetector()
        #expect(String(noisy.process(Self.keyed("2104#", noise: 200))) == "2104#")
        // Fed in 20 ms frames (as RTP brings it), not one buffer.
        var framed = DTMFDetector()
        var found: [Character] = []
        let samples = Self.keyed("731")
        for start in stride(from: 0, to: samples.count, by: 160) { found += framed.process(samples[start..<min(samples.count, start + 160)]) }
        #expect(String(found) == "731")
    }

    @Test func aToneThatIsNotAKeyIsNotADigit() {
        var detector = DTMFDetector()
        // A single 1 kHz tone, a ring-back pair (440 + 480 Hz), one key's row tone alone, a too-short press (20 ms),
        // and loud wide-band noise: none is a digit.
        var single = ToneGenerator(frequencies: [1000], amplitude: 10000)
        var ringback = ToneGenerator(frequencies: [440, 480], amplitude: 8000)
        var row = ToneGenerator(frequencies: [697], amplitude: 8000)
        var short = ToneGenerator.dtmf("5")!
        var random = SystemRandomNumberGenerator()
        let noise = (0..<8000).map { _ in Int16.random(in: -12000...12000, using: &random) }
        let audio = single.next(milliseconds: 500) + ringback.next(milliseconds: 500) + row.next(milliseconds: 300)
            + [Int16](repeating: 0, count: 400) + short.next(milliseconds: 20) + [Int16](repeating: 0, count: 400) + noise
        #expect(detector.process(audio).isEmpty)
    }

    @Test(.enabled(if: hasSox, "sox is not installed"))
    func digitsSynthesisedBySoxAreDetected() async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-dtmf")
        defer { directory.remove() }
        var samples: [Int16] = []
        for digit in "21" {
            let (low, high) = DTMF.frequencies(of: digit)!
            let file = directory.url.appendingPathComponent("\(digit).wav")
            let (status, output) = try await ChildProcess.run(
                Self.sox, ["-n", "-r", "8000", "-c", "1", "-b", "16", file.path, "synth", "0.1", "sine", "\(Int(low))", "synth", "0.1", "sine", "mix", "\(Int(high))",
                           "vol", "0.4", "pad", "0", "0.1"])
            #expect(status == 0, "\(output)")
            samples += try WAVFile(contentsOf: file).samples
        }
        var detector = DTMFDetector()
        #expect(String(detector.process(samples)) == "21")
    }

    @Test func telephoneEventsGiveOneDigitPerKeyPressWhateverIsLostOrRepeated() throws {
        let press = try #require(TelephoneEvent.keyPress("7", milliseconds: 100))
        #expect(press.first?.marker == true && press.dropFirst().allSatisfy { !$0.marker })
        #expect(press.map(\.0.end) == [false, false, false, false, true, true, true])
        #expect(press.map(\.0.duration) == [160, 320, 480, 640, 800, 800, 800])
        // On the wire: event 7, E bit, volume 10, duration.
        #expect(press.last!.0.payload == [7, 0x80 | 10, 0x03, 0x20])
        #expect(TelephoneEvent(payload: [11, 0x8A, 0x03, 0x20]) == TelephoneEvent(event: 11, end: true, volume: 10, duration: 800))
        #expect(TelephoneEvent(payload: [1, 2]) == nil)

        var receiver = TelephoneEventReceiver()
        var digits: [Character] = []
        func deliver(_ packets: some Sequence<(TelephoneEvent, marker: Bool)>, timestamp: UInt32) {
            for packet in packets {
                if let digit = receiver.receive(payload: packet.0.payload, timestamp: timestamp) { digits.append(digit) }
            }
        }
        // "2" whole, "1" with its first two packets lost, "1" again (a new press: a new timestamp), then a flash (16).
        deliver(try #require(TelephoneEvent.keyPress("2")), timestamp: 1000)
        deliver(try #require(TelephoneEvent.keyPress("1")).dropFirst(2), timestamp: 5000)
        deliver(try #require(TelephoneEvent.keyPress("1")), timestamp: 9000)
        #expect(receiver.receive(payload: [16, 0x8A, 0, 160], timestamp: 12000) == nil)
        #expect(String(digits) == "211")
        #expect(DTMF.event(of: "#") == 11 && DTMF.digit(ofEvent: 15) == "D" && DTMF.event(of: "x") == nil)
    }
}

/// The RTP sender over loopback: a second of tone arrives as 50 paced packets with a continuous sequence and clock,
/// and a key press as RFC 4733 events that the receiver turns into one digit.
@Suite("Media engine: RTP sender")
struct RTPSenderTests {
    @Test func aSecondOfToneArrivesAsFiftyPacedPacketsAndAKeyPressAsOneDigit() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let receiver = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0) { channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: channel) }
        }
        let senderChannel = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let destination = try #require(receiver.channel.localAddress)
        let loop = senderChannel.eventLoop
        let sender = try await loop.submit {
            NIOLoopBound(RTPSender(channel: senderChannel, destination: destination, codec: .aLaw, ssrc: 0x1234), eventLoop: loop)
        }.get()
        let done = senderChannel.eventLoop.makePromise(of: Void.self)
        var tone = ToneGenerator(frequencies: [1000], amplitude: 10000)
        let samples = tone.next(milliseconds: 1000)
        let started = ContinuousClock.now
        try await loop.submit { sender.value.play(samples) { done.succeed(()) } }.get()

        struct Packet { var header: RTPHeader; var payload: [UInt8]; var at: ContinuousClock.Instant }
        var packets: [Packet] = []
        try await receiver.executeThenClose { inbound, _ in
            var iterator = inbound.makeAsyncIterator()
            while packets.count < 50 + 7, let envelope = try await iterator.next() {
                let bytes = Array(envelope.data.readableBytesView)
                let header = try #require(RTPHeader(bytes))
                packets.append(Packet(header: header, payload: Array(bytes[header.payloadOffset..<(header.payloadOffset + header.payloadLength)]), at: .now))
                if packets.count == 50 {
                    try await done.futureResult.get()
                    try await loop.submit { sender.value.sendDigit("5") }.get()
                }
            }
        }
        try await senderChannel.close()
        let audio = Array(packets.prefix(50))
        #expect(audio.allSatisfy { $0.header.payloadType == 8 && $0.header.ssrc == 0x1234 && $0.payload.count == 160 })
        #expect(audio.map(\.header.marker) == [true] + [Bool](repeating: false, count: 49))
        for (a, b) in zip(audio, audio.dropFirst()) {
            #expect(b.header.sequenceNumber == a.header.sequenceNumber &+ 1)
            #expect(b.header.timestamp == a.header.timestamp &+ 160)
        }
        // Paced: packet 49 cannot leave before 49 × 20 ms after the start (no upper bound: the machine may be busy).
        #expect(audio[49].at - started >= .milliseconds(975), "\(audio[49].at - started)")
        let decoded = audio.flatMap { G711.aLaw.decode($0.payload) }
        #expect(abs(MediaEngineTests.frequency(of: decoded) - 1000) < 5)
        // The key press: seven events on one timestamp, one digit.
        let events = Array(packets.dropFirst(50))
        #expect(events.allSatisfy { $0.header.payloadType == 101 } && Set(events.map(\.header.timestamp)).count == 1)
        var digits = TelephoneEventReceiver()
        #expect(events.compactMap { digits.receive(payload: $0.payload, timestamp: $0.header.timestamp) } == ["5"])
    }
}

/// A media endpoint (the PBX answering a call itself) over loopback: digits from RFC 4733 events and from in-band
/// tones, its answer to an offer, and a prompt it plays reaching the far end.
@Suite("Media engine: endpoint")
struct MediaEndpointTests {
    @Test func theAnswerTakesTheFirstG711CodecAndTelephoneEventsInTheOffersNumbering() throws {
        let offer = try SessionDescription(
            "v=0\r\no=p 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\nm=audio 40000 RTP/AVP 18 8 0 96\r\n"
                + "a=rtpmap:18 G729/8000\r\na=rtpmap:96 telephone-event/8000\r\nm=video 40002 RTP/AVP 97\r\n")
        let (answer, codec, payloadType, events, remote) = try #require(SessionDescription.endpointAnswer(to: offer, address: "192.0.2.5", port: 30000))
        #expect(codec == .aLaw && payloadType == 8 && events == 96 && remote == ("10.0.0.9", 40000))
        #expect(answer.text.contains("c=IN IP4 192.0.2.5\r\n"))
        #expect(answer.text.contains("m=audio 30000 RTP/AVP 8 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n"))
        #expect(answer.text.contains("m=video 0 RTP/AVP 97\r\n"))
        let g729 = try SessionDescription("v=0\r\no=p 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\nm=audio 40000 RTP/AVP 18\r\n")
        #expect(SessionDescription.endpointAnswer(to: g729, address: "192.0.2.5", port: 30000) == nil)
        // A held party (sendonly) gets recvonly.
        let held = try SessionDescription(offer.text.replacingOccurrences(of: "m=video", with: "a=sendonly\r\nm=video"))
        #expect(SessionDescription.endpointAnswer(to: held, address: "192.0.2.5", port: 30000)?.answer.text.contains("a=recvonly") == true)
    }

    final class Heard: Sendable {
        let digits = Mutex<[Character]>([])
        let packets = Mutex(0)
    }

    @Test func digitsArriveFromEventsOrInBandAndAPromptReachesTheFarEnd() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let loop = group.next()
        // The phone: a socket that sends (its own RTPSender) and counts what the endpoint sends it.
        let heardByPhone = Heard()
        let phone = try await DatagramBootstrap(group: loop).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(CountingHandler(heard: heardByPhone)) }
        }.bind(host: "127.0.0.1", port: 0).get()
        let phoneAddress = try #require(phone.localAddress)
        let heard = Heard()
        for mode in ["in-band", "events"] {
            let endpoint = try await MediaEndpoint.open(
                host: "127.0.0.1", ports: 42000...42999, remote: phoneAddress, codec: .muLaw, eventPayloadType: mode == "events" ? 101 : nil, on: loop
            ).map { NIOLoopBound($0, eventLoop: loop) }.get()
            let endpointAddress = try await loop.submit { try SocketAddress(ipAddress: "127.0.0.1", port: endpoint.value.port) }.get()
            heard.digits.withLock { $0 = [] }
            let sender = try await loop.submit {
                endpoint.value.onDigit = { digit in heard.digits.withLock { $0.append(digit) } }
                return NIOLoopBound(RTPSender(channel: phone, destination: endpointAddress, codec: .muLaw), eventLoop: loop)
            }.get()
            if mode == "in-band" {
                // A phone with no events: "2", "1" as tones in its audio.
                try await loop.submit { sender.value.play(MediaEngineTests.keyed("21")) }.get()
            } else {
                // Events, with in-band audio of another key at the same time: only the events count.
                try await loop.submit {
                    sender.value.play(MediaEngineTests.keyed("9"))
                    sender.value.sendDigit("2")
                }.get()
                #expect(await eventually(timeout: .seconds(10)) { heard.digits.withLock { $0 } == ["2"] })
                try await loop.submit { sender.value.sendDigit("1") }.get()
            }
            let got = await eventually(timeout: .seconds(10)) { heard.digits.withLock { $0 } == ["2", "1"] }
            #expect(got, "\(mode): \(heard.digits.withLock { $0 })")
            // The endpoint plays a prompt: the phone (where its packets came from) receives it.
            let before = heardByPhone.packets.withLock { $0 }
            var prompt = ToneGenerator(frequencies: [440])
            let samples = prompt.next(milliseconds: 200)
            try await loop.submit { endpoint.value.sender.play(samples) }.get()
            #expect(await eventually(timeout: .seconds(10)) { heardByPhone.packets.withLock { $0 } - before >= 10 })
            try await loop.submit {
                sender.value.stop()
                endpoint.value.close()
            }.get()
        }
        try await phone.close()
    }

    final class CountingHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let heard: Heard
        init(heard: Heard) { self.heard = heard }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { heard.packets.withLock { $0 += 1 } }
    }
}
