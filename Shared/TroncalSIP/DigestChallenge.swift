/// A Digest challenge (WWW-Authenticate / Proxy-Authenticate, RFC 7616 §3.3 with RFC 8760 algorithms).
public struct DigestChallenge: Hashable, Sendable, CustomStringConvertible {
    public var realm: String
    public var nonce: String
    public var opaque: String?
    /// MD5 when the challenge names none (RFC 2617 compatibility).
    public var algorithm: DigestAlgorithm
    /// The qop options offered (`auth`, `auth-int`); empty for an RFC 2069 style challenge.
    public var qopOptions: [String]
    /// The previous request used a nonce that expired but was otherwise right: retry without asking the user.
    public var stale: Bool
    public var domain: String?
    /// The server accepts (RFC 7616 §3.4.4) a hashed username.
    public var userhash: Bool

    public init(
        realm: String, nonce: String, algorithm: DigestAlgorithm = .md5, qopOptions: [String] = ["auth"],
        opaque: String? = nil, stale: Bool = false, domain: String? = nil, userhash: Bool = false
    ) {
        self.realm = realm
        self.nonce = nonce
        self.opaque = opaque
        self.algorithm = algorithm
        self.qopOptions = qopOptions
        self.stale = stale
        self.domain = domain
        self.userhash = userhash
    }

    /// Reads a Digest challenge; `invalidDigestParameter` when realm or nonce is missing, a parameter repeats,
    /// or the scheme is not Digest, `unsupportedDigestAlgorithm` for another algorithm.
    public init(_ value: SIPAuthHeaderValue) throws(SIPParseError) {
        guard value.isDigest else { throw SIPParseError(.invalidDigestParameter, detail: "scheme is not Digest") }
        let parameters = try DigestParameters(value.parameters)
        guard let realm = parameters["realm"], let nonce = parameters["nonce"] else {
            throw SIPParseError(.invalidDigestParameter, detail: "realm and nonce are required")
        }
        var algorithm = DigestAlgorithm.md5
        if let token = parameters["algorithm"] {
            guard let known = DigestAlgorithm(token: token) else { throw SIPParseError(.unsupportedDigestAlgorithm) }
            algorithm = known
        }
        let qop = parameters["qop"].map { list in
            list.split(separator: ",").map { $0.trimmingSpaces.lowercased() }.filter { !$0.isEmpty }
        }
        self.init(
            realm: realm, nonce: nonce, algorithm: algorithm, qopOptions: qop ?? [], opaque: parameters["opaque"],
            stale: parameters["stale"]?.lowercased() == "true", domain: parameters["domain"],
            userhash: parameters["userhash"]?.lowercased() == "true")
    }

    /// Parses a header value such as `Digest realm="…", nonce="…", qop="auth", algorithm=SHA-256`.
    public init(headerValue: String) throws(SIPParseError) {
        try self.init(SIPAuthHeaderValue.parse(Array(headerValue.utf8)[...], header: .wwwAuthenticate))
    }

    /// The header value to send.
    public var headerValue: SIPAuthHeaderValue {
        var parameters = SIPParameters()
        parameters.append(SIPParameter(name: "realm", value: realm, isQuoted: true))
        if let domain { parameters.append(SIPParameter(name: "domain", value: domain, isQuoted: true)) }
        parameters.append(SIPParameter(name: "nonce", value: nonce, isQuoted: true))
        if let opaque { parameters.append(SIPParameter(name: "opaque", value: opaque, isQuoted: true)) }
        if stale { parameters.append(SIPParameter(name: "stale", value: "true")) }
        parameters.append(SIPParameter(name: "algorithm", value: algorithm.rawValue))
        if !qopOptions.isEmpty {
            parameters.append(SIPParameter(name: "qop", value: qopOptions.joined(separator: ","), isQuoted: true))
        }
        if userhash { parameters.append(SIPParameter(name: "userhash", value: "true")) }
        return SIPAuthHeaderValue(scheme: "Digest", parameters: parameters)
    }

    public var description: String { headerValue.description }
}
