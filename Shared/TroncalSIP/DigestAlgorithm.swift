import Crypto

/// A digest authentication algorithm (RFC 7616 §3.2, RFC 8760): MD5, SHA-256 or SHA-512-256, each with a
/// `-sess` variant. Hashes are written as lower-case hex.
public enum DigestAlgorithm: String, Hashable, Sendable, CaseIterable {
    case md5 = "MD5"
    case md5Session = "MD5-sess"
    case sha256 = "SHA-256"
    case sha256Session = "SHA-256-sess"
    case sha512_256 = "SHA-512-256"
    case sha512_256Session = "SHA-512-256-sess"

    /// Parses the algorithm token, case-insensitively.
    public init?(token: String) {
        guard let match = Self.allCases.first(where: { $0.rawValue.lowercased() == token.lowercased() }) else {
            return nil
        }
        self = match
    }

    /// Whether HA1 is bound to nonce and cnonce (`-sess`).
    public var isSession: Bool {
        switch self {
        case .md5Session, .sha256Session, .sha512_256Session: true
        case .md5, .sha256, .sha512_256: false
        }
    }

    /// Preference when a server offers several (RFC 8760 §2.4: strongest first).
    public var strength: Int {
        switch self {
        case .md5, .md5Session: 1
        case .sha256, .sha256Session: 2
        case .sha512_256, .sha512_256Session: 3
        }
    }

    /// Length of a hex digest in characters.
    public var hexLength: Int {
        switch self {
        case .md5, .md5Session: 32
        default: 64
        }
    }

    /// H(data) as lower-case hex.
    public func hash(_ data: some Sequence<UInt8>) -> String {
        let bytes = Array(data)
        let digest: [UInt8]
        switch self {
        case .md5, .md5Session: digest = Array(Insecure.MD5.hash(data: bytes))
        case .sha256, .sha256Session: digest = Array(SHA256.hash(data: bytes))
        case .sha512_256, .sha512_256Session: digest = SHA512_256.hash(bytes)
        }
        return Self.hex(digest)
    }

    /// H of `parts` joined with ":".
    public func hash(_ parts: String...) -> String {
        hash(Array(parts.joined(separator: ":").utf8))
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
