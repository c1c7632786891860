import Foundation
import Testing
import TestSupport
import TroncalMonitor
import TroncalProtocol

/// The Prometheus, Alertmanager and Grafana files in infra/monitoring/, checked with Prometheus's own tools.
@Suite("Monitor: infra/monitoring files", .startsProcesses)
struct InfraMonitoringTests {
    static var directory: URL {
        var root = URL(fileURLWithPath: #filePath)
        while root.path != "/" && !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) {
            root.deleteLastPathComponent()
        }
        return root.appendingPathComponent("infra/monitoring")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool"), "promtool is not installed"))
    func promtoolAcceptsTheScrapeConfigurationAndTheRules() async throws {
        let config = try await ChildProcess.run(
            URL(fileURLWithPath: "/usr/bin/promtool"), ["check", "config", Self.directory.appendingPathComponent("prometheus.yml").path])
        #expect(config.status == 0, "\(config.output)")
        let rules = try await ChildProcess.run(
            URL(fileURLWithPath: "/usr/bin/promtool"), ["check", "rules", Self.directory.appendingPathComponent("troncal-rules.yml").path])
        #expect(rules.status == 0, "\(rules.output)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/amtool"), "amtool is not installed"))
    func amtoolAcceptsTheAlertmanagerConfiguration() async throws {
        let result = try await ChildProcess.run(
            URL(fileURLWithPath: "/usr/bin/amtool"), ["check-config", Self.directory.appendingPathComponent("alertmanager.yml").path])
        #expect(result.status == 0, "\(result.output)")
    }

    @Test func thePrometheusRulesAreTheMonitorsDefaultsItCanExpressAndTheGrafanaFileIsJSON() throws {
        let rules = try String(contentsOf: Self.directory.appendingPathComponent("troncal-rules.yml"), encoding: .utf8)
        // Rules over series only the monitor has (/health, per-call QoS) are left out, as the file says.
        let monitorOnly: Set<String> = ["InstanceUnhealthy", "DependencyUnreachable", "CarrierMOSLow"]
        for rule in AlarmRule.defaults where !monitorOnly.contains(rule.name) {
            #expect(rules.contains("- alert: \(rule.name)\n"), "troncal-rules.yml lacks \(rule.name)")
            #expect(rules.contains("category: \(rule.category.rawValue) }"), "no rule of category \(rule.category.rawValue)")
        }
        let grafana = try Data(contentsOf: Self.directory.appendingPathComponent("grafana-dashboard.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: grafana) as? [String: Any])
        #expect((object["panels"] as? [[String: Any]])?.isEmpty == false)
    }
}
