import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
import TestSupport
import Testing
import TroncalProtocol
import TroncalRuntime

@Suite("Admin HTTP port")
struct AdminServerTests {
    @Test func healthIsJSONAndMetricsArePrometheusText() async throws {
        let registry = PrometheusCollectorRegistry()
        registry.makeCounter(name: "troncal_test_things_total").increment(by: Int64(3))
        let status = ServiceStatus(
            role: .billing, site: "s", instance: "billing-9", version: TroncalVersion.current, status: .degraded,
            uptimeSeconds: 12, linkAddress: "127.0.0.1:1", adminAddress: "127.0.0.1:2",
            links: [LinkStatus(role: .routing, connected: nil, endpoints: ["127.0.0.1:3"], state: "down: refused")], pid: 42)
        let admin = AdminServer(host: "127.0.0.1", port: 0, registry: registry, logger: Logger(label: "test"), health: { status })
        let task = Task { try await admin.run() }
        defer { task.cancel() }
        let port = try #require(try await admin.listeningAddress().port)

        let health = try await httpGet(port: port, path: "/health")
        #expect(health.hasPrefix("HTTP/1.1 200"))
        #expect(health.contains("application/json"))
        #expect(health.contains(#""status":"degraded""#))
        #expect(health.contains(#""instance":"billing-9""#))
        #expect(health.contains(#""state":"down: refused""#))
        #expect(health.contains(#""uptimeSeconds":12"#))

        let metrics = try await httpGet(port: port, path: "/metrics")
        #expect(metrics.hasPrefix("HTTP/1.1 200"))
        #expect(metrics.contains("text/plain; version=0.0.4"))
        #expect(metrics.contains("troncal_test_things_total 3"))

        let missing = try await httpGet(port: port, path: "/nope")
        #expect(missing.hasPrefix("HTTP/1.1 404"))
        task.cancel()
        _ = await task.result
    }

    @Test func unhealthyServiceAnswers503() async throws {
        let status = ServiceStatus(
            role: .sbc, site: "s", instance: "sbc-1", version: "x", status: .unhealthy, uptimeSeconds: 1,
            linkAddress: "", adminAddress: "", links: [])
        let admin = AdminServer(host: "127.0.0.1", port: 0, registry: PrometheusCollectorRegistry(), logger: Logger(label: "test"), health: { status })
        let task = Task { try await admin.run() }
        defer { task.cancel() }
        let port = try #require(try await admin.listeningAddress().port)
        #expect(try await httpGet(port: port, path: "/health").hasPrefix("HTTP/1.1 503"))
        task.cancel()
        _ = await task.result
    }
}
