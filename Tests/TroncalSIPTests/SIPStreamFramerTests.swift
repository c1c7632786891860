import Testing
import TroncalSIP

/// What a TCP connection carrying one torture file (or two, pipelined) yields.
struct StreamResult: Hashable, CustomStringConvertible {
    var outcomes: [Outcome] = []
    var pings = 0
    /// The framer gave up: the transport closes the connection.
    var error: SIPParseError.Code?
    /// Bytes of an unfinished message remain: the transport's stall timeout will close the connection.
    var partialPending = false

    var description: String {
        "\(outcomes) pings:\(pings) error:\(error?.rawValue ?? "-") partial:\(partialPending)"
    }

    /// Feeds `bytes` in chunks of `chunk` bytes (1 = byte at a time), polling after each chunk.
    static func run(_ bytes: [UInt8], chunk: Int, validator: SIPValidator = SIPValidator()) -> StreamResult {
        var framer = SIPStreamFramer()
        var result = StreamResult()
        var offset = 0
        feeding: while offset < bytes.count {
            framer.append(bytes[offset..<min(bytes.count, offset + chunk)])
            offset += chunk
            do {
                while let frame = try framer.next() {
                    switch frame {
                    case .message(let message):
                        result.outcomes.append(validator.disposition(forStreamMessage: message).outcome)
                    case .keepAlivePing:
                        result.pings += 1
                    }
                }
            } catch {
                result.error = error.code
                break feeding
            }
        }
        result.partialPending = framer.hasPartialMessage
        return result
    }
}

@Suite struct SIPStreamFramerTests {
    /// Over TCP, the torture messages are handled as over UDP except where framing differs: a Content-Length larger
    /// than what was sent waits (then times out), a negative or conflicting one closes the connection, a message
    /// with no final empty line waits, and an RFC 2543 INVITE without Content-Length frames with an empty body
    /// (its SDP then waits as an unfinished message).
    static func expectedOverStream(_ torture: TortureCase) -> StreamResult {
        switch torture.name {
        case "clerr", "baddn": StreamResult(partialPending: true)
        case "ncl": StreamResult(error: .invalidContentLength)
        case "mcl01": StreamResult(error: .conflictingContentLength)
        // REGISTER, then the INVITE as a message of its own, then the 2 octets its Content-Length leaves ("C"
        // and a blank line): not SIP, dropped.
        case "dblreq": StreamResult(outcomes: [.accept, .accept, .drop])
        case "inv2543": StreamResult(outcomes: [.accept], partialPending: true)
        default: StreamResult(outcomes: [torture.outcome])
        }
    }

    @Test(arguments: TortureCase.all)
    func tortureMessageOverTCPInOneChunk(_ torture: TortureCase) throws {
        let bytes = try TestData.tortureMessage(torture.name)
        #expect(StreamResult.run(bytes, chunk: bytes.count) == Self.expectedOverStream(torture), "\(torture.name)")
    }

    @Test(arguments: TortureCase.all)
    func tortureMessageOverTCPOneByteAtATime(_ torture: TortureCase) throws {
        let bytes = try TestData.tortureMessage(torture.name)
        #expect(StreamResult.run(bytes, chunk: 1) == Self.expectedOverStream(torture), "\(torture.name)")
    }

    @Test(
        arguments: TortureCase.all.filter {
            expectedOverStream($0).error == nil && !expectedOverStream($0).partialPending
        })
    func twoPipelinedTortureMessagesOverTCP(_ torture: TortureCase) throws {
        let bytes = try TestData.tortureMessage(torture.name)
        let single = Self.expectedOverStream(torture)
        let doubled = StreamResult(outcomes: single.outcomes + single.outcomes)
        #expect(StreamResult.run(bytes + bytes, chunk: bytes.count * 2) == doubled, "\(torture.name)")
        #expect(StreamResult.run(bytes + bytes, chunk: 1) == doubled, "\(torture.name) byte at a time")
        #expect(StreamResult.run(bytes + bytes, chunk: 7) == doubled, "\(torture.name) in 7-byte chunks")
    }

    @Test func framedMessagesAreExactlyTheSentBytes() throws {
        let register = Array("REGISTER sip:example.com SIP/2.0\r\nContent-Length: 5\r\n\r\nhello".utf8)
        let options = Array("OPTIONS sip:example.com SIP/2.0\r\nl:0\r\n\r\n".utf8)
        var framer = SIPStreamFramer()
        framer.append(register + options)
        #expect(try framer.next() == .message(register))
        #expect(try framer.next() == .message(options))
        #expect(try framer.next() == nil)
        #expect(!framer.hasPartialMessage)
    }

    @Test func keepAlivePingsAndPongsBetweenMessagesAreRecognised() throws {
        let options = Array("OPTIONS sip:example.com SIP/2.0\r\nContent-Length: 0\r\n\r\n".utf8)
        let stream = Array("\r\n\r\n".utf8) + options + Array("\r\n".utf8) + options + Array("\r\n\r\n".utf8)
        for chunk in [1, 3, stream.count] {
            let result = StreamResult.run(stream, chunk: chunk)
            #expect(result.pings == 2, "chunk \(chunk)")
            #expect(result.outcomes.count == 2, "chunk \(chunk)")
            #expect(!result.partialPending)
        }
    }

    @Test func partialMessageIsReportedForTheStallTimer() throws {
        var framer = SIPStreamFramer()
        framer.append(Array("INVITE sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\n12345".utf8))
        #expect(try framer.next() == nil)
        #expect(framer.hasPartialMessage)
        framer.append(Array("67890".utf8))
        guard case .message(let message) = try framer.next() else {
            Issue.record("expected a message")
            return
        }
        #expect(message.suffix(10) == Array("1234567890".utf8)[...])
        #expect(!framer.hasPartialMessage)
    }

    @Test(arguments: [
        ("Content-Length: -1", SIPParseError.Code.invalidContentLength),
        ("Content-Length: abc", .invalidContentLength),
        ("Content-Length: 99999999999999999999", .invalidContentLength),
        ("Content-Length: 3\r\nl: 4", .conflictingContentLength),
        ("Content-Length: 100000", .messageTooLarge),
    ])
    func unrecoverableFramingClosesTheStream(header: String, code: SIPParseError.Code) throws {
        var framer = SIPStreamFramer()
        framer.append(Array("MESSAGE sip:a@b SIP/2.0\r\n\(header)\r\n\r\nabc".utf8))
        #expect(throws: SIPParseError(code, header: .contentLength)) { try framer.next() }
        // The framer stays failed: the connection must be closed.
        framer.append(Array("OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n".utf8))
        #expect(throws: SIPParseError.self) { try framer.next() }
        #expect(!framer.hasPartialMessage)
    }

    @Test func repeatedIdenticalContentLengthFramesButIsRejected() throws {
        let bytes = Array(
            ("OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\n"
                + "To: <sip:a@b>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                + "Content-Length: 3\r\nl: 3\r\n\r\nabc").utf8)
        var framer = SIPStreamFramer()
        framer.append(bytes)
        #expect(try framer.next() == .message(bytes))
        guard case .reject(let rejection) = SIPValidator().disposition(forStreamMessage: bytes) else {
            Issue.record("expected a rejection")
            return
        }
        #expect(rejection.error.code == .duplicateHeader)
    }

    @Test func headerSectionOverTheLimitClosesTheStream() {
        var framer = SIPStreamFramer(limits: SIPParserLimits(maxMessageSize: 1024))
        framer.append(Array("INVITE sip:a@b SIP/2.0\r\n".utf8))
        framer.append([UInt8](repeating: UInt8(ascii: "X"), count: 1100))
        #expect(throws: SIPParseError.self) { try framer.next() }
    }

    @Test func foldedContentLengthIsRead() throws {
        let bytes = Array("OPTIONS sip:a@b SIP/2.0\r\nContent-Length:\r\n  2\r\n\r\nok".utf8)
        var framer = SIPStreamFramer()
        framer.append(bytes)
        #expect(try framer.next() == .message(bytes))
    }

    @Test func longStreamByteAtATimeStaysLinear() throws {
        // 2,000 pipelined messages fed one byte at a time: the header search never rescans old bytes.
        let message = Array(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 2\r\n\r\nok".utf8)
        var framer = SIPStreamFramer()
        var count = 0
        for _ in 0..<2_000 {
            for byte in message {
                framer.append(CollectionOfOne(byte))
                while let frame = try framer.next() {
                    if case .message = frame { count += 1 }
                }
            }
        }
        #expect(count == 2_000)
        #expect(framer.bufferedByteCount == 0)
    }

    @Test func datagramFramerTrimsTrailingOctetsAndRecognisesKeepAlives() throws {
        let dblreq = try TestData.tortureMessage("dblreq")
        guard case .message(let message) = try SIPDatagramFramer.frame(dblreq) else {
            Issue.record("expected a message")
            return
        }
        #expect(message.count == 300)
        #expect(try SIPDatagramFramer.frame(Array("\r\n\r\n".utf8)) == .keepAlive)
        #expect(throws: SIPParseError(.contentLengthExceedsDatagram, header: .contentLength)) {
            try SIPDatagramFramer.frame(try TestData.tortureMessage("clerr"))
        }
    }
}
