/// The digest formulas of RFC 7616 §3.4 (RFC 2617 §3.2.2, RFC 3261 §22.4): HA1, HA2, the response and userhash.
/// Pure functions shared by the client and the server side.
public enum DigestCalculator {
    /// HA1 = H(username:realm:password); for `-sess`, H(H(username:realm:password):nonce:cnonce).
    public static func ha1(
        algorithm: DigestAlgorithm, username: String, realm: String, password: String, nonce: String, cnonce: String?
    ) -> String {
        let base = algorithm.hash(username, realm, password)
        return sessionHA1(algorithm: algorithm, baseHA1: base, nonce: nonce, cnonce: cnonce)
    }

    /// Applies the `-sess` step to a stored H(username:realm:password).
    public static func sessionHA1(algorithm: DigestAlgorithm, baseHA1: String, nonce: String, cnonce: String?) -> String
    {
        guard algorithm.isSession else { return baseHA1 }
        return algorithm.hash(baseHA1, nonce, cnonce ?? "")
    }

    /// HA2 = H(method:uri), or H(method:uri:H(body)) for qop=auth-int.
    public static func ha2(algorithm: DigestAlgorithm, method: String, uri: String, qop: String?, body: [UInt8]?)
        -> String
    {
        if qop?.lowercased() == "auth-int" {
            return algorithm.hash(method, uri, algorithm.hash(body ?? []))
        }
        return algorithm.hash(method, uri)
    }

    /// response = H(HA1:nonce:nc:cnonce:qop:HA2), or H(HA1:nonce:HA2) without qop (RFC 2069 compatibility).
    public static func response(
        algorithm: DigestAlgorithm, ha1: String, ha2: String, nonce: String, nonceCount: String?, cnonce: String?,
        qop: String?
    ) -> String {
        if let qop {
            return algorithm.hash(ha1, nonce, nonceCount ?? "", cnonce ?? "", qop, ha2)
        }
        return algorithm.hash(ha1, nonce, ha2)
    }

    /// The whole computation from a password.
    public static func response(
        algorithm: DigestAlgorithm, username: String, realm: String, password: String, method: String, uri: String,
        nonce: String, nonceCount: String?, cnonce: String?, qop: String?, body: [UInt8]? = nil
    ) -> String {
        let ha1 = ha1(
            algorithm: algorithm, username: username, realm: realm, password: password, nonce: nonce, cnonce: cnonce)
        let ha2 = ha2(algorithm: algorithm, method: method, uri: uri, qop: qop, body: body)
        return response(
            algorithm: algorithm, ha1: ha1, ha2: ha2, nonce: nonce, nonceCount: nonceCount, cnonce: cnonce, qop: qop)
    }

    /// userhash = H(username:realm) (RFC 7616 §3.4.4).
    public static func userhash(algorithm: DigestAlgorithm, username: String, realm: String) -> String {
        algorithm.hash(username, realm)
    }

    /// Compares two byte strings in time that depends only on their lengths.
    public static func constantTimeEquals(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(lhs, rhs) { difference |= a ^ b }
        return difference == 0
    }
}
