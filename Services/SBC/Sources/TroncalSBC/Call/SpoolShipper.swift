public import Foundation
public import Logging
internal import Metrics
public import ServiceLifecycle
public import TroncalLink
public import TroncalProtocol

/// Ships the call summaries of the spool to billing (`billing.cdr`) and deletes each file only after billing's
/// acknowledgement, which comes after its commit. What is not acknowledged stays and is sent again, after a restart
/// too; billing stores each summary once by id, so a resend never counts twice.
///
/// A file that cannot be read, or that billing refuses as malformed, is moved to `cdr-rejected/` beside the spool and
/// logged: never deleted unseen.
public struct SpoolShipper: Service {
    let spool: CallSummarySpool
    let billing: LinkClient
    let timeout: Duration
    let logger: Logger
    /// Summaries in flight at once.
    let concurrency: Int

    public init(spool: CallSummarySpool, billing: LinkClient, timeout: Duration, logger: Logger, concurrency: Int = 8) {
        self.spool = spool
        self.billing = billing
        self.timeout = timeout
        self.logger = logger
        self.concurrency = max(1, concurrency)
    }

    enum Outcome: Sendable { case shipped, retry(String), rejected(String) }

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

    /// Sends every named file, `concurrency` at a time; returns the reason of the first failure to retry, if any.
    func ship(_ names: [String]) async -> String? {
        await withTaskGroup(of: Outcome.self) { group in
            var iterator = names.makeIterator()
            var inFlight = 0
            var failure: String?
            func next() -> Bool {
                guard failure == nil, let name = iterator.next() else { return false }
                group.addTask { await shipOne(name) }
                inFlight += 1
                return true
            }
            while inFlight < concurrency, next() {}
            while inFlight > 0, let outcome = await group.next() {
                inFlight -= 1
                switch outcome {
                case .shipped: Counter(label: "troncal_sbc_cdrs_shipped_total", dimensions: [("result", "acknowledged")]).increment()
                case .rejected: Counter(label: "troncal_sbc_cdrs_shipped_total", dimensions: [("result", "rejected")]).increment()
                case .retry(let reason): failure = failure ?? reason
                }
                _ = next()
            }
            return failure
        }
    }

    func shipOne(_ name: String) async -> Outcome {
        let summary: CallSummary
        do {
            summary = try spool.read(name)
        } catch {
            spool.reject(name, logger: logger, reason: "unreadable: \(error)")
            return .rejected("unreadable")
        }
        do {
            _ = try await billing.request(CDRSubmission(summary: summary), timeout: timeout)
            spool.remove(name)
            return .shipped
        } catch let error as LinkError where error.remote?.code == .badRequest {
            spool.reject(name, logger: logger, reason: "refused by billing: \(error)")
            return .rejected("refused")
        } catch {
            return .retry("\(error)")
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
