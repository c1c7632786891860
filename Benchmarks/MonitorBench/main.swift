// `scripts/bench monitor`: how fast the monitor takes in a collection round and how long its dashboard takes to serve
// the instances page, with 1,000 instances' worth of series, in one run, with the monitor's own code: Prometheus text
// parsed, the site's series built, the alarm rules evaluated and stored, the samples written in bulk (SQLite, and
// PostgreSQL when a URL is given); then the real dashboard (Hummingbird) asked for `/` over HTTP with a session.
//
//   MonitorBench WORK_DIR INSTANCES ROUNDS [POSTGRES_URL]
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import TroncalMonitor
import TroncalProtocol
import TroncalRuntime
import TroncalStore

let arguments = CommandLine.arguments
guard arguments.count >= 4, let instances = Int(arguments[2]), let rounds = Int(arguments[3]) else {
    FileHandle.standardError.write(Data("usage: MonitorBench WORK_DIR INSTANCES ROUNDS [POSTGRES_URL]\n".utf8))
    exit(64)
}
let work = URL(fileURLWithPath: arguments[1])
let logger: Logger = {
    var logger = Logger(label: "bench.monitor")
    logger.logLevel = .error
    return logger
}()

/// What one instance's `/metrics` holds: host figures, link figures to three dependencies, calls and counters.
func metricsText(_ index: Int) -> String {
    var lines: [String] = []
    lines.append("# TYPE troncal_host_cpu_percent gauge\ntroncal_host_cpu_percent \(Double(index % 70) + 0.5)")
    lines.append("troncal_host_cpus 8\ntroncal_host_memory_total_bytes 16777216000\ntroncal_host_memory_used_bytes \(8_000_000_000 + index * 1000)")
    lines.append("troncal_host_disk_total_bytes 500000000000\ntroncal_host_disk_used_bytes 120000000000\ntroncal_host_disk_available_bytes 350000000000")
    for period in ["1m", "5m", "15m"] { lines.append("troncal_host_load{period=\"\(period)\"} 1.25") }
    for interface in ["lo", "eth0", "wg0"] {
        lines.append("troncal_host_network_receive_bytes{interface=\"\(interface)\"} \(index * 1_000_003)")
        lines.append("troncal_host_network_transmit_bytes{interface=\"\(interface)\"} \(index * 999_983)")
    }
    for target in ["routing", "billing", "monitor"] {
        lines.append("troncal_link_latency_milliseconds{target=\"\(target)\"} 1.2")
        lines.append("troncal_link_jitter_milliseconds{target=\"\(target)\"} 0.3")
        lines.append("troncal_link_loss_percent{target=\"\(target)\"} 0")
        lines.append("troncal_link_requests_failed_total{role=\"\(target)\"} 3")
    }
    lines.append("troncal_sbc_calls_active \(index % 500)\ntroncal_sbc_calls_total \(index * 1234)\ntroncal_sbc_bans_total 2")
    lines.append("troncal_sbc_cdr_spool_files 1")
    for reason in ["unknown-source", "sbc-full", "customer-limit"] { lines.append("troncal_sbc_calls_refused_total{reason=\"\(reason)\"} 7") }
    for bucket in ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf"] {
        lines.append("troncal_routing_decision_seconds_bucket{le=\"\(bucket)\"} \(index)")
    }
    lines.append("troncal_routing_decision_seconds_sum 12.5\ntroncal_routing_decision_seconds_count \(index)")
    return lines.joined(separator: "\n") + "\n"
}

let roles: [Role] = [.sbc, .routing, .billing, .pbx, .backup, .monitor]
let texts = (0..<instances).map(metricsText)
let targets = (0..<instances).map { index in
    ScrapeTarget(
        instance: "\(roles[index % roles.count].rawValue)-\(index + 1)", role: roles[index % roles.count], host: "10.0.\(index / 250).\(index % 250 + 1)",
        adminHost: "10.0.\(index / 250).\(index % 250 + 1)", adminPort: 9100)
}

func round() throws -> [MetricSample] {
    let results = try zip(targets, texts).map { target, text in
        let health = ServiceStatus(
            role: target.role, site: "bench", instance: target.instance, version: "bench", status: .healthy, uptimeSeconds: 100,
            linkAddress: "\(target.host):7700", adminAddress: "\(target.host):9100", links: [])
        return ScrapeResult(target: target, health: health, samples: try PrometheusText.parse(text), durationSeconds: 0.002, failure: nil)
    }
    return SiteSnapshot.series(of: results, site: "bench")
}

func seconds(_ duration: Duration) -> Double {
    let (whole, fraction) = duration.components
    return Double(whole) + Double(fraction) / 1e18
}

func bench(_ name: String, store: any SQLStore) async throws {
    _ = try await Migrator(service: "monitor", migrations: MonitorStore.migrations, logger: logger).migrate(store)
    let monitorStore = MonitorStore(store: store)
    let samples = SampleStore(store: store)
    var settings = MonitorSettings()
    settings.webPort = 18080
    let desk = try await AlarmDesk(store: monitorStore, settings: settings, site: "bench", rules: AlarmDesk.rules(settings), logger: logger)
    let clock = ContinuousClock()
    var parse = Duration.zero, evaluate = Duration.zero, write = Duration.zero
    var count = 0
    let start = Date(timeIntervalSince1970: 1_800_000_000)
    for index in 0..<rounds {
        let now = start.addingTimeInterval(Double(index) * 10)
        let t0 = clock.now
        let series = try round()
        let t1 = clock.now
        try await desk.collected(series, at: now)
        let t2 = clock.now
        try await samples.ingest(series, at: now)
        let t3 = clock.now
        parse += t1 - t0
        evaluate += t2 - t1
        write += t3 - t2
        count += series.count
    }
    let total = seconds(parse + evaluate + write)
    print(String(format: "%@: %d series per round, %d rounds: %.0f samples/s end to end (parse %.0f/s, rules %.0f/s, store %.0f/s)",
                 name, count / rounds, rounds, Double(count) / total, Double(count) / seconds(parse), Double(count) / seconds(evaluate),
                 Double(count) / seconds(write)))

    // The dashboard's instances page over HTTP, with a session cookie, as a browser asks for it.
    guard name == "sqlite" else { return }
    let operators = try await Operators(store: store)
    try await operators.set("bench", password: "bench-password-1", at: Date())
    let dashboard = Dashboard(
        desk: desk, store: monitorStore, operators: operators, quality: QualityStore(store: store), samples: samples, routing: [],
        settings: settings, site: "bench", logger: logger)
    let server = Task { try await dashboard.run() }
    defer { server.cancel() }
    let cookie = "troncal_session=" + (try await operators.session(for: "bench", until: Date().addingTimeInterval(3600)))
    let client = HTTPClient(eventLoopGroupProvider: .singleton)
    var request = HTTPClientRequest(url: "http://127.0.0.1:\(settings.webPort)/")
    request.headers.add(name: "Cookie", value: cookie)
    var times: [Double] = []
    var size = 0
    for attempt in 0..<40 {
        let t0 = clock.now
        guard let response = try? await client.execute(request, timeout: .seconds(30)) else {
            if attempt < 20 { try await Task.sleep(for: .milliseconds(100)) }
            continue
        }
        let body = try await response.body.collect(upTo: 64 << 20)
        let elapsed = seconds(clock.now - t0)
        guard response.status.code == 200 else { throw MonitorError("dashboard answered \(response.status.code)") }
        size = body.readableBytes
        if attempt >= 5 || times.isEmpty { times.append(elapsed) }
    }
    try await client.shutdown()
    guard !times.isEmpty else { throw MonitorError("the dashboard did not answer") }
    times.sort()
    print(String(format: "dashboard /: %d instances, %.0f KiB page, median %.1f ms, slowest %.1f ms over %d requests",
                 instances, Double(size) / 1024, times[times.count / 2] * 1000, times.last! * 1000, times.count))
}

try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
let sqlite = try await openStore(.sqlite(path: work.appendingPathComponent("monitor.sqlite").path), logger: logger)
try await bench("sqlite", store: sqlite)
try await sqlite.close()
if arguments.count >= 5 {
    let postgres = try await openStore(.postgres(try PostgresConfiguration(url: arguments[4])), logger: logger)
    try await bench("postgres", store: postgres)
    try await postgres.close()
}
