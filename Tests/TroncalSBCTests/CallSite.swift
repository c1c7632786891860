import Foundation
import NIOCore
import TestSupport
import Testing
import TroncalProtocol
import TroncalRuntime
import TroncalSBC
import Synchronization

/// A site of two real processes, `troncal-routing` and `troncal-sbc`, on loopback with its own ports, for
/// the call tests. The SBC advertises 127.0.0.1; tests put customers on 127.0.0.2 and carriers on 127.0.0.3
/// so that topology hiding can be checked byte for byte.
final class CallSite: Sendable {
    let directory: TemporaryDirectory
    let config: SiteConfig
    private let routingProcess: Mutex<ChildProcess>
    var routing: ChildProcess { routingProcess.withLock { $0 } }
    let sbc: ChildProcess
    let offset: Int

    static let sbcAddress = "127.0.0.1"
    static let customerAddress = "127.0.0.2"
    static let carrierAddress = "127.0.0.3"

    var sipPort: Int { config.sip.udpPort }
    var sipAddress: SocketAddress { get throws { try SocketAddress(ipAddress: Self.sbcAddress, port: sipPort) } }
    /// A port for a sipp or probe of the test, distinct per `slot` (slots 0-9; sipp uses the port and port + 2).
    func port(_ slot: Int) -> Int { 6100 + offset + slot * 10 }
    /// The port of carrier `index` (0-2) of the test.
    func carrierPort(_ index: Int) -> Int { 9000 + offset + index * 100 }

    init(adjust: (inout SiteConfig, Int) -> Void) async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-calls")
        self.directory = directory
        let offset = freePortOffset()
        self.offset = offset
        var config = SiteConfig().shiftingPorts(by: offset)
        config.site = "calls"
        config.sip.listenAddress = Self.sbcAddress
        config.sbc.advertisedAddress = Self.sbcAddress
        // Below every port derived from the offset (the lowest is 6060) and below the ephemeral range.
        let media = 1100 + Int.random(in: 0..<12) * 400
        config.sbc.mediaPortMin = media
        config.sbc.mediaPortMax = media + 399
        config.routing.setupTimeoutMilliseconds = 3000
        // sipp carriers cannot answer OPTIONS outside a call: tests that need probes turn them on.
        config.routing.probeIntervalMilliseconds = 0
        // No billing process in most call tests: those that start one turn authorisation back on.
        config.routing.authorization = "off"
        adjust(&config, offset)
        self.config = config
        let configURL = directory.url.appendingPathComponent("site.json")
        try ConfigLoader.encode(config).write(to: configURL)
        let binaries = troncalBinaryDirectory()
        let (code, output) = try await ChildProcess.run(binaries.appendingPathComponent("troncal"), ["pki", "init", "--data-dir", directory.url.path])
        guard code == 0 else { throw CallSiteError("troncal pki init failed: \(output)") }
        routingProcess = Mutex(try ChildProcess(
            binaries.appendingPathComponent("troncal-routing"), ["--config", configURL.path, "--instance", "routing-1"],
            output: directory.url.appendingPathComponent("routing.log")))
        sbc = try ChildProcess(
            binaries.appendingPathComponent("troncal-sbc"), ["--config", configURL.path, "--instance", "sbc-1"],
            output: directory.url.appendingPathComponent("sbc.log"))
        let routingAdmin = config.instances(of: .routing)[0].adminPort
        let sbcAdmin = config.instances(of: .sbc)[0].adminPort
        let ready = await eventually(timeout: .seconds(30), interval: .milliseconds(100)) {
            let routingUp = (try? await httpGet(port: routingAdmin, path: "/health")) != nil
            let sbcUp = (try? await httpGet(port: sbcAdmin, path: "/health")) != nil
            return routingUp && sbcUp
        }
        if !ready {
            let logs = "routing:\n\(routing.outputText.suffix(2000))\nsbc:\n\(sbc.outputText.suffix(2000))"
            await stop()
            throw CallSiteError("the site did not come up:\n\(logs)")
        }
    }

    /// Stops the routing instance and starts it again (same configuration and database); returns when it is healthy.
    func restartRouting() async throws {
        await routing.stop()
        let configURL = directory.url.appendingPathComponent("site.json")
        let child = try ChildProcess(
            troncalBinaryDirectory().appendingPathComponent("troncal-routing"), ["--config", configURL.path, "--instance", "routing-1"],
            output: directory.url.appendingPathComponent("routing-restarted.log"))
        routingProcess.withLock { $0 = child }
        let admin = config.instances(of: .routing)[0].adminPort
        let ready = await eventually(timeout: .seconds(30), interval: .milliseconds(100)) {
            (try? await httpGet(port: admin, path: "/health")) != nil
        }
        if !ready { throw CallSiteError("routing did not come back:\n\(child.outputText.suffix(2000))") }
    }

    /// Runs the `troncal` CLI on this site's data directory.
    func troncal(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await ChildProcess.run(troncalBinaryDirectory().appendingPathComponent("troncal"), arguments + ["--data-dir", directory.url.path])
    }

    func stop() async {
        await sbc.stop()
        await routing.stop()
    }

    /// Kills both services if they still run (a test that threw before `stop()`), then deletes the files.
    func remove() {
        for child in [sbc, routing] where child.isRunning {
            kill(child.pid, SIGKILL)
            child.process.waitUntilExit()
        }
        if let keep = ProcessInfo.processInfo.environment["TRONCAL_KEEP_TEST_FILES"], !keep.isEmpty {
            try? FileManager.default.copyItem(at: directory.url, to: URL(fileURLWithPath: keep).appendingPathComponent(directory.url.lastPathComponent))
        }
        directory.remove()
    }

    /// The call summaries the SBC has spooled.
    func summaries() throws -> [CallSummary] {
        let spool = directory.url.appendingPathComponent(config.dataDirectory).appendingPathComponent("sbc-1").appendingPathComponent("cdr-spool")
        let decoder = CallSummarySpool.decoder
        let names = (try? FileManager.default.contentsOfDirectory(atPath: spool.path)) ?? []
        return try names.filter { $0.hasSuffix(".json") }.map {
            try decoder.decode(CallSummary.self, from: Data(contentsOf: spool.appendingPathComponent($0)))
        }
    }

    var logs: String { "--- sbc.log (tail)\n\(sbc.outputText.suffix(4000))\n--- routing.log (tail)\n\(routing.outputText.suffix(1500))" }

    static func customer(_ id: String = "acme", addresses: [String] = [customerAddress + "/32"], username: String = "", password: String = "")
        -> CustomerSettings
    {
        CustomerSettings(id: id, addresses: addresses, username: username, password: password)
    }
}

struct CallSiteError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One sipp process of a test, stopped by PID when the test ends.
final class Sipp: Sendable {
    let child: ChildProcess
    let messages: URL
    let errors: URL
    let name: String

    static var executable: URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"] {
            let candidate = URL(fileURLWithPath: directory).appendingPathComponent("sipp")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }

    /// Starts sipp with `scenario` (XML text) bound to `address:port`, with `arguments` added.
    init(_ name: String, scenario: String, in directory: TemporaryDirectory, address: String, port: Int, mediaPort: Int, arguments: [String]) throws {
        guard let executable = Self.executable else { throw CallSiteError("sipp is not installed (scripts/test installs it)") }
        self.name = name
        let scenarioFile = directory.url.appendingPathComponent("\(name).xml")
        try Data(scenario.utf8).write(to: scenarioFile)
        messages = directory.url.appendingPathComponent("\(name).messages")
        errors = directory.url.appendingPathComponent("\(name).errors")
        child = try ChildProcess(
            executable,
            ["-sf", scenarioFile.path, "-i", address, "-p", "\(port)", "-mi", address, "-mp", "\(mediaPort)", "-nostdin", "-trace_msg",
             "-message_file", messages.path, "-trace_err", "-error_file", errors.path, "-buff_size", "4194304", "-timeout", "90s",
             "-timeout_error"] + arguments,
            output: directory.url.appendingPathComponent("\(name).out"))
    }

    /// Waits for sipp to end by itself; its exit status (0: every call succeeded).
    func finish(timeout: Duration = .seconds(100)) async -> Int32 {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while child.isRunning, clock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if child.isRunning { await child.stop(signal: SIGKILL) }
        child.process.waitUntilExit()
        return child.process.terminationStatus
    }

    func stop() async { await child.stop(signal: SIGKILL) }

    var messageText: String { String(decoding: (try? Data(contentsOf: messages)) ?? Data(), as: UTF8.self) }
    var errorText: String { String(String(decoding: (try? Data(contentsOf: errors)) ?? Data(), as: UTF8.self).suffix(3000)) }
    var report: String { "\(name): exit \(child.isRunning ? "running" : "\(child.process.terminationStatus)")\n\(errorText)\n\(child.outputText.suffix(1500))" }
}
