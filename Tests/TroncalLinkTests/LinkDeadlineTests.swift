import Foundation
import Logging
import NIOCore
import Synchronization
import TestSupport
import Testing
import TroncalLink
import TroncalPKI
import TroncalProtocol
import TroncalStore

/// A write that holds the database for `holdMilliseconds` (a hot row: every request of one account waits for the
/// one before it).
struct HotWrite: LinkRequest {
    typealias Reply = HotWritten
    static let messageType = "test.hot-write"
    var id: String
    var holdMilliseconds: Int
}

struct HotWritten: LinkMessage {
    static let messageType = "test.hot-write.reply"
    var id: String
}

/// Requests carry what is left of their sender's deadline (`ttl`); work that would start after it is refused, so a
/// backlog behind a busy database is not worked through once its senders have given up.
@Suite("Link: work nobody waits for is not done")
struct LinkDeadlineTests {
    @Test func aRequestWhoseTTLHasPassedIsRefusedWithTimeoutBeforeItsHandlerRuns() async throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        let ran = Atomic<Int>(0)
        var handlers = LinkHandlers(localIdentity: try pki.credentials(.billing, "billing-1").identity)
        handlers.on(HotWrite.self, from: nil) { request, _ in
            ran.add(1, ordering: .relaxed)
            return HotWritten(id: request.id)
        }
        let peer = try pki.credentials(.routing, "routing-1").identity
        func frame(ttl: Int?) throws -> Data {
            try EnvelopeEncoder.encode(Envelope(
                head: EnvelopeHead(v: 1, id: "r-\(ttl ?? -1)", type: HotWrite.messageType, from: peer.description, ttl: ttl),
                body: HotWrite(id: "w", holdMilliseconds: 0)))
        }
        let late = await handlers.dispatch(json: try frame(ttl: 0), from: peer)
        #expect(late.error?.code == .timeout && late.error?.message.contains("stopped waiting") == true, "\(String(describing: late.error))")
        #expect(ran.load(ordering: .relaxed) == 0)
        // In time, or with no ttl (an older sender): handled.
        for ttl in [60_000, nil] {
            let result = await handlers.dispatch(json: try frame(ttl: ttl), from: peer)
            #expect(result.error == nil, "\(String(describing: result.error))")
        }
        #expect(ran.load(ordering: .relaxed) == 2)
    }

    /// Twelve writes of 300 ms each on one SQLite database (serialised like a hot account row), each sender waiting
    /// 1 s: about three can start in time. The others, once their senders have given up, are refused by the store
    /// when their turn comes instead of being written: without the deadline all twelve would be, 3.6 s of work for
    /// answers nobody reads.
    @Test func writesQueuedBehindABusyDatabaseAreNotDoneAfterTheirSendersGaveUp() async throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        let directory = try TemporaryDirectory(prefix: "troncal-link-deadline")
        defer { directory.remove() }
        let store = try await SQLiteStore.open(
            SQLiteConfiguration(path: directory.url.appendingPathComponent("hot.sqlite").path), logger: Logger(label: "test.store"))
        try await store.execute("CREATE TABLE writes (id TEXT PRIMARY KEY)")
        let credentials = try pki.credentials(.billing, "billing-1")
        var handlers = LinkHandlers(localIdentity: credentials.identity)
        handlers.on(HotWrite.self, from: nil) { request, _ in
            try await store.transaction { transaction in
                try await transaction.execute("INSERT INTO writes (id) VALUES ($1)", [.text(request.id)])
                try await Task.sleep(for: .milliseconds(request.holdMilliseconds))
            }
            return HotWritten(id: request.id)
        }
        let server = try LinkServer(
            configuration: .init(host: "127.0.0.1", port: 0, maximumFrameLength: 64 * 1024), credentials: credentials, handlers: handlers,
            logger: Logger(label: "test.link.billing-1"))
        let task = Task { try await server.run() }
        defer { task.cancel() }
        let port = try await server.listeningAddress().port ?? 0
        let client = try LinkClient(
            role: .billing, endpoints: [LinkEndpoint(host: "127.0.0.1", port: port)], credentials: try pki.credentials(.routing, "routing-1"),
            logger: Logger(label: "test.link.client"), connectTimeout: .seconds(20))
        // Connected first, so that the 1 s is the writes' own.
        _ = try await client.request(HotWrite(id: "probe-first", holdMilliseconds: 0), timeout: .seconds(30))
        let answered = await withTaskGroup(of: Bool.self) { group in
            for n in 0..<12 {
                group.addTask { (try? await client.request(HotWrite(id: "w\(n)", holdMilliseconds: 300), timeout: .seconds(1))) != nil }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        // The server has finished with the queue once a write after it goes through at once.
        let drained = await eventually(timeout: .seconds(30), interval: .milliseconds(200)) {
            (try? await client.request(HotWrite(id: "probe-\(UUID().uuidString)", holdMilliseconds: 0), timeout: .seconds(2))) != nil
        }
        #expect(drained)
        let written = try await store.query("SELECT id FROM writes WHERE id NOT LIKE 'probe-%'").count
        #expect(answered < 12 && written < 12, "\(answered) answered, \(written) written of 12")
        // Only work that started in time was done: about three writes fit in 1 s, a few more on a slow machine.
        #expect(written <= 6 && written >= answered, "\(answered) answered, \(written) written of 12")
        await client.close()
        task.cancel()
        _ = await task.result
        try await store.close()
    }
}
