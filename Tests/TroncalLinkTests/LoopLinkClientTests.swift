import Logging
import NIOCore
import NIOPosix
import TestSupport
import Testing
import TroncalLink
import TroncalPKI
import TroncalProtocol

/// The event-loop link client the SBC's calls use: real servers, a real mutual-TLS handshake on loopback.
@Suite("Link: the loop-bound client")
struct LoopLinkClientTests {
    /// Runs `body` on `loop` with a client of `endpoints`, closing the client afterwards.
    func withClient<T: Sendable>(
        _ pki: TemporaryPKI, ports: [Int], on loop: any EventLoop,
        _ body: @escaping @Sendable (NIOLoopBound<LoopLinkClient>) -> EventLoopFuture<T>
    ) async throws -> T {
        let settings = try LinkClientSettings(
            role: .routing, endpoints: ports.map { LinkEndpoint(host: "127.0.0.1", port: $0) },
            credentials: try pki.credentials(.sbc, "sbc-1"), logger: Logger(label: "test.loop-link"), connectTimeout: .seconds(20))
        return try await loop.flatSubmit {
            let client = NIOLoopBound(LoopLinkClient(settings: settings, eventLoop: loop), eventLoop: loop)
            return body(client).always { _ in client.value.close() }
        }.get()
    }

    @Test func aRequestFromTheLoopGetsItsReplyOnTheSameLoop() async throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        let server = try await RunningServer.start(pki, instance: "routing-1")
        defer { server.task.cancel() }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let (instance, onLoop) = try await withClient(pki, ports: [server.port], on: loop) { client in
            client.value.request(SlowEcho(text: "hello", delayMilliseconds: 0), timeout: .seconds(10)).map { reply in
                (reply.instance + ":" + reply.text, loop.inEventLoop)
            }
        }
        #expect(instance == "routing-1:hello")
        #expect(onLoop, "the reply completed off the caller's loop")
        await server.stop()
    }

    @Test func aRequestWhosePeerHangsFailsByItsDeadlineAndTheNextIsAnswered() async throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        let first = try await RunningServer.start(pki, instance: "routing-1")
        let second = try await RunningServer.start(pki, instance: "routing-2")
        defer { first.task.cancel(); second.task.cancel() }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        // A first request opens the connection to routing-1 with a roomy deadline, so that the short deadline below
        // runs on an open connection (on a busy machine the TLS handshake alone can outlast 300 ms, which is `unavailable`).
        let outcome = try await withClient(pki, ports: [first.port, second.port], on: loop) { client in
            client.value.request(SlowEcho(text: "warm", delayMilliseconds: 0), timeout: .seconds(10)).flatMap { warm in
                #expect(warm.instance == "routing-1")
                return client.value.request(SlowEcho(text: "hang", delayMilliseconds: 60_000), timeout: .milliseconds(300))
            }
                .map { _ in "answered" }
                .flatMapError { error in
                    loop.makeSucceededFuture((error as? LinkError).map { "\($0.code)" } ?? "\(error)")
                }
                .flatMap { first in
                    client.value.request(SlowEcho(text: "after", delayMilliseconds: 0), timeout: .seconds(10)).map { (first, $0.instance) }
                }
        }
        // One missed answer is not enough to suspect an instance (it answers its probes): the next request is
        // answered by whichever instance's turn it is.
        #expect(outcome.0 == "\(LinkError.Code.timeout)")
        #expect(outcome.1 == "routing-1" || outcome.1 == "routing-2")
        await first.stop()
        await second.stop()
    }

    @Test func noInstanceListeningFailsTheRequestAsUnavailableWithoutHanging() async throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        // A port nothing listens on: bind a server, note its port, stop it.
        let gone = try await RunningServer.start(pki, instance: "routing-1")
        await gone.stop()
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let outcome = try await withClient(pki, ports: [gone.port], on: loop) { client in
            client.value.request(Ping(), timeout: .seconds(10)).map { _ in "answered" }.flatMapError { error in
                loop.makeSucceededFuture((error as? LinkError).map { "\($0.code)" } ?? "\(error)")
            }
        }
        #expect(outcome != "answered")
        #expect(outcome == "\(LinkError.Code.unavailable)" || outcome == "\(LinkError.Code.connectionClosed)", "\(outcome)")
    }

    @Test func requestsWrittenBackToBackFromTheLoopEachGetTheirOwnReply() async throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        let server = try await RunningServer.start(pki, instance: "routing-1")
        defer { server.task.cancel() }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        // Ten requests written back to back from the loop: each gets its own reply (matched by id). A first request
        // opens the connection with a roomy deadline: on a loaded machine the TLS handshake alone took seconds.
        let replies = try await withClient(pki, ports: [server.port], on: loop) { client in
            client.value.request(Ping(), timeout: .seconds(30)).flatMap { _ in
                let futures = (0..<10).map { client.value.request(SlowEcho(text: "\($0)", delayMilliseconds: 0), timeout: .seconds(30)) }
                return EventLoopFuture.whenAllSucceed(futures, on: loop).map { $0.map(\.text) }
            }
        }
        #expect(replies == (0..<10).map { "\($0)" })
        await server.stop()
    }
}
