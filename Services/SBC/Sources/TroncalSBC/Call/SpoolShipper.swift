internal import Foundation
public import Logging
internal import Metrics
public import ServiceLifecycle
public import TroncalLink
public import TroncalProtocol
internal import TroncalRuntime

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
                await Task.sleepUnlessShuttingDown(for: backoff)
                backoff = min(backoff * 2, .seconds(30))
            } else {
                if lastFailure != nil { logger.notice("call summaries delivered to billing again", metadata: ["files": "\(names.count)"]) }
                lastFailure = nil
                backoff = .seconds(1)
                if names.isEmpty { await Task.sleepUnlessShuttingDown(for: .milliseconds(250)) }
            }
        }
    }

    /// Sends every named file, in batches of about `batchSize` summaries (whole files; a larger file is sent in parts),
    /// `concurrency` batches at a time; returns the reason of the first failure to retry, if any.
    func ship(_ names: [String]) async -> String? {
        var batches: [[String]] = []
        var current: [String] = []
        var size = 0
        for name in names {
            // Most files hold a handful of summaries; their size is guessed from the file size to group them without
            // reading them twice.
            let estimate = max(1, spool.estimatedCount(of: name))
            if !current.isEmpty, size + estimate > batchSize {
                batches.append(current)
                current = []
                size = 0
            }
            current.append(name)
            size += estimate
        }
        if !current.isEmpty { batches.append(current) }
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

    /// One batch of files; nil when every summary of them was acknowledged or set aside. A file is removed once all its
    /// summaries are acknowledged, and rewritten with the rest when only some are.
    func shipBatch(_ names: [String]) async -> String? {
        var files: [(name: String, summaries: [CallSummary])] = []
        for name in names {
            do {
                files.append((name, try spool.read(name)))
            } catch {
                spool.reject(name, reason: "unreadable: \(error)")
                Counter(label: "troncal_sbc_cdrs_shipped_total", dimensions: [("result", "rejected")]).increment()
            }
        }
        let summaries = files.flatMap(\.summaries)
        guard !summaries.isEmpty else {
            for file in files { spool.remove(file.name) }
            return nil
        }
        var acknowledged = Set<String>()
        var failure: String?
        var refused = false
        for start in stride(from: 0, to: summaries.count, by: batchSize) {
            let part = Array(summaries[start..<min(start + batchSize, summaries.count)])
            do {
                let reply = try await billing.request(CDRBatch(summaries: part), timeout: timeout)
                acknowledged.formUnion(reply.acknowledgements.map(\.id))
            } catch where error.remote?.code == .badRequest {
                refused = true
            } catch {
                failure = "\(error)"
                break
            }
        }
        if refused, failure == nil {
            // Something is refused: one by one, to set aside only what billing cannot take.
            for summary in summaries where !acknowledged.contains(summary.id) {
                switch await shipOne(summary) {
                case .acknowledged: acknowledged.insert(summary.id)
                case .refused(let reason):
                    spool.reject(summary, reason: reason)
                    Counter(label: "troncal_sbc_cdrs_shipped_total", dimensions: [("result", "rejected")]).increment()
                    acknowledged.insert(summary.id)
                case .failed(let reason):
                    failure = reason
                }
                if failure != nil { break }
            }
        }
        Counter(label: "troncal_sbc_cdrs_shipped_total", dimensions: [("result", "acknowledged")]).increment(by: acknowledged.count)
        for file in files {
            let remaining = file.summaries.filter { !acknowledged.contains($0.id) }
            if remaining.isEmpty {
                spool.remove(file.name)
            } else if remaining.count < file.summaries.count {
                do {
                    try spool.keep(remaining, of: file.name)
                } catch {
                    // The file stays whole; billing stores each summary once by id, so the resend counts nothing twice.
                    logger.warning("spool file not trimmed; its acknowledged summaries will be sent again", metadata: [
                        "file": "\(file.name)", "reason": "\(error)",
                    ])
                }
            }
        }
        if let failure { return failure }
        let total = summaries.count
        return acknowledged.count == total ? nil : "billing acknowledged \(acknowledged.count) of \(total) summaries"
    }

    enum Outcome {
        case acknowledged
        case refused(String)
        case failed(String)
    }

    func shipOne(_ summary: CallSummary) async -> Outcome {
        do {
            _ = try await billing.request(CDRSubmission(summary: summary), timeout: timeout)
            return .acknowledged
        } catch where error.remote?.code == .badRequest {
            return .refused("refused by billing: \(error)")
        } catch {
            return .failed("\(error)")
        }
    }
}

extension CallSummarySpool {
    /// About how many summaries a file holds, from its size (a summary line is some 600 to 1,500 bytes).
    func estimatedCount(of name: String) -> Int {
        guard name.hasSuffix(".jsonl") else { return 1 }
        let attributes = try? FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(name).path)
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? 0
        return max(1, size / 900)
    }
}
