import Foundation
import Logging
import NIOCore
import TestSupport
import Testing
import TroncalLink
import TroncalPKI
import TroncalProtocol

@Suite("Link: deadlines, reconnection and failover")
struct LinkFailoverTests {
    @Test func requestWhosePeerHangsFailsByItsDeadlineThenFailsOverToAnotherInstance() async throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        let first = try await RunningServer.start(pki, instance: "routing-1")
        let second = try await RunningServer.start(pki, instance: "routing-2")
        defer { first.task.cancel(); second.task.cancel() }
        let client = try LinkClient(
            role: .routing,
            endpoints: [LinkEndpoint(host: "127.0.0.1", port: first.port), LinkEndpoint(host: "127.0.0.1", port: second.port)],
            credentials: try pki.credentials(.sbc, "sbc-1"), logger: Logger(label: "test"), connectTimeout: .seconds(20))
        #expect(try await client.request(Ping(), timeout: .seconds(30)).instance == "routing-1")
        let error = await #expect(throws: LinkError.self) {
            _ = try await client.request(SlowEcho(text: "hang", delayMilliseconds: 60_000), timeout: .milliseconds(300))
        }
        #expect(error?.code == .timeout)
        let echoed = try await client.request(SlowEcho(text: "after", delayMilliseconds: 0), timeout: .seconds(30))
        #expect(echoed.instance == "routing-2")
        await client.close()
        await first.stop()
        await second.stop()
    }

    @Test func aRetryableRequestThatOneInstanceDoesNotAnswerIsAnsweredByTheNextWithinItsDeadline() async throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        let first = try await RunningServer.start(pki, instance: "routing-1")
        let second = try await RunningServer.start(pki, instance: "routing-2")
        defer { first.task.cancel(); second.task.cancel() }
        let client = try LinkClient(
            role: .routing,
            endpoints: [LinkEndpoint(host: "127.0.0.1", port: first.port), LinkEndpoint(host: "127.0.0.1", port: second.port)],
            credentials: try pki.credentials(.sbc, "sbc-1"), logger: Logger(label: "test"), connectTimeout: .seconds(20))
        #expect(try await client.request(Ping(), timeout: .seconds(30)).instance == "routing-1")
        // routing-1 holds it: after half the timeout it goes to routing-2, well before the deadline.
        let echoed = try await client.request(RetryableEcho(text: "route"), timeout: .seconds(10))
        #expect(echoed.instance == "routing-2" && echoed.text == "route")
        await client.close()
        await first.stop()
        await second.stop()
    }

    @Test func requestWhosePeerDiesMidwayFailsAndTheNextGoesToAnotherInstance() async throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        let first = try await RunningServer.start(pki, instance: "routing-1")
        let second = try await RunningServer.start(pki, instance: "routing-2")
        defer { first.task.cancel(); second.task.cancel() }
        let client = try LinkClient(
            role: .routing,
            endpoints: [LinkEndpoint(host: "127.0.0.1", port: first.port), LinkEndpoint(host: "127.0.0.1", port: second.port)],
            credentials: try pki.credentials(.sbc, "sbc-1"), logger: Logger(label: "test"), connectTimeout: .seconds(20))
        #expect(try await client.request(Ping(), timeout: .seconds(30)).instance == "routing-1")
        let pending = Task { try await client.request(SlowEcho(text: "in flight", delayMilliseconds: 30_000), timeout: .seconds(20)) }
        try await Task.sleep(for: .milliseconds(200))
        await first.stop()  // the peer goes away with the request in flight
        let clock = ContinuousClock()
        let started = clock.now
        await #expect(throws: LinkError.self) { _ = try await pending.value }
        #expect(clock.now - started < .seconds(20))
        #expect(try await client.request(Ping(), timeout: .seconds(30)).instance == "routing-2")
        await client.close()
        await second.stop()
    }

    @Test func clientReconnectsWhenItsInstanceComesBack() async throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        let first = try await RunningServer.start(pki, instance: "routing-1")
        let port = first.port
        let client = try LinkClient(
            role: .routing, endpoints: [LinkEndpoint(host: "127.0.0.1", port: port)],
            credentials: try pki.credentials(.sbc, "sbc-1"), logger: Logger(label: "test"), connectTimeout: .seconds(20))
        #expect(try await client.request(Ping(), timeout: .seconds(30)).instance == "routing-1")
        await first.stop()
        let down = await #expect(throws: LinkError.self) { _ = try await client.request(Ping(), timeout: .milliseconds(500)) }
        #expect(down != nil)
        // The same instance restarts on the same port; the client reconnects after its backoff.
        let credentials = try pki.credentials(.routing, "routing-1")
        var handlers = LinkHandlers(localIdentity: credentials.identity)
        handlers.on(Ping.self, from: nil) { _, _ in Pong(role: .routing, site: "test-site", instance: "routing-1", version: "again") }
        let restarted = try LinkServer(
            configuration: .init(host: "127.0.0.1", port: port), credentials: credentials, handlers: handlers, logger: Logger(label: "test"))
        let task = Task { try await restarted.run() }
        defer { task.cancel() }
        _ = try await restarted.listeningAddress()
        let back = await eventually(timeout: .seconds(60)) {
            (try? await client.request(Ping(), timeout: .seconds(5)))?.version == "again"
        }
        #expect(back)
        await client.close()
        task.cancel()
        _ = await task.result
    }
}
