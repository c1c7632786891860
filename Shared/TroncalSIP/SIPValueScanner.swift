/// A cursor over the bytes of one header value (or URI) implementing the RFC 3261 lexical rules: LWS (folds
/// included), SWS-wrapped separators, tokens, quoted-strings and generic parameters.
struct SIPValueScanner {
    let bytes: ArraySlice<UInt8>
    var index: Int
    let header: SIPHeaderName?

    init(_ bytes: ArraySlice<UInt8>, header: SIPHeaderName? = nil) {
        self.bytes = bytes
        self.index = bytes.startIndex
        self.header = header
    }

    var isAtEnd: Bool { index >= bytes.endIndex }
    var peek: UInt8? { index < bytes.endIndex ? bytes[index] : nil }
    var remaining: ArraySlice<UInt8> { bytes[index...] }

    func error(_ detail: String, code: SIPParseError.Code = .invalidHeaderValue) -> SIPParseError {
        SIPParseError(code, header: header, offset: index - bytes.startIndex, detail: detail)
    }

    /// Skips SP, HTAB and folds (CR LF inside a field value only occur as folds).
    mutating func skipLWS() {
        while index < bytes.endIndex, bytes[index].isSIPLWS { index += 1 }
    }

    /// Consumes `SWS byte SWS` (RFC 3261 SEMI, COMMA, EQUAL, SLASH, COLON, ...); leaves the cursor alone if absent.
    mutating func consumeSeparator(_ byte: UInt8) -> Bool {
        let saved = index
        skipLWS()
        if peek == byte {
            index += 1
            skipLWS()
            return true
        }
        index = saved
        return false
    }

    /// Consumes one exact byte.
    mutating func consume(_ byte: UInt8) -> Bool {
        if peek == byte {
            index += 1
            return true
        }
        return false
    }

    /// Consumes the longest run of bytes in the class (possibly empty).
    mutating func scan(_ cls: SIPByteClass) -> ArraySlice<UInt8> {
        let start = index
        while index < bytes.endIndex, bytes[index].isIn(cls) { index += 1 }
        return bytes[start..<index]
    }

    /// Consumes `1*tokenchar`.
    mutating func scanToken() -> ArraySlice<UInt8>? {
        let token = scan(.token)
        return token.isEmpty ? nil : token
    }

    /// Requires `1*tokenchar`.
    mutating func requireToken(_ what: String) throws(SIPParseError) -> ArraySlice<UInt8> {
        guard let token = scanToken() else { throw error("expected \(what)") }
        return token
    }

    /// Consumes a quoted-string starting at the cursor's `"`, returning its content with quoted-pairs resolved.
    /// qdtext may hold LWS, any visible ASCII but `"` and `\`, and any byte >= 0x80 (not checked as UTF-8).
    mutating func scanQuotedString() throws(SIPParseError) -> [UInt8] {
        guard consume(UInt8(ascii: "\"")) else { throw error("expected quoted-string") }
        var content: [UInt8] = []
        while index < bytes.endIndex {
            let b = bytes[index]
            switch b {
            case UInt8(ascii: "\""):
                index += 1
                return content
            case UInt8(ascii: "\\"):
                // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
                guard index + 1 < bytes.endIndex else { throw error("dangling escape in quoted-string") }
                let escaped = bytes[index + 1]
                guard escaped <= 0x7F, escaped != 0x0A, escaped != 0x0D else {
                    throw error("invalid quoted-pair")
                }
                content.append(escaped)
                index += 2
            case 0x20, 0x09, 0x21, 0x23...0x5B, 0x5D...0x7E, 0x80...0xFF:
                content.append(b)
                index += 1
            case 0x0D, 0x0A:
                // A fold inside a quoted string is LWS.
                content.append(UInt8(ascii: " "))
                while index < bytes.endIndex, bytes[index].isSIPLWS { index += 1 }
            default:
                throw error("control character in quoted-string")
            }
        }
        throw error("unterminated quoted-string")
    }

    /// Parses `*( SEMI generic-param )` with generic-param = token [ EQUAL gen-value ] and
    /// gen-value = token / host / quoted-string. Stops before anything that is not a SEMI.
    mutating func scanGenericParameters() throws(SIPParseError) -> SIPParameters {
        var parameters = SIPParameters()
        while consumeSeparator(UInt8(ascii: ";")) {
            let name = try requireToken("parameter name")
            if consumeSeparator(UInt8(ascii: "=")) {
                if peek == UInt8(ascii: "\"") {
                    let value = try scanQuotedString()
                    parameters.append(SIPParameter(name: name.sipString, value: value.sipString, isQuoted: true))
                } else if peek == UInt8(ascii: "[") {
                    let start = index
                    guard let close = bytes[index...].firstIndex(of: UInt8(ascii: "]")) else {
                        throw error("unterminated IPv6 reference")
                    }
                    index = close + 1
                    let value = bytes[start..<index]
                    guard SIPHost.isValidIPv6Reference(value) else { throw error("invalid IPv6 reference") }
                    parameters.append(SIPParameter(name: name.sipString, value: value.sipString))
                } else {
                    let value = try requireToken("parameter value")
                    parameters.append(SIPParameter(name: name.sipString, value: value.sipString))
                }
            } else {
                parameters.append(SIPParameter(name: name.sipString))
            }
        }
        return parameters
    }

    /// Requires that only LWS is left.
    mutating func requireEnd() throws(SIPParseError) {
        skipLWS()
        guard isAtEnd else { throw error("unexpected characters") }
    }

    /// Splits a list value at commas outside quoted strings and angle brackets, trimming LWS around elements.
    /// An empty value yields no elements; empty elements between commas are kept so validation can refuse them.
    static func splitList(_ value: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var elements: [ArraySlice<UInt8>] = []
        var start = value.startIndex
        var index = value.startIndex
        var inQuotes = false
        var inAngle = false
        while index < value.endIndex {
            let b = value[index]
            if inQuotes {
                if b == UInt8(ascii: "\\") {
                    index += 1
                } else if b == UInt8(ascii: "\"") {
                    inQuotes = false
                }
            } else if inAngle {
                if b == UInt8(ascii: ">") { inAngle = false }
            } else if b == UInt8(ascii: "\"") {
                inQuotes = true
            } else if b == UInt8(ascii: "<") {
                inAngle = true
            } else if b == UInt8(ascii: ",") {
                elements.append(trimLWS(value[start..<index]))
                start = index + 1
            }
            index += 1
        }
        let last = trimLWS(value[start..<value.endIndex])
        if !(elements.isEmpty && last.isEmpty) { elements.append(last) }
        return elements
    }

    static func trimLWS(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var lower = bytes.startIndex
        var upper = bytes.endIndex
        while lower < upper, bytes[lower].isSIPLWS { lower += 1 }
        while upper > lower, bytes[upper - 1].isSIPLWS { upper -= 1 }
        return bytes[lower..<upper]
    }
}

/// The outcome of reading `1*DIGIT` into a bounded integer.
enum SIPDecimal<Value: FixedWidthInteger & UnsignedInteger> {
    case value(Value)
    case overflow
    case invalid

    init(_ bytes: some Collection<UInt8>) {
        guard !bytes.isEmpty else {
            self = .invalid
            return
        }
        var value: Value = 0
        var overflowed = false
        for b in bytes {
            guard b.isSIPDigit else {
                self = .invalid
                return
            }
            if overflowed { continue }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(Value(b &- UInt8(ascii: "0")))
            if o1 || o2 { overflowed = true } else { value = sum }
        }
        self = overflowed ? .overflow : .value(value)
    }

    /// The value, or the matching error (`valueOutOfRange` on overflow, `invalidHeaderValue` otherwise).
    func get(header: SIPHeaderName?, detail: String) throws(SIPParseError) -> Value {
        switch self {
        case .value(let value): return value
        case .overflow: throw SIPParseError(.valueOutOfRange, header: header, detail: detail)
        case .invalid: throw SIPParseError(.invalidHeaderValue, header: header, detail: detail)
        }
    }
}
