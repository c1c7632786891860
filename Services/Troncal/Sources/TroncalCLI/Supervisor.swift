public import Foundation
public import Logging
public import ServiceLifecycle
public import TroncalProtocol
public import TroncalRuntime
public import TroncalControl
import Synchronization

/// Runs every service instance of a site as a child process and restarts one that dies, with a backoff
/// (1 s doubling to 30 s, back to 1 s after a minute of uptime). On graceful shutdown it sends SIGTERM to
/// every child, waits up to `stopTimeout`, then SIGKILLs what is left.
///
/// Standby instances (`standby` in `instances`) are not started. The capacity controller's local executor names the
/// instances it wants running or stopped in `desired` (``DesiredStateFile``), read every half second: a standby marked
/// `running` is started, an instance marked `stopped` gets SIGTERM and is not restarted.
public final class Supervisor: Service, Sendable {
    public struct Child: Sendable {
        public var instance: InstanceSettings
        public var executable: URL
        public var arguments: [String]
        public var logFile: URL
    }

    let children: [Child]
    let logger: Logger
    let stopTimeout: Duration
    let desired: DesiredStateFile?
    private let state: Mutex<State>
    private let stopSignal = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))

    struct State {
        var pids: [String: Int32] = [:]
        var restarts: [String: Int] = [:]
        var stopping = false
        /// Whether each instance should run: not for standby ones, until the desired-state file says otherwise.
        var wanted: [String: Bool] = [:]
    }

    public init(children: [Child], logger: Logger, stopTimeout: Duration = .seconds(10), desired: DesiredStateFile? = nil) {
        self.children = children
        self.logger = logger
        self.stopTimeout = stopTimeout
        self.desired = desired
        var initial = State()
        for child in children { initial.wanted[child.instance.name] = !child.instance.standby }
        if let states = try? desired?.read() {
            for (name, wanted) in states where initial.wanted[name] != nil { initial.wanted[name] = wanted == .running }
        }
        state = Mutex(initial)
    }

    /// The current process id of each running instance.
    public var pids: [String: Int32] { state.withLock { $0.pids } }
    /// How many times each instance was restarted.
    public var restarts: [String: Int] { state.withLock { $0.restarts } }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for child in children {
                    group.addTask { await self.supervise(child) }
                }
                group.addTask { await self.killLeftoversAfterTimeout() }
                if desired != nil { group.addTask { await self.followDesiredStates() } }
                for _ in children { await group.next() }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.stopAll()
        }
    }

    private func supervise(_ child: Child) async {
        var delay = Duration.seconds(1)
        let name = child.instance.name
        while !state.withLock({ $0.stopping }) {
            guard state.withLock({ $0.wanted[name] ?? true }) else {
                try? await Task.sleep(for: .milliseconds(250))
                continue
            }
            let started = ContinuousClock.now
            let status: Int32
            do {
                status = try await runOnce(child)
            } catch {
                logger.error("cannot start instance", metadata: ["instance": "\(name)", "reason": "\(error)"])
                status = -1
            }
            if state.withLock({ $0.stopping }) { break }
            // Give a concurrent Ctrl-C a moment to mark us as stopping before restarting anything.
            try? await Task.sleep(for: .milliseconds(200))
            if state.withLock({ $0.stopping }) { break }
            if !state.withLock({ $0.wanted[name] ?? true }) {
                logger.notice("instance stopped as the capacity controller asked; not restarted", metadata: ["instance": "\(name)", "status": "\(status)"])
                delay = .seconds(1)
                continue
            }
            if ContinuousClock.now - started > .seconds(60) { delay = .seconds(1) }
            state.withLock { $0.restarts[name, default: 0] += 1 }
            logger.warning("instance exited; restarting", metadata: [
                "instance": "\(name)", "status": "\(status)", "restart-in": "\(delay)", "log": "\(child.logFile.path)",
            ])
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(30))
        }
    }

    /// Starts the child and waits for it to exit; returns its exit status.
    private func runOnce(_ child: Child) async throws -> Int32 {
        let process = Process()
        process.executableURL = child.executable
        process.arguments = child.arguments
        try FileManager.default.createDirectory(at: child.logFile.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: child.logFile.path) {
            _ = try? Data().write(to: child.logFile)
        }
        let log = try FileHandle(forWritingTo: child.logFile)
        defer { try? log.close() }
        _ = try log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        let exited = AsyncStream<Int32>.makeStream(bufferingPolicy: .bufferingNewest(1))
        process.terminationHandler = { process in
            exited.continuation.yield(process.terminationStatus)
            exited.continuation.finish()
        }
        try process.runWithDefaultSignals()
        let pid = process.processIdentifier
        let stopping = state.withLock { state -> Bool in
            state.pids[child.instance.name] = pid
            return state.stopping
        }
        if stopping { kill(pid, SIGTERM) }
        logger.info("instance started", metadata: ["instance": "\(child.instance.name)", "pid": "\(pid)"])
        var status: Int32 = -1
        for await code in exited.stream { status = code }
        state.withLock { _ = $0.pids.removeValue(forKey: child.instance.name) }
        return status
    }

    /// Reads the desired-state file every half second: an instance newly wanted starts (its loop is waiting), one no
    /// longer wanted gets SIGTERM. A file that cannot be read is logged once and changes nothing.
    private func followDesiredStates() async {
        guard let desired else { return }
        var unreadable = false
        while !Task.isCancelled, !state.withLock({ $0.stopping }) {
            do {
                let states = try desired.read()
                unreadable = false
                let stops = state.withLock { state -> [(String, Int32?)] in
                    var stops: [(String, Int32?)] = []
                    for (name, wanted) in states {
                        guard let before = state.wanted[name], before != (wanted == .running) else { continue }
                        state.wanted[name] = wanted == .running
                        if wanted == .stopped { stops.append((name, state.pids[name])) }
                    }
                    return stops
                }
                for (name, pid) in stops {
                    logger.notice("the capacity controller stops an instance (SIGTERM)", metadata: ["instance": "\(name)", "pid": "\(pid.map(String.init) ?? "none")"])
                    if let pid { kill(pid, SIGTERM) }
                }
            } catch {
                if !unreadable {
                    logger.error("the capacity controller's desired states cannot be read; nothing changed", metadata: ["reason": "\(error)"])
                    unreadable = true
                }
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Sends SIGTERM to every child; any still alive after `stopTimeout` gets SIGKILL.
    public func stopAll() {
        let pids = state.withLock { state -> [Int32] in
            state.stopping = true
            return Array(state.pids.values)
        }
        logger.info("stopping all instances", metadata: ["count": "\(pids.count)"])
        for pid in pids { kill(pid, SIGTERM) }
        stopSignal.continuation.yield()
    }

    private func killLeftoversAfterTimeout() async {
        for await _ in stopSignal.stream { break }
        guard !Task.isCancelled else { return }
        try? await Task.sleep(for: stopTimeout)
        guard !Task.isCancelled else { return }
        for (name, pid) in state.withLock({ Array($0.pids) }) {
            logger.warning("instance did not stop in time; killing", metadata: ["instance": "\(name)", "pid": "\(pid)"])
            kill(pid, SIGKILL)
        }
    }
}
