public import Foundation
public import Logging
internal import Metrics
public import ServiceLifecycle
public import TroncalLink
public import TroncalProtocol

/// Ships the call summaries of the spool to billing in batches (`billing.cdr.batch`, up to `batchSize` a request,
/// `concurrency` requests in flight) and deletes each file only after billing's acknowledgement, which comes after its
/// commit. What is not acknowledged stays and is sent again, after a restart
/// too; billing stores each summary once by id, so a resend never counts twice.
///
/// A file that cannot be read, or that billing refuses as malformed, is moved to `cdr-rejected/` beside the spool and
/// logged: never deleted unseen.
public struct SpoolShipper: Service {
    let spool: CallSummarySpool
    let billing: LinkClient
    let timeout: Duration
    let logger: Logger
    /// Batches in flight at once.
    let concurrency: Int
    /// Summaries per batch.
    let batchSize: Int

    public init(spool: CallSummarySpool, billing: LinkClient, timeout: Duration, logger: Logger, concurrency: Int = 4, batchSize: Int = 50) {
        self.spool = spool
        self.billing = billing
        self.timeout = timeout
        self.logger = logger
        self.concurrency = max(1, concurrency)
        self.batchSize = max(1, batchSize)
    }

    public func run() async throws {
        var backoff = Duration.seconds(1)
        var lastFailure: String?
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let names = spool.pendingNames()
            Gauge(label: "troncal_sbc_cdr_spool_files").record(names.count)
            var failure: String?
            if !names.isEmpty {
                failure = await ship(names)
            }
            if let failure {
                if failure != lastFailure {
                    logger.warning("call summaries not delivered to billing: kept in the spool, retrying", metadata: [
                        "files": "\(names.count)", "reason": "\(failure)", "retry-in": "\(backoff)",
                    ])
                }
                lastFailure = failure
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(30))
            } else {
                if lastFailure != nil { logger.notice("call summaries delivered to billing again", metadata: ["files": "\(names.count)"]) }
                lastFailure = nil
                backoff = .seconds(1)
                if names.isEmpty { try? await Task.sleep(for: .milliseconds(250)) }
            }
        }
    }

    /// Sends every named file, in batches, `concurrency` batches at a time; returns the reason of the first failure to
    /// retry, if any.
    func ship(_ names: [String]) async -> String? {
        let batches = stride(from: 0, to: names.count, by: batchSize).map { Array(names[$0..<min($0 + batchSize, names.count)]) }
        return await withTaskGroup(of: String?.self) { group in
            var iterator = batches.makeIterator()
            var inFlight = 0
            var failure: String?
            func next() -> Bool {
                guard failure == nil, let batch = iterator.next() else { return false }
                group.addTask { await shipBatch(batch) }
                inFlight += 1
                return true
            }
            while inFlight < concurrency, next() {}
            while inFlight > 0, let outcome = await group.next() {
                inFlight -= 1
                if let outcome { failure = failure ?? outcome }
                _ = next()
            }
            return failure
        }
    }

    /// One batch; nil when every file of it was acknowledged or set aside.
    func shipBatch(_ names: [String]) async -> String? {
        var readable: [(String, CallSummary)] = []
        for name in names {
            do {
                readable.append((name, try spool.read(name)))
            } catch {
                spool.reject(name, logger: logger, reason: "unreadable: \(error)")
                Counter(label: "troncal_sbc_cdrs_shipped_total", dimensions: [("result", "rejected")]).increment()
            }
        }
        guard !readable.isEmpty else { return nil }
        do {
            let reply = try await billing.request(CDRBatch(summaries: readable.map(\.1)), timeout: timeout)
            let acknowledged = Set(reply.acknowledgements.map(\.id))
            for (name, summary) in readable where acknowledged.contains(summary.id) { spool.remove(name) }
            Counter(label: "troncal_sbc_cdrs_shipped_total", dimensions: [("result", "acknowledged")]).increment(by: acknowledged.count)
            return acknowledged.count == readable.count ? nil : "billing acknowledged \(acknowledged.count) of \(readable.count) summaries"
        } catch let error as LinkError where error.remote?.code == .badRequest {
            // Something in the batch is refused: one by one, to set aside only what billing cannot take.
            for (name, summary) in readable {
                if let failure = await shipOne(name, summary) { return failure }
            }
            return nil
        } catch {
            return "\(error)"
        }
    }

    func shipOne(_ name: String, _ summary: CallSummary) async -> String? {
        do {
            _ = try await billing.request(CDRSubmission(summary: summary), timeout: timeout)
            spool.remove(name)
            Counter(label: "troncal_sbc_cdrs_shipped_total", dimensions: [("result", "acknowledged")]).increment()
            return nil
        } catch let error as LinkError where error.remote?.code == .badRequest {
            spool.reject(name, logger: logger, reason: "refused by billing: \(error)")
            Counter(label: "troncal_sbc_cdrs_shipped_total", dimensions: [("result", "rejected")]).increment()
            return nil
        } catch {
            return "\(error)"
        }
    }
}

extension CallSummarySpool {
    /// The spooled summaries' file names.
    public func pendingNames() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted()
    }

    func read(_ name: String) throws -> CallSummary {
        try Self.decoder.decode(CallSummary.self, from: Data(contentsOf: directory.appendingPathComponent(name)))
    }

    func remove(_ name: String) {
        unlink(directory.appendingPathComponent(name).path)
    }

    /// Moves a file out of the way, to `cdr-rejected/` beside the spool.
    func reject(_ name: String, logger: Logger, reason: String) {
        let rejected = directory.deletingLastPathComponent().appendingPathComponent("cdr-rejected")
        try? FileManager.default.createDirectory(at: rejected, withIntermediateDirectories: true)
        rename(directory.appendingPathComponent(name).path, rejected.appendingPathComponent(name).path)
        logger.error("call summary set aside: billing cannot take it", metadata: ["file": "\(name)", "reason": "\(reason)", "directory": "\(rejected.path)"])
    }
}
