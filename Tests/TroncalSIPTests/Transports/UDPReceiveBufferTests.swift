import Foundation
import Logging
import Testing
import TroncalSIP

/// A flood fills a small UDP receive buffer while the SBC is busy, and the carrier's 200 or the customer's ACK that
/// arrives then is lost with it: the transport asks the kernel for a larger buffer and reports what it got.
@Suite("SIP transports: UDP receive buffer")
struct UDPReceiveBufferTests {
    /// Linux grants min(asked, net.core.rmem_max) (and reports twice that, for its bookkeeping).
    static var kernelMaximum: Int? {
        (try? String(contentsOfFile: "/proc/sys/net/core/rmem_max", encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    @Test(.enabled(if: kernelMaximum != nil, "no /proc/sys/net/core/rmem_max"))
    func theUDPSocketsGetTheAskedReceiveBufferUpToTheKernelsMaximum() async throws {
        let maximum = try #require(Self.kernelMaximum)
        var configuration = SIPTransportConfiguration(host: "127.0.0.1", udpPort: 0, tcpPort: nil)
        configuration.udpReceiveBufferBytes = 1 << 20
        let transport = SIPTransport(configuration: configuration, logger: Logger(label: "test.sip")) { _ in }
        let task = Task { try await transport.run() }
        defer { task.cancel() }
        try await transport.waitUntilListening()
        #expect(transport.udpReceiveBufferBytes == min(1 << 20, maximum))
        task.cancel()
        _ = await task.result
    }

    @Test func withoutAnAskedSizeTheKernelsDefaultIsKeptAndNothingIsReported() async throws {
        let transport = SIPTransport(
            configuration: SIPTransportConfiguration(host: "127.0.0.1", udpPort: 0, tcpPort: nil), logger: Logger(label: "test.sip")) { _ in }
        let task = Task { try await transport.run() }
        defer { task.cancel() }
        try await transport.waitUntilListening()
        #expect(transport.udpReceiveBufferBytes == nil)
        task.cancel()
        _ = await task.result
    }
}
