public import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension Process {
    /// Starts the process with no signal blocked in it. A child inherits the signal mask of the thread that spawns it,
    /// and the threads of Swift's concurrency pool and of Dispatch block most signals (SIGTERM, SIGINT, SIGUSR1 among
    /// them), so a child started plainly from one of them ignores `kill -TERM` and cannot be stopped gracefully. The
    /// mask is cleared on the calling thread for the spawn only and put back right after.
    public func runWithDefaultSignals() throws {
        var empty = sigset_t()
        var previous = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try run()
    }
}
