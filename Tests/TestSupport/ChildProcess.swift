public import Foundation

/// A process started by a test, stopped by its PID in `stop()` (call it in a `defer`) even when the test fails.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched from the test's task; Process itself is thread-safe for
    // terminate/waitUntilExit/processIdentifier.
    public let process: Process
    public let output: URL

    /// Starts `executable` with `arguments`, stdout and stderr appended to `output`.
    public init(_ executable: URL, _ arguments: [String], output: URL) throws {
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        try Data().write(to: output)
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        self.output = output
        try process.run()
    }

    /// A process the test forgot to stop (it threw first) is killed when its handle goes away.
    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// Sends `signal` and waits up to `timeout` for exit; SIGKILLs after that.
    public func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(15)) async {
        guard process.isRunning else { return }
        kill(pid, signal)
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while process.isRunning, clock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }

    public var outputText: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

    /// Runs a command to completion and returns its exit status and output.
    public static func run(_ executable: URL, _ arguments: [String], timeout: Duration = .seconds(30)) async throws -> (status: Int32, output: String) {
        let directory = try TemporaryDirectory(prefix: "troncal-run")
        defer { directory.remove() }
        let child = try ChildProcess(executable, arguments, output: directory.url.appendingPathComponent("out"))
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while child.isRunning, clock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if child.isRunning { await child.stop(signal: SIGKILL) }
        child.process.waitUntilExit()
        return (child.process.terminationStatus, child.outputText)
    }
}

/// Where the built executables are: `TRONCAL_BIN_DIR`, or `.build/debug` of this package.
public func troncalBinaryDirectory(filePath: String = #filePath) -> URL {
    if let directory = ProcessInfo.processInfo.environment["TRONCAL_BIN_DIR"], !directory.isEmpty {
        return URL(fileURLWithPath: directory)
    }
    var root = URL(fileURLWithPath: filePath)
    while root.path != "/" && !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) {
        root.deleteLastPathComponent()
    }
    return root.appendingPathComponent(".build/debug")
}

/// A port base for a test site, so that concurrent tests and a site run by hand do not collide. Every port a
/// test derives from it (default ports + offset, up to 9200 + offset) stays below 32768, where Linux starts
/// handing out ephemeral ports for outgoing connections and port-0 binds.
public func freePortOffset() -> Int {
    Int.random(in: 10...230) * 100
}
