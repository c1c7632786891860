public import Foundation
public import Logging
internal import Metrics
public import TroncalProtocol
public import TroncalRuntime

/// Where alarms are worked: the rule engine, the notification groups and the store, behind one actor so that a
/// collection round, an operator's ack and the notification timer never interleave. Each change is stored (alarm and
/// history) before it is notified; notifications go to the outbox, never straight to the network.
public actor AlarmDesk {
    var engine: AlarmEngine
    var grouper: NotificationGrouper
    let store: MonitorStore
    let settings: MonitorSettings
    let site: String
    let logger: Logger
    /// The latest collected series, for the dashboard and `alarms.list` context.
    public private(set) var latest: [MetricSample] = []
    public private(set) var latestAt: Date?
    var voice: VoiceAnalyzer

    public init(store: MonitorStore, settings: MonitorSettings, site: String, rules: [AlarmRule], logger: Logger) async throws {
        self.store = store
        self.settings = settings
        self.site = site
        self.logger = logger
        let firing = try await store.firing()
        engine = AlarmEngine(rules: rules, policy: settings.escalation.policy, active: firing)
        voice = VoiceAnalyzer(
            settings: settings.voice,
            firing: firing.filter { $0.rule == Self.customerNotice && $0.labels["site"] == site }.compactMap { $0.labels["customer"] })
        grouper = NotificationGrouper(
            groupWait: Double(settings.groupWaitSeconds), groupInterval: Double(settings.groupIntervalSeconds),
            repeatInterval: Double(settings.repeatIntervalSeconds), groupBy: settings.groupBy, groups: try await store.groups())
    }

    /// The shipped rules, with the rules file's and then `monitor.rules` replacing those of the same name (or adding),
    /// and `disabledRules` removed.
    public static func rules(_ settings: MonitorSettings, file: [AlarmRule] = []) -> [AlarmRule] {
        var rules = AlarmRule.defaults.filter { !settings.disabledRules.contains($0.name) }
        for rule in file + settings.rules {
            if let index = rules.firstIndex(where: { $0.name == rule.name }) { rules[index] = rule } else { rules.append(rule) }
        }
        return rules
    }

    /// One collection round: evaluate, store the changes, group them for notification.
    public func collected(_ series: [MetricSample], at now: Date) async throws {
        latest = series
        latestAt = now
        let changes = engine.evaluate(series, at: now)
        try await apply(changes, at: now)
    }

    /// The rule name of the per-customer voice notice.
    public static let customerNotice = "CustomerMOSLow"

    /// One voice round: the per-customer notices raised or cleared over the customer window.
    public func voiceRound(_ window: [QualityAggregate], at now: Date) async throws {
        guard !settings.disabledRules.contains(Self.customerNotice) else { return }
        var changes: [AlarmChange] = []
        for notice in voice.evaluate(window, at: now) {
            switch notice {
            case .raise(let diagnosis):
                let severity: AlarmSeverity = diagnosis.mos < 3.1 ? .critical : .warning
                let change = engine.raise(
                    rule: Self.customerNotice, category: .voice, severity: severity, labels: ["customer": diagnosis.customer, "site": site],
                    summary: diagnosis.summary, action: diagnosis.cause, value: diagnosis.mos, at: now)
                if let change { changes.append(change) }
            case .still(let customer, let mos):
                if let change = engine.reassess(
                    rule: Self.customerNotice, category: .voice, labels: ["customer": customer, "site": site],
                    severity: mos < 3.1 ? .critical : .warning, value: mos)
                {
                    changes.append(change)
                }
            case .clear(let customer, let mos):
                if let change = engine.resolve(
                    rule: Self.customerNotice, category: .voice, labels: ["customer": customer, "site": site], value: mos, at: now)
                {
                    changes.append(change)
                }
            }
        }
        // As for the rules' changes: the engine keeps them even if the store fails now (restoring an earlier copy across
        // the await would undo an operator's ack made meanwhile); they are stored with the alarm's next change.
        try await apply(changes, at: now)
    }

    /// Escalations due without a collection (the monitor's timer).
    public func tick(at now: Date) async throws {
        try await apply(engine.escalate(at: now), at: now)
    }

    private func apply(_ changes: [AlarmChange], at now: Date) async throws {
        guard !changes.isEmpty else { return }
        try await store.save(changes.map { ($0.alarm, $0.event, "monitor", $0.alarm.summary) }, at: now)
        for change in changes {
            let alarm = change.alarm
            var metadata: Logger.Metadata = [
                "alarm": "\(alarm.rule)", "fingerprint": "\(alarm.fingerprint)", "severity": "\(alarm.severity.rawValue)",
                "level": "\(alarm.level.rawValue)", "site": "\(site)",
            ]
            for key in ["instance", "host", "carrier", "customer"] { if let value = alarm.labels[key] { metadata[key] = "\(value)" } }
            switch change {
            case .fired: logger.warning("alarm fired: \(alarm.summary)", metadata: metadata)
            case .resolved: logger.notice("alarm resolved: \(alarm.summary)", metadata: metadata)
            case .escalated, .changedSeverity: logger.warning("alarm \(change.event): \(alarm.summary)", metadata: metadata)
            }
            Counter(label: "troncal_monitor_alarm_changes_total", dimensions: [("event", eventKind(change)), ("category", alarm.category.rawValue)])
                .increment()
            guard !alarm.isSilenced(at: now), !isInhibited(alarm) else { continue }
            grouper.add(alarm, receivers: receivers(for: alarm), at: now)
        }
        Gauge(label: "troncal_monitor_alarms_firing").record(engine.active.count)
    }

    private func eventKind(_ change: AlarmChange) -> String {
        switch change {
        case .fired: "fired"
        case .resolved: "resolved"
        case .escalated: "escalated"
        case .changedSeverity: "severity"
        }
    }

    /// Inhibition: while an instance is down, its other alarms (unhealthy, slow, dependencies) are not notified.
    func isInhibited(_ alarm: Alarm) -> Bool {
        guard alarm.rule != "InstanceDown", let instance = alarm.labels["instance"] else { return false }
        return engine.active.values.contains { $0.rule == "InstanceDown" && $0.labels["instance"] == instance }
    }

    /// The receivers of the alarm's level and every level below it.
    func receivers(for alarm: Alarm) -> [String] {
        settings.receivers.filter { receiver in
            receiver.levels.compactMap(EscalationLevel.init(rawValue:)).contains { $0 <= alarm.level }
        }.map(\.name)
    }

    /// Moves the groups due at `now` into the outbox (and the group state with them, in that order: a crash between
    /// the two repeats a notification rather than losing it).
    public func flushNotifications(at now: Date) async throws {
        let before = grouper
        let (due, ended) = grouper.flush(at: now)
        guard !due.isEmpty || !ended.isEmpty else { return }
        let items = due.map { group in
            let payload = AlertmanagerPayload(group: group, receiver: group.receiver, externalURL: settings.externalURL)
            let body = (try? MonitorStore.encoder.encode(payload)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            return OutboxNotification(
                id: RandomID.uuidString(), receiver: group.receiver, groupKey: group.key, payload: body, createdAt: now,
                fingerprints: group.alarms.keys.sorted())
        }
        do {
            try await store.enqueue(items)
            try await store.saveGroups(grouper.groups.values.filter { group in due.contains { $0.key == group.key } }, removing: ended)
        } catch {
            grouper = before
            throw error
        }
    }

    public var nextNotificationDue: Date? { grouper.nextDue }

    // MARK: - Operators

    /// The firing alarm whose fingerprint starts with `prefix` (it must be unique).
    func find(_ prefix: String) throws(MonitorError) -> String {
        let matches = engine.active.keys.filter { $0.hasPrefix(prefix) }
        guard !prefix.isEmpty, matches.count == 1 else {
            throw MonitorError(matches.isEmpty ? "no firing alarm has fingerprint '\(prefix)'" : "'\(prefix)' matches \(matches.count) alarms")
        }
        return matches[0]
    }

    public func acknowledge(_ prefix: String, by: String, comment: String, at now: Date) async throws -> Alarm {
        let fingerprint = try find(prefix)
        guard let alarm = engine.acknowledge(fingerprint, by: by, at: now) else { throw MonitorError("the alarm resolved meanwhile") }
        try await store.save([(alarm, "acknowledged", by, comment)], at: now)
        logger.notice("alarm acknowledged", metadata: ["alarm": "\(alarm.rule)", "fingerprint": "\(fingerprint)", "by": "\(by)"])
        return alarm
    }

    public func silence(_ prefix: String, until: Date, reason: String, by: String, at now: Date) async throws -> Alarm {
        let fingerprint = try find(prefix)
        guard until > now else { throw MonitorError("the silence must end in the future") }
        guard !reason.isEmpty else { throw MonitorError("a silence needs a reason") }
        guard let alarm = engine.silence(fingerprint, until: until, reason: reason) else { throw MonitorError("the alarm resolved meanwhile") }
        try await store.save([(alarm, "silenced", by, "until \(AlertmanagerPayload.rfc3339(until)): \(reason)")], at: now)
        logger.notice("alarm silenced", metadata: ["alarm": "\(alarm.rule)", "fingerprint": "\(fingerprint)", "by": "\(by)", "reason": "\(reason)"])
        return alarm
    }

    public var firing: [Alarm] { engine.active.values.sorted { $0.startsAt > $1.startsAt } }
}

public struct MonitorError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
