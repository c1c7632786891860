/// Digest credentials (Authorization / Proxy-Authorization, RFC 7616 §3.4 with RFC 8760 algorithms), read from and
/// written to the header value.
public struct DigestCredentials: Hashable, Sendable, CustomStringConvertible {
    /// The user name, or H(username:realm) when `userhash` is true.
    public var username: String
    public var realm: String
    public var nonce: String
    /// The digest-uri: the Request-URI as the client wrote it.
    public var uri: String
    /// The response hash, lower-case hex.
    public var response: String
    public var algorithm: DigestAlgorithm
    public var cnonce: String?
    public var opaque: String?
    /// `auth` or `auth-int`; nil for RFC 2069 style credentials.
    public var qop: String?
    /// The nonce count, 8 hex digits as sent.
    public var nonceCount: String?
    public var userhash: Bool

    public init(
        username: String, realm: String, nonce: String, uri: String, response: String, algorithm: DigestAlgorithm,
        cnonce: String? = nil, opaque: String? = nil, qop: String? = nil, nonceCount: String? = nil,
        userhash: Bool = false
    ) {
        self.username = username
        self.realm = realm
        self.nonce = nonce
        self.uri = uri
        self.response = response
        self.algorithm = algorithm
        self.cnonce = cnonce
        self.opaque = opaque
        self.qop = qop
        self.nonceCount = nonceCount
        self.userhash = userhash
    }

    /// Reads Digest credentials: username, realm, nonce, uri and response are required, and with qop also
    /// cnonce and an 8-hex-digit nc; the response must be hex of the algorithm's length.
    public init(_ value: SIPAuthHeaderValue) throws(SIPParseError) {
        guard value.isDigest else { throw SIPParseError(.invalidDigestParameter, detail: "scheme is not Digest") }
        let parameters = try DigestParameters(value.parameters)
        guard let username = parameters["username"], let realm = parameters["realm"], let nonce = parameters["nonce"],
            let uri = parameters["uri"], let response = parameters["response"]
        else {
            throw SIPParseError(
                .invalidDigestParameter, detail: "username, realm, nonce, uri and response are required")
        }
        var algorithm = DigestAlgorithm.md5
        if let token = parameters["algorithm"] {
            guard let known = DigestAlgorithm(token: token) else { throw SIPParseError(.unsupportedDigestAlgorithm) }
            algorithm = known
        }
        let lowerResponse = response.lowercased()
        guard lowerResponse.utf8.count == algorithm.hexLength, lowerResponse.utf8.allSatisfy({ $0.hexValue != nil })
        else {
            throw SIPParseError(.invalidDigestParameter, detail: "response is not a digest")
        }
        let qop = parameters["qop"]?.lowercased()
        if qop != nil {
            guard let nc = parameters["nc"], nc.utf8.count == 8, nc.utf8.allSatisfy({ $0.hexValue != nil }),
                parameters["cnonce"] != nil
            else { throw SIPParseError(.invalidDigestParameter, detail: "qop needs cnonce and nc") }
        }
        self.init(
            username: username, realm: realm, nonce: nonce, uri: uri, response: lowerResponse, algorithm: algorithm,
            cnonce: parameters["cnonce"], opaque: parameters["opaque"], qop: qop, nonceCount: parameters["nc"],
            userhash: parameters["userhash"]?.lowercased() == "true")
    }

    /// Parses a header value such as `Digest username="…", realm="…", …`.
    public init(headerValue: String) throws(SIPParseError) {
        try self.init(SIPAuthHeaderValue.parse(Array(headerValue.utf8)[...], header: .authorization))
    }

    /// The nonce count as a number.
    public var nonceCountValue: UInt32? { nonceCount.flatMap { UInt32($0, radix: 16) } }

    /// The header value to send.
    public var headerValue: SIPAuthHeaderValue {
        var parameters = SIPParameters()
        parameters.append(SIPParameter(name: "username", value: username, isQuoted: true))
        parameters.append(SIPParameter(name: "realm", value: realm, isQuoted: true))
        parameters.append(SIPParameter(name: "nonce", value: nonce, isQuoted: true))
        parameters.append(SIPParameter(name: "uri", value: uri, isQuoted: true))
        parameters.append(SIPParameter(name: "response", value: response, isQuoted: true))
        parameters.append(SIPParameter(name: "algorithm", value: algorithm.rawValue))
        if let cnonce { parameters.append(SIPParameter(name: "cnonce", value: cnonce, isQuoted: true)) }
        if let opaque { parameters.append(SIPParameter(name: "opaque", value: opaque, isQuoted: true)) }
        if let qop { parameters.append(SIPParameter(name: "qop", value: qop)) }
        if let nonceCount { parameters.append(SIPParameter(name: "nc", value: nonceCount)) }
        if userhash { parameters.append(SIPParameter(name: "userhash", value: "true")) }
        return SIPAuthHeaderValue(scheme: "Digest", parameters: parameters)
    }

    public var description: String { headerValue.description }
}
