/// A name-addr or addr-spec with header parameters, as in From, To, Contact, Route, Record-Route, Reply-To:
/// `"Display" <sip:user@host>;tag=abc`.
public struct SIPAddress: Hashable, Sendable, CustomStringConvertible {
    /// The display name: the content of the quoted-string (quoted-pairs resolved) or the tokens as written.
    /// Arbitrary bytes, not necessarily UTF-8.
    public var displayName: [UInt8]?
    public var uri: SIPURI
    /// Header parameters after the address (`tag`, `expires`, `q`, `lr` of name-addr params, ...).
    public var parameters: SIPParameters

    public init(displayName: String? = nil, uri: SIPURI, parameters: SIPParameters = []) {
        self.displayName = displayName.map { Array($0.utf8) }
        self.uri = uri
        self.parameters = parameters
    }

    /// Parses an address with parameters (e.g. a From value); nil when malformed.
    public init?(_ text: String) {
        guard let address = try? SIPAddress.parse(Array(text.utf8)[...], header: nil) else { return nil }
        self = address
    }

    /// The `tag` parameter (From/To).
    public var tag: String? {
        get { parameters["tag"] }
        set {
            if let newValue { parameters.set("tag", to: newValue) } else { parameters.remove("tag") }
        }
    }

    /// The display name as text (U+FFFD for bytes that are not UTF-8).
    public var displayNameString: String? { displayName?.sipString }

    /// Written as name-addr: `"display" <uri>;params` (always with angle brackets, display name always quoted).
    public var description: String { String(decoding: serialized, as: UTF8.self) }

    /// The name-addr as bytes; display names that are not UTF-8 are written unchanged.
    public var serialized: [UInt8] {
        var bytes: [UInt8] = []
        if let displayName {
            bytes += SIPQuoting.quote(bytes: displayName)
            bytes.append(UInt8(ascii: " "))
        }
        bytes += Array(("<" + uri.description + ">" + parameters.serialized).utf8)
        return bytes
    }

    /// Parses one address element (already split from a list and trimmed).
    /// - Parameter requireNameAddr: Route and Record-Route allow only the `<uri>` form.
    static func parse(
        _ bytes: ArraySlice<UInt8>, header: SIPHeaderName?, requireNameAddr: Bool = false
    ) throws(SIPParseError) -> SIPAddress {
        var scanner = SIPValueScanner(bytes, header: header)
        scanner.skipLWS()
        var displayName: [UInt8]?
        var hasAngle = false
        if scanner.peek == UInt8(ascii: "\"") {
            displayName = try scanner.scanQuotedString()
            scanner.skipLWS()
            guard scanner.peek == UInt8(ascii: "<") else { throw scanner.error("expected < after display name") }
            hasAngle = true
        } else if scanner.peek == UInt8(ascii: "<") {
            hasAngle = true
        } else {
            // display-name = *(token LWS): tokens separated by whitespace, then "<" (RFC 4475 §3.1.1.6 accepts
            // no LWS before "<").
            let start = scanner.index
            var lastTokenEnd = start
            while scanner.scanToken() != nil {
                lastTokenEnd = scanner.index
                scanner.skipLWS()
            }
            if scanner.peek == UInt8(ascii: "<"), lastTokenEnd > start {
                displayName = Array(bytes[start..<lastTokenEnd])
                hasAngle = true
            } else {
                scanner.index = start
            }
        }
        let uri: SIPURI
        if hasAngle {
            _ = scanner.consume(UInt8(ascii: "<"))
            guard let close = scanner.remaining.firstIndex(of: UInt8(ascii: ">")) else {
                throw scanner.error("missing >")
            }
            uri = try SIPURI.parse(bytes[scanner.index..<close], header: header)
            scanner.index = close + 1
        } else {
            guard !requireNameAddr else { throw scanner.error("name-addr required") }
            let start = scanner.index
            while let b = scanner.peek, b != UInt8(ascii: ";"), b != UInt8(ascii: ","), !b.isSIPLWS {
                scanner.index += 1
            }
            let uriBytes = bytes[start..<scanner.index]
            // RFC 3261 §20: a URI holding a comma, question mark or semicolon must be in angle brackets.
            guard !uriBytes.contains(UInt8(ascii: "?")) else { throw scanner.error("addr-spec with ? needs <>") }
            uri = try SIPURI.parse(uriBytes, header: header)
        }
        let parameters = try scanner.scanGenericParameters()
        try scanner.requireEnd()
        return SIPAddress(displayNameBytes: displayName, uri: uri, parameters: parameters)
    }

    private init(displayNameBytes: [UInt8]?, uri: SIPURI, parameters: SIPParameters) {
        self.displayName = displayNameBytes
        self.uri = uri
        self.parameters = parameters
    }
}
