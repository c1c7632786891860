import Logging
import NIOCore
import NIOPosix
import Testing
import TroncalSIP

/// `isListening` is what a service's `/health` waits for: false until every listener is bound, false again once the
/// transport stops, and never true when a listener could not be bound.
@Suite("SIP transports: readiness")
struct TransportReadinessTests {
    @Test func aTransportIsListeningOnlyBetweenItsBindAndItsStop() async throws {
        let transport = SIPTransport(
            configuration: SIPTransportConfiguration(host: "127.0.0.1", udpPort: 0, tcpPort: 0), logger: Logger(label: "test.sip")
        ) { _ in }
        #expect(!transport.isListening)
        let task = Task { try await transport.run() }
        try await transport.waitUntilListening()
        #expect(transport.isListening)
        task.cancel()
        _ = await task.result
        #expect(!transport.isListening)
    }

    @Test func aTransportWhosePortIsTakenNeverSaysItIsListening() async throws {
        let holder = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(holder.localAddress?.port)
        let transport = SIPTransport(
            configuration: SIPTransportConfiguration(host: "127.0.0.1", udpPort: nil, tcpPort: port), logger: Logger(label: "test.sip")
        ) { _ in }
        let task = Task { try await transport.run() }
        await #expect(throws: (any Error).self) { try await transport.waitUntilListening() }
        #expect(!transport.isListening)
        _ = await task.result
        try await holder.close()
    }
}
