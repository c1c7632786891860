#if canImport(FoundationEssentials)
    public import FoundationEssentials
#else
    public import Foundation
#endif

/// The server side of SIP digest authentication (RFC 3261 §22, RFC 7616, RFC 8760): builds challenges with
/// stateless nonces and verifies credentials: realm, offered algorithm, nonce MAC and age, digest-uri, response (in
/// constant time) and nonce-count replay. A pure value; the user lookup, the clock and the nc table are passed in.
public struct DigestAuthenticator: Sendable {
    /// The secret to verify against, as stored for the user.
    public enum Secret: Hashable, Sendable {
        case password(String)
        /// H(username:realm:password) for one algorithm (the `-sess` variants use their base algorithm's value).
        case ha1(String, DigestAlgorithm)
    }

    /// The outcome of a verification.
    public enum Verification: Hashable, Sendable {
        case authenticated
        /// Right response with an expired (or forgotten) nonce: challenge again with `stale=true`.
        case stale
        case rejected(Rejection)
    }

    /// Why credentials were refused.
    public enum Rejection: Hashable, Sendable {
        case realmMismatch
        case algorithmNotOffered
        case invalidNonce
        case missingQop
        case unsupportedQop
        case uriMismatch
        case usernameMismatch
        case wrongResponse
        case replayedNonceCount
    }

    public var realm: String
    /// Algorithms offered, strongest first (RFC 8760 §2.4); one challenge each.
    public var algorithms: [DigestAlgorithm]
    public var nonces: DigestNonceAuthority
    /// Accept RFC 2069 style credentials without qop (each nonce then serves one request).
    public var acceptsMissingQop: Bool

    public init(
        realm: String, nonces: DigestNonceAuthority, algorithms: [DigestAlgorithm] = [.sha256, .md5],
        acceptsMissingQop: Bool = false
    ) {
        self.realm = realm
        self.nonces = nonces
        self.algorithms = algorithms
        self.acceptsMissingQop = acceptsMissingQop
    }

    /// One challenge per offered algorithm, sharing a fresh nonce.
    public func challenges(now: Date, stale: Bool = false, using generator: inout some RandomNumberGenerator)
        -> [DigestChallenge]
    {
        let nonce = nonces.makeNonce(realm: realm, now: now, using: &generator)
        return algorithms.map {
            DigestChallenge(realm: realm, nonce: nonce, algorithm: $0, qopOptions: ["auth"], stale: stale)
        }
    }

    /// Challenges using the system random number generator.
    public func challenges(now: Date, stale: Bool = false) -> [DigestChallenge] {
        var generator = SystemRandomNumberGenerator()
        return challenges(now: now, stale: stale, using: &generator)
    }

    /// Verifies `credentials` for a request.
    /// - Parameters:
    ///   - method: the request method (the CSeq method for ACK/CANCEL per RFC 3261 §22.4).
    ///   - requestURI: the Request-URI; the digest-uri must be equivalent to it.
    ///   - username: the user the caller looked up (by name, or by userhash with `DigestCalculator.userhash`).
    ///   - nonceCounts: the replay table, updated only when the response is right.
    public func verify(
        _ credentials: DigestCredentials, method: String, requestURI: SIPURI, username: String, secret: Secret,
        now: Date, nonceCounts: inout DigestNonceCountTracker, body: [UInt8]? = nil
    ) -> Verification {
        guard credentials.realm == realm else { return .rejected(.realmMismatch) }
        guard algorithms.contains(credentials.algorithm) else { return .rejected(.algorithmNotOffered) }
        let expectedUsername =
            credentials.userhash
            ? DigestCalculator.userhash(algorithm: credentials.algorithm, username: username, realm: realm) : username
        guard DigestCalculator.constantTimeEquals(Array(credentials.username.utf8), Array(expectedUsername.utf8)) else {
            return .rejected(.usernameMismatch)
        }
        let nonceStatus = nonces.check(credentials.nonce, realm: realm, now: now)
        let issuedAt: UInt64
        switch nonceStatus {
        case .invalid: return .rejected(.invalidNonce)
        case .valid(let at), .expired(let at): issuedAt = at
        }
        if let qop = credentials.qop {
            guard qop == "auth" || qop == "auth-int" else { return .rejected(.unsupportedQop) }
        } else if !acceptsMissingQop {
            return .rejected(.missingQop)
        }
        guard let digestURI = SIPURI(credentials.uri), digestURI.isEquivalent(to: requestURI) else {
            return .rejected(.uriMismatch)
        }
        let ha1: String
        switch secret {
        case .password(let password):
            ha1 = DigestCalculator.ha1(
                algorithm: credentials.algorithm, username: username, realm: realm, password: password,
                nonce: credentials.nonce, cnonce: credentials.cnonce)
        case .ha1(let stored, let algorithm):
            // The stored hash must come from the same hash function (MD5 serves MD5 and MD5-sess, ...).
            guard algorithm.strength == credentials.algorithm.strength else { return .rejected(.algorithmNotOffered) }
            ha1 = DigestCalculator.sessionHA1(
                algorithm: credentials.algorithm, baseHA1: stored.lowercased(), nonce: credentials.nonce,
                cnonce: credentials.cnonce)
        }
        let ha2 = DigestCalculator.ha2(
            algorithm: credentials.algorithm, method: method, uri: credentials.uri, qop: credentials.qop, body: body)
        let expected = DigestCalculator.response(
            algorithm: credentials.algorithm, ha1: ha1, ha2: ha2, nonce: credentials.nonce,
            nonceCount: credentials.nonceCount, cnonce: credentials.cnonce, qop: credentials.qop)
        guard DigestCalculator.constantTimeEquals(Array(expected.utf8), Array(credentials.response.lowercased().utf8))
        else {
            return .rejected(.wrongResponse)
        }
        if case .expired = nonceStatus { return .stale }
        // Without qop there is no nc: the nonce is good for one request (nc 1).
        let nonceCount = credentials.qop == nil ? 1 : (credentials.nonceCountValue ?? 0)
        switch nonceCounts.record(nonce: credentials.nonce, nonceCount: nonceCount, issuedAt: issuedAt) {
        case .fresh: return .authenticated
        case .replayed: return .rejected(.replayedNonceCount)
        case .forgotten: return .stale
        }
    }
}
