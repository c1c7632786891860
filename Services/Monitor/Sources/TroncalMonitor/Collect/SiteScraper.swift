internal import AsyncHTTPClient
internal import NIOHTTP1
public import Foundation
internal import NIOCore
public import TroncalProtocol
public import TroncalRuntime

/// One instance of the site to scrape, from `site.json`.
public struct ScrapeTarget: Sendable, Hashable {
    public var instance: String
    public var role: Role
    /// The host the instance runs on (its link address): host figures are labelled with it.
    public var host: String
    public var adminHost: String
    public var adminPort: Int

    public init(instance: String, role: Role, host: String, adminHost: String, adminPort: Int) {
        self.instance = instance
        self.role = role
        self.host = host
        self.adminHost = adminHost
        self.adminPort = adminPort
    }

    public init(_ settings: InstanceSettings) {
        self.init(instance: settings.name, role: settings.role, host: settings.host, adminHost: settings.adminHost, adminPort: settings.adminPort)
    }
}

/// What one scrape of one instance gave.
public struct ScrapeResult: Sendable {
    public var target: ScrapeTarget
    /// `/health` answered (200 or 503) with a status.
    public var health: ServiceStatus?
    /// `/metrics`, parsed.
    public var samples: [MetricSample]
    /// Both requests, in seconds.
    public var durationSeconds: Double
    /// Why the instance counts as down, or why its metrics were unreadable.
    public var failure: String?

    public init(target: ScrapeTarget, health: ServiceStatus?, samples: [MetricSample], durationSeconds: Double, failure: String?) {
        self.target = target
        self.health = health
        self.samples = samples
        self.durationSeconds = durationSeconds
        self.failure = failure
    }

    public var isUp: Bool { health != nil }
}

/// Scrapes every instance's admin port: `/health` (JSON) and `/metrics` (Prometheus text), timing both.
public struct SiteScraper: Sendable {
    let client: HTTPClient
    let timeout: Duration

    public init(timeout: Duration) {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .init(timeout), read: .init(timeout))
        configuration.redirectConfiguration = .disallow
        // A refused connection is the answer (the instance is down), not a flake to retry until the timeout: with
        // retries, one dead instance held every round for the whole scrape timeout (5 s), and the monitor saw the
        // site every 8 s instead of every second.
        configuration.connectionPool.retryConnectionEstablishment = false
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.timeout = timeout
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    /// Scrapes all targets at once.
    public func scrape(_ targets: [ScrapeTarget]) async -> [ScrapeResult] {
        await withTaskGroup(of: ScrapeResult.self) { group in
            for target in targets { group.addTask { await self.scrape(target) } }
            var results: [ScrapeResult] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.target.instance < $1.target.instance }
        }
    }

    public func scrape(_ target: ScrapeTarget) async -> ScrapeResult {
        let clock = ContinuousClock()
        let start = clock.now
        let base = "http://\(target.adminHost.contains(":") ? "[\(target.adminHost)]" : target.adminHost):\(target.adminPort)"
        var health: ServiceStatus?
        var samples: [MetricSample] = []
        var failure: String?
        do {
            let body = try await get(base + "/health", accept: [200, 503])
            health = try JSONDecoder().decode(ServiceStatus.self, from: Data(body.utf8))
            do {
                samples = try PrometheusText.parse(try await get(base + "/metrics", accept: [200]))
            } catch {
                failure = "metrics unreadable: \(error)"
            }
        } catch {
            failure = "\(error)"
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return ScrapeResult(target: target, health: health, samples: samples, durationSeconds: seconds, failure: failure)
    }

    private func get(_ url: String, accept: Set<UInt>) async throws -> String {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        let response = try await client.execute(request, timeout: .init(timeout))
        guard accept.contains(response.status.code) else { throw ScrapeError("\(url) answered \(response.status.code)") }
        let body = try await response.body.collect(upTo: 32 << 20)
        return String(buffer: body)
    }
}

struct ScrapeError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}


/// Turns a round of scrapes into the series the alarm rules read. Pure.
///
/// Per instance (labels `site`, `instance`, `role`): `troncal_instance_up` (1 when `/health` answered, else 0; also
/// labelled with the instance's `host`),
/// `troncal_instance_healthy` (1 healthy, 0.5 degraded, 0 unhealthy), `troncal_instance_uptime_seconds`, `troncal_scrape_duration_seconds`,
/// `troncal_dependency_reachable{dependency}` (0 when the instance's link to that role is down), and every sample
/// of its `/metrics`. Host figures (`troncal_host_*`) are labelled by `host` instead and kept once per host, with
/// `troncal_host_memory_percent` and `troncal_host_disk_percent` derived from them.
public enum SiteSnapshot {
    public static func series(of results: [ScrapeResult], site: String) -> [MetricSample] {
        var series: [MetricSample] = []
        var hostSeries: [String: MetricSample] = [:]
        for result in results {
            let target = result.target
            let identity = ["site": site, "instance": target.instance, "role": target.role.rawValue]
            series.append(MetricSample("troncal_instance_up", identity.merging(["host": target.host]) { $1 }, result.isUp ? 1 : 0))
            guard let health = result.health else { continue }
            series.append(MetricSample("troncal_scrape_duration_seconds", identity, result.durationSeconds))
            let healthy: Double = switch health.status {
            case .healthy: 1
            case .degraded: 0.5
            case .unhealthy: 0
            }
            series.append(MetricSample("troncal_instance_healthy", identity, healthy))
            series.append(MetricSample("troncal_instance_uptime_seconds", identity, health.uptimeSeconds))
            for link in health.links where link.state != "not yet probed" {
                var labels = identity
                labels["dependency"] = link.role.rawValue
                series.append(MetricSample("troncal_dependency_reachable", labels, link.state.hasPrefix("down") ? 0 : 1))
            }
            for sample in result.samples {
                if sample.name.hasPrefix("troncal_host_") {
                    var labels = sample.labels
                    labels["site"] = site
                    labels["host"] = target.host
                    let hostSample = MetricSample(sample.name, labels, sample.value)
                    if hostSeries[hostSample.seriesKey] == nil { hostSeries[hostSample.seriesKey] = hostSample }
                } else {
                    var labels = sample.labels
                    for (key, value) in identity where labels[key] == nil { labels[key] = value }
                    series.append(MetricSample(sample.name, labels, sample.value))
                }
            }
        }
        let hosts = hostSeries.values.sorted { $0.seriesKey < $1.seriesKey }
        series += hosts
        var byHost: [String: [String: Double]] = [:]
        for sample in hosts { byHost[sample.labels["host"] ?? "", default: [:]][sample.name] = sample.value }
        for (host, values) in byHost.sorted(by: { $0.key < $1.key }) {
            let labels = ["site": site, "host": host]
            if let used = values["troncal_host_memory_used_bytes"], let total = values["troncal_host_memory_total_bytes"], total > 0 {
                series.append(MetricSample("troncal_host_memory_percent", labels, used / total * 100))
            }
            if let used = values["troncal_host_disk_used_bytes"], let total = values["troncal_host_disk_total_bytes"], total > 0 {
                // As `df` says "Use%": used over used plus available, so that 100 % is when writers get "disk full"
                // (the root reserve does not count as room).
                let room = values["troncal_host_disk_available_bytes"].map { used + $0 } ?? total
                series.append(MetricSample("troncal_host_disk_percent", labels, room > 0 ? used / room * 100 : 100))
            }
        }
        return series
    }
}
