import Testing
import TroncalSIP

/// Mutated torture messages never crash the parser, the validator or the framers, and every verdict is one of the
/// three dispositions; a deterministic stand-in for the fuzz target until it exists.
@Suite struct SIPRobustnessTests {
    static let interesting: [[UInt8]] = [
        Array("\r\n".utf8), Array(";".utf8), Array(",".utf8), Array("\"".utf8), Array("<".utf8), Array(">".utf8),
        Array("%".utf8), Array("@".utf8), Array(":".utf8), Array("\\".utf8), Array(" ".utf8), Array("\r\n ".utf8),
        [0], [0xFF], Array("[".utf8), Array("]".utf8), Array("=".utf8), Array("99999999999999999999".utf8),
        Array("-1".utf8), Array("\r".utf8), Array("\n".utf8), Array("z9hG4bK".utf8),
        Array("Content-Length: 7\r\n".utf8),
    ]

    @Test(arguments: TortureCase.all.map(\.name))
    func mutatedMessagesNeverCrash(_ name: String) throws {
        let original = try TestData.tortureMessage(name)
        var generator = CountingGenerator(state: UInt64(original.count) &* 2_654_435_761)
        let validator = SIPValidator()
        let parser = SIPMessageParser()
        for _ in 0..<300 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let position = Int.random(in: 0...bytes.count, using: &generator)
                switch Int.random(in: 0..<4, using: &generator) {
                case 0 where position < bytes.count:
                    bytes[position] = UInt8.random(in: 0...255, using: &generator)
                case 1:
                    bytes.insert(contentsOf: Self.interesting.randomElement(using: &generator)!, at: position)
                case 2 where position < bytes.count:
                    bytes.removeSubrange(
                        position..<min(bytes.count, position + Int.random(in: 1...8, using: &generator)))
                default:
                    bytes = Array(bytes.prefix(position))
                }
            }
            if case .accept(let message) = validator.disposition(forDatagram: bytes) {
                // Anything accepted is re-serialisable and accepted again.
                #expect(validator.disposition(forDatagram: message.serialized()).outcome == .accept, "\(name)")
            }
            _ = try? parser.parse(bytes)
            _ = try? SIPDatagramFramer.frame(bytes)
            if let message = try? parser.parse(bytes) {
                let headers = message.headers
                _ = try? headers.via()
                _ = try? headers.contacts()
                _ = try? headers.route()
                _ = try? headers.authValues(.authorization)
            }
            var framer = SIPStreamFramer()
            framer.append(bytes)
            while let frame = try? framer.next() {
                if case .message(let message) = frame { _ = validator.disposition(forStreamMessage: message) }
            }
        }
    }
}
