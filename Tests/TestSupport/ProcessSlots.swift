import Foundation
import Logging
import Synchronization
public import Testing

/// At most N tests that start the real executables (a site of several services, sipp, Chromium, a PostgreSQL server)
/// run at once in one test process; the other tests run beside them as usual. All of them at once on a 2-core machine
/// starve each service for tens of seconds, which tests timers (SIP retransmissions, link probes, health checks) rather
/// than the code. N is `TRONCAL_TEST_PROCESS_WIDTH` (default 3).
///
/// Use it on a suite (`@Suite(.startsProcesses)`) or a test. A test waits for a slot before it starts, so its own
/// timeouts count from when it runs.
public struct ProcessSlotTrait: TestTrait, SuiteTrait, TestScoping {
    /// The test takes every slot: it runs with no other process-starting test beside it (a flood, a thousand calls).
    public var exclusive = false

    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        // The suite itself holds no slot: its tests do, one each (or all, for an exclusive test: then the suite's
        // trait, which its tests inherit, leaves the work to the test's own).
        let exclusiveElsewhere = !exclusive && test.traits.contains { ($0 as? ProcessSlotTrait)?.exclusive == true }
        guard testCase != nil, !test.isSuite, !exclusiveElsewhere else {
            try await function()
            return
        }
        let slots = ProcessSlots.shared
        let count = exclusive ? slots.width : 1
        let queued = ContinuousClock.now
        await slots.acquire(count)
        let started = ContinuousClock.now
        defer {
            slots.release(count)
            // One line per process-starting test, with the log's timestamp: the run's timeline (what waited, for how
            // long, and what held the machine), for a run that takes longer than it should.
            let ended = ContinuousClock.now
            Self.logger.notice("process test done: waited \(Self.seconds(started - queued)) s for \(count) slot(s), ran \(Self.seconds(ended - started)) s", metadata: ["test": "\(test.name)"])
        }
        try await function()
    }

    static let logger = Logger(label: "test.slots")

    static func seconds(_ duration: Duration) -> String {
        String(format: "%.1f", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
    }
}

extension Trait where Self == ProcessSlotTrait {
    /// The test (or every test of the suite) starts real processes: it runs in one of the bounded slots.
    public static var startsProcesses: Self { ProcessSlotTrait() }
    /// The test loads the machine on its own (a flood, a thousand calls): no other process-starting test runs beside it.
    public static var startsProcessesAlone: Self { ProcessSlotTrait(exclusive: true) }
}

/// A counting semaphore for async code: FIFO waiters (a waiter for several slots holds back those behind it, so that
/// an exclusive test is not starved), no thread blocked while waiting.
public final class ProcessSlots: Sendable {
    public static let shared = ProcessSlots(
        width: max(1, Int(ProcessInfo.processInfo.environment["TRONCAL_TEST_PROCESS_WIDTH"] ?? "") ?? 3))

    private struct State {
        var free: Int
        var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }
    private let state: Mutex<State>
    public let width: Int

    public init(width: Int) {
        self.width = width
        state = Mutex(State(free: width))
    }

    public func acquire(_ count: Int = 1) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.waiters.isEmpty, state.free >= count {
                    state.free -= count
                    return true
                }
                state.waiters.append((count, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }

    public func release(_ count: Int = 1) {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.free += count
            var ready: [CheckedContinuation<Void, Never>] = []
            while let first = state.waiters.first, first.count <= state.free {
                state.free -= first.count
                ready.append(first.continuation)
                state.waiters.removeFirst()
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }
}
