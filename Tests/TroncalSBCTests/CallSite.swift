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
    /// The running services by instance name (`routing-1`, `sbc-1`, and `billing-1` when the site has billing).
    private let processes: Mutex<[String: ChildProcess]>
    private let restarts = Mutex(0)
    var routing: ChildProcess { process("routing-1") }
    var sbc: ChildProcess { process("sbc-1") }
    var billing: ChildProcess { process("billing-1") }
    let instances: [String]
    let offset: Int
    let media: ClosedRange<Int>

    static let sbcAddress = "127.0.0.1"
    static let customerAddress = "127.0.0.2"
    static let carrierAddress = "127.0.0.3"

    var sipPort: Int { config.sip.udpPort }
    var sipAddress: SocketAddress { get throws { try SocketAddress(ipAddress: Self.sbcAddress, port: sipPort) } }
    /// A port for a sipp or probe of the test, distinct per `slot` (slots 0-9; sipp uses the port and port + 2).
    func port(_ slot: Int) -> Int { 6100 + offset + slot * 10 }
    /// The port of carrier `index` (0-2) of the test.
    func carrierPort(_ index: Int) -> Int { 9000 + offset + index * 100 }
    var configURL: URL { directory.url.appendingPathComponent("site.json") }

    func process(_ instance: String) -> ChildProcess {
        processes.withLock { $0[instance]! }
    }

    /// `billing`: also run `troncal-billing` (and leave `routing.authorization` as the site configures it);
    /// `monitor`: also run `troncal-monitor`; `pbx`: also run `troncal-pbx` (its registrar on 127.0.0.1:5070+offset).
    /// `pbxInstances`: how many PBX instances run (`pbx-1`, `pbx-2`, …; the test's `adjust` adds the others to the site).
    /// `routing: false`: no routing process (registration tests need none; one process less on a loaded machine).
    /// `routingInstances: 2` also runs `routing-2` (link 7108, admin 8108 + offset), beside `routing-1`.
    init(
        billing: Bool = false, monitor: Bool = false, pbx: Bool = false, pbxInstances: Int = 1, routing: Bool = true,
        routingInstances: Int = 1, adjust: (inout SiteConfig, Int) -> Void
    ) async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-calls")
        self.directory = directory
        let offset = await freePortOffset()
        self.offset = offset
        var config = SiteConfig().shiftingPorts(by: offset)
        config.site = "calls"
        config.sip.listenAddress = Self.sbcAddress
        config.sbc.advertisedAddress = Self.sbcAddress
        // Below every port derived from the offset (the lowest is 6060) and below the ephemeral range, leased: two sites
        // never share relay ports. Few parked relay sockets, so that a test's calls fit in its 400 ports.
        let media = await leaseMediaPorts()
        self.media = media
        config.sbc.mediaPortMin = media.lowerBound
        config.sbc.mediaPortMax = media.upperBound
        config.sbc.relayPrebindSessions = 4
        // The PBX's own media (music on hold) on an address of its own, so that it shares the leased ports with nobody.
        config.pbx.mediaAddress = "127.0.0.6"
        config.pbx.mediaPortMin = media.lowerBound
        config.pbx.mediaPortMax = media.upperBound
        config.routing.setupTimeoutMilliseconds = 3000
        // A test that stops its site with calls up does not wait the production drain (30 s) for them.
        config.sbc.drainSeconds = 2
        // sipp carriers cannot answer OPTIONS outside a call: tests that need probes turn them on.
        config.routing.probeIntervalMilliseconds = 0
        // No billing process in most call tests.
        config.routing.authorization = billing ? "required" : "off"
        if routing, routingInstances >= 2 {
            config.instances.append(InstanceSettings(role: .routing, name: "routing-2", linkPort: 7108 + offset, adminPort: 8108 + offset))
        }
        adjust(&config, offset)
        self.config = config
        instances = (routing ? (1...min(2, max(1, routingInstances))).map { "routing-\($0)" } : []) + ["sbc-1"] + (billing ? ["billing-1"] : []) + (monitor ? ["monitor-1"] : []) + (pbx ? (1...max(1, pbxInstances)).map { "pbx-\($0)" } : [])
        try ConfigLoader.encode(config).write(to: directory.url.appendingPathComponent("site.json"))
        let binaries = troncalBinaryDirectory()
        let (code, output) = try await ChildProcess.run(binaries.appendingPathComponent("troncal"), ["pki", "init", "--data-dir", directory.url.path])
        guard code == 0 else { throw CallSiteError("troncal pki init failed: \(output)") }
        processes = Mutex([:])
        for instance in instances.reversed() { try start(instance) }
        let ready = await eventually(timeout: .seconds(30), interval: .milliseconds(100)) { [self] in
            for instance in self.instances where !(await self.isUp(instance)) { return false }
            return true
        }
        if !ready {
            // A crash ends its log with a long backtrace: show its first lines (the reason) before the tail.
            let logs = instances.map { instance in
                let text = process(instance).outputText
                let reasons = text.split(separator: "\n").filter { $0.contains("Fatal error") || $0.contains("critical") || $0.contains("Crash") }
                return "\(instance):\n\(reasons.prefix(5).joined(separator: "\n"))\n…\n\(text.suffix(2000))"
            }.joined(separator: "\n")
            await stop()
            throw CallSiteError("the site did not come up:\n\(logs)")
        }
    }

    func role(of instance: String) -> String { String(instance.prefix { $0 != "-" }) }

    func isUp(_ instance: String) async -> Bool {
        guard let settings = config.instance(named: instance) else { return false }
        // 200 (healthy or degraded): its listeners are bound. 503 while it is still starting.
        return (try? await httpGet(port: settings.adminPort, path: "/health"))?.hasPrefix("HTTP/1.1 200") == true
    }

    /// Starts (or starts again) one instance; its output goes to `<instance>.log`, or `<instance>-N.log` after a restart.
    func start(_ instance: String) throws {
        let count = restarts.withLock { count in
            defer { count += 1 }
            return count
        }
        let name = instance.hasSuffix("-1") ? role(of: instance) : instance
        let log = processes.withLock { $0[instance] } == nil ? "\(name).log" : "\(name)-\(count).log"
        let child = try ChildProcess(
            troncalBinaryDirectory().appendingPathComponent("troncal-\(role(of: instance))"), ["--config", configURL.path, "--instance", instance],
            output: directory.url.appendingPathComponent(log))
        processes.withLock { $0[instance] = child }
    }

    /// Stops an instance (SIGTERM, or `signal`), starts it again and returns when it is healthy.
    func restart(_ instance: String, signal: Int32 = SIGTERM, after pause: Duration = .zero) async throws {
        let old = process(instance)
        if signal == SIGKILL {
            kill(old.pid, SIGKILL)
            old.process.waitUntilExit()
        } else {
            await old.stop(signal: signal)
        }
        try await Task.sleep(for: pause)
        try start(instance)
        let ready = await eventually(timeout: .seconds(30), interval: .milliseconds(100)) { await self.isUp(instance) }
        if !ready { throw CallSiteError("\(instance) did not come back:\n\(process(instance).outputText.suffix(2000))") }
    }

    /// Stops the routing instance and starts it again (same configuration and database); returns when it is healthy.
    func restartRouting() async throws {
        try await restart("routing-1")
    }

    /// Runs the `troncal` CLI on this site's data directory.
    func troncal(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await ChildProcess.run(troncalBinaryDirectory().appendingPathComponent("troncal"), arguments + ["--data-dir", directory.url.path])
    }

    func stop() async {
        for instance in ["sbc-1", "routing-1", "routing-2", "billing-1", "monitor-1"] + instances.filter({ $0.hasPrefix("pbx-") }) where instances.contains(instance) {
            if let child = processes.withLock({ $0[instance] }) { await child.stop() }
        }
    }

    /// Kills every service still running (a test that threw before `stop()`), then deletes the files.
    func remove() {
        for child in processes.withLock({ Array($0.values) }) where child.isRunning {
            kill(child.pid, SIGKILL)
            child.process.waitUntilExit()
        }
        if let keep = ProcessInfo.processInfo.environment["TRONCAL_KEEP_TEST_FILES"], !keep.isEmpty {
            try? FileManager.default.copyItem(at: directory.url, to: URL(fileURLWithPath: keep).appendingPathComponent(directory.url.lastPathComponent))
        }
        directory.remove()
        releasePortOffset(offset)
        releaseMediaPorts(media)
    }

    /// The call summaries the SBC has spooled.
    func summaries() throws -> [CallSummary] {
        let spool = directory.url.appendingPathComponent(config.dataDirectory).appendingPathComponent("sbc-1").appendingPathComponent("cdr-spool")
        return CallSummarySpool.pending(in: spool)
    }

    var logs: String {
        var text = "--- sbc.log (tail)\n\(sbc.outputText.suffix(4000))"
        if instances.contains("routing-1") { text += "\n--- routing.log (tail)\n\(routing.outputText.suffix(1500))" }
        if instances.contains("routing-2") { text += "\n--- routing-2 (tail)\n\(process("routing-2").outputText.suffix(1500))" }
        if instances.contains("billing-1") { text += "\n--- billing.log (tail)\n\(billing.outputText.suffix(1500))" }
        if instances.contains("monitor-1") { text += "\n--- monitor.log (tail)\n\(process("monitor-1").outputText.suffix(3000))" }
        for pbx in instances where pbx.hasPrefix("pbx-") { text += "\n--- \(pbx).log (tail)\n\(process(pbx).outputText.suffix(3000))" }
        return text
    }

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
    let address: String
    let port: Int

    static var executable: URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"] {
            let candidate = URL(fileURLWithPath: directory).appendingPathComponent("sipp")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }

    /// Starts sipp with `scenario` (XML text) bound to `address:port`, with `arguments` added; in the network namespace
    /// `namespace` (through `ip netns exec`, which execs sipp: the PID is sipp's) when one is given.
    init(
        _ name: String, scenario: String, in directory: TemporaryDirectory, address: String, port: Int, mediaPort: Int, arguments: [String],
        namespace: String? = nil
    ) throws {
        guard let executable = Self.executable else { throw CallSiteError("sipp is not installed (scripts/test installs it)") }
        self.name = name
        self.address = address
        self.port = port
        let scenarioFile = directory.url.appendingPathComponent("\(name).xml")
        try Data(scenario.utf8).write(to: scenarioFile)
        messages = directory.url.appendingPathComponent("\(name).messages")
        errors = directory.url.appendingPathComponent("\(name).errors")
        let prefix = namespace.map { ["netns", "exec", $0, executable.path] } ?? []
        child = try ChildProcess(
            namespace == nil ? executable : URL(fileURLWithPath: "/usr/sbin/ip"),
            prefix + ["-sf", scenarioFile.path, "-i", address, "-p", "\(port)", "-mi", address, "-mp", "\(mediaPort)", "-nostdin", "-trace_msg",
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

    /// Stops placing new calls and waits for the calls in progress to end by their scenario (SIGUSR1 is sipp's soft
    /// quit, like pressing `q`); its exit status (0: every call succeeded).
    func stopPlacingCalls(timeout: Duration = .seconds(60)) async -> Int32 {
        if child.isRunning { kill(child.pid, SIGUSR1) }
        return await finish(timeout: timeout)
    }

    /// Waits until sipp has bound its SIP port (seen in /proc/net/udp), so that a call sent to it is not refused by a
    /// machine too busy to have started it yet; throws if sipp exits or does not bind within `timeout`.
    func listening(timeout: Duration = .seconds(20)) async throws {
        let octets = address.split(separator: ".").compactMap { UInt8($0) }
        guard octets.count == 4 else { throw CallSiteError("\(name): not an IPv4 address: \(address)") }
        // /proc/net/udp shows the address as a little-endian hex word and the port as big-endian hex.
        let local = octets.reversed().map { String(format: "%02X", $0) }.joined() + ":" + String(format: "%04X", port)
        let bound = await eventually(timeout: timeout, interval: .milliseconds(20)) {
            guard child.isRunning else { return true }
            // Read to the end: /proc files report size 0 and come in pages, so a size-based read can stop at the first.
            // sipp's own view (its network namespace).
            let table = FileHandle(forReadingAtPath: "/proc/\(child.pid)/net/udp").map { handle in
                defer { try? handle.close() }
                return String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
            } ?? ""
            return table.split(separator: "\n").contains { $0.split(separator: " ").dropFirst().first.map(String.init) == local }
        }
        guard bound, child.isRunning else { throw CallSiteError("\(name) is not listening on \(address):\(port)\n\(report)") }
    }

    /// The "Successful call" count of sipp's final statistics screen.
    var successfulCalls: Int? { count("Successful call") }
    var failedCalls: Int? { count("Failed call") }

    private func count(_ row: String) -> Int? {
        guard let line = child.outputText.split(separator: "\n").last(where: { $0.contains(row) }) else { return nil }
        let columns = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        return columns.count > 2 ? Int(columns[2]) : nil
    }

    var messageText: String { String(decoding: (try? Data(contentsOf: messages)) ?? Data(), as: UTF8.self) }
    var errorText: String { String(String(decoding: (try? Data(contentsOf: errors)) ?? Data(), as: UTF8.self).suffix(3000)) }
    var report: String { "\(name): exit \(child.isRunning ? "running" : "\(child.process.terminationStatus)")\n\(errorText)\n\(child.outputText.suffix(1500))" }
}
