internal import Foundation
internal import Logging
internal import NIOCore
internal import NIOPosix
internal import TroncalProtocol

/// Group commit of one event loop's call summaries to the spool: the summaries that are ready while a write is in
/// flight go together in the next file, with one fsync for all of them. The loop never blocks: files are written on
/// NIO's thread pool and each summary's `done` runs back on the loop once its file is durable (that is when the
/// held-back BYE or 200 may leave).
///
/// A write that fails (a full disk, no file descriptor left) is tried again for about 3 s; then every summary of
/// it goes whole to the log at critical level, from where it can be put back, and its call goes on: it is never
/// dropped silently. Loop-confined.
final class SpoolWriter {
    let spool: CallSummarySpool
    let eventLoop: any EventLoop
    let loopIndex: Int
    let logger: Logger
    private var queued: [(summary: CallSummary, done: (() -> Void)?)] = []
    private var inFlight: [(summary: CallSummary, done: (() -> Void)?)] = []
    private var sequence: UInt64 = 0
    /// The most summaries one file holds.
    static let maximumPerFile = 200
    static let attempts = 7

    init(spool: CallSummarySpool, eventLoop: any EventLoop, loopIndex: Int, logger: Logger) {
        self.spool = spool
        self.eventLoop = eventLoop
        self.loopIndex = loopIndex
        self.logger = logger
    }

    /// Summaries queued or being written.
    var backlog: Int { queued.count + inFlight.count }

    /// Writes `summary`; `done` runs on the loop once it is on disk (or, failing that, in the log).
    func submit(_ summary: CallSummary, then done: (() -> Void)? = nil) {
        queued.append((summary, done))
        if inFlight.isEmpty { startWrite() }
    }

    private func startWrite() {
        guard inFlight.isEmpty, !queued.isEmpty else { return }
        let count = min(queued.count, Self.maximumPerFile)
        inFlight = Array(queued.prefix(count))
        queued.removeFirst(count)
        sequence &+= 1
        let milliseconds = Int64(Date().timeIntervalSince1970 * 1000)
        let name = String(format: "%013lld-%02d-%08llu", milliseconds, loopIndex, sequence)
        write(name: name, attempt: 1, delay: .milliseconds(50))
    }

    private func write(name: String, attempt: Int, delay: TimeAmount) {
        let spool = self.spool
        let summaries = inFlight.map(\.summary)
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) {
            try spool.write(summaries, name: name)
        }.whenComplete { result in
            let writer = bound.value
            switch result {
            case .success:
                writer.finished()
            case .failure(let error) where attempt < Self.attempts:
                writer.eventLoop.scheduleTask(in: delay) {
                    bound.value.write(name: name, attempt: attempt + 1, delay: delay * 2)
                }
                if attempt == 1 {
                    writer.logger.error("call summaries could not be spooled yet; trying again", metadata: [
                        "summaries": "\(summaries.count)", "reason": "\(error)",
                    ])
                }
            case .failure(let error):
                for summary in summaries {
                    writer.logger.critical("call summary could not be spooled: it is in this line only", metadata: [
                        "call-id": "\(summary.callID)", "customer": "\(summary.customer)", "reason": "\(error)",
                        "summary": "\(CallSummarySpool.json(summary))",
                    ])
                }
                writer.finished()
            }
        }
    }

    private func finished() {
        let done = inFlight
        inFlight = []
        for entry in done { entry.done?() }
        startWrite()
    }
}
