import Foundation
import Logging
import TestSupport
import Testing
import Synchronization
import TroncalControl
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

    static func controller(
        _ store: any SQLStore, me: String = "monitor-1", standby: [String: Int] = ["sbc": 1], instances: [InstanceSettings] = instances,
        executor: (any InstanceExecutor)? = nil
    ) -> CapacityController {
        var settings = CapacitySettings()
        settings.windowSeconds = 3600
        settings.bucketSeconds = 60
        settings.standby = standby
        settings.replaceAfterSeconds = 30
        if executor != nil { settings.mode = "act" }
        return CapacityController(
            samples: SampleStore(store: store), history: CapacityHistoryStore(store: store),
            states: InstanceStateStore(store: store, site: site, instances: instances), settings: settings, site: site, instances: instances,
            sbcMaximumCalls: 1000, me: me, scrapeIntervalSeconds: 10, executor: executor, alarms: MonitorStore(store: store),
            logger: Logger(label: "test.capacity"))
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

    /// sbc-1 at 72 % CPU at the peak while it drops the requests of a source it banned: at 12,000 a minute (the
    /// shipped threshold is 6,000) that CPU is the flood's and is not counted, so nothing is added; at 3,000 a minute it
    /// is demand, and the same peak asks for more SBCs.
    @Test(arguments: [(12_000.0, false), (3_000.0, true)])
    func aFloodedSBCsCPUDoesNotCountForSizingButItsCallsDo(perMinute: Double, counted: Bool) async throws {
        try await withMigratedDatabase(.sqlite, service: "monitor", migrations: MonitorStore.migrations) { store in
            let samples = SampleStore(store: store)
            try await Self.collect(samples, sbcCPU: (72, 20))
            var banned = MetricSample("troncal_sbc_requests_blocked_total", Self.sample("x", "sbc-1", 0).labels.merging(["reason": "banned"]) { $1 }, 0)
            for step in 0..<120 {
                // The flood: from a minute before the CPU peak to a minute after it.
                if (54..<72).contains(step) { banned.value += perMinute / 6 }
                try await samples.ingest([banned], at: Self.now.addingTimeInterval(Double(step - 120) * 10))
            }
            let sbc = try #require(try await Self.controller(store).evaluate(now: Self.now).first { $0.role == "sbc" })
            if counted {
                #expect(sbc.action == "scale-out" && sbc.busiestLoad == 0.72, "\(sbc.reason)")
                #expect(!sbc.reason.contains("flooded"), "\(sbc.reason)")
            } else {
                #expect(sbc.action == "hold" && sbc.after == 2, "\(sbc.reason)")
                #expect(sbc.reason.contains("CPU not counted while flooded") && sbc.reason.contains("sbc-1 in 3 bucket(s)"), "\(sbc.reason)")
            }
        }
    }

    /// The flooded SBC is full of calls as well: its calls are demand, flood or not.
    @Test func aFloodedSBCFullOfCallsIsStillScaledOut() async throws {
        try await withMigratedDatabase(.sqlite, service: "monitor", migrations: MonitorStore.migrations) { store in
            let samples = SampleStore(store: store)
            try await Self.collect(samples, sbcCPU: (95, 20), sbcCalls: (700, 100))
            var banned = MetricSample("troncal_sbc_requests_blocked_total", Self.sample("x", "sbc-1", 0).labels.merging(["reason": "banned"]) { $1 }, 0)
            for step in 0..<120 {
                if (54..<72).contains(step) { banned.value += 2000 }
                try await samples.ingest([banned], at: Self.now.addingTimeInterval(Double(step - 120) * 10))
            }
            let sbc = try #require(try await Self.controller(store).evaluate(now: Self.now).first { $0.role == "sbc" })
            #expect(sbc.action == "scale-out" && sbc.busiestLoad == 0.7, "\(sbc.reason)")
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

    // MARK: - act mode

    /// Records what the controller asked; `failing` instances cannot be started.
    final class RecordingExecutor: InstanceExecutor, Sendable {
        let kind = "test"
        let calls = Mutex<[String]>([])
        let failing: Set<String>
        init(failing: Set<String> = []) { self.failing = failing }
        func start(role: Role, instance: String) async throws {
            calls.withLock { $0.append("start \(role) \(instance)") }
            if failing.contains(instance) { throw ExecutorError("\(instance) cannot start here") }
        }
        func stop(role: Role, instance: String) async throws { calls.withLock { $0.append("stop \(role) \(instance)") } }
        var log: [String] { calls.withLock { $0 } }
    }

    static var withStandbys: [InstanceSettings] {
        var sbc3 = instance("sbc-3")
        sbc3.standby = true
        var routing3 = instance("routing-3")
        routing3.standby = true
        return instances + [sbc3, routing3]
    }

    @Test(arguments: TestBackend.allCases)
    func inActModeAScaleOutStartsTheStandbySBCAndTakesItIntoService(backend: TestBackend) async throws {
        try await withMigratedDatabase(backend, service: "monitor", migrations: MonitorStore.migrations) { store in
            try await Self.collect(SampleStore(store: store), sbcCPU: (72, 55))
            let executor = RecordingExecutor()
            let controller = Self.controller(store, standby: [:], instances: Self.withStandbys, executor: executor)
            let events = try await controller.evaluate(now: Self.now)
            let sbc = try #require(events.first { $0.role == "sbc" })
            #expect(sbc.action == "scale-out" && sbc.mode == "act" && sbc.fromStandby == 1 && sbc.missing == 1, "\(sbc)")
            #expect(sbc.reason.contains("started sbc-3 (test)"), "\(sbc.reason)")
            #expect(executor.log == ["start sbc sbc-3"], "only the standby SBC; routing holds")
            let states = try await InstanceStateStore(store: store, site: Self.site, instances: Self.withStandbys).entries()
            #expect(states.first { $0.instance.name == "sbc-3" }?.state == .service)
            #expect(states.first { $0.instance.name == "routing-3" }?.state == .standby)
            // The next round, a minute later: the SBCs settle (monitor.capacity.settleSeconds, 300 s), so the peak that
            // asked for sbc-3 does not ask again; nothing is decided or started.
            let next = try await controller.evaluate(now: Self.now.addingTimeInterval(60))
            #expect(!next.contains { $0.role == "sbc" }, "\(next)")
            // Settled: only figures from after the settle time count (none here): three SBCs, holding.
            let later = try await controller.evaluate(now: Self.now.addingTimeInterval(400))
            let held = try #require(later.first { $0.role == "sbc" })
            #expect(held.action == "hold" && held.instances == 3, "\(held)")
            #expect(executor.log == ["start sbc sbc-3"])
        }
    }

    /// routing-2 stops answering /health: after `replaceAfterSeconds` of scrapes that all found it down it is stopped,
    /// withdrawn (no longer scraped or planned for), and routing-3 from the standby pool is started in its place; the
    /// decision and its reason are in the history. A standby that cannot start is reported, and the next one tried.
    @Test(arguments: TestBackend.allCases)
    func inActModeAnInstanceDownForTheReplaceTimeIsWithdrawnAndAStandbyStartedInItsPlace(backend: TestBackend) async throws {
        try await withMigratedDatabase(backend, service: "monitor", migrations: MonitorStore.migrations) { store in
            let samples = SampleStore(store: store)
            try await Self.collect(samples, sbcCPU: (10, 10))
            var routing4 = Self.instance("routing-4")
            routing4.standby = true
            let instances = Self.withStandbys + [routing4]
            func scrape(_ at: Date, routing2Up: Bool) async throws {
                var series: [MetricSample] = []
                for name in ["routing-1", "routing-2", "sbc-1", "sbc-2", "monitor-1"] {
                    let up = name != "routing-2" || routing2Up
                    var labels = Self.sample("x", name, 0).labels
                    labels["host"] = "127.0.0.1"
                    series.append(MetricSample("troncal_instance_up", labels, up ? 1 : 0))
                    if up { series.append(Self.sample("troncal_instance_healthy", name, 1)) }
                }
                try await samples.ingest(series, at: at)
            }
            // Healthy until 20 s ago, down in the last scrape only: not yet (30 s needed).
            for step in 0..<10 { try await scrape(Self.now.addingTimeInterval(Double(step * 10 - 100)), routing2Up: step < 9) }
            let executor = RecordingExecutor(failing: ["routing-3"])
            let controller = Self.controller(store, standby: [:], instances: instances, executor: executor)
            #expect(try await controller.evaluate(now: Self.now).allSatisfy { $0.action != "replace" })
            #expect(executor.log.isEmpty)
            // Down in every scrape of the last 30 s.
            for step in 10..<13 { try await scrape(Self.now.addingTimeInterval(Double(step * 10 - 100)), routing2Up: false) }
            let later = Self.now.addingTimeInterval(30)
            let events = try await controller.evaluate(now: later)
            let replace = try #require(events.first { $0.action == "replace" })
            #expect(replace.role == "routing" && replace.busiestInstance == "routing-2" && replace.fromStandby == 1, "\(replace)")
            #expect(replace.reason.contains("routing-2 did not answer /health in any scrape of the last 30 s (2 scrapes)"), "\(replace.reason)")
            #expect(replace.reason.contains("routing-3 could not be started") && replace.reason.contains("routing-4 from the standby pool started"))
            #expect(executor.log == ["stop routing routing-2", "start routing routing-3", "start routing routing-4"])
            let states = try await InstanceStateStore(store: store, site: Self.site, instances: instances).entries()
            #expect(states.first { $0.instance.name == "routing-2" }?.state == .withdrawn)
            #expect(states.first { $0.instance.name == "routing-4" }?.state == .service)
            // Once: routing-2 is withdrawn, routing-4 is new (given the replace time to become healthy).
            #expect(try await controller.evaluate(now: later.addingTimeInterval(10)).allSatisfy { $0.action != "replace" })
            #expect(try await CapacityHistoryStore(store: store).history(role: "routing", limit: 10).contains { $0.action == "replace" })
        }
    }

    /// At a site's start a slow instance is not replaced for not answering yet: one never seen healthy is judged only
    /// once the controller has been active for max(120 s, 3 × the replace time).
    @Test func anInstanceThatHasNotAnsweredSinceTheControllerStartedIsGivenTimeToStart() async throws {
        try await withMigratedDatabase(.sqlite, service: "monitor", migrations: MonitorStore.migrations) { store in
            let samples = SampleStore(store: store)
            for step in 0..<10 {
                var labels = Self.sample("x", "routing-2", 0).labels
                labels["host"] = "127.0.0.1"
                try await samples.ingest([MetricSample("troncal_instance_up", labels, 0)], at: Self.now.addingTimeInterval(Double(step * 10 - 90)))
            }
            let executor = RecordingExecutor()
            let controller = Self.controller(store, standby: [:], instances: Self.withStandbys, executor: executor)
            #expect(try await controller.evaluate(now: Self.now, activeSince: Self.now.addingTimeInterval(-100)).allSatisfy { $0.action != "replace" })
            #expect(executor.log.isEmpty)
            let events = try await controller.evaluate(now: Self.now, activeSince: Self.now.addingTimeInterval(-121))
            #expect(events.contains { $0.action == "replace" && $0.busiestInstance == "routing-2" }, "\(events)")
            #expect(executor.log == ["stop routing routing-2", "start routing routing-3"])
        }
    }

    /// An SBC with a critical security alarm (a flood banning sources) is drained and withdrawn, and the standby SBC
    /// started in its place, in one round; a warning alone, or another site's alarm, changes nothing.
    @Test(arguments: TestBackend.allCases)
    func inActModeAnSBCUnderAttackIsDrainedWithdrawnAndReplacedByTheStandby(backend: TestBackend) async throws {
        try await withMigratedDatabase(backend, service: "monitor", migrations: MonitorStore.migrations) { store in
            try await Self.collect(SampleStore(store: store), sbcCPU: (10, 10))
            func alarm(_ severity: AlarmSeverity, site: String, _ fingerprint: String) -> Alarm {
                Alarm(
                    fingerprint: fingerprint, rule: "SBCBanStorm", category: .security, severity: severity,
                    labels: ["instance": "sbc-1", "site": site, "role": "sbc"], summary: "sbc-1 banned 250 sources in a minute",
                    action: "", value: 250, startsAt: Self.now, endsAt: nil, level: .soc, levelSince: Self.now)
            }
            let alarms = MonitorStore(store: store)
            try await alarms.save(
                [(alarm(.warning, site: Self.site, "w1"), "fired", "monitor", ""), (alarm(.critical, site: "other-site", "o1"), "fired", "monitor", "")],
                at: Self.now)
            let executor = RecordingExecutor()
            let controller = Self.controller(store, standby: [:], instances: Self.withStandbys, executor: executor)
            #expect(try await controller.evaluate(now: Self.now).allSatisfy { $0.action != "replace" })
            #expect(executor.log.isEmpty)
            try await alarms.save([(alarm(.critical, site: Self.site, "c1"), "fired", "monitor", "")], at: Self.now)
            let events = try await controller.evaluate(now: Self.now.addingTimeInterval(1))
            let replace = try #require(events.first { $0.action == "replace" }, "\(events)")
            #expect(replace.role == "sbc" && replace.busiestInstance == "sbc-1" && replace.fromStandby == 1)
            #expect(replace.reason.contains("sbc-1 is under attack: SBCBanStorm critical") && replace.reason.contains("drained, withdrawn and stopped"),
                    "\(replace.reason)")
            #expect(executor.log == ["stop sbc sbc-1", "start sbc sbc-3"])
            let states = try await InstanceStateStore(store: store, site: Self.site, instances: Self.withStandbys).entries()
            #expect(states.first { $0.instance.name == "sbc-1" }?.state == .withdrawn)
            #expect(states.first { $0.instance.name == "sbc-3" }?.state == .service)
        }
    }
}
