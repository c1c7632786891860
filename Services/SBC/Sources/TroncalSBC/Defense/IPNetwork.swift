import Foundation

/// An IPv4 or IPv6 network in CIDR form (`198.51.100.0/24`, `2001:db8::/32`, or one address), for allow
/// and deny lists and customer trunk addresses.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    /// Network address bytes (4 or 16), masked to the prefix.
    public let bytes: [UInt8]
    public let prefixLength: Int

    /// Parses `address` or `address/prefix`; nil when it is not an IP network.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPNetwork.parseAddress(String(parts[0])) else { return nil }
        let maxLength = address.count * 8
        var length = maxLength
        if parts.count == 2 {
            guard let given = Int(parts[1]), (0...maxLength).contains(given) else { return nil }
            length = given
        }
        bytes = IPNetwork.mask(address, to: length)
        prefixLength = length
    }

    /// Whether `address` (textual) is inside this network. IPv4-mapped IPv6 addresses match IPv4 networks.
    public func contains(_ address: String) -> Bool {
        guard var parsed = IPNetwork.parseAddress(address) else { return false }
        if parsed.count == 16, bytes.count == 4, parsed[0..<10].allSatisfy({ $0 == 0 }), parsed[10] == 0xff, parsed[11] == 0xff {
            parsed = Array(parsed[12...])
        }
        guard parsed.count == bytes.count else { return false }
        return IPNetwork.mask(parsed, to: prefixLength) == bytes
    }

    public var description: String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") + "/\(prefixLength)" }
        var groups: [String] = []
        for index in stride(from: 0, to: 16, by: 2) { groups.append(String(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]), radix: 16)) }
        return groups.joined(separator: ":") + "/\(prefixLength)"
    }

    static func mask(_ address: [UInt8], to length: Int) -> [UInt8] {
        address.enumerated().map { index, byte in
            let bits = max(0, min(8, length - index * 8))
            return bits == 8 ? byte : byte & ~(0xff >> bits)
        }
    }

    /// Parses dotted IPv4 or RFC 4291 IPv6 text (with `::` and an optional embedded IPv4 tail); no zones.
    static func parseAddress(_ text: String) -> [UInt8]? {
        if !text.contains(":") {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var out: [UInt8] = []
            for part in parts {
                guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), let value = UInt8(part) else { return nil }
                out.append(value)
            }
            return out
        }
        var text = Substring(text)
        if text.hasPrefix("[") && text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt8]? {
            if part.isEmpty { return [] }
            var out: [UInt8] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, field) in fields.enumerated() {
                if index == fields.count - 1, field.contains(".") {
                    guard let v4 = parseAddress(String(field)) else { return nil }
                    out += v4
                    continue
                }
                guard (1...4).contains(field.count), let value = UInt16(field, radix: 16) else { return nil }
                out += [UInt8(value >> 8), UInt8(value & 0xff)]
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 16 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count <= 14 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }
}
