/// One header field exactly as received: its recognised name plus the raw bytes of the whole field (name, colon,
/// value and any folded continuation lines, without the final CRLF), so an unmodified field re-serialises byte-exact.
public struct SIPHeaderField: Hashable, Sendable {
    /// The recognised name (`.other` for extension headers).
    public let name: SIPHeaderName
    /// The field's bytes as received, without the terminating CRLF. Shares storage with the parsed message.
    public let raw: ArraySlice<UInt8>
    private let nameLength: Int
    private let valueOffset: Int
    private let valueLength: Int

    /// Builds a field from lexed parts; offsets are relative to `raw.startIndex`.
    init(name: SIPHeaderName, raw: ArraySlice<UInt8>, nameLength: Int, valueOffset: Int, valueLength: Int) {
        self.name = name
        self.raw = raw
        self.nameLength = nameLength
        self.valueOffset = valueOffset
        self.valueLength = valueLength
    }

    /// A new field `Name: value` for a known header, written with its canonical (long) name. CR and LF in the
    /// value become spaces, so a value can never inject a header. `name` must not be `.other` (use
    /// `init(rawName:value:)`).
    public init(_ name: SIPHeaderName, value: String) {
        self.init(name, valueBytes: Array(value.utf8))
    }

    /// A new field from value bytes (not necessarily UTF-8); CR and LF become spaces.
    public init(_ name: SIPHeaderName, valueBytes: [UInt8]) {
        precondition(name != .other, "use init(rawName:value:) for extension headers")
        self.init(validName: name.canonicalName, name: name, value: valueBytes.map { $0 == 13 || $0 == 10 ? 32 : $0 })
    }

    /// A new field with the given name (known or extension); nil when the name is not a token or the value
    /// contains CR or LF.
    public init?(rawName: String, value: String) {
        let nameBytes = Array(rawName.utf8)[...]
        guard !nameBytes.isEmpty, nameBytes.allSatisfy(\.isSIPTokenChar),
            !value.utf8.contains(where: { $0 == 13 || $0 == 10 })
        else { return nil }
        self.init(validName: rawName, name: SIPHeaderName(bytes: nameBytes), value: Array(value.utf8))
    }

    private init(validName: String, name: SIPHeaderName, value: [UInt8]) {
        var bytes = Array(validName.utf8)
        let nameLength = bytes.count
        bytes.append(contentsOf: ": ".utf8)
        var valueOffset = bytes.count
        bytes.append(contentsOf: value)
        while valueOffset < bytes.count, bytes[valueOffset].isSIPLWS { valueOffset += 1 }
        var valueLength = bytes.count - valueOffset
        while valueLength > 0, bytes[valueOffset + valueLength - 1].isSIPLWS { valueLength -= 1 }
        self.init(
            name: name, raw: bytes[...], nameLength: nameLength, valueOffset: valueOffset, valueLength: valueLength)
    }

    /// The field name as written (`To`, `t`, `MaX-fOrWaRdS`, `X-Custom`).
    public var rawName: ArraySlice<UInt8> {
        raw[raw.startIndex..<(raw.startIndex + nameLength)]
    }

    /// The field value: after the colon and leading whitespace, up to the last non-whitespace byte. Folded
    /// continuation lines stay in place (CRLF followed by SP/HTAB counts as linear whitespace).
    public var value: ArraySlice<UInt8> {
        let start = raw.startIndex + valueOffset
        return raw[start..<(start + valueLength)]
    }

    /// The value with every fold (CRLF and following whitespace) replaced by one space.
    public var unfoldedValue: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(valueLength)
        var index = value.startIndex
        let end = value.endIndex
        while index < end {
            let b = value[index]
            if b == UInt8(ascii: "\r") || b == UInt8(ascii: "\n") {
                while index < end, value[index].isSIPLWS { index += 1 }
                out.append(UInt8(ascii: " "))
                continue
            }
            out.append(b)
            index += 1
        }
        return out
    }

    /// The unfolded value as text; bytes that are not UTF-8 become U+FFFD (use `value` for the exact bytes).
    public var valueString: String { unfoldedValue.sipString }

    /// Whether this field's name is `name`, compared case-insensitively (for extension headers).
    public func hasName(_ name: String) -> Bool {
        rawName.equalsCaseInsensitive(bytes: Array(name.utf8))
    }

    /// The list elements of a comma-separated field (Via, Contact, Route, ...): commas inside quoted strings and
    /// angle brackets do not split. Other fields yield their whole value as one element.
    public var elements: [ArraySlice<UInt8>] {
        guard name.isCommaSeparatedList else { return [value] }
        return SIPValueScanner.splitList(value)
    }
}
