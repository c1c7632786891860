/// A Content-Type / Accept media type: `type/subtype;param=value` (RFC 3261 §20.15).
public struct SIPMediaType: Hashable, Sendable, CustomStringConvertible {
    public var type: String
    public var subtype: String
    public var parameters: SIPParameters

    public init(type: String, subtype: String, parameters: SIPParameters = []) {
        self.type = type
        self.subtype = subtype
        self.parameters = parameters
    }

    /// application/sdp.
    public static let sdp = SIPMediaType(type: "application", subtype: "sdp")

    /// Whether type and subtype match, case-insensitively, ignoring parameters.
    public func matches(_ other: SIPMediaType) -> Bool {
        type.lowercased() == other.type.lowercased() && subtype.lowercased() == other.subtype.lowercased()
    }

    public var description: String { "\(type)/\(subtype)" + parameters.serialized }

    /// Parses `m-type SLASH m-subtype *(SEMI m-parameter)`.
    static func parse(_ bytes: ArraySlice<UInt8>, header: SIPHeaderName) throws(SIPParseError) -> SIPMediaType {
        var scanner = SIPValueScanner(bytes, header: header)
        scanner.skipLWS()
        let type = try scanner.requireToken("media type")
        guard scanner.consumeSeparator(UInt8(ascii: "/")) else { throw scanner.error("expected /") }
        let subtype = try scanner.requireToken("media subtype")
        let parameters = try scanner.scanGenericParameters()
        try scanner.requireEnd()
        return SIPMediaType(type: type.sipString, subtype: subtype.sipString, parameters: parameters)
    }
}
