import Foundation
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
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        // The suite itself holds no slot: its tests do, one each.
        guard testCase != nil, !test.isSuite else {
            try await function()
            return
        }
        await ProcessSlots.shared.acquire()
        do {
            try await function()
        } catch {
            ProcessSlots.shared.release()
            throw error
        }
        ProcessSlots.shared.release()
    }
}

extension Trait where Self == ProcessSlotTrait {
    /// The test (or every test of the suite) starts real processes: it runs in one of the bounded slots.
    public static var startsProcesses: Self { ProcessSlotTrait() }
}

/// A counting semaphore for async code: FIFO waiters, no thread blocked while waiting.
public final class ProcessSlots: Sendable {
    public static let shared = ProcessSlots(
        width: max(1, Int(ProcessInfo.processInfo.environment["TRONCAL_TEST_PROCESS_WIDTH"] ?? "") ?? 3))

    private struct State {
        var free: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state: Mutex<State>

    public init(width: Int) {
        state = Mutex(State(free: width))
    }

    public func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.free > 0 {
                    state.free -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    public func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.free += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
