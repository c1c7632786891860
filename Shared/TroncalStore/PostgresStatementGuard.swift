import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// Runs one statement on a connection so that the caller always gets an answer, even when the connection dies in a
/// way the driver does not report: seen with postgres-nio when the server is shut down immediately while a commit
/// waits for a synchronous standby, where the statement's wait never ended. The statement runs in its own task; if
/// the connection closes and the statement has not finished a second later, the caller gets
/// ``StoreError/Code/connectionFailed`` ("outcome unknown") and the stuck task is cancelled and left behind.
enum PostgresStatementGuard {
    static func run<T: Sendable>(
        on connection: PostgresConnection, _ work: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let outcome = Outcome<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                outcome.install(continuation)
                let task = Task {
                    do {
                        outcome.finish(.success(try await work()))
                    } catch {
                        outcome.finish(.failure(error))
                    }
                }
                outcome.attach(task)
                connection.closeFuture.whenComplete { _ in
                    connection.eventLoop.scheduleTask(in: .seconds(1)) {
                        let lost = StoreError(
                            .connectionFailed,
                            "the connection to PostgreSQL closed while the statement ran; its outcome is unknown",
                            backend: .postgres)
                        if outcome.finish(.failure(lost)) { task.cancel() }
                    }
                }
            }
        } onCancel: {
            outcome.cancel()
        }
    }

    /// Resumes the caller once, whichever of the statement, the connection's death or cancellation comes first.
    private final class Outcome<T: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<T, any Error>?
            var task: Task<Void, Never>?
            var done = false
            var cancelled = false
        }
        private let state = Mutex(State())

        func install(_ continuation: CheckedContinuation<T, any Error>) {
            state.withLock { $0.continuation = continuation }
        }

        func attach(_ task: Task<Void, Never>) {
            let cancelNow = state.withLock { state -> Bool in
                state.task = task
                return state.cancelled
            }
            if cancelNow { task.cancel() }
        }

        /// Returns whether this call resumed the caller.
        @discardableResult
        func finish(_ result: Result<T, any Error>) -> Bool {
            let continuation = state.withLock { state -> CheckedContinuation<T, any Error>? in
                guard !state.done else { return nil }
                state.done = true
                defer { state.continuation = nil }
                return state.continuation
            }
            continuation?.resume(with: result)
            return continuation != nil
        }

        func cancel() {
            let task = state.withLock { state -> Task<Void, Never>? in
                state.cancelled = true
                return state.task
            }
            task?.cancel()
        }
    }
}

/// Runs `work` in its own task and returns its value, or nil when `timeout` passes first. Unlike a task group, it
/// does not wait for a `work` that ignores cancellation (a driver call stuck on a dead server): that task is
/// cancelled and left behind.
func valueWithin<T: Sendable>(_ timeout: Duration, _ work: @escaping @Sendable () async -> T?) async -> T? {
    let once = ResumeOnce<T?>()
    return await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
        once.install(continuation)
        let task = Task { once.resume(await work()) }
        Task {
            try? await Task.sleep(for: timeout)
            if once.resume(nil) { task.cancel() }
        }
    }
}

/// Resumes a continuation once; later calls say they came too late.
private final class ResumeOnce<T: Sendable>: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<T, Never>?, done: Bool)>((nil, false))

    func install(_ continuation: CheckedContinuation<T, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    @discardableResult
    func resume(_ value: T) -> Bool {
        let continuation = state.withLock { state -> CheckedContinuation<T, Never>? in
            guard !state.done else { return nil }
            state.done = true
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(returning: value)
        return continuation != nil
    }
}
