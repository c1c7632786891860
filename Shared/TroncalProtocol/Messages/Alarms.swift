public import Foundation

/// One sample of a scrape: a metric name, its labels and its value.
public struct MetricSample: Sendable, Hashable, Codable {
    public var name: String
    public var labels: [String: String]
    public var value: Double

    public init(_ name: String, _ labels: [String: String] = [:], _ value: Double) {
        self.name = name
        self.labels = labels
        self.value = value
    }

    /// `name{a="1",b="2"}` with labels sorted: the identity of the series.
    public var seriesKey: String {
        guard !labels.isEmpty else { return name }
        return name + "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",") + "}"
    }
}

/// What an alarm is about; decides who is told (security goes to the SOC at once).
public enum AlarmCategory: String, Codable, Sendable, Hashable, CaseIterable {
    case service, server, link, voice, security, capacity
}

public enum AlarmSeverity: String, Codable, Sendable, Hashable, Comparable, CaseIterable {
    case warning, critical

    public static func < (lhs: AlarmSeverity, rhs: AlarmSeverity) -> Bool { lhs == .warning && rhs == .critical }
}

/// Who is working on an alarm: NOC level 1, NOC level 2, or the security operations centre.
public enum EscalationLevel: String, Codable, Sendable, Hashable, Comparable, CaseIterable {
    case noc1 = "noc-1"
    case noc2 = "noc-2"
    case soc

    private var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (lhs: EscalationLevel, rhs: EscalationLevel) -> Bool { lhs.rank < rhs.rank }
}

/// A threshold rule over one metric: which series (`metric` and label `matchers`), what of it (`function`), the
/// thresholds, how long a breach must last (`forSeconds`) and where it clears (`clear`, the hysteresis).
public struct AlarmRule: Codable, Sendable, Hashable {
    public enum Comparison: String, Codable, Sendable, Hashable { case above, below }
    public enum Function: String, Codable, Sendable, Hashable {
        /// The sample's value.
        case value
        /// How much a counter grew per minute since the previous scrape (a reset counts from zero).
        case increasePerMinute = "increase-per-minute"
    }

    /// Unique; becomes the `alertname` label.
    public var name: String
    public var category: AlarmCategory
    public var metric: String
    /// Label conditions, each `label=value` or `label!=value`; all must hold.
    public var matchers: [String]
    public var function: Function
    public var comparison: Comparison
    public var warning: Double?
    public var critical: Double?
    /// Where a firing alarm clears: below it (`above` rules) or above it (`below` rules). Default: the lowest firing
    /// threshold, so no hysteresis.
    public var clear: Double?
    /// How long the breach must last before the alarm fires (the Prometheus `for`).
    public var forSeconds: Double
    /// One line for the notice; `{{label}}` and `{{value}}` are filled in.
    public var summary: String
    /// What the operator should do.
    public var action: String

    public init(
        name: String, category: AlarmCategory, metric: String, matchers: [String] = [], function: Function = .value,
        comparison: Comparison = .above, warning: Double? = nil, critical: Double? = nil, clear: Double? = nil, forSeconds: Double = 0,
        summary: String, action: String
    ) {
        self.name = name
        self.category = category
        self.metric = metric
        self.matchers = matchers
        self.function = function
        self.comparison = comparison
        self.warning = warning
        self.critical = critical
        self.clear = clear
        self.forSeconds = forSeconds
        self.summary = summary
        self.action = action
    }

    /// Whether the rule reads this series.
    public func selects(_ sample: MetricSample) -> Bool {
        guard sample.name == metric else { return false }
        for matcher in matchers {
            guard let condition = Self.parse(matcher) else { return false }
            let actual = sample.labels[condition.label] ?? ""
            if (actual == condition.value) != condition.equal { return false }
        }
        return true
    }

    /// `label=value` or `label!=value`; nil when malformed.
    static func parse(_ matcher: String) -> (label: String, equal: Bool, value: String)? {
        guard let sign = matcher.firstIndex(of: "=") else { return nil }
        var label = matcher[..<sign]
        let equal = label.last != "!"
        if !equal { label = label.dropLast() }
        guard !label.isEmpty else { return nil }
        return (String(label), equal, String(matcher[matcher.index(after: sign)...]))
    }

    func breaches(_ value: Double, _ threshold: Double?) -> Bool {
        guard let threshold, !value.isNaN else { return false }
        return comparison == .above ? value > threshold : value < threshold
    }

    /// The severity a value breaches, if any.
    public func severity(of value: Double) -> AlarmSeverity? {
        if breaches(value, critical) { return .critical }
        if breaches(value, warning) { return .warning }
        return nil
    }

    /// Whether a firing alarm at `value` is back on the good side of the clear threshold.
    public func clears(at value: Double) -> Bool {
        if value.isNaN { return false }
        let lowest: Double? = switch comparison {
        case .above: [warning, critical].compactMap { $0 }.min()
        case .below: [warning, critical].compactMap { $0 }.max()
        }
        guard let threshold = clear ?? lowest else { return true }
        return comparison == .above ? value <= threshold : value >= threshold
    }

    /// The rule's problems, for a configuration or CSV refused with a clear message.
    public func problems() -> [String] {
        var problems: [String] = []
        if name.isEmpty || name.contains(where: { $0 == " " || $0 == "," }) { problems.append("name must be non-empty, without spaces or commas") }
        if metric.isEmpty { problems.append("metric must not be empty") }
        for matcher in matchers where Self.parse(matcher) == nil { problems.append("matcher '\(matcher)' is not label=value or label!=value") }
        if warning == nil && critical == nil { problems.append("needs a warning or a critical threshold") }
        if forSeconds < 0 { problems.append("forSeconds must not be negative") }
        if let warning, let critical {
            if comparison == .above && critical < warning { problems.append("critical (\(critical)) must not be below warning (\(warning))") }
            if comparison == .below && critical > warning { problems.append("critical (\(critical)) must not be above warning (\(warning))") }
        }
        if let clear {
            let firing = [warning, critical].compactMap { $0 }
            if comparison == .above, let lowest = firing.min(), clear > lowest { problems.append("clear (\(clear)) must not be above the threshold (\(lowest))") }
            if comparison == .below, let highest = firing.max(), clear < highest { problems.append("clear (\(clear)) must not be below the threshold (\(highest))") }
        }
        return problems
    }
}

/// An alarm: one rule breached by one series. Its `fingerprint` (of its labels) is its identity, as in Alertmanager.
public struct Alarm: Codable, Sendable, Hashable {
    public var fingerprint: String
    public var rule: String
    public var category: AlarmCategory
    public var severity: AlarmSeverity
    /// `alertname`, `category`, and the series' labels.
    public var labels: [String: String]
    public var summary: String
    public var action: String
    public var value: Double
    public var startsAt: Date
    /// Set once resolved.
    public var endsAt: Date?
    public var level: EscalationLevel
    public var levelSince: Date
    public var acknowledgedBy: String?
    public var acknowledgedAt: Date?
    public var silencedUntil: Date?
    public var silenceReason: String?

    public init(
        fingerprint: String, rule: String, category: AlarmCategory, severity: AlarmSeverity, labels: [String: String], summary: String,
        action: String, value: Double, startsAt: Date, endsAt: Date?, level: EscalationLevel, levelSince: Date,
        acknowledgedBy: String? = nil, acknowledgedAt: Date? = nil, silencedUntil: Date? = nil, silenceReason: String? = nil
    ) {
        self.fingerprint = fingerprint
        self.rule = rule
        self.category = category
        self.severity = severity
        self.labels = labels
        self.summary = summary
        self.action = action
        self.value = value
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.level = level
        self.levelSince = levelSince
        self.acknowledgedBy = acknowledgedBy
        self.acknowledgedAt = acknowledgedAt
        self.silencedUntil = silencedUntil
        self.silenceReason = silenceReason
    }

    public var isResolved: Bool { endsAt != nil }
    public func isSilenced(at now: Date) -> Bool { silencedUntil.map { $0 > now } ?? false }

    /// A 16-hex-digit FNV-1a hash of the sorted labels.
    public static func fingerprint(of labels: [String: String]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            for byte in key.utf8 + [0xff] + value.utf8 + [0xfe] {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01b3
            }
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// When unacknowledged alarms go up a level (`monitor.escalation`).
public struct EscalationPolicy: Codable, Sendable, Hashable {
    /// NOC level 1 → NOC level 2.
    public var level2Minutes: Double = 15
    /// Critical alarms → the SOC.
    public var level3Minutes: Double = 30
    public init(level2Minutes: Double = 15, level3Minutes: Double = 30) {
        self.level2Minutes = level2Minutes
        self.level3Minutes = level3Minutes
    }
}


extension AlarmRule {
    enum CodingKeys: String, CodingKey {
        case name, category, metric, matchers, function, comparison, warning, critical, clear, forSeconds, summary, action
    }

    /// Every key written, absent thresholds as `null` (so a configuration file shows them all).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(category, forKey: .category)
        try container.encode(metric, forKey: .metric)
        try container.encode(matchers, forKey: .matchers)
        try container.encode(function, forKey: .function)
        try container.encode(comparison, forKey: .comparison)
        try container.encode(warning, forKey: .warning)
        try container.encode(critical, forKey: .critical)
        try container.encode(clear, forKey: .clear)
        try container.encode(forSeconds, forKey: .forSeconds)
        try container.encode(summary, forKey: .summary)
        try container.encode(action, forKey: .action)
    }

    /// Only `name`, `category`, `metric` and a threshold are required; the rest take the defaults of `init`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            name: try container.decode(String.self, forKey: .name), category: try container.decode(AlarmCategory.self, forKey: .category),
            metric: try container.decode(String.self, forKey: .metric),
            matchers: try container.decodeIfPresent([String].self, forKey: .matchers) ?? [],
            function: try container.decodeIfPresent(Function.self, forKey: .function) ?? .value,
            comparison: try container.decodeIfPresent(Comparison.self, forKey: .comparison) ?? .above,
            warning: try container.decodeIfPresent(Double.self, forKey: .warning),
            critical: try container.decodeIfPresent(Double.self, forKey: .critical),
            clear: try container.decodeIfPresent(Double.self, forKey: .clear),
            forSeconds: try container.decodeIfPresent(Double.self, forKey: .forSeconds) ?? 0,
            summary: try container.decodeIfPresent(String.self, forKey: .summary) ?? "{{alertname}}: {{value}}",
            action: try container.decodeIfPresent(String.self, forKey: .action) ?? "")
    }
}

/// One line of an alarm's history: fired, a severity change, an escalation, a notification sent or failed, an ack,
/// a silence, resolved.
public struct AlarmEvent: Codable, Sendable, Hashable {
    public var fingerprint: String
    public var startsAt: Date
    public var at: Date
    public var event: String
    /// Who did it: an operator's name, or `monitor`.
    public var actor: String
    public var detail: String

    public init(fingerprint: String, startsAt: Date, at: Date, event: String, actor: String, detail: String) {
        self.fingerprint = fingerprint
        self.startsAt = startsAt
        self.at = at
        self.event = event
        self.actor = actor
        self.detail = detail
    }
}

/// `alarms.list` (operator → monitor): the firing alarms, or also the resolved ones of the last `resolvedHours`.
public struct AlarmListRequest: LinkRequest, Hashable {
    public typealias Reply = AlarmList
    public static let messageType = "alarms.list"
    public var category: AlarmCategory?
    public var resolvedHours: Double
    public init(category: AlarmCategory? = nil, resolvedHours: Double = 0) {
        self.category = category
        self.resolvedHours = resolvedHours
    }
}

/// `alarms.list.reply`.
public struct AlarmList: LinkMessage, Hashable {
    public static let messageType = "alarms.list.reply"
    public var alarms: [Alarm]
    public init(alarms: [Alarm]) { self.alarms = alarms }
}

/// `alarms.ack` (operator → monitor): acknowledge a firing alarm (by fingerprint or its first characters); it stops
/// escalating.
public struct AlarmAcknowledge: LinkRequest, Hashable {
    public typealias Reply = AlarmActionResult
    public static let messageType = "alarms.ack"
    public var fingerprint: String
    public var by: String
    public var comment: String
    public init(fingerprint: String, by: String, comment: String = "") {
        self.fingerprint = fingerprint
        self.by = by
        self.comment = comment
    }
}

/// `alarms.silence` (operator → monitor): no notifications of a firing alarm until `until`, with a reason.
public struct AlarmSilence: LinkRequest, Hashable {
    public typealias Reply = AlarmActionResult
    public static let messageType = "alarms.silence"
    public var fingerprint: String
    public var until: Date
    public var reason: String
    public var by: String
    public init(fingerprint: String, until: Date, reason: String, by: String) {
        self.fingerprint = fingerprint
        self.until = until
        self.reason = reason
        self.by = by
    }
}

/// `alarms.action.reply`: the alarm as it is now.
public struct AlarmActionResult: LinkMessage, Hashable {
    public static let messageType = "alarms.action.reply"
    public var alarm: Alarm
    public init(alarm: Alarm) { self.alarm = alarm }
}

/// `alarms.history` (operator → monitor): the events of one alarm (fingerprint prefix) or the latest of all.
public struct AlarmHistoryRequest: LinkRequest, Hashable {
    public typealias Reply = AlarmHistory
    public static let messageType = "alarms.history"
    public var fingerprint: String?
    public var limit: Int
    public init(fingerprint: String? = nil, limit: Int = 200) {
        self.fingerprint = fingerprint
        self.limit = limit
    }
}

/// `alarms.history.reply`, newest first.
public struct AlarmHistory: LinkMessage, Hashable {
    public static let messageType = "alarms.history.reply"
    public var events: [AlarmEvent]
    public init(events: [AlarmEvent]) { self.events = events }
}

/// `monitor.loginLink` (operator → monitor): a one-time dashboard login link for an operator account.
public struct LoginLinkRequest: LinkRequest, Hashable {
    public typealias Reply = LoginLink
    public static let messageType = "monitor.loginLink"
    public var operatorName: String
    public var minutes: Int
    public init(operatorName: String, minutes: Int = 10) {
        self.operatorName = operatorName
        self.minutes = minutes
    }
}

/// `monitor.loginLink.reply`: the link's path (`/login/link/<token>`) and the dashboard's address as configured.
public struct LoginLink: LinkMessage, Hashable {
    public static let messageType = "monitor.loginLink.reply"
    public var path: String
    public var dashboard: String
    public init(path: String, dashboard: String) {
        self.path = path
        self.dashboard = dashboard
    }
}

/// `monitor.operators` (operator → monitor): manage the dashboard's operator accounts. `list` gives the names;
/// `set` adds an account or sets its password (at least 10 characters); `remove` deletes it and ends its sessions at
/// their next request.
public struct OperatorRequest: LinkRequest, Hashable {
    public typealias Reply = OperatorList
    public static let messageType = "monitor.operators"
    public enum Action: String, Codable, Sendable, Hashable { case list, set, remove }
    public var action: Action
    public var operatorName: String
    public var password: String
    public init(action: Action, operatorName: String = "", password: String = "") {
        self.action = action
        self.operatorName = operatorName
        self.password = password
    }
}

/// `monitor.operators.reply`: the accounts after the action.
public struct OperatorList: LinkMessage, Hashable {
    public static let messageType = "monitor.operators.reply"
    public struct Account: Codable, Sendable, Hashable {
        public var name: String
        public var createdAt: Date
        public init(name: String, createdAt: Date) {
            self.name = name
            self.createdAt = createdAt
        }
    }
    public var operators: [Account]
    public init(operators: [Account]) { self.operators = operators }
}
