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
        // Alone on the machine means beside no busy in-process tests either: they load both cores for the first
        // minute or two of a run, which is when the exclusive tests come.
        if exclusive, let busy = await MachineLoad.waitUntilQuiet() {
            Self.logger.notice("process test waited for the machine to quieten", metadata: [
                "test": "\(test.name)", "seconds": "\(Self.seconds(ContinuousClock.now - queued))", "busy-percent": "\(Int(busy * 100))",
            ])
        }
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

/// A counting semaphore for async code, no thread blocked while waiting, that runs the tests needing the whole
/// machine first:
/// - For `gate` after the first request nothing is granted, so that the requests of every test starting with the run
///   are in (a serialized suite's first test, every test of the others).
/// - Then a waiter for every slot (an exclusive test) goes before the others, in arrival order, as soon as all slots
///   are free; while one waits, no other test starts, so it waits only for those already running.
/// - The others go in arrival order.
/// The exclusive tests (the labs, floods, a thousand calls) then run back to back at the start, instead of each
/// waiting mid-run for the longest test beside it while the other slots stand idle.
public final class ProcessSlots: Sendable {
    public static let shared = ProcessSlots(
        width: max(1, Int(ProcessInfo.processInfo.environment["TRONCAL_TEST_PROCESS_WIDTH"] ?? "") ?? 3))

    private struct Waiter {
        var count: Int
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var free: Int
        var waiters: [Waiter] = []
        /// nil: no request yet; false: the gate is closed (collecting the first requests); true: granting.
        var open: Bool?
    }
    private let state: Mutex<State>
    public let width: Int
    let gate: Duration

    public init(width: Int, gate: Duration = .seconds(2)) {
        self.width = width
        self.gate = gate
        state = Mutex(State(free: width))
    }

    public func acquire(_ count: Int = 1) async {
        let count = min(count, width)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let (ready, first) = state.withLock { state -> ([CheckedContinuation<Void, Never>], Bool) in
                state.waiters.append(Waiter(count: count, continuation: continuation))
                guard let open = state.open else {
                    state.open = false
                    return ([], true)
                }
                return (open ? Self.grant(&state, width: width) : [], false)
            }
            if first {
                let gate = gate
                Task {
                    try? await Task.sleep(for: gate)
                    let ready = self.state.withLock { state in
                        state.open = true
                        return Self.grant(&state, width: self.width)
                    }
                    for continuation in ready { continuation.resume() }
                }
            }
            for continuation in ready { continuation.resume() }
        }
    }

    public func release(_ count: Int = 1) {
        let count = min(count, width)
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.free += count
            return state.open == true ? Self.grant(&state, width: width) : []
        }
        for continuation in ready { continuation.resume() }
    }

    /// The waiters that may start now.
    private static func grant(_ state: inout State, width: Int) -> [CheckedContinuation<Void, Never>] {
        if let index = state.waiters.firstIndex(where: { $0.count >= width }) {
            // A test that needs the machine: it goes first, once everything running has finished; nothing starts
            // beside it.
            guard state.free >= width else { return [] }
            state.free -= width
            return [state.waiters.remove(at: index).continuation]
        }
        var ready: [CheckedContinuation<Void, Never>] = []
        while let first = state.waiters.first, first.count <= state.free {
            state.free -= first.count
            ready.append(first.continuation)
            state.waiters.removeFirst()
        }
        return ready
    }
}

/// The machine's CPU use from /proc/stat, for the tests that must run alone.
public enum MachineLoad {
    /// The busy share of all CPUs over `interval`, or nil where /proc/stat cannot be read.
    public static func busy(over interval: Duration = .seconds(1)) async -> Double? {
        guard let first = times() else { return nil }
        try? await Task.sleep(for: interval)
        guard let second = times(), second.total > first.total else { return nil }
        return 1 - Double(second.idle - first.idle) / Double(second.total - first.total)
    }

    /// What is left of the run's time for such waits: a machine kept busy by something else (a noisy neighbour)
    /// costs the run at most this, not a wait per exclusive test.
    static let budget = Mutex<Duration>(.seconds(150))

    /// Waits until the CPUs were less than `threshold` busy for `quiet` seconds in a row, within what is left of
    /// the run's `budget`; returns the last busy share measured when it had to wait, nil when the machine was quiet
    /// at once (or unreadable).
    public static func waitUntilQuiet(threshold: Double = 0.5, quiet: Int = 2) async -> Double? {
        let started = ContinuousClock.now
        let end = started + budget.withLock { $0 }
        defer {
            let spent = ContinuousClock.now - started
            budget.withLock { $0 = max(.zero, $0 - spent) }
        }
        var calm = 0
        var waited = false
        var last = 0.0
        while ContinuousClock.now < end {
            guard let busy = await busy() else { return nil }
            last = busy
            calm = busy < threshold ? calm + 1 : 0
            if calm >= quiet { return waited ? last : nil }
            if busy >= threshold { waited = true }
        }
        return waited ? last : nil
    }

    /// Idle (idle + iowait) and total jiffies of all CPUs.
    static func times() -> (idle: UInt64, total: UInt64)? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let line = text.split(separator: "\n").first,
            line.hasPrefix("cpu ")
        else { return nil }
        let fields = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard fields.count >= 5 else { return nil }
        return (fields[3] + fields[4], fields.prefix(8).reduce(0, +))
    }
}
