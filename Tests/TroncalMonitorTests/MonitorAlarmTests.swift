import Foundation
import Testing
import TestSupport
import TroncalMonitor
import TroncalProtocol
import TroncalRuntime

/// A test webhook receiver: a small Python HTTP server on loopback that logs every POST (path, status, JSON body) as
/// one line and answers with the status in `status-<path>` or `status` (200 unless a file says otherwise).
final class WebhookReceiver: Sendable {
    let directory: TemporaryDirectory
    let child: ChildProcess
    let port: Int

    static let script = #"""
        import http.server, json, os, sys
        directory = sys.argv[1]
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
                status = 200
                for name in ('status' + self.path.replace('/', '-'), 'status'):
                    try:
                        status = int(open(os.path.join(directory, name)).read().strip())
                        break
                    except Exception:
                        pass
                with open(os.path.join(directory, 'posts.jsonl'), 'a') as posts:
                    posts.write(json.dumps({'path': self.path, 'status': status, 'body': json.loads(body)}) + '\n')
                self.send_response(status)
                self.send_header('Content-Length', '0')
                self.end_headers()
            def log_message(self, *arguments):
                pass
        server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
        with open(os.path.join(directory, 'port.tmp'), 'w') as f:
            f.write(str(server.server_address[1]))
        os.rename(os.path.join(directory, 'port.tmp'), os.path.join(directory, 'port'))
        server.serve_forever()
        """#

    init() async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-webhook")
        let child = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/python3"), ["-c", Self.script, directory.url.path], output: directory.url.appendingPathComponent("receiver.log"))
        self.directory = directory
        self.child = child
        let portFile = directory.url.appendingPathComponent("port")
        var port = 0
        _ = await eventually(timeout: .seconds(20)) {
            port = (try? String(contentsOf: portFile, encoding: .utf8)).flatMap { Int($0) } ?? 0
            return port > 0 || !child.isRunning
        }
        guard port > 0 else {
            child.stopNow()
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "the webhook receiver did not start: \(child.outputText)"])
        }
        self.port = port
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// Every POST so far: (path, JSON body).
    var posts: [(path: String, body: [String: Any])] {
        let text = (try? String(contentsOf: directory.url.appendingPathComponent("posts.jsonl"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let path = object["path"] as? String, let body = object["body"] as? [String: Any]
            else { return nil }
            return (path, body)
        }
    }

    /// Answer `status` from now on (on `path` only, or on every path).
    func answer(_ status: Int, path: String? = nil) throws {
        let name = path.map { "status" + $0.replacingOccurrences(of: "/", with: "-") } ?? "status"
        try Data("\(status)".utf8).write(to: directory.url.appendingPathComponent(name))
    }

    func stop() {
        child.stopNow()
        directory.remove()
    }
}

extension ChildProcess {
    /// SIGKILL and wait, for `defer` blocks.
    func stopNow() {
        if isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// The monitor end to end: `troncal up` with real processes on loopback, a real webhook receiver.
@Suite("Monitor: alarms from a running site", .startsProcesses)
struct MonitorAlarmTests {
    let binaries = troncalBinaryDirectory()

    func troncal(_ arguments: [String]) async throws -> (Int32, String) {
        try await ChildProcess.run(binaries.appendingPathComponent("troncal"), arguments)
    }

    /// The pid and health of each instance, from `troncal status --json`.
    func status(_ dataDir: String) async throws -> [String: (pid: Int32, health: String)] {
        let (_, output) = try await troncal(["status", "--data-dir", dataDir, "--json", "--timeout", "1000"])
        guard let start = output.firstIndex(of: "["),
            let rows = try? JSONSerialization.jsonObject(with: Data(output[start...].utf8)) as? [[String: Any]]
        else { return [:] }
        var result: [String: (pid: Int32, health: String)] = [:]
        for row in rows {
            if let instance = row["instance"] as? String, let pid = row["pid"] as? Int, let health = row["health"] as? String {
                result[instance] = (Int32(pid), health)
            }
        }
        return result
    }

    static let chromium = Chromium.path

    func chromium(_ url: String, in directory: TemporaryDirectory) async throws -> String {
        try await Chromium.dom(url, in: directory)
    }

    /// Logs in with a one-time link and returns the DOM of `page`.
    func dashboard(_ dataDir: String, page: String, in directory: TemporaryDirectory) async throws -> String {
        let (code, link) = try await troncal(["monitor", "login-link", "--data-dir", dataDir])
        #expect(code == 0, "\(link)")
        let url = link.split(separator: "\n").first { $0.hasPrefix("http") }.map(String.init) ?? link
        return try await chromium(url + "?to=" + page, in: directory)
    }

    /// The value of a sample (name and labels as written) in Prometheus text.
    static func sample(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1).split(separator: " ").first ?? "")
        }
        return nil
    }

    /// Compares an instance's `troncal_host_*` samples with /proc and statvfs read here.
    static func checkHostFigures(_ metrics: String, instance: String, dataDirectory: String) throws {
        func proc(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        func meminfo(_ key: String) -> Double {
            let line = proc("/proc/meminfo").split(separator: "\n").first { $0.hasPrefix(key + ":") } ?? ""
            return (Double(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        let total = meminfo("MemTotal")
        #expect(sample(metrics, "troncal_host_memory_total_bytes") == total, "\(instance): memory total")
        let used = try #require(sample(metrics, "troncal_host_memory_used_bytes"))
        #expect(abs(used - (total - meminfo("MemAvailable"))) < total * 0.10, "\(instance): memory used \(used) of \(total)")
        let cpus = proc("/proc/stat").split(separator: "\n").filter { $0.hasPrefix("cpu") && !$0.hasPrefix("cpu ") }.count
        #expect(sample(metrics, "troncal_host_cpus") == Double(cpus), "\(instance): CPUs")
        let cpu = try #require(sample(metrics, "troncal_host_cpu_percent"))
        #expect((0...100).contains(cpu), "\(instance): CPU \(cpu) %")
        let load = Double(proc("/proc/loadavg").split(separator: " ").first ?? "") ?? 0
        let exported = metrics.split(separator: "\n").first { $0.hasPrefix("troncal_host_load{") && $0.contains("\"1m\"") || $0.hasPrefix("troncal_host_load ") }
            .flatMap { Double($0.split(separator: " ").last ?? "") }
        if let exported { #expect(abs(exported - load) <= 2 + load * 0.5, "\(instance): load \(exported) against \(load)") }
        var fs = statvfs()
        #expect(statvfs(dataDirectory, &fs) == 0)
        let block = Double(fs.f_frsize)
        #expect(sample(metrics, "troncal_host_disk_total_bytes") == Double(fs.f_blocks) * block, "\(instance): disk total")
        let diskUsed = try #require(sample(metrics, "troncal_host_disk_used_bytes"))
        let usedNow = Double(fs.f_blocks - fs.f_bfree) * block
        #expect(abs(diskUsed - usedNow) < max(Double(fs.f_blocks) * block * 0.02, 256 * 1024 * 1024), "\(instance): disk used \(diskUsed), now \(usedNow)")
        let available = try #require(sample(metrics, "troncal_host_disk_available_bytes"))
        #expect(abs(available - Double(fs.f_bavail) * block) < max(Double(fs.f_blocks) * block * 0.02, 256 * 1024 * 1024), "\(instance): disk available")
        // Loopback's counters only grow: what was exported is at most what /proc/net/dev says now.
        let lo = proc("/proc/net/dev").split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("lo:") }
        let received = lo.flatMap { Double($0.split(separator: ":")[1].split(separator: " ").first ?? "") } ?? 0
        let exportedLo = try #require(sample(metrics, "troncal_host_network_receive_bytes{interface=\"lo\"}"), "\(instance): no loopback bytes")
        #expect(exportedLo > 0 && exportedLo <= received, "\(instance): lo received \(exportedLo), /proc says \(received)")
    }

    @Test func fiftyAlarmsOfOneGroupMakeOneWebhookAFailingReceiverIsRetriedBoundedlyThenTheFallbackAndARestartRepeatsNothing() async throws {
        let receiver = try await WebhookReceiver()
        defer { receiver.stop() }
        try receiver.answer(500, path: "/noc")
        let directory = try TemporaryDirectory(prefix: "troncal-monitor-burst")
        defer { directory.remove() }
        let offset = await freePortOffset()
        defer { releasePortOffset(offset) }
        var config = SiteConfig().shiftingPorts(by: offset)
        config.site = "mon-b"
        config.monitor.scrapeIntervalSeconds = 1
        config.monitor.scrapeTimeoutMilliseconds = 2000
        // Only the 50 test rules: every one fires at once for pbx-1 (not running), all in one group (by site).
        config.monitor.disabledRules = AlarmRule.defaults.map(\.name)
        config.monitor.rules = (1...50).map { index in
            AlarmRule(
                name: "Burst\(index)", category: .service, metric: "troncal_instance_up", matchers: ["instance=pbx-1"], comparison: .below,
                warning: 1, summary: "burst \(index) on {{instance}}", action: "none")
        }
        config.monitor.groupBy = ["site"]
        config.monitor.groupWaitSeconds = 10
        config.monitor.groupIntervalSeconds = 300
        config.monitor.receivers = [
            ReceiverSettings(name: "noc", url: receiver.url + "/noc", levels: ["noc-1"]),
            ReceiverSettings(name: "oncall", url: receiver.url + "/oncall", levels: []),
        ]
        config.monitor.fallbackReceiver = "oncall"
        config.monitor.fallbackAfterAttempts = 3
        let siteFile = directory.url.appendingPathComponent("site.json")
        try ConfigLoader.encode(config).write(to: siteFile)
        let (code, output) = try await ChildProcess.run(binaries.appendingPathComponent("troncal"), ["pki", "init", "--data-dir", directory.url.path])
        #expect(code == 0, "\(output)")
        func start(_ log: String) throws -> ChildProcess {
            try ChildProcess(
                binaries.appendingPathComponent("troncal-monitor"), ["--config", siteFile.path, "--instance", "monitor-1"],
                output: directory.url.appendingPathComponent(log))
        }
        var monitor = try start("monitor.log")
        defer { monitor.stopNow() }
        func posts(_ path: String) -> [[String: Any]] { receiver.posts.filter { $0.path == path }.map(\.body) }

        // One notification for the 50 alarms; the receiver's 500s are retried with backoff (1 s, 2 s) three times in
        // all, then the fallback receiver gets it.
        let delivered = await eventually(timeout: .seconds(60), interval: .milliseconds(200)) { !posts("/oncall").isEmpty }
        #expect(delivered, "the fallback got nothing; posts: \(receiver.posts.map(\.path))\n\(monitor.outputText.suffix(3000))")
        let noc = posts("/noc")
        #expect(noc.count == 3, "\(noc.count) attempts on the failing receiver")
        for body in noc + posts("/oncall") {
            #expect((body["alerts"] as? [[String: Any]])?.count == 50, "a notification without the 50 alerts")
        }
        #expect(posts("/oncall").count == 1)

        // A restart: the group's state and the outbox are in the database; nothing is sent again before its time.
        await monitor.stop()
        monitor = try start("monitor-2.log")
        let admin = try #require(config.instance(named: "monitor-1")).adminPort
        var rounds = 0.0
        let collected = await eventually(timeout: .seconds(60), interval: .milliseconds(250)) {
            let metrics = (try? await httpGet(port: admin, path: "/metrics")) ?? ""
            rounds = Self.sample(metrics, "troncal_monitor_scrape_seconds_count{instance=\"pbx-1\"}") ?? 0
            return rounds >= 6
        }
        #expect(collected, "the restarted monitor did not collect: \(monitor.outputText.suffix(3000))")
        #expect(posts("/noc").count == 3 && posts("/oncall").count == 1, "a notification was repeated after the restart: \(receiver.posts.map(\.path))")
        await monitor.stop()
    }

    @Test func aStoppedInstanceFiresOneWebhookWithEveryFieldAndOneResolvedWhenItIsBack() async throws {
        let receiver = try await WebhookReceiver()
        defer { receiver.stop() }
        let directory = try TemporaryDirectory(prefix: "troncal-monitor")
        defer { directory.remove() }
        let dataDir = directory.url.appendingPathComponent("site").path
        let offset = await freePortOffset()
        defer { releasePortOffset(offset) }
        var config = SiteConfig().shiftingPorts(by: offset)
        config.site = "mon-a"
        config.sbc.mediaPortMin = 5700
        config.sbc.mediaPortMax = 5859
        config.monitor.scrapeIntervalSeconds = 1
        // Long enough that a busy machine does not make a healthy instance look down; one group per instance, so that
        // such an alarm would not join billing-1's notifications anyway.
        config.monitor.scrapeTimeoutMilliseconds = 2000
        config.monitor.groupBy = ["alertname", "instance"]
        config.monitor.groupWaitSeconds = 1
        config.monitor.groupIntervalSeconds = 2
        config.monitor.externalURL = "http://127.0.0.1:\(config.monitor.webPort)"
        config.monitor.receivers = [ReceiverSettings(name: "noc", url: receiver.url + "/noc", levels: ["noc-1"])]
        // A rule that fires at once for pbx-1, with markup in its summary: the dashboard must show it as text.
        config.monitor.rules = [
            AlarmRule(
                name: "TestMarker", category: .service, metric: "troncal_instance_up", matchers: ["instance=pbx-1"], warning: 0,
                summary: "<script>alert(1)</script> on {{instance}}", action: "none")
        ]
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        try ConfigLoader.encode(config).write(to: URL(fileURLWithPath: dataDir).appendingPathComponent("site.json"))
        let up = try ChildProcess(binaries.appendingPathComponent("troncal"), ["up", "--data-dir", dataDir], output: directory.url.appendingPathComponent("up.log"))
        var pids: [Int32] = []
        var stopped: Int32?
        defer {
            if let stopped { kill(stopped, SIGCONT) }
            up.terminateNow()
            for pid in pids { kill(pid, SIGKILL) }
        }
        var rows: [String: (pid: Int32, health: String)] = [:]
        let healthy = try await eventually(timeout: .seconds(90), interval: .milliseconds(500)) {
            rows = try await status(dataDir)
            return rows.count == 6 && rows.values.allSatisfy { $0.health == "healthy" }
        }
        try #require(healthy, "up log:\n\(up.outputText)")
        pids = rows.values.map(\.pid)

        // Every service's host figures match what /proc says now, within what changes between two readings.
        for instance in config.instances {
            var metrics = ""
            let sampled = await eventually(timeout: .seconds(30), interval: .milliseconds(200)) {
                metrics = (try? await httpGet(port: instance.adminPort, path: "/metrics")) ?? ""
                return Self.sample(metrics, "troncal_host_memory_total_bytes") != nil && Self.sample(metrics, "troncal_host_cpu_percent") != nil
            }
            #expect(sampled, "\(instance.name) exports no host figures:\n\(metrics.suffix(2000))")
            try Self.checkHostFigures(metrics, instance: instance.name, dataDirectory: dataDir)
        }

        func instanceDown(_ status: String) -> [[String: Any]] {
            receiver.posts.map(\.body).filter { body in
                body["groupLabels"] as? [String: String] == ["alertname": "InstanceDown", "instance": "billing-1"] && body["status"] as? String == status
            }
        }

        // billing-1 stops answering (SIGSTOP: `up` does not restart a stopped process).
        let billing = try #require(rows["billing-1"]?.pid)
        kill(billing, SIGSTOP)
        stopped = billing
        // About 15 s on a quiet machine (10 s for the rule, a 2 s scrape timeout per round, 1 s group wait); room for a busy one.
        let fired = await eventually(timeout: .seconds(45), interval: .milliseconds(200)) { !instanceDown("firing").isEmpty }
        let monitorLog = (try? String(contentsOfFile: dataDir + "/logs/monitor-1.log", encoding: .utf8)) ?? ""
        #expect(fired, "no firing webhook; posts: \(receiver.posts.map(\.body))\nmonitor log:\n\(monitorLog.suffix(3000))")
        let firing = try #require(instanceDown("firing").first)
        for key in ["receiver", "status", "alerts", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "version", "groupKey", "truncatedAlerts"] {
            #expect(firing[key] != nil, "the webhook lacks \(key)")
        }
        #expect(firing["version"] as? String == "4")
        #expect(firing["receiver"] as? String == "noc")
        let alert = try #require((firing["alerts"] as? [[String: Any]])?.first)
        for key in ["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"] {
            #expect(alert[key] != nil, "the alert lacks \(key)")
        }
        let labels = try #require(alert["labels"] as? [String: String])
        #expect(labels["instance"] == "billing-1")
        #expect(labels["site"] == "mon-a")
        #expect(labels["severity"] == "critical")
        #expect(receiver.posts.first?.path == "/noc")
        let fingerprint = try #require(alert["fingerprint"] as? String)

        // The CLI lists it.
        let (listCode, list) = try await troncal(["alarms", "list", "--data-dir", dataDir])
        #expect(listCode == 0, "\(list)")
        #expect(list.contains(fingerprint) && list.contains("InstanceDown"), "\(list)")

        // The dashboard, in headless Chromium, through a one-time login link.
        if FileManager.default.isExecutableFile(atPath: Self.chromium) {
            let instancesPage = try await dashboard(dataDir, page: "/", in: directory)
            for name in ["sbc-1", "routing-1", "billing-1", "pbx-1", "backup-1", "monitor-1"] {
                #expect(instancesPage.contains("data-instance=\"\(name)\""), "the dashboard lacks \(name):\n\(instancesPage.suffix(3000))")
            }
            let alarmsPage = try await dashboard(dataDir, page: "/alarms", in: directory)
            #expect(alarmsPage.contains("data-fingerprint=\"\(fingerprint)\""), "\(alarmsPage.suffix(3000))")
            #expect(alarmsPage.contains("&lt;script&gt;alert(1)&lt;/script&gt; on pbx-1"), "not escaped:\n\(alarmsPage.suffix(3000))")
            #expect(!alarmsPage.contains("<script") && !instancesPage.contains("<script"), "the dashboard works without JavaScript")
            // A used link does not log in again.
            let (_, link) = try await troncal(["monitor", "login-link", "--data-dir", dataDir])
            let url = link.split(separator: "\n").first { $0.hasPrefix("http") }.map(String.init) ?? link
            _ = try await chromium(url, in: directory)
            #expect(try await chromium(url, in: directory).contains("That login link is unknown, used or expired."))
        }

        // Operator accounts from the CLI: one added (its password printed once), listed, logged in with a link, removed
        // (and then logged out); the last one cannot go.
        let (setCode, added) = try await troncal(["monitor", "operators", "set", "nina", "--data-dir", dataDir])
        #expect(setCode == 0 && added.hasPrefix("nina ") && added.split(separator: " ").last?.count ?? 0 >= 20, "\(added)")
        var (_, operators) = try await troncal(["monitor", "operators", "list", "--data-dir", dataDir])
        #expect(operators.contains("admin") && operators.contains("nina"), "\(operators)")
        if FileManager.default.isExecutableFile(atPath: Self.chromium) {
            let (_, link) = try await troncal(["monitor", "login-link", "--operator", "nina", "--data-dir", dataDir])
            let url = link.split(separator: "\n").first { $0.hasPrefix("http") }.map(String.init) ?? link
            #expect(try await chromium(url, in: directory).contains("nina"), "nina could not log in")
        }
        #expect(try await troncal(["monitor", "operators", "remove", "nina", "--data-dir", dataDir]).0 == 0)
        (_, operators) = try await troncal(["monitor", "operators", "list", "--data-dir", dataDir])
        #expect(!operators.contains("nina"), "\(operators)")
        let (lastCode, last) = try await troncal(["monitor", "operators", "remove", "admin", "--data-dir", dataDir])
        #expect(lastCode != 0 && last.contains("last operator"), "\(last)")

        // Back: one resolved notification, and the firing one was not repeated.
        kill(billing, SIGCONT)
        stopped = nil
        let resolved = await eventually(timeout: .seconds(45), interval: .milliseconds(200)) { !instanceDown("resolved").isEmpty }
        #expect(resolved, "posts: \(receiver.posts.map(\.body))")
        #expect(instanceDown("firing").count == 1)
        #expect(instanceDown("resolved").count == 1)
        let (historyCode, history) = try await troncal(["alarms", "history", String(fingerprint.prefix(8)), "--data-dir", dataDir])
        #expect(historyCode == 0, "\(history)")
        for event in ["fired", "notified", "resolved"] { #expect(history.contains(event), "history lacks \(event): \(history)") }

        // The capacity controller (advice mode) has judged every role: one instance each is below the minimum of two.
        var decisions: [CapacityEvent] = []
        let advised = await eventually(timeout: .seconds(30), interval: .milliseconds(500)) {
            guard let (code, output) = try? await troncal(["capacity", "history", "--role", "sbc", "--json", "--data-dir", dataDir]), code == 0 else { return false }
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            decisions = (try? decoder.decode([CapacityEvent].self, from: Data(output.utf8))) ?? []
            return !decisions.isEmpty
        }
        #expect(advised, "no capacity decision for the SBC")
        let decision = try #require(decisions.first)
        #expect(decision.action == "scale-out" && decision.instances == 1 && decision.after == 2 && decision.mode == "advise", "\(decision)")
        #expect(decision.reason.contains("fewer than the minimum 2"), "\(decision.reason)")
        let (textCode, text) = try await troncal(["capacity", "history", "--data-dir", dataDir])
        #expect(textCode == 0 && text.contains("sbc  scale-out  1 -> 2"), "\(text)")
        // Every instance exports its own CPU, the controller's per-instance figure.
        for instance in config.instances {
            let metrics = (try? await httpGet(port: instance.adminPort, path: "/metrics")) ?? ""
            #expect(Self.sample(metrics, "troncal_process_cpu_percent") != nil, "\(instance.name) exports no process CPU")
        }
    }
}
