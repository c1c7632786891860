/// Character classes of the RFC 3261 grammar, looked up in one 256-entry table.
struct SIPByteClass: OptionSet, Sendable {
    let rawValue: UInt32
    init(rawValue: UInt32) { self.rawValue = rawValue }

    static let alphanum = SIPByteClass(rawValue: 1 << 0)
    static let token = SIPByteClass(rawValue: 1 << 1)
    static let unreserved = SIPByteClass(rawValue: 1 << 2)
    static let userUnreserved = SIPByteClass(rawValue: 1 << 3)
    static let passwordExtra = SIPByteClass(rawValue: 1 << 4)
    static let paramUnreserved = SIPByteClass(rawValue: 1 << 5)
    static let hnvUnreserved = SIPByteClass(rawValue: 1 << 6)
    static let word = SIPByteClass(rawValue: 1 << 7)
    static let reserved = SIPByteClass(rawValue: 1 << 8)
    static let scheme = SIPByteClass(rawValue: 1 << 9)
    static let host = SIPByteClass(rawValue: 1 << 10)
    static let digit = SIPByteClass(rawValue: 1 << 11)
    static let hex = SIPByteClass(rawValue: 1 << 12)
    static let alpha = SIPByteClass(rawValue: 1 << 13)
    static let lws = SIPByteClass(rawValue: 1 << 14)
    /// Characters allowed in the number part of a tel URI (RFC 3966 phonedigit-hex plus visual separators).
    static let telDigit = SIPByteClass(rawValue: 1 << 15)

    /// The class bits of each byte value. Written out as a literal so the optimiser can place it in static
    /// memory (no lazy initialisation on the hot path); `SIPByteClassTests` checks it against the grammar.
    static let bits: [UInt32] = [
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x0000, 0x4000, 0x4000, 0x0000, 0x0000, 0x4000, 0x0000, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x4000, 0x0086, 0x0080, 0x8000, 0x0178, 0x0082, 0x0138, 0x0086,
        0x8084, 0x8084, 0x8086, 0x03fa, 0x0118, 0x8686, 0x8686, 0x01e8,
        0x9e87, 0x9e87, 0x9e87, 0x9e87, 0x9e87, 0x9e87, 0x9e87, 0x9e87,
        0x9e87, 0x9e87, 0x01e0, 0x0108, 0x0080, 0x0118, 0x0080, 0x01c8,
        0x0100, 0xb687, 0xb687, 0xb687, 0xb687, 0xb687, 0xb687, 0x2687,
        0x2687, 0x2687, 0x2687, 0x2687, 0x2687, 0x2687, 0x2687, 0x2687,
        0x2687, 0x2687, 0x2687, 0x2687, 0x2687, 0x2687, 0x2687, 0x2687,
        0x2687, 0x2687, 0x2687, 0x00e0, 0x0080, 0x00e0, 0x0000, 0x0086,
        0x0082, 0xb687, 0xb687, 0xb687, 0xb687, 0xb687, 0xb687, 0x2687,
        0x2687, 0x2687, 0x2687, 0x2687, 0x2687, 0x2687, 0x2687, 0x2687,
        0x2687, 0x2687, 0x2687, 0x2687, 0x2687, 0x2687, 0x2687, 0x2687,
        0x2687, 0x2687, 0x2687, 0x0080, 0x0000, 0x0080, 0x0086, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
        0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    ]
}

extension UInt8 {
    func isIn(_ cls: SIPByteClass) -> Bool {
        SIPByteClass.bits[Int(self)] & cls.rawValue != 0
    }

    var isSIPTokenChar: Bool { isIn(.token) }
    var isSIPDigit: Bool { self &- UInt8(ascii: "0") < 10 }
    var isSIPWhitespace: Bool { self == UInt8(ascii: " ") || self == UInt8(ascii: "\t") }
    var isSIPLWS: Bool { isIn(.lws) }

    /// The value of a hexadecimal digit, or nil.
    var hexValue: UInt8? {
        switch self {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): self - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): self - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): self - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    var asciiLowercased: UInt8 {
        self &- UInt8(ascii: "A") < 26 ? self | 0x20 : self
    }
}

extension Collection<UInt8> {
    /// ASCII case-insensitive comparison with a lower-case ASCII string.
    func equalsCaseInsensitive(_ lowercased: StaticString) -> Bool {
        guard count == lowercased.utf8CodeUnitCount else { return false }
        return lowercased.withUTF8Buffer { other in
            var i = other.startIndex
            for b in self {
                if b.asciiLowercased != other[i] { return false }
                i += 1
            }
            return true
        }
    }

    func equalsCaseInsensitive<Other: Collection<UInt8>>(bytes other: Other) -> Bool {
        guard count == other.count else { return false }
        return zip(self, other).allSatisfy { $0.asciiLowercased == $1.asciiLowercased }
    }

    /// The bytes as a String; invalid UTF-8 is repaired with U+FFFD (only for values the grammar keeps ASCII).
    var sipString: String { String(decoding: self, as: UTF8.self) }
}
