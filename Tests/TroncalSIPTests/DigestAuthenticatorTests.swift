import Foundation
import Testing
import TroncalSIP

/// A deterministic generator so nonces are reproducible in tests.
struct CountingGenerator: RandomNumberGenerator {
    var state: UInt64 = 0x1234_5678
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state
    }
}

@Suite struct DigestAuthenticatorTests {
    static let secret = [UInt8](repeating: 7, count: 32)
    static let requestURI = SIPURI("sip:carrier.example.net")!
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func makeServer(algorithms: [DigestAlgorithm] = [.sha512_256, .sha256, .md5]) throws -> DigestAuthenticator {
        let nonces = try #require(DigestNonceAuthority(secret: Self.secret, lifetime: .seconds(300)))
        return DigestAuthenticator(realm: "troncal.example.net", nonces: nonces, algorithms: algorithms)
    }

    /// A client answering the server's challenges: the usual REGISTER exchange.
    func answer(
        _ server: DigestAuthenticator, password: String = "s3cret", now: Date = t0, requests: Int = 1,
        userhash: Bool = false
    ) throws -> (DigestClient, [DigestCredentials]) {
        var generator = CountingGenerator()
        var challenges = server.challenges(now: now, using: &generator)
        if userhash {
            challenges = challenges.map {
                var c = $0
                c.userhash = true
                return c
            }
        }
        var client = DigestClient(username: "alice", password: password)
        try client.receive(challenges)
        var credentials: [DigestCredentials] = []
        for index in 0..<requests {
            credentials.append(
                try client.credentials(method: "REGISTER", uri: "sip:carrier.example.net", cnonce: "c\(index)nonce"))
        }
        return (client, credentials)
    }

    @Test(arguments: DigestAlgorithm.allCases)
    func rightPasswordAuthenticates(algorithm: DigestAlgorithm) throws {
        let server = try makeServer(algorithms: [algorithm])
        let (_, credentials) = try answer(server)
        var counts = DigestNonceCountTracker()
        let result = server.verify(
            credentials[0], method: "REGISTER", requestURI: Self.requestURI, username: "alice",
            secret: .password("s3cret"), now: Self.t0.addingTimeInterval(10), nonceCounts: &counts)
        #expect(result == .authenticated)
    }

    @Test func clientPrefersTheStrongestOfferedAlgorithm() throws {
        let server = try makeServer(algorithms: [.md5, .sha256, .sha512_256])
        let (client, credentials) = try answer(server)
        #expect(client.challenge?.algorithm == .sha512_256)
        #expect(credentials[0].algorithm == .sha512_256)
    }

    @Test func wrongPasswordFails() throws {
        let server = try makeServer()
        let (_, credentials) = try answer(server, password: "guess")
        var counts = DigestNonceCountTracker()
        let result = server.verify(
            credentials[0], method: "REGISTER", requestURI: Self.requestURI, username: "alice",
            secret: .password("s3cret"), now: Self.t0, nonceCounts: &counts)
        #expect(result == .rejected(.wrongResponse))
        #expect(counts.count == 0, "a wrong response must not consume nonce counts")
    }

    @Test func replayedNonceCountFails() throws {
        let server = try makeServer()
        let (_, credentials) = try answer(server, requests: 2)
        var counts = DigestNonceCountTracker()
        func verify(_ c: DigestCredentials) -> DigestAuthenticator.Verification {
            server.verify(
                c, method: "REGISTER", requestURI: Self.requestURI, username: "alice", secret: .password("s3cret"),
                now: Self.t0, nonceCounts: &counts)
        }
        #expect(verify(credentials[0]) == .authenticated)
        #expect(verify(credentials[0]) == .rejected(.replayedNonceCount))
        #expect(verify(credentials[1]) == .authenticated)  // nc 2 follows nc 1
        #expect(verify(credentials[1]) == .rejected(.replayedNonceCount))
        #expect(verify(credentials[0]) == .rejected(.replayedNonceCount))  // going back is a replay too
    }

    @Test func expiredNonceWithRightResponseIsStaleAndTheRechallengeSaysSo() throws {
        let server = try makeServer()
        let (_, credentials) = try answer(server)
        var counts = DigestNonceCountTracker()
        let later = Self.t0.addingTimeInterval(301)
        let result = server.verify(
            credentials[0], method: "REGISTER", requestURI: Self.requestURI, username: "alice",
            secret: .password("s3cret"), now: later, nonceCounts: &counts)
        #expect(result == .stale)
        let rechallenge = server.challenges(now: later, stale: true)
        #expect(rechallenge.allSatisfy { $0.stale })
        #expect(rechallenge[0].headerValue.description.contains("stale=true"))
        // An expired nonce with a wrong response is simply refused.
        let (_, wrong) = try answer(server, password: "guess")
        let refused = server.verify(
            wrong[0], method: "REGISTER", requestURI: Self.requestURI, username: "alice", secret: .password("s3cret"),
            now: later, nonceCounts: &counts)
        #expect(refused == .rejected(.wrongResponse))
    }

    @Test func forgedOrForeignNoncesAreRejected() throws {
        let server = try makeServer()
        var (_, credentials) = try answer(server)
        var counts = DigestNonceCountTracker()
        var forged = credentials[0]
        var nonce = Array(forged.nonce)
        nonce[5] = nonce[5] == "0" ? "1" : "0"
        forged.nonce = String(nonce)
        #expect(
            server.verify(
                forged, method: "REGISTER", requestURI: Self.requestURI, username: "alice", secret: .password("s3cret"),
                now: Self.t0, nonceCounts: &counts) == .rejected(.invalidNonce))
        // A nonce minted for another realm does not verify here, even with matching realm text in the credentials.
        let otherNonces = try #require(DigestNonceAuthority(secret: Self.secret))
        credentials[0].nonce = otherNonces.makeNonce(realm: "other.example.net", now: Self.t0)
        #expect(
            server.verify(
                credentials[0], method: "REGISTER", requestURI: Self.requestURI, username: "alice",
                secret: .password("s3cret"), now: Self.t0, nonceCounts: &counts) == .rejected(.invalidNonce))
    }

    @Test func digestURIMustMatchTheRequestURI() throws {
        let server = try makeServer()
        let (_, credentials) = try answer(server)
        var counts = DigestNonceCountTracker()
        let result = server.verify(
            credentials[0], method: "REGISTER", requestURI: SIPURI("sip:elsewhere.example.net")!, username: "alice",
            secret: .password("s3cret"), now: Self.t0, nonceCounts: &counts)
        #expect(result == .rejected(.uriMismatch))
    }

    @Test func userhashIdentifiesTheUserWithoutSendingTheName() throws {
        let server = try makeServer(algorithms: [.sha256])
        let (_, credentials) = try answer(server, userhash: true)
        #expect(credentials[0].userhash)
        #expect(
            credentials[0].username
                == DigestCalculator.userhash(algorithm: .sha256, username: "alice", realm: "troncal.example.net"))
        var counts = DigestNonceCountTracker()
        #expect(
            server.verify(
                credentials[0], method: "REGISTER", requestURI: Self.requestURI, username: "alice",
                secret: .password("s3cret"), now: Self.t0, nonceCounts: &counts) == .authenticated)
    }

    @Test func storedHA1VerifiesSessionVariant() throws {
        let server = try makeServer(algorithms: [.sha256Session])
        let (_, credentials) = try answer(server)
        var counts = DigestNonceCountTracker()
        let stored = DigestAlgorithm.sha256.hash("alice", "troncal.example.net", "s3cret")
        #expect(
            server.verify(
                credentials[0], method: "REGISTER", requestURI: Self.requestURI, username: "alice",
                secret: .ha1(stored, .sha256), now: Self.t0, nonceCounts: &counts) == .authenticated)
    }

    @Test func credentialsWithoutQopAreRefusedUnlessAllowed() throws {
        let nonces = try #require(DigestNonceAuthority(secret: Self.secret))
        let nonce = nonces.makeNonce(realm: "r", now: Self.t0)
        var client = DigestClient(username: "alice", password: "pw")
        try client.receive([DigestChallenge(realm: "r", nonce: nonce, qopOptions: [])])
        let credentials = try client.credentials(method: "INVITE", uri: "sip:carrier.example.net", cnonce: "x")
        #expect(credentials.qop == nil && credentials.nonceCount == nil && credentials.cnonce == nil)
        var counts = DigestNonceCountTracker()
        let strict = DigestAuthenticator(realm: "r", nonces: nonces, algorithms: [.md5])
        #expect(
            strict.verify(
                credentials, method: "INVITE", requestURI: Self.requestURI, username: "alice", secret: .password("pw"),
                now: Self.t0, nonceCounts: &counts) == .rejected(.missingQop))
        let lenient = DigestAuthenticator(realm: "r", nonces: nonces, algorithms: [.md5], acceptsMissingQop: true)
        #expect(
            lenient.verify(
                credentials, method: "INVITE", requestURI: Self.requestURI, username: "alice", secret: .password("pw"),
                now: Self.t0, nonceCounts: &counts) == .authenticated)
        #expect(
            lenient.verify(
                credentials, method: "INVITE", requestURI: Self.requestURI, username: "alice", secret: .password("pw"),
                now: Self.t0, nonceCounts: &counts) == .rejected(.replayedNonceCount))
    }

    @Test func nonceCountTableIsBoundedAndForgottenNoncesAreNotReaccepted() {
        var tracker = DigestNonceCountTracker(capacity: 2)
        #expect(tracker.record(nonce: "a", nonceCount: 1, issuedAt: 10) == .fresh)
        #expect(tracker.record(nonce: "b", nonceCount: 1, issuedAt: 20) == .fresh)
        #expect(tracker.record(nonce: "c", nonceCount: 1, issuedAt: 30) == .fresh)  // evicts "a"
        #expect(tracker.count == 2)
        #expect(tracker.record(nonce: "a", nonceCount: 2, issuedAt: 10) == .forgotten)
        #expect(tracker.record(nonce: "c", nonceCount: 1, issuedAt: 30) == .replayed)
        #expect(tracker.record(nonce: "d", nonceCount: 1, issuedAt: 40) == .fresh)
    }

    @Test func shortSecretIsRefused() {
        #expect(DigestNonceAuthority(secret: [1, 2, 3]) == nil)
    }

    @Test func nonceFromTheFutureBeyondSkewIsInvalid() throws {
        let nonces = try #require(DigestNonceAuthority(secret: Self.secret, clockSkew: .seconds(30)))
        let nonce = nonces.makeNonce(realm: "r", now: Self.t0.addingTimeInterval(120))
        #expect(nonces.check(nonce, realm: "r", now: Self.t0) == .invalid)
        #expect(nonces.check(nonce, realm: "r", now: Self.t0.addingTimeInterval(100)) != .invalid)
    }

    @Test(arguments: [
        "Digest realm=\"r\"",  // no nonce
        "Basic realm=\"r\"",
        "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1",
        "Digest realm=\"r\", realm=\"s\", nonce=\"n\"",
    ])
    func malformedChallengesAreRefused(_ text: String) {
        #expect(throws: SIPParseError.self) { try DigestChallenge(headerValue: text) }
    }

    @Test(arguments: [
        // response too short for MD5
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"abc\"",
        // qop without nc/cnonce
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"6629fae49393a05397450978507c4ef1\", qop=auth",
        // nc not 8 hex digits
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"6629fae49393a05397450978507c4ef1\", qop=auth, nc=1, cnonce=\"c\"",
        // missing uri
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", response=\"6629fae49393a05397450978507c4ef1\"",
    ])
    func malformedCredentialsAreRefused(_ text: String) {
        #expect(throws: SIPParseError.self) { try DigestCredentials(headerValue: text) }
    }

    @Test func parseErrorsNeverEchoCredentials() {
        let text = "Digest username=\"topsecretuser\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"zz\""
        do {
            _ = try DigestCredentials(headerValue: text)
            Issue.record("expected an error")
        } catch {
            #expect(!error.description.contains("topsecretuser"))
        }
    }

    @Test func constantTimeComparisonComparesAllBytes() {
        #expect(DigestCalculator.constantTimeEquals(Array("abc".utf8), Array("abc".utf8)))
        #expect(!DigestCalculator.constantTimeEquals(Array("abc".utf8), Array("abd".utf8)))
        #expect(!DigestCalculator.constantTimeEquals(Array("abc".utf8), Array("ab".utf8)))
    }
}
