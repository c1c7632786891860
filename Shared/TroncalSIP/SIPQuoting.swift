/// Writing quoted-strings (RFC 3261 §25.1): `"`, then the content with `\` and `"` (and control characters)
/// escaped as quoted-pairs, then `"`. CR and LF cannot be quoted and become spaces.
public enum SIPQuoting {
    public static func quote(_ value: String) -> String {
        String(decoding: quote(bytes: Array(value.utf8)), as: UTF8.self)
    }

    public static func quote(bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "\"")]
        out.reserveCapacity(bytes.count + 2)
        for byte in bytes {
            switch byte {
            case 0x0D, 0x0A:
                out.append(UInt8(ascii: " "))
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x00...0x08, 0x0B...0x0C, 0x0E...0x1F, 0x7F:
                out.append(UInt8(ascii: "\\"))
                out.append(byte)
            default:
                out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
        return out
    }
}
