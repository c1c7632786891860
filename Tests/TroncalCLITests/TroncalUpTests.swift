import Foundation
import Testing
import TestSupport
import TroncalCLI
import TroncalProtocol
import TroncalRuntime

/// End to end: the real executables, real mutual TLS on loopback.
@Suite("troncal up and troncal status", .serialized, .startsProcesses)
struct TroncalUpTests {
    let binaries = troncalBinaryDirectory()

    func status(_ dataDir: String) async throws -> [InstanceStatusRow] {
        let (_, output) = try await ChildProcess.run(
            binaries.appendingPathComponent("troncal"), ["status", "--data-dir", dataDir, "--json", "--timeout", "1000"])
        guard let start = output.firstIndex(of: "[") else { return [] }
        return (try? JSONDecoder().decode([InstanceStatusRow].self, from: Data(output[start...].utf8))) ?? []
    }

    @Test func upStartsAllSixServicesHealthyRestartsAKilledOneAndStopsAllOnSIGINT() async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-up")
        defer { directory.remove() }
        let dataDir = directory.url.appendingPathComponent("site").path
        let offset = await freePortOffset()
        defer { releasePortOffset(offset) }
        // The site `troncal up --port-offset` would write, with the SBC's relay ports moved below every test's ports
        // (the default 20000-29999 is where other tests' sites listen while this one runs).
        var config = SiteConfig().shiftingPorts(by: offset)
        config.site = "test-up"
        config.sbc.mediaPortMin = 5900
        config.sbc.mediaPortMax = 6059
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        try ConfigLoader.encode(config).write(to: URL(fileURLWithPath: dataDir).appendingPathComponent("site.json"))
        let up = try ChildProcess(
            binaries.appendingPathComponent("troncal"),
            ["up", "--data-dir", dataDir, "--site-name", "test-up", "--port-offset", "\(offset)"],
            output: directory.url.appendingPathComponent("up.log"))
        var childPids: [Int32] = []
        defer {
            up.terminateNow()
            for pid in childPids { kill(pid, SIGKILL) }
        }

        var rows: [InstanceStatusRow] = []
        let healthy = try await eventually(timeout: .seconds(90), interval: .milliseconds(500)) {
            rows = try await status(dataDir)
            return rows.count == 6 && rows.allSatisfy { $0.health == "healthy" }
        }
        #expect(healthy, "status: \(rows)\nup log:\n\(up.outputText)")
        #expect(Set(rows.map(\.service)) == Set(Role.services))
        childPids = rows.compactMap(\.pid)
        #expect(childPids.count == 6)

        // The table form lists every instance.
        let (code, table) = try await ChildProcess.run(binaries.appendingPathComponent("troncal"), ["status", "--data-dir", dataDir])
        #expect(code == 0)
        for name in ["sbc-1", "routing-1", "billing-1", "pbx-1", "backup-1", "monitor-1"] { #expect(table.contains(name)) }
        #expect(table.contains("SERVICE"))

        // Kill one service: `up` restarts it and it reports healthy again, with a new process.
        let victim = try #require(rows.first { $0.service == .billing })
        let oldPid = try #require(victim.pid)
        kill(oldPid, SIGKILL)
        let restarted = try await eventually(timeout: .seconds(60), interval: .milliseconds(500)) {
            let row = try await status(dataDir).first { $0.instance == victim.instance }
            if let pid = row?.pid, pid != oldPid, row?.health == "healthy" {
                childPids.append(pid)
                return true
            }
            return false
        }
        #expect(restarted, "up log:\n\(up.outputText)")

        // Ctrl-C stops every child.
        kill(up.pid, SIGINT)
        let stopped = await eventually(timeout: .seconds(30)) { !up.isRunning }
        #expect(stopped)
        let allGone = await eventually(timeout: .seconds(15)) { childPids.allSatisfy { kill($0, 0) != 0 } }
        #expect(allGone)
    }

    @Test func serviceWithABadConfigFailsStartupNamingTheKey() async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-badconfig")
        defer { directory.remove() }
        let path = directory.url.appendingPathComponent("site.json")
        try Data(#"{"link":{"requestTimeoutMilliseconds":"soon"}}"#.utf8).write(to: path)
        let (code, output) = try await ChildProcess.run(
            binaries.appendingPathComponent("troncal-routing"), ["--config", path.path, "--instance", "routing-1"])
        #expect(code == 78)
        #expect(output.contains("link.requestTimeoutMilliseconds"), "\(output)")
        try Data(#"{"linkk":{}}"#.utf8).write(to: path)
        let (code2, output2) = try await ChildProcess.run(binaries.appendingPathComponent("troncal-sbc"), ["--config", path.path])
        #expect(code2 == 78)
        #expect(output2.contains("'linkk'"), "\(output2)")
    }

    @Test func statusOfASiteThatIsNotRunningSaysUnreachableAndExitsNonZero() async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-down")
        defer { directory.remove() }
        let dataDir = directory.url.appendingPathComponent("site").path
        let (initCode, initOutput) = try await ChildProcess.run(
            binaries.appendingPathComponent("troncal"), ["pki", "init", "--data-dir", dataDir, "--site-name", "quiet"])
        #expect(initCode == 0, "\(initOutput)")
        // Move the ports away from any site running on this machine.
        let config = URL(fileURLWithPath: dataDir).appendingPathComponent("site.json")
        var text = try String(contentsOf: config, encoding: .utf8)
        for port in 7101...7106 { text = text.replacingOccurrences(of: "\(port)", with: "\(port + 41000)") }
        try Data(text.utf8).write(to: config)
        let (code, output) = try await ChildProcess.run(binaries.appendingPathComponent("troncal"), ["status", "--data-dir", dataDir, "--timeout", "300"])
        #expect(code == 1)
        #expect(output.contains("unreachable"))
    }
}
