/// A dialled string taken apart before numbering rules apply: its digits, whether it was global (`+`), where a
/// written "(0)" stood, and the RFC 3966 phone-context of a local `tel:` number or telephone-style SIP user part.
struct DialString: Equatable {
    /// The context a local number is to be read in.
    enum PhoneContext: Equatable {
        /// A global number prefix (`;phone-context=+44`), as digits.
        case global(String)
        /// A domain name (`;phone-context=example.com`): read in the caller's own country.
        case domain
    }

    /// Inputs longer than this are refused before any parsing.
    static let maximumInputBytes = 256
    /// More digits than this cannot be an E.164 number even behind the longest international prefix.
    static let maximumDigits = 32

    /// The digits in order, separators dropped.
    var digits: String
    /// Whether the number began with `+`.
    var isGlobal: Bool
    /// The offset in `digits` of a 0 that was written in parentheses ("+44 (0)20 …").
    var parenthesisedZeroOffset: Int?
    /// The phone-context parameter, if any.
    var phoneContext: PhoneContext?

    init(parsing input: String) throws(NumberingError) {
        let bytes = Array(input.utf8)
        guard bytes.count <= Self.maximumInputBytes else {
            throw NumberingError(.tooLong, "the input is longer than \(Self.maximumInputBytes) bytes")
        }
        var text = Self.trimmed(bytes[...])
        guard !text.isEmpty else { throw NumberingError(.empty, "the input is empty") }

        // A name-addr ("Alice" <sip:…>): the URI is between the angle brackets.
        if let open = text.firstIndex(of: UInt8(ascii: "<")) {
            guard let close = text[open...].firstIndex(of: UInt8(ascii: ">")) else {
                throw NumberingError(.invalidURI, "an opening < without a closing >")
            }
            text = Self.trimmed(text[(open + 1)..<close])
        }

        if Self.hasScheme("tel:", text) {
            try self.init(subscriber: text.dropFirst(4))
        } else if Self.hasScheme("sip:", text) {
            try self.init(subscriber: try Self.userPart(ofSIP: text.dropFirst(4)))
        } else if Self.hasScheme("sips:", text) {
            try self.init(subscriber: try Self.userPart(ofSIP: text.dropFirst(5)))
        } else {
            try self.init(number: text)
        }
    }

    /// A telephone-subscriber of RFC 3966: the number, then `;`-separated parameters.
    private init(subscriber: ArraySlice<UInt8>) throws(NumberingError) {
        let semicolon = subscriber.firstIndex(of: UInt8(ascii: ";")) ?? subscriber.endIndex
        try self.init(number: subscriber[..<semicolon])
        guard semicolon < subscriber.endIndex else { return }
        for parameter in subscriber[(semicolon + 1)...].split(separator: UInt8(ascii: ";")) {
            let equals = parameter.firstIndex(of: UInt8(ascii: "=")) ?? parameter.endIndex
            guard Self.lowercased(parameter[..<equals]) == Array("phone-context".utf8) else { continue }
            guard equals < parameter.endIndex else {
                throw NumberingError(.invalidURI, "phone-context without a value")
            }
            phoneContext = try Self.phoneContext(parameter[(equals + 1)...])
            break
        }
    }

    /// A number: an optional leading `+`, digits and visual separators.
    private init(number: ArraySlice<UInt8>) throws(NumberingError) {
        var digits: [UInt8] = []
        var parenthesisedZeroOffset: Int?
        var index = number.startIndex
        let isGlobal = index < number.endIndex && number[index] == UInt8(ascii: "+")
        if isGlobal { index += 1 }
        while index < number.endIndex {
            let byte = number[index]
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                digits.append(byte)
                index += 1
            } else if byte == UInt8(ascii: "("), !digits.isEmpty, number[index...].starts(with: "(0)".utf8) {
                parenthesisedZeroOffset = parenthesisedZeroOffset ?? digits.count
                digits.append(UInt8(ascii: "0"))
                index += 3
            } else if Self.isVisualSeparator(byte) {
                index += 1
            } else if byte == 0xC2, index + 1 < number.endIndex, number[index + 1] == 0xA0 {  // no-break space
                index += 2
            } else {
                throw NumberingError(.invalidCharacters, "only digits, a leading + and visual separators are allowed")
            }
        }
        guard !digits.isEmpty else { throw NumberingError(.empty, "the input holds no digits") }
        guard digits.count <= Self.maximumDigits else {
            throw NumberingError(.tooLong, "\(digits.count) digits is more than any dialled number has")
        }
        self.digits = String(decoding: digits, as: UTF8.self)
        self.isGlobal = isGlobal
        self.parenthesisedZeroOffset = parenthesisedZeroOffset
        self.phoneContext = nil
    }

    /// The user part of a SIP URI after its scheme, percent-decoded, without a password.
    private static func userPart(ofSIP uri: ArraySlice<UInt8>) throws(NumberingError) -> ArraySlice<UInt8> {
        guard let at = uri.firstIndex(of: UInt8(ascii: "@")) else {
            throw NumberingError(.invalidURI, "a SIP URI without a user part names no number")
        }
        var user = uri[..<at]
        if let colon = user.firstIndex(of: UInt8(ascii: ":")) { user = user[..<colon] }
        guard !user.isEmpty else { throw NumberingError(.invalidURI, "the SIP URI's user part is empty") }
        return try percentDecoded(user)[...]
    }

    private static func percentDecoded(_ bytes: ArraySlice<UInt8>) throws(NumberingError) -> [UInt8] {
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            if bytes[index] == UInt8(ascii: "%") {
                guard index + 2 < bytes.endIndex, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
                else { throw NumberingError(.invalidURI, "a % escape that is not followed by two hex digits") }
                decoded.append(high << 4 | low)
                index += 3
            } else {
                decoded.append(bytes[index])
                index += 1
            }
        }
        return decoded
    }

    private static func phoneContext(_ value: ArraySlice<UInt8>) throws(NumberingError) -> PhoneContext {
        guard value.first == UInt8(ascii: "+") else { return .domain }
        var digits: [UInt8] = []
        for byte in value.dropFirst() {
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                digits.append(byte)
            } else if !isVisualSeparator(byte) {
                throw NumberingError(.invalidURI, "a global phone-context holds only digits and visual separators")
            }
        }
        guard !digits.isEmpty, digits.count <= 15 else {
            throw NumberingError(.invalidURI, "a global phone-context needs 1 to 15 digits")
        }
        return .global(String(decoding: digits, as: UTF8.self))
    }

    private static func isVisualSeparator(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "("),
            UInt8(ascii: ")"), UInt8(ascii: "/"):
            true
        default:
            false
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func hasScheme(_ scheme: String, _ text: ArraySlice<UInt8>) -> Bool {
        let scheme = Array(scheme.utf8)
        return text.count > scheme.count && lowercased(text.prefix(scheme.count)) == scheme
    }

    private static func lowercased(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        bytes.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 + 32 : $0 }
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        let isSpace = { (byte: UInt8) in byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) })
        else { return bytes[bytes.endIndex...] }
        return bytes[first...last]
    }
}
