import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import TestSupport
import Testing
import TroncalProtocol
@testable import TroncalSBC

/// The SBC's summary spool: group-committed appends to a segment per loop, sealed for shipping, and recovery of the
/// segments a crash left open.
@Suite("Call summary spool segments")
struct SpoolSegmentTests {
    static func summary(_ id: String) -> CallSummary {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        return CallSummary(
            id: id, callID: "call-\(id)", customer: "acme", caller: "100", callee: "34911234567", site: "a", instance: "sbc-1",
            attempts: [], setupAt: start, answerAt: start, endAt: start.addingTimeInterval(10), durationMilliseconds: 10_000,
            disconnect: CallSummary.Disconnect(by: .caller, status: 200, reason: "caller hung up"), streams: [])
    }

    @Test func summariesSubmittedTogetherAreDurableInOneOpenSegmentThenSealedForShipping() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let spool = try CallSummarySpool(directory: directory.url, logger: Logger(label: "test"))
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let done = Mutex(0)
        try await loop.submit {
            let writer = SpoolWriter(spool: spool, eventLoop: loop, loopIndex: 3, logger: Logger(label: "test"))
            for index in 0..<50 { writer.submit(Self.summary("s\(index)")) { done.withLock { $0 += 1 } } }
            // Kept alive by its pending operations until they finish.
            _ = writer
        }.get()
        #expect(await eventually { done.withLock { $0 } == 50 })
        // Durable before sealing: a reader of the directory (a tool, a test) sees all of them at once.
        #expect(CallSummarySpool.pending(in: directory.url).map(\.id) == (0..<50).map { "s\($0)" })
        // Sealed about a second later: then the shipper sees them, in one or a few files, not fifty.
        #expect(await eventually { !spool.pendingNames().isEmpty && spool.pending().count == 50 })
        let files = spool.pendingNames()
        #expect(files.count < 10, "\(files)")
        #expect(files.allSatisfy { $0.hasSuffix(".jsonl") && $0.contains("-03-") }, "\(files)")
        #expect(spool.pending().map(\.id) == (0..<50).map { "s\($0)" })
    }

    @Test func aSegmentLeftOpenByACrashIsSealedAtStartWithoutItsTornLastLine() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let spool = try CallSummarySpool(directory: directory.url, logger: Logger(label: "test"))
        var data = try CallSummarySpool.lines([Self.summary("a"), Self.summary("b")])
        let third = try CallSummarySpool.lines([Self.summary("c")])
        data.append(third.prefix(third.count / 2))
        try data.write(to: directory.url.appendingPathComponent(".1800000000000-00-00000001.open"))
        try Data("{\"half".utf8).write(to: directory.url.appendingPathComponent(".1800000000001-01-00000001.open"))
        try Data("never renamed".utf8).write(to: directory.url.appendingPathComponent(".x.jsonl.tmp"))
        #expect(spool.pendingNames().isEmpty, "open segments are not shipped while a writer may append")

        spool.recoverOpenSegments()
        #expect(spool.pendingNames() == ["1800000000000-00-00000001.jsonl"])
        #expect(spool.pending().map(\.id) == ["a", "b"])
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.url.path)
        #expect(left == ["1800000000000-00-00000001.jsonl"], "a segment with no complete line and a .tmp file are removed: \(left)")
    }

    @Test func aWriteThatFailsIsRetriedAndThenLoggedWholeNeverDroppedSilently() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let spool = try CallSummarySpool(directory: directory.url, logger: Logger(label: "test"))
        // The spool directory disappears: no segment can be created.
        try FileManager.default.removeItem(at: directory.url)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let done = Mutex(false)
        try await loop.submit {
            SpoolWriter(spool: spool, eventLoop: loop, loopIndex: 0, logger: Logger(label: "test")).submit(Self.summary("lost")) {
                done.withLock { $0 = true }
            }
        }.get()
        // About 3 s of retries, then the call goes on (its summary is in the critical log line).
        #expect(await eventually(timeout: .seconds(30)) { done.withLock { $0 } })
    }
}
