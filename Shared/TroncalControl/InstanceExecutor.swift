public import Foundation
public import TroncalProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Carries out the capacity controller's decisions: starts an instance (one from the standby pool) and stops one (a
/// failed or withdrawn instance, or one removed at scale-in: it gets SIGTERM, so an SBC drains its calls first).
/// Adapters: ``LocalProcessExecutor`` (the processes `troncal up` supervises), ``SystemdExecutor`` (the units of
/// `troncal infra render`) and ``CommandExecutor`` (a program of the operator's, for a cluster scheduler).
///
/// An executor never runs a shell: every adapter passes an argument vector, and refuses a role or an instance name
/// that is not a valid name (1–63 characters of `a-z 0-9 -`), so no data from a configuration or a database can
/// become a command.
public protocol InstanceExecutor: Sendable {
    /// `local`, `systemd` or `command`, for logs and the event log.
    var kind: String { get }
    func start(role: Role, instance: String) async throws
    func stop(role: Role, instance: String) async throws
}

public struct ExecutorError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension InstanceExecutor {
    static func checked(_ role: Role, _ instance: String) throws {
        guard role != .operator, PeerIdentity.isValidName(instance) else {
            throw ExecutorError("refused: '\(instance.prefix(80))' of role \(role) is not a valid instance name")
        }
    }
}

/// What the capacity controller wants of the instances `troncal up` runs on this machine: a JSON object
/// `{"instance": "running" | "stopped"}` in `<dataDirectory>/control/desired.json`. The supervisor of `troncal up`
/// reads it every half second: it starts an instance marked `running` (a standby taken into service), stops one marked
/// `stopped` with SIGTERM and does not restart it. Instances not named follow the configuration (standby ones stay
/// stopped). The file is replaced whole (written aside, then renamed), so a reader never sees half of it.
public struct DesiredStateFile: Sendable {
    public enum State: String, Codable, Sendable { case running, stopped }

    public let url: URL
    public init(dataDirectory: URL) {
        url = dataDirectory.appendingPathComponent("control").appendingPathComponent("desired.json")
    }

    /// The states named so far (none when the file does not exist yet).
    public func read() throws -> [String: State] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [:] }
        do {
            return try JSONDecoder().decode([String: State].self, from: Data(contentsOf: url))
        } catch {
            throw ExecutorError("\(url.path) is not a valid desired-state file: \(error)")
        }
    }

    public func set(_ instance: String, _ state: State) throws {
        var states = try read()
        states[instance] = state
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let aside = url.deletingLastPathComponent().appendingPathComponent(".desired.json.\(ProcessInfo.processInfo.processIdentifier)")
        try encoder.encode(states).write(to: aside)
        guard rename(aside.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: aside)
            throw ExecutorError("cannot replace \(url.path): \(reason)")
        }
    }
}

/// The instances of `troncal up` on this machine, through its supervisor (``DesiredStateFile``).
public struct LocalProcessExecutor: InstanceExecutor {
    public let kind = "local"
    public let file: DesiredStateFile
    public init(dataDirectory: URL) { file = DesiredStateFile(dataDirectory: dataDirectory) }

    public func start(role: Role, instance: String) async throws {
        try Self.checked(role, instance)
        try file.set(instance, .running)
    }

    public func stop(role: Role, instance: String) async throws {
        try Self.checked(role, instance)
        try file.set(instance, .stopped)
    }
}

/// A program run with an argument vector (no shell), waited for at most `timeout`; a non-zero exit is an error that
/// carries the end of its output.
public struct CommandExecutor: InstanceExecutor {
    public let kind: String
    public let program: String
    public let arguments: [String]
    public let timeout: Duration

    /// `program arguments… start|stop ROLE INSTANCE`: the adapter for a cluster scheduler (docs/capacity.md).
    public init(program: String, arguments: [String] = [], timeout: Duration = .seconds(120), kind: String = "command") {
        self.program = program
        self.arguments = arguments
        self.timeout = timeout
        self.kind = kind
    }

    /// The argument vector of one action (the program's own arguments first).
    public func vector(_ action: String, role: Role, instance: String) -> [String] {
        arguments + [action, role.rawValue, instance]
    }

    public func start(role: Role, instance: String) async throws {
        try Self.checked(role, instance)
        try await run(vector("start", role: role, instance: instance))
    }

    public func stop(role: Role, instance: String) async throws {
        try Self.checked(role, instance)
        try await run(vector("stop", role: role, instance: instance))
    }

    func run(_ vector: [String]) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = vector
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        let finished = AsyncStream<Int32>.makeStream(bufferingPolicy: .bufferingNewest(1))
        process.terminationHandler = { finished.continuation.yield($0.terminationStatus) }
        do {
            try process.run()
        } catch {
            throw ExecutorError("cannot run \(program): \(error)")
        }
        // Read the output as it comes, so a chatty program never blocks on a full pipe.
        let reader = Task.detached { output.fileHandleForReading.readDataToEndOfFile() }
        let status = await withTaskGroup(of: Int32?.self) { group in
            group.addTask {
                for await status in finished.stream { return status }
                return nil
            }
            group.addTask { [timeout] in
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let status else {
            kill(process.processIdentifier, SIGKILL)
            throw ExecutorError("\(program) \(vector.joined(separator: " ")) did not finish within \(timeout): killed")
        }
        let text = String(decoding: await reader.value, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard status == 0 else {
            throw ExecutorError("\(program) \(vector.joined(separator: " ")) exited with \(status): \(text.suffix(400))")
        }
    }
}

/// The systemd units of `troncal infra render` on this host: `systemctl start|stop troncal-ROLE@INSTANCE.service`.
/// A stop waits for the unit to stop (an SBC drains first, within its `TimeoutStopSec`).
public struct SystemdExecutor: InstanceExecutor {
    public let kind = "systemd"
    let command: CommandExecutor

    public init(systemctl: String = "/usr/bin/systemctl", timeout: Duration = .seconds(120)) {
        command = CommandExecutor(program: systemctl, timeout: timeout, kind: "systemd")
    }

    public static func unit(role: Role, instance: String) -> String { "troncal-\(role.rawValue)@\(instance).service" }

    public func vector(_ action: String, role: Role, instance: String) -> [String] { [action, Self.unit(role: role, instance: instance)] }

    public func start(role: Role, instance: String) async throws {
        try Self.checked(role, instance)
        try await command.run(vector("start", role: role, instance: instance))
    }

    public func stop(role: Role, instance: String) async throws {
        try Self.checked(role, instance)
        try await command.run(vector("stop", role: role, instance: instance))
    }
}
