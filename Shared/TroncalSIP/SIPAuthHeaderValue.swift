/// The value of WWW-Authenticate, Proxy-Authenticate, Authorization or Proxy-Authorization in its generic form
/// (RFC 3261 §25.1 challenge/credentials): a scheme and comma-separated `name=value` parameters. Unknown schemes
/// parse too, so a registrar can answer them with a challenge it understands.
public struct SIPAuthHeaderValue: Hashable, Sendable, CustomStringConvertible {
    /// The scheme as written (`Digest`, or an unknown scheme).
    public var scheme: String
    /// The auth-params; values are unquoted, `isQuoted` records the quoting.
    public var parameters: SIPParameters

    public init(scheme: String, parameters: SIPParameters) {
        self.scheme = scheme
        self.parameters = parameters
    }

    /// Whether the scheme is Digest (case-insensitive).
    public var isDigest: Bool { Array(scheme.utf8).equalsCaseInsensitive("digest") }

    /// `Scheme name=value, name="quoted"`.
    public var description: String {
        var text = scheme
        for (index, parameter) in parameters.enumerated() {
            text += index == 0 ? " " : ", "
            text += parameter.name
            if let value = parameter.value {
                text += "=" + (parameter.isQuoted ? SIPQuoting.quote(value) : value)
            }
        }
        return text
    }

    /// Parses `auth-scheme LWS auth-param *(COMMA auth-param)`, auth-param = name EQUAL (token / quoted-string).
    static func parse(_ bytes: ArraySlice<UInt8>, header: SIPHeaderName?) throws(SIPParseError) -> SIPAuthHeaderValue {
        var scanner = SIPValueScanner(bytes, header: header)
        scanner.skipLWS()
        let scheme = try scanner.requireToken("auth scheme")
        var parameters = SIPParameters()
        let beforeLWS = scanner.index
        scanner.skipLWS()
        if !scanner.isAtEnd {
            guard scanner.index > beforeLWS else { throw scanner.error("expected LWS after scheme") }
            repeat {
                let name = try scanner.requireToken("auth-param name")
                guard scanner.consumeSeparator(UInt8(ascii: "=")) else { throw scanner.error("expected =") }
                if scanner.peek == UInt8(ascii: "\"") {
                    let value = try scanner.scanQuotedString()
                    parameters.append(SIPParameter(name: name.sipString, value: value.sipString, isQuoted: true))
                } else {
                    let value = try scanner.requireToken("auth-param value")
                    parameters.append(SIPParameter(name: name.sipString, value: value.sipString))
                }
            } while scanner.consumeSeparator(UInt8(ascii: ","))
        }
        try scanner.requireEnd()
        return SIPAuthHeaderValue(scheme: scheme.sipString, parameters: parameters)
    }
}
