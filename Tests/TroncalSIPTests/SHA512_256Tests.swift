import Crypto
import Testing

@testable import TroncalSIP

@Suite struct SHA512_256Tests {
    /// FIPS 180-4 / NIST example values and values computed with OpenSSL's sha512-256.
    static let vectors: [(input: String, digest: String)] = [
        ("abc", "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"),
        ("", "c672b8d1ef56ed28ab87c3622c5114069bdd3ad7b8f9737498d0c01ecef0967a"),
        (
            "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
            "3928e184fb8690f840da3988121d31be65cb9d3ef83ee6146feac861e19b563a"
        ),
    ]

    @Test(arguments: vectors.map { [$0.input, $0.digest] })
    func matchesKnownAnswer(_ vector: [String]) {
        #expect(DigestAlgorithm.hex(SHA512_256.hash(Array(vector[0].utf8))) == vector[1])
    }

    @Test func millionAsMatchesKnownAnswer() {
        let input = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(
            DigestAlgorithm.hex(SHA512_256.hash(input))
                == "9a59a052930187a97038cae692f30708aa6491923ef5194394dc68d56c74fb21")
    }

    /// FIPS 180-4 §5.3.6: the SHA-512/t initial value is SHA-512 (with its IV xor a5a5…) of "SHA-512/256".
    @Test func initialHashValueIsDerivedPerFIPS180_4() {
        let ivGenerator = SHA512Core.sha512InitialHash.map { $0 ^ 0xa5a5_a5a5_a5a5_a5a5 }
        var core = SHA512Core(initialHash: ivGenerator)
        core.update(Array("SHA-512/256".utf8))
        let bytes = core.finalize()
        let words = stride(from: 0, to: 64, by: 8).map { start in
            bytes[start..<(start + 8)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        #expect(words == SHA512_256.initialHash)
    }

    /// The same core with the SHA-512 initial value equals swift-crypto's SHA-512 at every padding boundary.
    @Test(arguments: [0, 1, 55, 111, 112, 113, 127, 128, 129, 239, 240, 255, 256, 1000])
    func coreMatchesSwiftCryptoSHA512(length: Int) {
        let input = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var core = SHA512Core(initialHash: SHA512Core.sha512InitialHash)
        core.update(input)
        #expect(core.finalize() == Array(SHA512.hash(data: input)))
    }

    @Test func isNotTruncatedSHA512() {
        let input = Array("abc".utf8)
        #expect(SHA512_256.hash(input) != Array(Array(SHA512.hash(data: input)).prefix(32)))
    }
}
