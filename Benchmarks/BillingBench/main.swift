// `scripts/bench billing`: CDRs stored per second by a running troncal-billing on PostgreSQL, sent over the mutual-TLS link as
// the SBC sends them (`billing.cdr`, acknowledged after commit), against a plain COPY of the same rows into a table of the same
// shape, in one run.
//
//   BillingBench PKI_DIR LINK_HOST LINK_PORT POSTGRES_URL COUNT CONCURRENCY
import Foundation
import Logging
import TroncalLink
import TroncalPKI
import TroncalProtocol
import TroncalStore

let arguments = CommandLine.arguments
guard arguments.count == 7, let port = Int(arguments[3]), let count = Int(arguments[5]), let concurrency = Int(arguments[6]) else {
    FileHandle.standardError.write(Data("usage: BillingBench PKI_DIR LINK_HOST LINK_PORT POSTGRES_URL COUNT CONCURRENCY\n".utf8))
    exit(64)
}
var logger = Logger(label: "bench.billing")
logger.logLevel = .error

func summary(_ index: Int, run: String) -> CallSummary {
    let setup = Date(timeIntervalSince1970: 1_796_000_000 + Double(index) / 10)
    return CallSummary(
        id: "\(run)-\(index)", callID: "bench-\(run)-\(index)@127.0.0.2", customer: "bench", caller: "100", callee: "34911\(String(format: "%06d", index % 1_000_000))",
        site: "bench", instance: "sbc-1",
        attempts: [CallSummary.Attempt(carrier: "carrier-a", trunk: "carrier-a", result: .answered, status: 200, startedAt: setup, postDialDelayMilliseconds: 120)],
        setupAt: setup, answerAt: setup.addingTimeInterval(2), endAt: setup.addingTimeInterval(2 + 30 + Double(index % 90)),
        durationMilliseconds: (30 + index % 90) * 1000, disconnect: CallSummary.Disconnect(by: .caller, status: 200, reason: "caller hung up"),
        streams: [CallSummary.StreamReport(
            direction: "caller-to-callee", codec: "PCMU", packets: 1500, bytes: 258_000, lost: 1, jitterMilliseconds: 1.5, roundTripMilliseconds: 40,
            rFactor: 92.5, mos: 4.38)])
}

let run = String(UUID().uuidString.prefix(8))
let ca = try SiteCA.open(URL(fileURLWithPath: arguments[1]))
let client = try LinkClient(
    role: .billing, endpoints: [LinkEndpoint(host: arguments[2], port: port)], credentials: ca.credentials(role: .sbc, instance: "sbc-1"), logger: logger)

/// Sends `count` summaries (ids `tag-N`) in requests of `batch` summaries, `concurrency` requests in flight; returns seconds.
func send(count: Int, batch: Int, concurrency: Int, tag: String) async throws -> Double {
    let started = ContinuousClock.now
    let batches = stride(from: 0, to: count, by: batch).map { $0..<min($0 + batch, count) }
    try await withThrowingTaskGroup(of: Void.self) { group in
        var next = 0
        func add() {
            let range = batches[next]
            next += 1
            group.addTask {
                if batch == 1 {
                    _ = try await client.request(CDRSubmission(summary: summary(range.lowerBound, run: tag)), timeout: .seconds(30))
                } else {
                    _ = try await client.request(CDRBatch(summaries: range.map { summary($0, run: tag) }), timeout: .seconds(30))
                }
            }
        }
        while next < min(concurrency, batches.count) { add() }
        while try await group.next() != nil {
            if next < batches.count { add() }
        }
    }
    return Double((ContinuousClock.now - started) / .milliseconds(1)) / 1000
}

// Through the link, as the SBC's spool shipper sends them (batches of 50, 4 in flight), and one by one (16 in flight).
let linkSeconds = try await send(count: count, batch: 50, concurrency: 4, tag: run)
let singleSeconds = try await send(count: count, batch: 1, concurrency: concurrency, tag: run + "s")
await client.close()

// A plain COPY of the same rows (the CDR columns billing writes) into a table of the same shape.
let store = try await openStore(.postgres(try PostgresConfiguration(url: arguments[4])), logger: logger)
try await store.execute("DROP TABLE IF EXISTS bench_copy_cdrs")
try await store.execute("CREATE TABLE bench_copy_cdrs (LIKE billing_cdrs INCLUDING ALL)")
let encoder = JSONEncoder()
encoder.outputFormatting = [.sortedKeys]
let format = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
let columns = [
    "id", "call_id", "customer", "caller", "callee", "carrier", "trunk", "setup_at", "answer_at", "end_at", "duration_ms", "billed_seconds",
    "disconnect_status", "disconnect_by", "currency", "sell_micros", "buy_micros", "margin_micros", "rated", "rate_prefix", "note", "mos", "summary",
    "stored_at",
]
let copyStart = ContinuousClock.now
var rows: [[SQLValue]] = []
rows.reserveCapacity(count)
for index in 0..<count {
    let s = summary(index, run: run + "c")
    rows.append([
        .text(s.id), .text(s.callID), .text(s.customer), .text(s.caller), .text(s.callee), .text("carrier-a"), .text("carrier-a"),
        .text(s.setupAt.formatted(format)), .text(s.answerAt!.formatted(format)), .text(s.endAt.formatted(format)), .int(s.durationMilliseconds),
        .int(s.durationMilliseconds / 1000), .int(200), .text("caller"), .text("EUR"), .integer(30_000), .integer(5_000), .integer(25_000), .int(1),
        .text("34"), .text(""), .real(4.38), .text(String(decoding: try encoder.encode(s), as: UTF8.self)), .text(Date().formatted(format)),
    ])
}
try await store.bulkLoad(table: "bench_copy_cdrs", columns: columns, rows: rows)
let copySeconds = Double((ContinuousClock.now - copyStart) / .milliseconds(1)) / 1000
let stored = try await store.query("SELECT COUNT(*) AS n FROM billing_cdrs WHERE id LIKE $1 OR id LIKE $2", [.text("\(run)-%"), .text("\(run)s-%")])
let storedCount = try stored.first?.int("n") ?? 0
try await store.execute("DROP TABLE bench_copy_cdrs")
try await store.close()
guard storedCount == Int64(2 * count) else {
    FileHandle.standardError.write(Data("only \(storedCount) of \(2 * count) CDRs are in billing_cdrs\n".utf8))
    exit(1)
}
let linkRate = Double(count) / linkSeconds
let singleRate = Double(count) / singleSeconds
let copyRate = Double(count) / copySeconds
print(String(format: "through the link, as the SBC ships them (billing.cdr.batch of 50, 4 in flight; rated, charged, acknowledged after commit): %d CDRs in %.2f s = %.0f CDRs/s", count, linkSeconds, linkRate))
print(String(format: "through the link one by one (billing.cdr, %d in flight):                                                          %d CDRs in %.2f s = %.0f CDRs/s", concurrency, count, singleSeconds, singleRate))
print(String(format: "plain COPY of the same rows into a table of the same shape:                                                       %d rows in %.2f s = %.0f rows/s", count, copySeconds, copyRate))
print(String(format: "ratios: batched link/COPY %.3f, one-by-one link/COPY %.3f, batched/one-by-one %.2f", linkRate / copyRate, singleRate / copyRate, linkRate / singleRate))
