/// A URI as used in SIP: `sip:`/`sips:` (RFC 3261 §19.1), `tel:` (RFC 3966), or any other absoluteURI kept opaque.
/// Components keep their %-escapes exactly as received; the `unescaped…` accessors decode them once, never
/// recursively (`value%2541` decodes to `value%41`, not `valueA`).
public struct SIPURI: Hashable, Sendable, CustomStringConvertible {
    /// The URI scheme; other schemes keep the spelling received (compare them case-insensitively).
    public enum Scheme: Hashable, Sendable, CustomStringConvertible {
        case sip, sips, tel
        case other(String)

        public var description: String {
            switch self {
            case .sip: "sip"
            case .sips: "sips"
            case .tel: "tel"
            case .other(let name): name
            }
        }
    }

    /// One `?name=value` URI header (escapes kept).
    public struct Header: Hashable, Sendable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public var scheme: Scheme
    /// SIP: the user part (escaped). tel: the telephone number (global `+…` or local digits).
    public var user: String?
    /// SIP: the password of the userinfo (escaped), rarely used and never to be trusted.
    public var password: String?
    /// SIP: hostname, IPv4 address or bracketed IPv6 reference. Empty for tel and other schemes.
    public var host: String
    public var port: UInt16?
    /// URI parameters (`;lr`, `;transport=tcp`, `;phone-context=…`), names and values escaped as received.
    public var parameters: SIPParameters
    /// SIP: the `?name=value&…` headers component.
    public var headers: [Header]
    /// Other schemes: everything after `scheme:`, uninterpreted.
    public var opaque: String?

    /// A SIP or SIPS URI.
    public init(
        scheme: Scheme = .sip, user: String? = nil, password: String? = nil, host: String, port: UInt16? = nil,
        parameters: SIPParameters = [], headers: [Header] = []
    ) {
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.parameters = parameters
        self.headers = headers
        self.opaque = nil
    }

    /// A tel URI (`tel:+1-201-555-0123;ext=1`).
    public init(telephoneNumber: String, parameters: SIPParameters = []) {
        self.init(scheme: .tel, user: telephoneNumber, host: "", parameters: parameters)
    }

    /// Parses a URI from text; nil when it does not follow its scheme's grammar.
    public init?(_ text: String) {
        guard let uri = try? SIPURI.parse(Array(text.utf8)[...]) else { return nil }
        self = uri
    }

    /// The user part with escapes decoded once (bytes; display only, never re-parse).
    public var unescapedUser: [UInt8]? { user.map { SIPURI.percentDecoded($0) } }

    /// The first parameter whose name, after decoding escapes, equals `name` (case-insensitive).
    public func parameter(_ name: String) -> SIPParameter? {
        let wanted = Array(name.utf8)
        return parameters.first { SIPURI.percentDecoded($0.name).equalsCaseInsensitive(bytes: wanted) }
    }

    /// The decoded value of the first parameter named `name` (see `parameter(_:)`).
    public func parameterValue(_ name: String) -> String? {
        parameter(name)?.value.map { SIPURI.percentDecoded($0).sipString }
    }

    /// The URI as text: components are written back as stored, so an unmodified parsed URI renders as received
    /// (except that `sip`, `sips` and `tel` are written in lower case).
    public var description: String {
        switch scheme {
        case .sip, .sips:
            var text = scheme.description + ":"
            if let user {
                text += user
                if let password { text += ":" + password }
                text += "@"
            }
            text += host
            if let port { text += ":" + String(port) }
            text += parameters.serialized
            for (index, header) in headers.enumerated() {
                text += (index == 0 ? "?" : "&") + header.name + "=" + header.value
            }
            return text
        case .tel:
            return "tel:" + (user ?? "") + parameters.serialized
        case .other(let name):
            return name + ":" + (opaque ?? "")
        }
    }

    /// Decodes `%HH` escapes once; a `%` not followed by two hex digits is kept as is.
    public static func percentDecoded(_ text: String) -> [UInt8] {
        let bytes = Array(text.utf8)
        guard bytes.contains(UInt8(ascii: "%")) else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
                let high = bytes[index + 1].hexValue, let low = bytes[index + 2].hexValue
            {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return out
    }

    /// URI comparison of RFC 3261 §19.1.4 for SIP/SIPS (escapes decoded once, host and scheme case-insensitive,
    /// user/ttl/method/maddr/transport parameters must agree when either side has them, other parameters only
    /// when both have them, headers must all match); tel numbers compare without visual separators.
    public func isEquivalent(to other: SIPURI) -> Bool {
        guard scheme.description.lowercased() == other.scheme.description.lowercased() else { return false }
        func decoded(_ text: String?) -> [UInt8]? { text.map { SIPURI.percentDecoded($0) } }
        func lowerDecoded(_ text: String?) -> [UInt8]? { decoded(text).map { $0.map(\.asciiLowercased) } }
        switch scheme {
        case .other:
            return opaque == other.opaque
        case .tel:
            let separators = Set("-.()".utf8)
            let lhs = decoded(user)?.filter { !separators.contains($0) }.map(\.asciiLowercased)
            let rhs = decoded(other.user)?.filter { !separators.contains($0) }.map(\.asciiLowercased)
            guard lhs == rhs else { return false }
        case .sip, .sips:
            guard decoded(user) == decoded(other.user), decoded(password) == decoded(other.password),
                Array(host.utf8).equalsCaseInsensitive(bytes: Array(other.host.utf8)), port == other.port
            else { return false }
            guard headers.count == other.headers.count else { return false }
            for header in headers {
                guard
                    other.headers.contains(where: {
                        lowerDecoded($0.name) == lowerDecoded(header.name) && decoded($0.value) == decoded(header.value)
                    })
                else { return false }
            }
        }
        let mustMatch: Set<[UInt8]> = ["user", "ttl", "method", "maddr", "transport"].map { Array($0.utf8) }.reduce(
            into: []
        ) { $0.insert($1) }
        var names: Set<[UInt8]> = []
        for parameter in parameters { names.insert(lowerDecoded(parameter.name) ?? []) }
        for parameter in other.parameters { names.insert(lowerDecoded(parameter.name) ?? []) }
        for name in names {
            let lhs = parameters.first { lowerDecoded($0.name) == name }
            let rhs = other.parameters.first { lowerDecoded($0.name) == name }
            switch (lhs, rhs) {
            case (let l?, let r?):
                if lowerDecoded(l.value) != lowerDecoded(r.value) { return false }
            case (nil, nil):
                break
            default:
                if mustMatch.contains(name) || scheme == .tel { return false }
            }
        }
        return true
    }
}
