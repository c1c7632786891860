#if canImport(Glibc)
import Glibc
#endif

/// Where the call layer's identifiers come from: Call-IDs, tags and branches. Passed in, so that the layer itself
/// stays deterministic: production code draws them at random, tests count.
public protocol IdentifierSource {
    /// `length` characters of `[a-z0-9]`.
    mutating func identifier(length: Int) -> String
}

/// Identifiers from the kernel's random source, read 256 bytes at a time (one `getentropy` per about ten Call-IDs,
/// not one system call per character). Each character carries log2(36) ≈ 5.17 bits: a 24-character Call-ID 124 bits, a
/// 16-character branch 82.
public struct RandomIdentifiers: IdentifierSource {
    private var buffer: [UInt8] = []
    private var position = 0
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)

    public init() {}

    public mutating func identifier(length: Int) -> String {
        var characters = [UInt8]()
        characters.reserveCapacity(length)
        while characters.count < length {
            let byte = nextByte()
            // 252 = 7 · 36: bytes above it would favour the first letters.
            if byte < 252 { characters.append(Self.alphabet[Int(byte % 36)]) }
        }
        return String(decoding: characters, as: UTF8.self)
    }

    private mutating func nextByte() -> UInt8 {
        if position >= buffer.count { refill() }
        defer { position += 1 }
        return buffer[position]
    }

    private mutating func refill() {
        // getentropy (getrandom underneath) returns at most 256 bytes and needs no file descriptor.
        if buffer.count != 256 { buffer = [UInt8](repeating: 0, count: 256) }
        let result = buffer.withUnsafeMutableBytes { getentropy($0.baseAddress!, $0.count) }
        if result != 0 {
            // It cannot fail on Linux once the kernel's pool is initialised; fall back to the stdlib's generator.
            var generator = SystemRandomNumberGenerator()
            for index in buffer.indices { buffer[index] = UInt8.random(in: 0...255, using: &generator) }
        }
        position = 0
    }
}

/// Identifiers that count (`a0000001`, `a0000002`…) with a prefix: deterministic, for tests.
public struct SequentialIdentifiers: IdentifierSource {
    private var next = 1
    public let prefix: String

    public init(prefix: String = "i") { self.prefix = prefix }

    public mutating func identifier(length: Int) -> String {
        let digits = String(next)
        next += 1
        let body = prefix + String(repeating: "0", count: max(0, length - prefix.count - digits.count)) + digits
        return String(body.suffix(max(length, digits.count + prefix.count)))
    }
}
