import AsyncHTTPClient
import Foundation
import Logging
import Testing
import TestSupport
@testable import TroncalMonitor
import TroncalProtocol
import TroncalRuntime
import TroncalStore

/// The alarm desk over a real database (SQLite and PostgreSQL): escalation to each level's receivers, ack, security
/// alarms at the SOC, inhibition, and a restart that neither repeats nor loses anything. Time is passed in.
@Suite("Monitor: escalation and the notification outbox")
struct AlarmDeskTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    func settings() -> MonitorSettings {
        var settings = MonitorSettings()
        settings.receivers = [
            ReceiverSettings(name: "noc", url: "http://127.0.0.1:1/noc", levels: ["noc-1"]),
            ReceiverSettings(name: "noc2", url: "http://127.0.0.1:1/noc2", levels: ["noc-2"]),
            ReceiverSettings(name: "soc", url: "http://127.0.0.1:1/soc", levels: ["soc"]),
        ]
        settings.groupWaitSeconds = 0
        settings.groupIntervalSeconds = 5
        settings.repeatIntervalSeconds = 3600
        settings.groupBy = ["alertname", "instance"]
        settings.escalation.level2Minutes = 15
        settings.escalation.level3Minutes = 30
        return settings
    }

    func desk(_ store: any SQLStore) async throws -> AlarmDesk {
        try await AlarmDesk(
            store: MonitorStore(store: store), settings: settings(), site: "a", rules: AlarmDesk.rules(settings()), logger: Logger(label: "test.monitor"))
    }

    func down(_ instances: [String: Double]) -> [MetricSample] {
        instances.map { MetricSample("troncal_instance_up", ["site": "a", "instance": $0.key, "role": "billing"], $0.value) }
    }

    /// Receivers that got a notification naming `instance`, in order.
    func receivers(_ items: [OutboxNotification], naming instance: String) -> [String] {
        items.sorted { ($0.createdAt, $0.receiver) < ($1.createdAt, $1.receiver) }.filter { $0.payload.contains("\"instance\":\"\(instance)\"") }.map(\.receiver)
    }

    @Test(arguments: TestBackend.allCases)
    func criticalAlarmsClimbToNOC2ThenTheSOCAndAnAckedOneStays(backend: TestBackend) async throws {
        try await withMigratedDatabase(backend, service: "monitor", migrations: MonitorStore.migrations) { store in
            let desk = try await desk(store)
            let monitor = MonitorStore(store: store)
            // Two instances down from t0: InstanceDown fires 10 s later for both (critical, NOC level 1).
            for second in stride(from: 0.0, through: 10, by: 5) {
                try await desk.collected(down(["billing-1": 0, "billing-2": 0]), at: at(second))
                try await desk.flushNotifications(at: at(second))
            }
            let firing = await desk.firing
            #expect(firing.count == 2)
            let acked = try #require(firing.first { $0.labels["instance"] == "billing-2" })
            _ = try await desk.acknowledge(String(acked.fingerprint.prefix(6)), by: "ana", comment: "on it", at: at(20))
            // Minute by minute to 45 minutes after firing.
            for minute in 1...45 {
                let now = at(10 + Double(minute) * 60)
                try await desk.collected(down(["billing-1": 0, "billing-2": 0]), at: now)
                try await desk.flushNotifications(at: now)
            }
            let items = try await monitor.outbox(hours: 10_000, now: at(4000))
            #expect(receivers(items, naming: "billing-1") == ["noc", "noc", "noc2", "noc", "noc2", "soc"])
            #expect(receivers(items, naming: "billing-2") == ["noc"], "an acknowledged alarm does not escalate")
            let levels = await desk.firing.map { "\($0.labels["instance"]!):\($0.level.rawValue)" }.sorted()
            #expect(levels == ["billing-1:soc", "billing-2:noc-1"])
            let history = try await monitor.history(fingerprint: acked.fingerprint, limit: 50)
            #expect(history.contains { $0.event == "acknowledged" && $0.actor == "ana" && $0.detail == "on it" })
        }
    }

    @Test(arguments: TestBackend.allCases)
    func securityAlarmsGoToTheSOCAtOnceAndInhibitedOnesAreNotSent(backend: TestBackend) async throws {
        try await withMigratedDatabase(backend, service: "monitor", migrations: MonitorStore.migrations) { store in
            let desk = try await desk(store)
            let bans = { (count: Double) in [MetricSample("troncal_sbc_bans_total", ["site": "a", "instance": "sbc-1", "role": "sbc", "reason": "rate-limit"], count)] }
            try await desk.collected(bans(0), at: at(0))
            try await desk.collected(bans(500), at: at(60))
            try await desk.flushNotifications(at: at(60))
            let alarm = try #require(await desk.firing.first)
            #expect(alarm.rule == "SBCBanStorm")
            #expect(alarm.level == .soc)
            #expect(alarm.severity == .critical)
            let items = try await MonitorStore(store: store).outbox(hours: 10_000, now: at(100))
            #expect(Set(items.map(\.receiver)) == ["noc", "noc2", "soc"], "every level up to the SOC sees it")

            // An instance down: its unhealthy and dependency alarms are not notified, only the down one.
            let identity = ["site": "a", "instance": "routing-1", "role": "routing"]
            let series = [
                MetricSample("troncal_instance_up", identity, 0),
                MetricSample("troncal_dependency_reachable", identity.merging(["dependency": "billing"]) { $1 }, 0),
            ]
            for second in stride(from: 100.0, through: 200, by: 10) {
                try await desk.collected(series, at: at(second))
                try await desk.flushNotifications(at: at(second))
            }
            // (The ban storm resolved: its series is no longer reported.)
            #expect(Set(await desk.firing.map(\.rule)) == ["InstanceDown", "DependencyUnreachable"])
            let later = try await MonitorStore(store: store).outbox(hours: 10_000, now: at(300))
            #expect(later.contains { $0.payload.contains("InstanceDown") })
            #expect(!later.contains { $0.payload.contains("DependencyUnreachable") })
        }
    }

    @Test(arguments: TestBackend.allCases)
    func aRestartedDeskRepeatsNothingAndKeepsTheGroupsTiming(backend: TestBackend) async throws {
        try await withMigratedDatabase(backend, service: "monitor", migrations: MonitorStore.migrations) { store in
            let first = try await desk(store)
            for second in stride(from: 0.0, through: 10, by: 5) {
                try await first.collected(down(["billing-1": 0]), at: at(second))
                try await first.flushNotifications(at: at(second))
            }
            let before = try await MonitorStore(store: store).outbox(hours: 10_000, now: at(100)).count
            #expect(before == 1)
            // A new desk on the same database (a restart): the alarm is still firing, nothing new is sent before the
            // repeat interval, and a resolution is sent once.
            let second = try await desk(store)
            #expect(await second.firing.count == 1)
            for offset in stride(from: 20.0, through: 600, by: 20) {
                try await second.collected(down(["billing-1": 0]), at: at(offset))
                try await second.flushNotifications(at: at(offset))
            }
            #expect(try await MonitorStore(store: store).outbox(hours: 10_000, now: at(700)).count == before)
            try await second.collected(down(["billing-1": 1]), at: at(620))
            try await second.flushNotifications(at: at(625))
            let after = try await MonitorStore(store: store).outbox(hours: 10_000, now: at(700))
            #expect(after.count == 2)
            #expect(after.contains { $0.payload.contains("\"status\":\"resolved\"") })
            let events = try await MonitorStore(store: store).history(fingerprint: nil, limit: 100).map(\.event)
            #expect(events.filter { $0 == "fired" }.count == 1)
        }
    }

    @Test func aFailingReceiverIsRetriedWithBackoffThenTheFallbackGetsItAndNothingIsSentEarly() async throws {
        let receiver = try await WebhookReceiver()
        defer { receiver.stop() }
        try receiver.answer(500, path: "/noc")
        try await withMigratedDatabase(.sqlite, service: "monitor", migrations: MonitorStore.migrations) { store in
            var settings = MonitorSettings()
            settings.receivers = [
                ReceiverSettings(name: "noc", url: receiver.url + "/noc", levels: ["noc-1"]),
                ReceiverSettings(name: "backup", url: receiver.url + "/backup", levels: []),
            ]
            settings.fallbackReceiver = "backup"
            settings.fallbackAfterAttempts = 3
            let monitor = MonitorStore(store: store)
            let desk = try await AlarmDesk(store: monitor, settings: settings, site: "a", rules: [], logger: Logger(label: "test.monitor"))
            let sender = NotificationSender(desk: desk, store: monitor, settings: settings, logger: Logger(label: "test.monitor"))
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            defer { Task { try? await client.shutdown() } }
            let now = Date()
            try await monitor.enqueue([
                OutboxNotification(id: "n1", receiver: "noc", groupKey: "g", payload: #"{"status":"firing"}"#, createdAt: now, fingerprints: ["f1"])
            ])
            let receivers = Dictionary(uniqueKeysWithValues: settings.receivers.map { ($0.name, $0) })
            // Attempt 1 fails at `now`: next try 1 s later, not before (a restarted monitor reads the same time from the store).
            await sender.deliver(try #require(try await monitor.due(at: now).first), receivers: receivers, client: client, at: now)
            #expect(try await monitor.due(at: now.addingTimeInterval(0.9)).isEmpty)
            let retry = try #require(try await monitor.due(at: now.addingTimeInterval(1)).first)
            #expect(retry.attempts == 1)
            #expect(retry.lastError.contains("500"))
            // Attempt 2 fails at +1 s: next 2 s later; attempt 3 fails at +3 s and hands it to the fallback.
            await sender.deliver(retry, receivers: receivers, client: client, at: now.addingTimeInterval(1))
            #expect(try await monitor.due(at: now.addingTimeInterval(2.9)).isEmpty)
            let third = try #require(try await monitor.due(at: now.addingTimeInterval(3)).first)
            await sender.deliver(third, receivers: receivers, client: client, at: now.addingTimeInterval(3))
            let handed = try await monitor.due(at: now.addingTimeInterval(3))
            #expect(handed.map(\.receiver) == ["backup"])
            await sender.deliver(try #require(handed.first), receivers: receivers, client: client, at: now.addingTimeInterval(3))
            let all = try await monitor.outbox(hours: 1, now: now.addingTimeInterval(10))
            #expect(Set(all.map { "\($0.receiver):\($0.state):\($0.attempts)" }) == ["noc:failed:3", "backup:sent:1"])
            #expect(receiver.posts.map(\.path) == ["/noc", "/noc", "/noc", "/backup"])
        }
    }
}
