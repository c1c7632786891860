/// The protocol version of a start line (`SIP/2.0`); other versions parse so that a UAS can answer 505.
public struct SIPVersion: Hashable, Sendable, CustomStringConvertible {
    public var major: UInt16
    public var minor: UInt16

    public init(major: UInt16, minor: UInt16) {
        self.major = major
        self.minor = minor
    }

    /// SIP/2.0, the only version this stack speaks.
    public static let sip20 = SIPVersion(major: 2, minor: 0)

    /// Parses `"SIP" "/" 1*DIGIT "." 1*DIGIT` ("SIP" is case-insensitive per RFC 3261's ABNF).
    init?(bytes: ArraySlice<UInt8>) {
        guard bytes.count >= 7, bytes.prefix(4).equalsCaseInsensitive("sip/") else { return nil }
        let rest = bytes.dropFirst(4)
        guard let dot = rest.firstIndex(of: UInt8(ascii: ".")),
            case .value(let major) = SIPDecimal<UInt16>(rest[..<dot]),
            case .value(let minor) = SIPDecimal<UInt16>(rest[(dot + 1)...])
        else { return nil }
        self.init(major: major, minor: minor)
    }

    public var description: String { "SIP/\(major).\(minor)" }
}
