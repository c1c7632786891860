import Foundation
import Testing
import TroncalSIP

/// `../shared/testdata/auth/digest_vectors.json`.
struct DigestVectorFile: Decodable {
    struct Vector: Decodable, Sendable, CustomStringConvertible {
        let id: String
        let algorithm: String
        let username: String
        let realm: String
        let password: String
        let method: String
        let uri: String
        let nonce: String
        let opaque: String?
        let qop: String
        let nc: String
        let cnonce: String
        let challenge: String?
        let expected_response: String
        let userhash: Bool?
        let expected_userhash: String?
        let expected_response_fips_sha512_256: String?
        let expected_userhash_fips_sha512_256: String?
        let computed: Computed

        struct Computed: Decodable, Sendable {
            let HA1: String
            let HA2: String
            let response: String
        }

        var description: String { id }

        /// The value a conforming implementation must produce: for SHA-512-256 the FIPS SHA-512/256 one (the RFC
        /// 7616 §3.9.2 printout used truncated SHA-512; see the file's notes).
        var conformingResponse: String { expected_response_fips_sha512_256 ?? expected_response }
    }

    struct Negative: Decodable, Sendable, CustomStringConvertible {
        let change: String
        let response: String
        let must_differ_from: String
        var description: String { change }
    }

    let vectors: [Vector]
    let negative_variants_of_rfc2617: [Negative]

    static func load() throws -> DigestVectorFile {
        let url = TestData.root.appendingPathComponent("auth/digest_vectors.json")
        return try JSONDecoder().decode(DigestVectorFile.self, from: Data(contentsOf: url))
    }

    static let shared: DigestVectorFile? = try? load()
}

@Suite struct DigestVectorTests {
    static let vectors = DigestVectorFile.shared?.vectors ?? []
    static let negatives = DigestVectorFile.shared?.negative_variants_of_rfc2617 ?? []

    @Test func vectorFileLoads() throws {
        let file = try DigestVectorFile.load()
        #expect(file.vectors.count == 4)
        #expect(file.negative_variants_of_rfc2617.count == 5)
    }

    @Test(arguments: vectors)
    func responseMatchesKnownAnswer(_ vector: DigestVectorFile.Vector) throws {
        let algorithm = try #require(DigestAlgorithm(token: vector.algorithm))
        let ha1 = DigestCalculator.ha1(
            algorithm: algorithm, username: vector.username, realm: vector.realm, password: vector.password,
            nonce: vector.nonce, cnonce: vector.cnonce)
        let ha2 = DigestCalculator.ha2(
            algorithm: algorithm, method: vector.method, uri: vector.uri, qop: vector.qop, body: nil)
        #expect(ha1 == vector.computed.HA1)
        #expect(ha2 == vector.computed.HA2)
        let response = DigestCalculator.response(
            algorithm: algorithm, ha1: ha1, ha2: ha2, nonce: vector.nonce, nonceCount: vector.nc, cnonce: vector.cnonce,
            qop: vector.qop)
        #expect(response == vector.conformingResponse)
        #expect(response == vector.computed.response)
        if vector.userhash == true {
            let userhash = DigestCalculator.userhash(
                algorithm: algorithm, username: vector.username, realm: vector.realm)
            #expect(userhash == vector.expected_userhash_fips_sha512_256)
            // The RFC 7616 §3.9.2 printed values came from truncated SHA-512: ours must not reproduce them.
            #expect(userhash != vector.expected_userhash)
            #expect(response != vector.expected_response)
        }
    }

    /// The client, answering the vector's own challenge text, produces the same credentials.
    @Test(arguments: vectors.filter { $0.challenge != nil })
    func clientAnsweringTheChallengeProducesTheKnownResponse(_ vector: DigestVectorFile.Vector) throws {
        let text = try #require(vector.challenge)
        let value = String(text.dropFirst("WWW-Authenticate: ".count))
        let challenge = try DigestChallenge(headerValue: value)
        #expect(challenge.realm == vector.realm)
        #expect(challenge.nonce == vector.nonce)
        #expect(challenge.opaque == vector.opaque)
        #expect(challenge.qopOptions == ["auth", "auth-int"])
        var client = DigestClient(username: vector.username, password: vector.password)
        try client.receive([challenge])
        let credentials = try client.credentials(method: vector.method, uri: vector.uri, cnonce: vector.cnonce)
        #expect(credentials.response == vector.conformingResponse)
        #expect(credentials.nonceCount == vector.nc)
        #expect(credentials.qop == "auth")
        #expect(credentials.opaque == vector.opaque)
        // The credentials survive their own header form.
        let reparsed = try DigestCredentials(headerValue: credentials.headerValue.description)
        #expect(reparsed == credentials)
    }

    @Test(arguments: negatives)
    func negativeVariantDiffers(_ negative: DigestVectorFile.Negative) throws {
        var username = "Mufasa"
        var realm = "testrealm@host.com"
        var password = "Circle Of Life"
        var method = "GET"
        var uri = "/dir/index.html"
        var nc = "00000001"
        let parts = negative.change.split(separator: "=", maxSplits: 1).map(String.init)
        switch parts[0] {
        case "password": password = parts[1]
        case "nc": nc = parts[1]
        case "uri": uri = parts[1]
        case "method": method = parts[1]
        case "realm": realm = parts[1]
        case "username": username = parts[1]
        default: Issue.record("unknown change \(negative.change)")
        }
        let response = DigestCalculator.response(
            algorithm: .md5, username: username, realm: realm, password: password, method: method, uri: uri,
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", nonceCount: nc, cnonce: "0a4f113b", qop: "auth")
        #expect(response == negative.response)
        #expect(response != negative.must_differ_from)
    }
}
