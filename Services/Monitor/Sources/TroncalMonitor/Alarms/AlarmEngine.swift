public import Foundation
public import TroncalProtocol

/// What changed in one evaluation; each becomes a history row and, unless silenced, a notification.
public enum AlarmChange: Sendable, Hashable {
    case fired(Alarm)
    /// The severity went up or down while firing.
    case changedSeverity(Alarm, from: AlarmSeverity)
    case escalated(Alarm, from: EscalationLevel)
    case resolved(Alarm)

    public var alarm: Alarm {
        switch self {
        case .fired(let alarm), .changedSeverity(let alarm, _), .escalated(let alarm, _), .resolved(let alarm): alarm
        }
    }

    public var event: String {
        switch self {
        case .fired: "fired"
        case .changedSeverity(let alarm, let from): "severity \(from.rawValue) → \(alarm.severity.rawValue)"
        case .escalated(let alarm, let from): "escalated \(from.rawValue) → \(alarm.level.rawValue)"
        case .resolved: "resolved"
        }
    }
}

/// The alarm rules over successive snapshots of every series, as a pure state machine: samples and the time in,
/// alarm changes out. No clock, no I/O: the monitor feeds it each collection and stores what comes out.
///
/// A breach starts *pending*; it fires when it has lasted the rule's `forSeconds` (at the highest severity breached
/// now); it clears only on the good side of the rule's `clear` threshold, or when its series is no longer reported.
/// A firing alarm starts at NOC level 1 (`security` ones at the SOC), goes to NOC level 2 after `level2Minutes`
/// and, if critical, to the SOC after `level3Minutes`, unless acknowledged.
public struct AlarmEngine: Sendable {
    public private(set) var rules: [AlarmRule]
    public var policy: EscalationPolicy
    /// Firing alarms by fingerprint.
    public private(set) var active: [String: Alarm] = [:]
    /// Breaches not yet long enough: fingerprint → since.
    private var pending: [String: Date] = [:]
    /// Previous counter readings for `increasePerMinute`: series key → (time, value).
    private var previous: [String: (Date, Double)] = [:]
    /// The instances of the previous evaluation and its time: a counter that first appears on an instance already seen
    /// was created since (counters are exported from their first increment), so it grew from zero.
    private var previousInstances: Set<String> = []
    private var previousEvaluation: Date?
    /// This round's instance uptimes (`troncal_instance_uptime_seconds`), by instance.
    private var uptimes: [String: Double] = [:]
    /// A counter first seen on an instance seen for the first time, which started at most this long ago, counted from
    /// zero since its start (the monitor came up after it, or its first scrapes were late: a flood banned at once).
    static let youngInstanceSeconds: Double = 300

    /// `active`: the firing alarms a previous run left in the store, so that a restart neither repeats nor loses them.
    public init(rules: [AlarmRule], policy: EscalationPolicy = EscalationPolicy(), active: [Alarm] = []) {
        self.rules = rules
        self.policy = policy
        for alarm in active where !alarm.isResolved { self.active[alarm.fingerprint] = alarm }
    }

    /// Evaluates every rule over `samples`, the complete set of series collected at `now`.
    public mutating func evaluate(_ samples: [MetricSample], at now: Date) -> [AlarmChange] {
        var changes: [AlarmChange] = []
        var seen = Set<String>()
        var readings: [String: (Date, Double)] = [:]
        uptimes = [:]
        for sample in samples where sample.name == "troncal_instance_uptime_seconds" {
            if let instance = sample.labels["instance"] { uptimes[instance] = sample.value }
        }
        for rule in rules {
            for sample in samples where rule.selects(sample) {
                guard let value = reading(of: sample, for: rule, at: now, readings: &readings) else { continue }
                let (labels, fingerprint) = Self.identity(rule: rule.name, category: rule.category, labels: sample.labels)
                seen.insert(fingerprint)
                if var alarm = active[fingerprint] {
                    alarm.value = value
                    if rule.clears(at: value) {
                        alarm.endsAt = now
                        active[fingerprint] = nil
                        changes.append(.resolved(alarm))
                    } else {
                        // Between the clear threshold and the lowest firing one it holds at warning (if the rule has one).
                        let severity = rule.severity(of: value) ?? (rule.warning != nil ? .warning : alarm.severity)
                        if severity != alarm.severity {
                            let from = alarm.severity
                            alarm.severity = severity
                            alarm.summary = Self.fill(rule.summary, labels, value)
                            changes.append(.changedSeverity(alarm, from: from))
                        }
                        active[fingerprint] = alarm
                    }
                    continue
                }
                guard let severity = rule.severity(of: value) else {
                    pending[fingerprint] = nil
                    continue
                }
                let since = pending[fingerprint] ?? now
                pending[fingerprint] = since
                guard now.timeIntervalSince(since) >= rule.forSeconds else { continue }
                pending[fingerprint] = nil
                let alarm = Alarm(
                    fingerprint: fingerprint, rule: rule.name, category: rule.category, severity: severity, labels: labels,
                    summary: Self.fill(rule.summary, labels, value), action: Self.fill(rule.action, labels, value), value: value,
                    startsAt: now, endsAt: nil, level: rule.category == .security ? .soc : .noc1, levelSince: now)
                active[fingerprint] = alarm
                changes.append(.fired(alarm))
            }
        }
        // A series no longer reported: its pending breach is forgotten and its alarm resolved (the instance-down rule
        // does not depend on this: the collector reports troncal_instance_up 0 for an instance that does not answer).
        for fingerprint in pending.keys where !seen.contains(fingerprint) { pending[fingerprint] = nil }
        for (fingerprint, var alarm) in active where !seen.contains(fingerprint) && rules.contains(where: { $0.name == alarm.rule }) {
            alarm.endsAt = now
            active[fingerprint] = nil
            changes.append(.resolved(alarm))
        }
        // Readings of series not seen this round (their instance did not answer) are kept for when it answers again.
        previous.merge(readings) { _, new in new }
        previousInstances = Self.reporting(samples)
        previousEvaluation = now
        return changes + escalate(at: now)
    }

    /// An alarm decided outside the threshold rules (the per-customer voice notice): fires now, at NOC level 1,
    /// unless one with the same labels fires already. Its rule is not one of `rules`, so evaluations leave it alone;
    /// it escalates, is acknowledged and silenced like any other.
    public mutating func raise(
        rule: String, category: AlarmCategory, severity: AlarmSeverity, labels: [String: String], summary: String, action: String,
        value: Double, at now: Date
    ) -> AlarmChange? {
        let (labels, fingerprint) = Self.identity(rule: rule, category: category, labels: labels)
        guard active[fingerprint] == nil else { return nil }
        let alarm = Alarm(
            fingerprint: fingerprint, rule: rule, category: category, severity: severity, labels: labels, summary: summary, action: action,
            value: value, startsAt: now, endsAt: nil, level: category == .security ? .soc : .noc1, levelSince: now)
        active[fingerprint] = alarm
        return .fired(alarm)
    }

    /// Moves a firing alarm raised with `raise` to `severity` (with its value now). Nil when none fires or nothing changed.
    public mutating func reassess(
        rule: String, category: AlarmCategory, labels: [String: String], severity: AlarmSeverity, value: Double
    ) -> AlarmChange? {
        let fingerprint = Self.identity(rule: rule, category: category, labels: labels).fingerprint
        guard var alarm = active[fingerprint] else { return nil }
        alarm.value = value
        active[fingerprint] = alarm
        guard alarm.severity != severity else { return nil }
        let from = alarm.severity
        alarm.severity = severity
        active[fingerprint] = alarm
        return .changedSeverity(alarm, from: from)
    }

    /// Resolves a firing alarm raised with `raise` (by its rule and labels). Nil when none fires.
    public mutating func resolve(rule: String, category: AlarmCategory, labels: [String: String], value: Double?, at now: Date) -> AlarmChange? {
        let fingerprint = Self.identity(rule: rule, category: category, labels: labels).fingerprint
        guard var alarm = active.removeValue(forKey: fingerprint) else { return nil }
        if let value { alarm.value = value }
        alarm.endsAt = now
        return .resolved(alarm)
    }

    /// An alarm's labels (the series' and `alertname`, `category`) and their fingerprint.
    static func identity(rule: String, category: AlarmCategory, labels: [String: String]) -> (labels: [String: String], fingerprint: String) {
        var labels = labels
        labels["alertname"] = rule
        labels["category"] = category.rawValue
        return (labels, Alarm.fingerprint(of: labels))
    }

    /// Moves unacknowledged alarms up the levels that are due at `now`.
    public mutating func escalate(at now: Date) -> [AlarmChange] {
        var changes: [AlarmChange] = []
        for (fingerprint, var alarm) in active.sorted(by: { $0.key < $1.key }) where alarm.acknowledgedAt == nil {
            let age = now.timeIntervalSince(alarm.startsAt) / 60
            var level = alarm.level
            if level == .noc1 && age >= policy.level2Minutes { level = .noc2 }
            if alarm.severity == .critical && level < .soc && age >= policy.level3Minutes { level = .soc }
            guard level != alarm.level else { continue }
            let from = alarm.level
            alarm.level = level
            alarm.levelSince = now
            active[fingerprint] = alarm
            changes.append(.escalated(alarm, from: from))
        }
        return changes
    }

    /// Acknowledges a firing alarm: it stops escalating. Nil when no such alarm fires.
    public mutating func acknowledge(_ fingerprint: String, by operator: String, at now: Date) -> Alarm? {
        guard var alarm = active[fingerprint] else { return nil }
        alarm.acknowledgedBy = `operator`
        alarm.acknowledgedAt = now
        active[fingerprint] = alarm
        return alarm
    }

    /// Silences a firing alarm's notifications until `until`. Nil when no such alarm fires.
    public mutating func silence(_ fingerprint: String, until: Date, reason: String) -> Alarm? {
        guard var alarm = active[fingerprint] else { return nil }
        alarm.silencedUntil = until
        alarm.silenceReason = reason
        active[fingerprint] = alarm
        return alarm
    }

    /// The value a rule compares for this sample; nil when it cannot tell yet (a counter's first reading).
    private func reading(of sample: MetricSample, for rule: AlarmRule, at now: Date, readings: inout [String: (Date, Double)]) -> Double? {
        switch rule.function {
        case .value:
            return sample.value
        case .increasePerMinute:
            let key = sample.seriesKey
            readings[key] = (now, sample.value)
            if let (time, value) = previous[key], time < now {
                let grown = sample.value >= value ? sample.value - value : sample.value
                return grown / now.timeIntervalSince(time) * 60
            }
            guard let instance = sample.labels["instance"] else { return nil }
            // New since the previous evaluation, on an instance that was already reporting: it counted from zero.
            if previousInstances.contains(instance), let last = previousEvaluation, last < now {
                return sample.value / now.timeIntervalSince(last) * 60
            }
            // First seen with its instance, which started moments ago: it counted from zero since the start.
            if !previousInstances.contains(instance), let uptime = uptimes[instance], uptime > 0, uptime <= Self.youngInstanceSeconds {
                return sample.value / max(uptime, 60) * 60
            }
            return nil
        }
    }

    /// The instances whose metrics were read this round: those the collector marks up (`troncal_instance_up` 1), or
    /// every instance named when there is no such series (a bare set of samples).
    static func reporting(_ samples: [MetricSample]) -> Set<String> {
        let up = samples.filter { $0.name == "troncal_instance_up" }
        guard !up.isEmpty else { return Set(samples.compactMap { $0.labels["instance"] }) }
        return Set(up.filter { $0.value >= 1 }.compactMap { $0.labels["instance"] })
    }

    /// `{{label}}` and `{{value}}` filled in (the value rounded to two decimals).
    static func fill(_ template: String, _ labels: [String: String], _ value: Double) -> String {
        var text = template
        let rounded = (value * 100).rounded() / 100
        let shown = !rounded.isFinite ? "\(value)" : rounded == rounded.rounded() ? "\(Int(rounded))" : "\(rounded)"
        text = text.replacingOccurrences(of: "{{value}}", with: shown)
        for (key, label) in labels { text = text.replacingOccurrences(of: "{{\(key)}}", with: label) }
        return text
    }
}
