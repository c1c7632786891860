public import Foundation
public import TroncalProtocol

/// One notification group: the alarms of one receiver that share the `groupBy` labels, with Alertmanager's timing.
public struct NotificationGroup: Codable, Sendable, Hashable {
    /// `receiver` and the group labels: the identity.
    public var key: String
    public var receiver: String
    public var groupLabels: [String: String]
    /// The group's alarms as last seen, firing or resolved-but-not-yet-notified.
    public var alarms: [String: Alarm]
    public var lastFlush: Date?
    /// Something changed since the last notification.
    public var changed: Bool
    /// When the group is next looked at.
    public var nextFlush: Date
}

/// Grouping of alarm notifications with Alertmanager's meanings, as a pure state machine:
/// - a new group waits `groupWait` before its first notification, so that alarms raised together go together;
/// - a group that changed (an alarm added, resolved, escalated) is notified again `groupInterval` after its last
///   notification;
/// - an unchanged group with alarms still firing is repeated every `repeatInterval`;
/// - resolved alarms are sent once (status `resolved`) and leave the group; an empty group ends.
public struct NotificationGrouper: Sendable {
    public var groupWait: Double
    public var groupInterval: Double
    public var repeatInterval: Double
    public var groupBy: [String]
    public private(set) var groups: [String: NotificationGroup] = [:]

    public init(groupWait: Double, groupInterval: Double, repeatInterval: Double, groupBy: [String], groups: [NotificationGroup] = []) {
        self.groupWait = groupWait
        self.groupInterval = groupInterval
        self.repeatInterval = repeatInterval
        self.groupBy = groupBy
        for group in groups { self.groups[group.key] = group }
    }

    /// An alarm changed (fired, escalated, changed severity, resolved): it goes to each of `receivers`' group.
    /// Returns the keys of the groups that changed.
    @discardableResult
    public mutating func add(_ alarm: Alarm, receivers: [String], at now: Date) -> [String] {
        var keys: [String] = []
        for receiver in receivers {
            let labels = Dictionary(uniqueKeysWithValues: groupBy.compactMap { name in alarm.labels[name].map { (name, $0) } })
            let key = receiver + ":{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",") + "}"
            keys.append(key)
            if var group = groups[key] {
                // A resolved alarm that this group never notified as firing is dropped quietly.
                if alarm.isResolved && group.alarms[alarm.fingerprint] == nil { continue }
                group.alarms[alarm.fingerprint] = alarm
                if !group.changed {
                    group.changed = true
                    let due = (group.lastFlush ?? now).addingTimeInterval(group.lastFlush == nil ? groupWait : groupInterval)
                    group.nextFlush = max(now, min(group.nextFlush, due))
                }
                groups[key] = group
            } else {
                guard !alarm.isResolved else { continue }
                groups[key] = NotificationGroup(
                    key: key, receiver: receiver, groupLabels: labels, alarms: [alarm.fingerprint: alarm], lastFlush: nil, changed: true,
                    nextFlush: now.addingTimeInterval(groupWait))
            }
        }
        return keys
    }

    /// The groups due at `now`, each with the alarms to send; their state moves on as if sent (the outbox makes
    /// sure they are). Also returns the keys of groups that ended.
    public mutating func flush(at now: Date) -> (due: [NotificationGroup], ended: [String]) {
        var due: [NotificationGroup] = []
        var ended: [String] = []
        for (key, var group) in groups.sorted(by: { $0.key < $1.key }) where group.nextFlush <= now {
            let firing = group.alarms.values.contains { !$0.isResolved }
            if group.changed || firing {
                due.append(group)
            }
            group.alarms = group.alarms.filter { !$0.value.isResolved }
            if group.alarms.isEmpty {
                groups[key] = nil
                ended.append(key)
                continue
            }
            group.lastFlush = now
            group.changed = false
            group.nextFlush = now.addingTimeInterval(repeatInterval)
            groups[key] = group
        }
        return (due, ended)
    }

    /// The earliest time a group is due, if any.
    public var nextDue: Date? { groups.values.map(\.nextFlush).min() }
}

/// Alertmanager's webhook body, version 4, so that anything that takes Alertmanager's webhooks takes the monitor's.
public struct AlertmanagerPayload: Codable, Sendable, Hashable {
    public struct Alert: Codable, Sendable, Hashable {
        public var status: String
        public var labels: [String: String]
        public var annotations: [String: String]
        public var startsAt: String
        public var endsAt: String
        public var generatorURL: String
        public var fingerprint: String
    }

    public var version = "4"
    public var groupKey: String
    public var truncatedAlerts = 0
    public var status: String
    public var receiver: String
    public var groupLabels: [String: String]
    public var commonLabels: [String: String]
    public var commonAnnotations: [String: String]
    public var externalURL: String
    public var alerts: [Alert]

    /// The body for a group's notification; alerts sorted by start, at most `maximumAlerts` (the rest counted in
    /// `truncatedAlerts`).
    public init(group: NotificationGroup, receiver: String, externalURL: String, maximumAlerts: Int = 200) {
        let sorted = group.alarms.values.sorted { ($0.startsAt, $0.fingerprint) < ($1.startsAt, $1.fingerprint) }
        let alerts = sorted.map { alarm in
            var labels = alarm.labels
            labels["severity"] = alarm.severity.rawValue
            labels["level"] = alarm.level.rawValue
            var annotations = ["summary": alarm.summary, "action": alarm.action, "value": "\(alarm.value)"]
            if let by = alarm.acknowledgedBy { annotations["acknowledgedBy"] = by }
            return Alert(
                status: alarm.isResolved ? "resolved" : "firing", labels: labels, annotations: annotations,
                startsAt: Self.rfc3339(alarm.startsAt), endsAt: alarm.endsAt.map(Self.rfc3339) ?? "0001-01-01T00:00:00Z",
                generatorURL: externalURL.isEmpty ? "" : externalURL + "/alarms/" + alarm.fingerprint, fingerprint: alarm.fingerprint)
        }
        self.groupKey = group.key
        self.status = alerts.contains { $0.status == "firing" } ? "firing" : "resolved"
        self.receiver = receiver
        self.groupLabels = group.groupLabels
        self.commonLabels = Self.common(alerts.map(\.labels))
        self.commonAnnotations = Self.common(alerts.map(\.annotations))
        self.externalURL = externalURL
        self.alerts = Array(alerts.prefix(maximumAlerts))
        self.truncatedAlerts = max(0, alerts.count - maximumAlerts)
    }

    static func common(_ sets: [[String: String]]) -> [String: String] {
        guard var common = sets.first else { return [:] }
        for set in sets.dropFirst() { common = common.filter { set[$0.key] == $0.value } }
        return common
    }

    static func rfc3339(_ date: Date) -> String { date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)) }
}
