import Foundation
import Logging
import NIOCore
import TestSupport
import Testing
import TroncalLink
import TroncalPKI
import TroncalProtocol

@Suite("Link: bad frames never disturb the listener")
struct LinkBadInputTests {
    enum BadInput: String, CaseIterable, CustomTestStringConvertible {
        case oversizedFrame, invalidJSON, notAnEnvelope, unknownType, newerVersion, truncatedFrame, randomBytes
        var testDescription: String { rawValue }
    }

    func bytes(for input: BadInput) -> [UInt8] {
        switch input {
        case .oversizedFrame: return RawTLSClient.frame([UInt8](repeating: 0x20, count: 70_000))
        case .invalidJSON: return RawTLSClient.frame(Array("{\"v\":1,\"id\":".utf8))
        case .notAnEnvelope: return RawTLSClient.frame(Array("[1,2,3]".utf8))
        case .unknownType: return RawTLSClient.frame(Array(#"{"v":1,"id":"x1","type":"no.such","from":"t/t","body":{}}"#.utf8))
        case .newerVersion: return RawTLSClient.frame(Array(#"{"v":9,"id":"x2","type":"ping","from":"t/t","body":{}}"#.utf8))
        case .truncatedFrame: return Array(RawTLSClient.frame(Array(#"{"v":1,"id":"x3","type":"ping"}"#.utf8)).prefix(12))
        case .randomBytes:
            var generator = SystemRandomNumberGenerator()
            return (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
        }
    }

    @Test(arguments: BadInput.allCases)
    func badInputGetsAClearErrorOrAClosedConnectionAndOthersAreUnaffected(_ input: BadInput) async throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        let routing = try await RunningServer.start(pki, instance: "routing-1")
        defer { routing.task.cancel() }
        let credentials = try pki.credentials(.sbc, "sbc-1")
        // A well-behaved client connected before, on its own connection.
        let client = try LinkClient(
            role: .routing, endpoints: [LinkEndpoint(host: "127.0.0.1", port: routing.port)], credentials: credentials,
            logger: Logger(label: "test"), connectTimeout: .seconds(20))
        #expect(try await client.request(Ping(), timeout: .seconds(30)).instance == "routing-1")

        let raw = try await RawTLSClient.connect(port: routing.port, credentials: credentials)
        switch input {
        case .oversizedFrame:
            let (frames, closed) = try await raw.exchange(bytes(for: input), frames: 2)
            #expect(frames.count == 1)
            #expect(frames.first?.contains("frame_too_large") == true)
            #expect(closed)
        case .invalidJSON, .notAnEnvelope:
            let (frames, closed) = try await raw.exchange(bytes(for: input))
            #expect(frames.first?.contains(input == .invalidJSON ? "bad_json" : "bad_envelope") == true)
            #expect(!closed)
        case .unknownType:
            let (frames, _) = try await raw.exchange(bytes(for: input))
            #expect(frames.first?.contains("unknown_type") == true)
            #expect(frames.first?.contains(#""re":"x1""#) == true)
        case .newerVersion:
            let (frames, _) = try await raw.exchange(bytes(for: input))
            #expect(frames.first?.contains("unsupported_version") == true)
        case .truncatedFrame:
            try await raw.channel.executeThenClose { _, outbound in
                try await outbound.write(ByteBuffer(bytes: bytes(for: input)))
            }
        case .randomBytes:
            // Either an error frame or a closed connection; never a crash or a hang.
            let (frames, closed) = try await raw.exchange(bytes(for: input), frames: 64)
            #expect(closed || !frames.isEmpty)
        }
        // The listener and the other connection are unaffected.
        #expect(try await client.request(Ping(), timeout: .seconds(30)).instance == "routing-1")
        let fresh = try LinkClient(
            role: .routing, endpoints: [LinkEndpoint(host: "127.0.0.1", port: routing.port)], credentials: credentials,
            logger: Logger(label: "test"), connectTimeout: .seconds(20))
        #expect(try await fresh.request(Ping(), timeout: .seconds(30)).instance == "routing-1")
        await client.close()
        await fresh.close()
        await routing.stop()
    }
}
