import Foundation
import Logging
import TestSupport
import Testing
import TroncalProtocol
import TroncalRuntime
import TroncalStore

@testable import TroncalMonitor

/// The capacity controller on what the monitor collected: each instance's own CPU and, for SBCs, its calls against
/// `sbc.maximumCalls`; the rules' decision recorded once with its reason, in advice mode; one active controller per site.
@Suite struct CapacityControllerTests {
    static let site = "lab-a"
    static let now = Date(timeIntervalSince1970: 1_796_400_000)

    static func instance(_ name: String) -> InstanceSettings {
        InstanceSettings(role: Role(rawValue: String(name.prefix { $0 != "-" }))!, name: name, host: "127.0.0.1", linkPort: 7000, adminPort: 8000)
    }

    static let instances = ["sbc-1", "sbc-2", "routing-1", "routing-2", "monitor-1", "monitor-2"].map(instance)

    static func sample(_ name: String, _ instance: String, _ value: Double) -> MetricSample {
        MetricSample(name, ["site": site, "instance": instance, "role": String(instance.prefix { $0 != "-" })], value)
    }

    /// A scrape every 10 s over the last 20 minutes: quiet, with a peak minute 10 minutes ago.
    static func collect(_ samples: SampleStore, sbcCPU: (Double, Double), sbcCalls: (Double, Double) = (0, 0)) async throws {
        for step in 0..<120 {
            let at = now.addingTimeInterval(Double(step - 120) * 10)
            let peak = (60..<66).contains(step)
            try await samples.ingest([
                sample("troncal_process_cpu_percent", "sbc-1", peak ? sbcCPU.0 : 10),
                sample("troncal_process_cpu_percent", "sbc-2", peak ? sbcCPU.1 : 10),
                sample("troncal_sbc_calls_active", "sbc-1", peak ? sbcCalls.0 : 0),
                sample("troncal_sbc_calls_active", "sbc-2", peak ? sbcCalls.1 : 0),
                sample("troncal_process_cpu_percent", "routing-1", 12),
                sample("troncal_process_cpu_percent", "routing-2", 9),
                sample("troncal_instance_healthy", "monitor-1", 1),
            ], at: at)
        }
    }

    static func controller(_ store: any SQLStore, me: String = "monitor-1", standby: [String: Int] = ["sbc": 1]) -> CapacityController {
        var settings = CapacitySettings()
        settings.windowSeconds = 3600
        settings.bucketSeconds = 60
        settings.standby = standby
        return CapacityController(
            samples: SampleStore(store: store), history: CapacityHistoryStore(store: store), settings: settings, site: site, instances: instances,
            sbcMaximumCalls: 1000, me: me, scrapeIntervalSeconds: 10, logger: Logger(label: "test.capacity"))
    }

    @Test(arguments: TestBackend.allCases)
    func anSBCAbove60PercentAtThePeakCallsForFourInstancesOneFromStandbyAndTheDecisionIsRecordedOnce(backend: TestBackend) async throws {
        try await withMigratedDatabase(backend, service: "monitor", migrations: MonitorStore.migrations) { store in
            // The worked example of docs/capacity.md: 72 % and 55 % at the peak.
            try await Self.collect(SampleStore(store: store), sbcCPU: (72, 55))
            let controller = Self.controller(store)
            let events = try await controller.evaluate(now: Self.now)
            let sbc = try #require(events.first { $0.role == "sbc" })
            #expect(sbc.action == "scale-out" && sbc.instances == 2 && sbc.planned == 4 && sbc.after == 4)
            #expect(sbc.fromStandby == 1 && sbc.missing == 1 && sbc.mode == "advise")
            #expect(sbc.busiestInstance == "sbc-1" && sbc.busiestLoad == 0.72 && sbc.peakTotal == 1.27)
            #expect(sbc.reason.contains("sbc-1 carried 72%") && sbc.reason.contains("above 60%"), "\(sbc.reason)")
            let routing = try #require(events.first { $0.role == "routing" })
            #expect(routing.action == "hold" && routing.after == 2, "\(routing.reason)")
            // Unchanged figures: nothing new to record.
            #expect(try await controller.evaluate(now: Self.now.addingTimeInterval(1)).isEmpty)
            let history = try await CapacityHistoryStore(store: store).history(role: "sbc")
            #expect(history.count == 1 && history.first?.action == "scale-out")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func anSBCFullOfCallsIsScaledOutEvenWithItsCPULow(backend: TestBackend) async throws {
        try await withMigratedDatabase(backend, service: "monitor", migrations: MonitorStore.migrations) { store in
            // 900 and 700 calls of 1,000 at the peak, CPU 20 %: the capacity figure decides.
            try await Self.collect(SampleStore(store: store), sbcCPU: (20, 20), sbcCalls: (900, 700))
            let events = try await Self.controller(store, standby: [:]).evaluate(now: Self.now)
            let sbc = try #require(events.first { $0.role == "sbc" })
            #expect(sbc.action == "scale-out" && sbc.after == 4 && sbc.fromStandby == 0 && sbc.missing == 2, "\(sbc)")
            #expect(sbc.busiestLoad == 0.9)
        }
    }

    @Test func onlyTheFirstHealthyMonitorOfTheSiteIsTheActiveController() async throws {
        try await withMigratedDatabase(.sqlite, service: "monitor", migrations: MonitorStore.migrations) { store in
            try await Self.collect(SampleStore(store: store), sbcCPU: (10, 10))
            #expect(try await Self.controller(store, me: "monitor-1").isActive(now: Self.now))
            #expect(try await !Self.controller(store, me: "monitor-2").isActive(now: Self.now))
            // monitor-1 silent for a minute: monitor-2 takes over.
            #expect(try await Self.controller(store, me: "monitor-2").isActive(now: Self.now.addingTimeInterval(60)))
        }
    }
}
