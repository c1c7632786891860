/// The client side of digest authentication, for trunks that register or call through a carrier: keeps the
/// chosen challenge and the nonce count, and computes credentials for each request.
public struct DigestClient: Sendable {
    public var username: String
    public var password: String
    /// The challenge being answered.
    public private(set) var challenge: DigestChallenge?
    /// The last nc sent with the current nonce.
    public private(set) var nonceCount: UInt32 = 0

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// The challenge to answer among those offered: supported qop (auth, auth-int or none), strongest algorithm
    /// first (RFC 8760 §2.4), then the server's order.
    public static func preferredChallenge(_ challenges: [DigestChallenge]) -> DigestChallenge? {
        let usable = challenges.filter {
            $0.qopOptions.isEmpty || $0.qopOptions.contains("auth") || $0.qopOptions.contains("auth-int")
        }
        return usable.enumerated().max { lhs, rhs in
            lhs.element.algorithm.strength != rhs.element.algorithm.strength
                ? lhs.element.algorithm.strength < rhs.element.algorithm.strength : lhs.offset > rhs.offset
        }?.element
    }

    /// Takes the challenges of a 401/407; nc restarts when the nonce changes. Throws when none is usable.
    public mutating func receive(_ challenges: [DigestChallenge]) throws(SIPParseError) {
        guard let chosen = Self.preferredChallenge(challenges) else {
            throw SIPParseError(.unsupportedDigestAlgorithm, detail: "no usable challenge")
        }
        if chosen.nonce != challenge?.nonce { nonceCount = 0 }
        challenge = chosen
    }

    /// Credentials for the next request under the current challenge.
    /// - Parameters:
    ///   - uri: the Request-URI as it will be sent.
    ///   - cnonce: a fresh client nonce (random, at least 64 bits), passed in to keep this pure.
    public mutating func credentials(method: String, uri: String, cnonce: String, body: [UInt8]? = nil)
        throws(SIPParseError) -> DigestCredentials
    {
        guard let challenge else { throw SIPParseError(.invalidDigestParameter, detail: "no challenge received") }
        nonceCount &+= 1
        let qop: String? =
            challenge.qopOptions.contains("auth")
            ? "auth" : challenge.qopOptions.contains("auth-int") ? "auth-int" : nil
        let nc = qop == nil ? nil : Self.formatNonceCount(nonceCount)
        let response = DigestCalculator.response(
            algorithm: challenge.algorithm, username: username, realm: challenge.realm, password: password,
            method: method, uri: uri, nonce: challenge.nonce, nonceCount: nc, cnonce: qop == nil ? nil : cnonce,
            qop: qop, body: body)
        let sentUsername =
            challenge.userhash
            ? DigestCalculator.userhash(algorithm: challenge.algorithm, username: username, realm: challenge.realm)
            : username
        return DigestCredentials(
            username: sentUsername, realm: challenge.realm, nonce: challenge.nonce, uri: uri, response: response,
            algorithm: challenge.algorithm, cnonce: qop == nil ? nil : cnonce, opaque: challenge.opaque, qop: qop,
            nonceCount: nc, userhash: challenge.userhash)
    }

    /// nc as 8 lower-case hex digits.
    static func formatNonceCount(_ value: UInt32) -> String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 8 - hex.count)) + hex
    }
}
