import Foundation
import Logging
import ServiceLifecycle
import TestSupport
import Testing
import TroncalControl
import TroncalProtocol
import TroncalRuntime

@testable import TroncalCLI

/// The capacity controller's executors: each runs an argument vector (never a shell), refuses a name that is not an
/// instance name, reports a failed or hung command; the local one goes through `troncal up`'s supervisor.
@Suite struct ExecutorTests {
    /// A directory with a script that appends its arguments to `calls` and exits with `status`.
    static func recorder(status: Int = 0, sleep: Int = 0) throws -> (directory: TemporaryDirectory, script: String, calls: URL) {
        let directory = try TemporaryDirectory(prefix: "troncal-executor")
        let calls = directory.url.appendingPathComponent("calls")
        let script = directory.url.appendingPathComponent("run")
        try """
            #!/bin/sh
            echo "$@" >> '\(calls.path)'
            [ \(sleep) -gt 0 ] && sleep \(sleep)
            echo "said on stdout"
            exit \(status)
            """.write(to: script, atomically: true, encoding: .utf8)
        chmod(script.path, 0o755)
        return (directory, script.path, calls)
    }

    static func lines(_ url: URL) -> [String] {
        ((try? String(contentsOf: url, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @Test func theCommandExecutorRunsTheProgramWithStartOrStopRoleAndInstanceAsArguments() async throws {
        let (directory, script, calls) = try Self.recorder()
        defer { directory.remove() }
        let executor = CommandExecutor(program: script, arguments: ["--cluster", "lab"])
        try await executor.start(role: .sbc, instance: "sbc-3")
        try await executor.stop(role: .routing, instance: "routing-2")
        #expect(Self.lines(calls) == ["--cluster lab start sbc sbc-3", "--cluster lab stop routing routing-2"])
    }

    @Test func aNameThatIsNotAnInstanceNameIsRefusedWithoutRunningAnything() async throws {
        let (directory, script, calls) = try Self.recorder()
        defer { directory.remove() }
        for name in ["sbc-3; rm -rf /", "$(reboot)", "", "-sbc", String(repeating: "a", count: 64), "SBC-3"] {
            await #expect(throws: ExecutorError.self) { try await CommandExecutor(program: script).start(role: .sbc, instance: name) }
        }
        await #expect(throws: ExecutorError.self) { try await CommandExecutor(program: script).start(role: .operator, instance: "ops") }
        #expect(Self.lines(calls).isEmpty)
    }

    @Test func aFailedOrHungCommandIsAnErrorWithItsOutput() async throws {
        let (directory, script, _) = try Self.recorder(status: 3)
        defer { directory.remove() }
        do {
            try await CommandExecutor(program: script).start(role: .sbc, instance: "sbc-3")
            Issue.record("a failing command succeeded")
        } catch let error as ExecutorError {
            #expect(error.description.contains("exited with 3") && error.description.contains("said on stdout"), "\(error)")
        }
        let (slow, slowScript, _) = try Self.recorder(sleep: 30)
        defer { slow.remove() }
        do {
            try await CommandExecutor(program: slowScript, timeout: .seconds(1)).stop(role: .sbc, instance: "sbc-3")
            Issue.record("a hung command succeeded")
        } catch let error as ExecutorError {
            #expect(error.description.contains("did not finish within") && error.description.contains("killed"), "\(error)")
        }
        await #expect(throws: ExecutorError.self) { try await CommandExecutor(program: "/nonexistent/scheduler").start(role: .sbc, instance: "sbc-3") }
    }

    @Test func theSystemdExecutorStartsAndStopsTheRenderedTemplateUnit() async throws {
        let (directory, script, calls) = try Self.recorder()
        defer { directory.remove() }
        let executor = SystemdExecutor(systemctl: script)
        try await executor.start(role: .sbc, instance: "sbc-3")
        try await executor.stop(role: .billing, instance: "billing-2")
        #expect(Self.lines(calls) == ["start troncal-sbc@sbc-3.service", "stop troncal-billing@billing-2.service"])
    }

    @Test func theLocalExecutorWritesTheDesiredStatesWholeAndABadFileIsAnError() async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-desired")
        defer { directory.remove() }
        let executor = LocalProcessExecutor(dataDirectory: directory.url)
        try await executor.start(role: .sbc, instance: "sbc-3")
        try await executor.stop(role: .sbc, instance: "sbc-1")
        #expect(try executor.file.read() == ["sbc-3": .running, "sbc-1": .stopped])
        try "{\"sbc-3\": \"maybe\"}".write(to: executor.file.url, atomically: true, encoding: .utf8)
        #expect(throws: ExecutorError.self) { try executor.file.read() }
    }

    /// `troncal up`'s supervisor: a standby instance is not started until the desired-state file wants it running;
    /// one marked stopped gets SIGTERM and is not restarted.
    @Test func theSupervisorStartsAStandbyWhenAskedAndStopsAnInstanceForGood() async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-supervisor")
        defer { directory.remove() }
        let desired = DesiredStateFile(dataDirectory: directory.url)
        var standby = InstanceSettings(role: .routing, name: "routing-3", linkPort: 1, adminPort: 2)
        standby.standby = true
        let running = InstanceSettings(role: .routing, name: "routing-1", linkPort: 3, adminPort: 4)
        let children = [running, standby].map { instance in
            Supervisor.Child(
                instance: instance, executable: URL(fileURLWithPath: "/bin/sleep"), arguments: ["600"],
                logFile: directory.url.appendingPathComponent("\(instance.name).log"))
        }
        let supervisor = Supervisor(children: children, logger: Logger(label: "test.supervisor"), stopTimeout: .seconds(5), desired: desired)
        let group = ServiceGroup(configuration: .init(services: [.init(service: supervisor)], logger: Logger(label: "test.group")))
        let task = Task { try await group.run() }
        defer {
            for pid in supervisor.pids.values { kill(pid, SIGKILL) }
        }
        #expect(await eventually(timeout: .seconds(20)) { supervisor.pids["routing-1"] != nil })
        #expect(supervisor.pids["routing-3"] == nil, "a standby instance was started")
        try desired.set("routing-3", .running)
        #expect(await eventually(timeout: .seconds(20)) { supervisor.pids["routing-3"] != nil }, "the standby was not started")
        let first = try #require(supervisor.pids["routing-1"])
        try desired.set("routing-1", .stopped)
        #expect(await eventually(timeout: .seconds(20)) { supervisor.pids["routing-1"] == nil }, "routing-1 was not stopped")
        #expect(kill(first, 0) != 0, "routing-1's process is still alive")
        await group.triggerGracefulShutdown()
        _ = try? await task.value
        // Never restarted: its loop waited for the file to want it again.
        #expect(supervisor.restarts["routing-1"] == nil)
        #expect(supervisor.pids.isEmpty)
    }
}
