internal import Foundation
internal import Logging
internal import NIOCore
internal import NIOPosix
internal import TroncalProtocol

/// Group commit of one event loop's call summaries to the spool. Summaries are appended to the loop's open segment:
/// those that become ready while a write is in flight go together in the next append, with one fdatasync for all of
/// them. A segment is sealed (renamed to its shipped name) about a second after it was opened, or at
/// `maximumPerSegment` summaries, so a new file is created about once a second per loop, not once per call: file
/// creation was a fifth of the SBC's CPU when each group had its own file. The loop never blocks: files are written
/// on NIO's thread pool, one operation at a time, and each summary's `done` runs back on the loop once it is durable
/// (that is when the held-back BYE or 200 may leave).
///
/// A write that fails (a full disk, no file descriptor left) cuts the segment back to what was durable, seals it, and
/// is tried again in a new segment for about 3 s; then every summary of it goes whole to the log at critical level,
/// from where it can be put back, and its call goes on: it is never dropped silently. Loop-confined.
final class SpoolWriter {
    struct Segment {
        var name: String
        var descriptor: Int32
        var length: Int
        var count: Int
    }

    let spool: CallSummarySpool
    let eventLoop: any EventLoop
    let loopIndex: Int
    let logger: Logger
    private var queued: [(summary: CallSummary, done: (() -> Void)?)] = []
    private var inFlight: [(summary: CallSummary, done: (() -> Void)?)] = []
    private var busy = false
    private var segment: Segment?
    private var sealDue = false
    private var sealTimer: Scheduled<Void>?
    private var sequence: UInt64 = 0
    /// The most summaries one append, and one segment, holds.
    static let maximumPerWrite = 200
    static let maximumPerSegment = 5_000
    /// How long a segment stays open before it is sealed and shipped.
    static let segmentAge = TimeAmount.seconds(1)
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
        pump()
    }

    private var bound: NIOLoopBound<SpoolWriter> { NIOLoopBound(self, eventLoop: eventLoop) }

    /// Starts the next operation when none is running: an append when summaries wait, else a due seal.
    private func pump() {
        guard !busy else { return }
        if !queued.isEmpty {
            let count = min(queued.count, Self.maximumPerWrite)
            inFlight = Array(queued.prefix(count))
            queued.removeFirst(count)
            append(attempt: 1, delay: .milliseconds(50))
        } else if sealDue, let open = segment {
            sealDue = false
            sealTimer?.cancel()
            sealTimer = nil
            segment = nil
            busy = true
            let spool = self.spool
            let bound = self.bound
            let logger = self.logger
            NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) {
                try spool.seal(open.descriptor, name: open.name)
            }.whenComplete { result in
                if case .failure(let error) = result {
                    // The summaries are durable in the hidden segment; the next start seals it.
                    logger.error("spool segment could not be sealed: shipped after a restart", metadata: ["file": "\(open.name)", "reason": "\(error)"])
                }
                bound.value.busy = false
                bound.value.pump()
            }
        }
    }

    private func newSegmentName() -> String {
        sequence &+= 1
        let milliseconds = Int64(Date().timeIntervalSince1970 * 1000)
        return String(format: "%013lld-%02d-%08llu", milliseconds, loopIndex, sequence)
    }

    private func append(attempt: Int, delay: TimeAmount) {
        busy = true
        let spool = self.spool
        let summaries = inFlight.map(\.summary)
        let current = segment
        let freshName = current == nil ? newSegmentName() : nil
        let bound = self.bound
        NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) { () throws -> Segment in
            let data = try CallSummarySpool.lines(summaries)
            var target = try current ?? Segment(name: freshName!, descriptor: try spool.openSegment(freshName!), length: 0, count: 0)
            do {
                try spool.append(data, to: target.descriptor, length: target.length, name: target.name)
            } catch {
                // What is in the segment is durable: seal it as it is and let the retry start a new one.
                if target.length > 0 {
                    try? spool.seal(target.descriptor, name: target.name)
                } else {
                    close(target.descriptor)
                    unlink(spool.openSegmentPath(target.name))
                }
                throw error
            }
            target.length += data.count
            target.count += summaries.count
            return target
        }.whenComplete { result in
            let writer = bound.value
            switch result {
            case .success(let updated):
                writer.segment = updated
                if current == nil { writer.scheduleSeal() }
                if updated.count >= Self.maximumPerSegment { writer.sealDue = true }
                writer.finished()
            case .failure(let error):
                writer.segment = nil
                writer.sealTimer?.cancel()
                if attempt < Self.attempts {
                    if attempt == 1 {
                        writer.logger.error("call summaries could not be spooled yet; trying again", metadata: [
                            "summaries": "\(summaries.count)", "reason": "\(error)",
                        ])
                    }
                    writer.eventLoop.scheduleTask(in: delay) {
                        bound.value.append(attempt: attempt + 1, delay: delay * 2)
                    }
                } else {
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
    }

    private func scheduleSeal() {
        sealTimer?.cancel()
        let bound = self.bound
        sealTimer = eventLoop.scheduleTask(in: Self.segmentAge) {
            let writer = bound.value
            writer.sealTimer = nil
            writer.sealDue = true
            writer.pump()
        }
    }

    private func finished() {
        let done = inFlight
        inFlight = []
        busy = false
        for entry in done { entry.done?() }
        pump()
    }
}
