import Foundation
import Glibc
import Logging
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

    /// Issue 16: `kill -9` of routing-2 with no restart possible (its link port taken by the test, so each restart by
    /// `troncal up` fails) → the monitor's capacity controller, in act mode with the local executor, withdraws it and
    /// starts routing-3 from the standby pool in its place; the decision and its reason are in `troncal capacity
    /// history`, and `troncal status` shows routing-3 healthy.
    @Test func aKilledInstanceThatCannotRestartIsReplacedByTheStandbyAndTheDecisionIsInTheHistory() async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-up-act")
        defer { directory.remove() }
        let dataDir = directory.url.appendingPathComponent("site").path
        let offset = await freePortOffset()
        defer { releasePortOffset(offset) }
        var config = SiteConfig().shiftingPorts(by: offset)
        config.site = "test-act"
        config.sbc.mediaPortMin = 6060
        config.sbc.mediaPortMax = 6099
        config.instances.append(InstanceSettings(role: .routing, name: "routing-2", linkPort: 7107 + offset, adminPort: 8107 + offset))
        var standby = InstanceSettings(role: .routing, name: "routing-3", linkPort: 7108 + offset, adminPort: 8108 + offset)
        standby.standby = true
        config.instances.append(standby)
        config.monitor.scrapeIntervalSeconds = 1
        config.monitor.capacity.mode = "act"
        config.monitor.capacity.intervalSeconds = 1
        config.monitor.capacity.windowSeconds = 60
        config.monitor.capacity.bucketSeconds = 10
        config.monitor.capacity.replaceAfterSeconds = 6
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        try ConfigLoader.encode(config).write(to: URL(fileURLWithPath: dataDir).appendingPathComponent("site.json"))
        let up = try ChildProcess(
            binaries.appendingPathComponent("troncal"), ["up", "--data-dir", dataDir], output: directory.url.appendingPathComponent("up.log"))
        var childPids: [Int32] = []
        var taken: Int32 = -1
        defer {
            up.terminateNow()
            for pid in childPids { kill(pid, SIGKILL) }
            if taken >= 0 { close(taken) }
        }
        var rows: [InstanceStatusRow] = []
        let healthy = try await eventually(timeout: .seconds(90), interval: .milliseconds(500)) {
            rows = try await status(dataDir)
            return rows.count == 8 && rows.allSatisfy { $0.health == (($0.instance == "routing-3") ? "standby" : "healthy") }
        }
        #expect(healthy, "status: \(rows)\nup log:\n\(up.outputText)")
        childPids = rows.compactMap(\.pid)
        let victim = try #require(rows.first { $0.instance == "routing-2" }?.pid)
        kill(victim, SIGKILL)
        // Its port is taken at once (before `up` restarts it, 1.2 s later): every restart fails.
        let held = await eventually(timeout: .seconds(5), interval: .milliseconds(20)) {
            taken = Self.listen(port: 7107 + offset)
            return taken >= 0
        }
        #expect(held, "routing-2's link port could not be taken")
        let killed = ContinuousClock.now
        var history = ""
        let replaced = try await eventually(timeout: .seconds(90), interval: .milliseconds(500)) {
            history = try await ChildProcess.run(
                binaries.appendingPathComponent("troncal"), ["capacity", "history", "--role", "routing", "--json", "--data-dir", dataDir]).output
            guard history.contains("\"replace\"") else { return false }
            rows = try await status(dataDir)
            return rows.first { $0.instance == "routing-3" }?.health == "healthy"
        }
        let elapsed = ContinuousClock.now - killed
        #expect(replaced, "history: \(history)\nstatus: \(rows)\nup log:\n\(up.outputText)")
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let events = try decoder.decode([CapacityEvent].self, from: Data(history.utf8))
        let replace = try #require(events.first { $0.action == "replace" }, "\(history)")
        #expect(replace.reason.contains("routing-2 did not answer /health") && replace.reason.contains("routing-3 from the standby pool started in its place"),
                "\(replace.reason)")
        // The supervisor was told: routing-2 is no longer restarted.
        #expect(up.outputText.contains("the capacity controller stops an instance") || up.outputText.contains("stopped as the capacity controller asked"),
                "\(up.outputText)")
        Logger(label: "test.capacity").notice("routing-2 killed with no restart possible: routing-3 healthy in its place after \(elapsed) (replaceAfterSeconds 6, scrapes every second)")
        childPids += rows.compactMap(\.pid)

        // The operator: routing-2's server rebuilt (its port free again) goes back to the pool; routing-3 is marked
        // compromised and withdrawn, and routing-2 starts in its place.
        close(taken)
        taken = -1
        let troncal = binaries.appendingPathComponent("troncal")
        let returned = try await ChildProcess.run(troncal, ["capacity", "return", "routing-2", "--data-dir", dataDir])
        #expect(returned.status == 0 && returned.output.contains("routing-2: standby"), "\(returned.output)")
        let withdrawn = try await ChildProcess.run(
            troncal, ["capacity", "withdraw", "routing-3", "--reason", "unknown process found", "--compromised", "--json", "--data-dir", dataDir])
        #expect(withdrawn.status == 0, "\(withdrawn.output)")
        let withdrawal = try? decoder.decode(CapacityEvent.self, from: Data(withdrawn.output[(withdrawn.output.firstIndex(of: "{") ?? withdrawn.output.startIndex)...].utf8))
        #expect(withdrawal?.reason.contains("routing-3 marked compromised by") == true
                && withdrawal?.reason.contains("routing-2 from the standby pool started in its place") == true, "\(withdrawn.output)")
        let again = try await ChildProcess.run(troncal, ["capacity", "withdraw", "routing-3", "--reason", "twice", "--data-dir", dataDir])
        #expect(again.status != 0 && again.output.contains("not in service"), "\(again.output)")
        let back = try await eventually(timeout: .seconds(60), interval: .milliseconds(500)) {
            rows = try await status(dataDir)
            return rows.first { $0.instance == "routing-2" }?.health == "healthy" && rows.first { $0.instance == "routing-3" }?.pid == nil
        }
        #expect(back, "status: \(rows)\nup log:\n\(up.outputText)")
        childPids += rows.compactMap(\.pid)
        kill(up.pid, SIGINT)
        #expect(await eventually(timeout: .seconds(40)) { !up.isRunning })
        #expect(await eventually(timeout: .seconds(15)) { childPids.allSatisfy { kill($0, 0) != 0 } })
    }

    /// A listening TCP socket on 127.0.0.1:`port`, or -1.
    static func listen(port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 16) == 0 else {
            close(fd)
            return -1
        }
        return fd
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
