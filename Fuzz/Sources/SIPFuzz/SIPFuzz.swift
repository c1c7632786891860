import Foundation
import NIOCore
import SIPCore

/// One input, its first byte choosing the path: even → as a UDP datagram through the validator (and
/// serialise → reparse what it accepts, which must be accepted again); odd → as a TCP byte stream split at
/// three input-derived points through the stream framer, every framed message validated.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 1 else { return 0 }
    let selector = data[0]
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let validator = SIPValidator()
    if selector & 1 == 0 {
        if case .accept(let message) = validator.disposition(forDatagram: bytes) {
            guard case .accept = validator.disposition(forDatagram: message.serialized()) else {
                fatalError("an accepted message no longer parses after serialisation")
            }
        }
        return 0
    }
    var framer = SIPStreamFramer()
    let count = bytes.count
    let cuts = [0, count / 3, (count * 2) / 3, count]
    do {
        for index in 0..<(cuts.count - 1) {
            framer.append(bytes[cuts[index]..<cuts[index + 1]])
            while let frame = try framer.next() {
                if case .message(let message) = frame { _ = validator.disposition(forStreamMessage: message) }
            }
        }
    } catch {
        // An unrecoverable stream: the transport closes the connection.
    }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@main
enum SIPFuzzMain {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput))
    }
}
