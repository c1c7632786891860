public import Foundation
public import TroncalProtocol
public import TroncalStore

/// The monitor's database: alarms (each as a JSON document, with its key columns), their history, the notification
/// outbox and the grouping state, on SQLite or PostgreSQL.
public struct MonitorStore: Sendable {
    public static let migrations: [Migration] = [
        Migration(
            version: 1, name: "alarms, alarm events, notification outbox, notification groups",
            sql: [
                """
                CREATE TABLE monitor_alarms (fingerprint TEXT NOT NULL, starts_at DOUBLE PRECISION NOT NULL, rule TEXT NOT NULL,
                category TEXT NOT NULL, severity TEXT NOT NULL, level TEXT NOT NULL, firing BIGINT NOT NULL,
                ends_at DOUBLE PRECISION, document TEXT NOT NULL, PRIMARY KEY (fingerprint, starts_at))
                """,
                "CREATE INDEX monitor_alarms_firing ON monitor_alarms (firing, starts_at)",
                """
                CREATE TABLE monitor_alarm_events (fingerprint TEXT NOT NULL, starts_at DOUBLE PRECISION NOT NULL,
                at DOUBLE PRECISION NOT NULL, event TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL)
                """,
                "CREATE INDEX monitor_alarm_events_alarm ON monitor_alarm_events (fingerprint, at)",
                "CREATE INDEX monitor_alarm_events_at ON monitor_alarm_events (at)",
                """
                CREATE TABLE monitor_outbox (id TEXT PRIMARY KEY, receiver TEXT NOT NULL, group_key TEXT NOT NULL, payload TEXT NOT NULL,
                state TEXT NOT NULL, attempts BIGINT NOT NULL, next_attempt_at DOUBLE PRECISION NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION, last_error TEXT NOT NULL,
                fingerprints TEXT NOT NULL)
                """,
                "CREATE INDEX monitor_outbox_due ON monitor_outbox (state, next_attempt_at)",
                "CREATE TABLE monitor_groups (group_key TEXT PRIMARY KEY, document TEXT NOT NULL)",
            ]),
        Operators.migration,
        SampleStore.migration,
        QualityStore.migration,
        CapacityHistoryStore.migration,
        CapacityHistoryStore.siteMigration,
        InstanceStateStore.migration,
    ]

    let store: any SQLStore

    public init(store: any SQLStore) {
        self.store = store
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return decoder
    }()

    // MARK: - Alarms

    /// The alarms still firing (what the engine starts from after a restart).
    public func firing() async throws -> [Alarm] {
        try await store.query("SELECT document FROM monitor_alarms WHERE firing = 1 ORDER BY starts_at", []).map(Self.alarm)
    }

    /// Firing alarms, and those resolved since `resolvedSince`, newest first.
    public func alarms(category: AlarmCategory?, resolvedSince: Date?) async throws -> [Alarm] {
        let since = resolvedSince?.timeIntervalSince1970 ?? .infinity
        let rows = try await store.query(
            "SELECT document FROM monitor_alarms WHERE (firing = 1 OR ends_at >= $1) AND ($2 = '' OR category = $2) ORDER BY starts_at DESC LIMIT 5000",
            [.real(since.isFinite ? since : 1e18), .text(category?.rawValue ?? "")])
        return try rows.map(Self.alarm)
    }

    /// Saves alarms as they are now, with one history line each, in one transaction.
    public func save(_ updates: [(alarm: Alarm, event: String, actor: String, detail: String)], at now: Date) async throws {
        guard !updates.isEmpty else { return }
        try await store.transaction { transaction in
            for update in updates {
                let alarm = update.alarm
                let document = String(decoding: try Self.encoder.encode(alarm), as: UTF8.self)
                try await transaction.execute(
                    """
                    INSERT INTO monitor_alarms (fingerprint, starts_at, rule, category, severity, level, firing, ends_at, document)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                    ON CONFLICT (fingerprint, starts_at) DO UPDATE SET severity = excluded.severity, level = excluded.level,
                    firing = excluded.firing, ends_at = excluded.ends_at, document = excluded.document
                    """,
                    [
                        .text(alarm.fingerprint), .real(alarm.startsAt.timeIntervalSince1970), .text(alarm.rule), .text(alarm.category.rawValue),
                        .text(alarm.severity.rawValue), .text(alarm.level.rawValue), .integer(alarm.isResolved ? 0 : 1),
                        alarm.endsAt.map { .real($0.timeIntervalSince1970) } ?? .null, .text(document),
                    ])
                try await transaction.execute(
                    "INSERT INTO monitor_alarm_events (fingerprint, starts_at, at, event, actor, detail) VALUES ($1, $2, $3, $4, $5, $6)",
                    [
                        .text(alarm.fingerprint), .real(alarm.startsAt.timeIntervalSince1970), .real(now.timeIntervalSince1970), .text(update.event),
                        .text(update.actor), .text(update.detail),
                    ])
            }
        }
    }

    /// One history line without a change to the alarm (a notification sent or failed).
    public func note(fingerprint: String, startsAt: Date, at now: Date, event: String, detail: String) async throws {
        try await store.execute(
            "INSERT INTO monitor_alarm_events (fingerprint, starts_at, at, event, actor, detail) VALUES ($1, $2, $3, $4, 'monitor', $5)",
            [.text(fingerprint), .real(startsAt.timeIntervalSince1970), .real(now.timeIntervalSince1970), .text(event), .text(detail)])
    }

    /// History, newest first: of the alarms whose fingerprint starts with `fingerprint`, or of all.
    public func history(fingerprint: String?, limit: Int) async throws -> [AlarmEvent] {
        let rows = try await store.query(
            """
            SELECT fingerprint, starts_at, at, event, actor, detail FROM monitor_alarm_events
            WHERE $1 = '' OR substr(fingerprint, 1, length($1)) = $1 ORDER BY at DESC LIMIT $2
            """,
            [.text(fingerprint ?? ""), .integer(Int64(max(1, min(limit, 10_000))))])
        return try rows.map { row in
            AlarmEvent(
                fingerprint: try row.string("fingerprint"), startsAt: Date(timeIntervalSince1970: try row.double("starts_at")),
                at: Date(timeIntervalSince1970: try row.double("at")), event: try row.string("event"), actor: try row.string("actor"),
                detail: try row.string("detail"))
        }
    }

    static func alarm(_ row: SQLRow) throws -> Alarm {
        try decoder.decode(Alarm.self, from: Data(try row.string("document").utf8))
    }

    // MARK: - Outbox

    /// Notifications waiting to be sent, each to one receiver.
    public func enqueue(_ notifications: [OutboxNotification]) async throws {
        guard !notifications.isEmpty else { return }
        try await store.transaction { transaction in
            for item in notifications {
                try await transaction.execute(
                    """
                    INSERT INTO monitor_outbox (id, receiver, group_key, payload, state, attempts, next_attempt_at, created_at, finished_at,
                    last_error, fingerprints) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, NULL, '', $6)
                    """,
                    [
                        .text(item.id), .text(item.receiver), .text(item.groupKey), .text(item.payload), .real(item.createdAt.timeIntervalSince1970),
                        .text(item.fingerprints.joined(separator: ",")),
                    ])
            }
        }
    }

    /// Pending notifications due at `now`, oldest first.
    public func due(at now: Date, limit: Int = 100) async throws -> [OutboxNotification] {
        let rows = try await store.query(
            """
            SELECT id, receiver, group_key, payload, attempts, created_at, fingerprints, last_error FROM monitor_outbox
            WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, created_at LIMIT $2
            """,
            [.real(now.timeIntervalSince1970), .integer(Int64(limit))])
        return try rows.map(Self.notification)
    }

    /// Every notification of the last `hours`, newest first (for tests and the dashboard).
    public func outbox(hours: Double, now: Date) async throws -> [OutboxNotification] {
        let rows = try await store.query(
            """
            SELECT id, receiver, group_key, payload, attempts, created_at, fingerprints, last_error, state FROM monitor_outbox
            WHERE created_at >= $1 ORDER BY created_at DESC LIMIT 1000
            """,
            [.real(now.timeIntervalSince1970 - hours * 3600)])
        return try rows.map(Self.notification)
    }

    public func markSent(_ id: String, attempts: Int, at now: Date) async throws {
        try await store.execute(
            "UPDATE monitor_outbox SET state = 'sent', attempts = $2, finished_at = $3 WHERE id = $1",
            [.text(id), .integer(Int64(attempts)), .real(now.timeIntervalSince1970)])
    }

    /// A failed attempt: tried again at `next`, or given up (`next` nil) after the last one.
    public func markFailed(_ id: String, attempts: Int, error: String, next: Date?, at now: Date) async throws {
        if let next {
            try await store.execute(
                "UPDATE monitor_outbox SET attempts = $2, last_error = $3, next_attempt_at = $4 WHERE id = $1",
                [.text(id), .integer(Int64(attempts)), .text(error), .real(next.timeIntervalSince1970)])
        } else {
            try await store.execute(
                "UPDATE monitor_outbox SET state = 'failed', attempts = $2, last_error = $3, finished_at = $4 WHERE id = $1",
                [.text(id), .integer(Int64(attempts)), .text(error), .real(now.timeIntervalSince1970)])
        }
    }

    static func notification(_ row: SQLRow) throws -> OutboxNotification {
        var item = OutboxNotification(
            id: try row.string("id"), receiver: try row.string("receiver"), groupKey: try row.string("group_key"),
            payload: try row.string("payload"), createdAt: Date(timeIntervalSince1970: try row.double("created_at")),
            fingerprints: try row.string("fingerprints").split(separator: ",").map(String.init))
        item.attempts = Int(try row.int("attempts"))
        item.lastError = try row.string("last_error")
        if row.columns.contains("state") { item.state = try row.string("state") }
        return item
    }

    // MARK: - Grouping state

    public func groups() async throws -> [NotificationGroup] {
        try await store.query("SELECT document FROM monitor_groups", []).map { row in
            try Self.decoder.decode(NotificationGroup.self, from: Data(try row.string("document").utf8))
        }
    }

    /// Saves changed groups and drops finished ones.
    public func saveGroups(_ groups: [NotificationGroup], removing removed: [String]) async throws {
        guard !groups.isEmpty || !removed.isEmpty else { return }
        try await store.transaction { transaction in
            for group in groups {
                try await transaction.execute(
                    "INSERT INTO monitor_groups (group_key, document) VALUES ($1, $2) ON CONFLICT (group_key) DO UPDATE SET document = excluded.document",
                    [.text(group.key), .text(String(decoding: try Self.encoder.encode(group), as: UTF8.self))])
            }
            for key in removed { try await transaction.execute("DELETE FROM monitor_groups WHERE group_key = $1", [.text(key)]) }
        }
    }
}

/// One webhook delivery in the outbox.
public struct OutboxNotification: Sendable, Hashable {
    public var id: String
    public var receiver: String
    public var groupKey: String
    /// The Alertmanager v4 JSON body.
    public var payload: String
    public var createdAt: Date
    public var fingerprints: [String]
    public var attempts = 0
    public var lastError = ""
    public var state = "pending"

    public init(id: String, receiver: String, groupKey: String, payload: String, createdAt: Date, fingerprints: [String]) {
        self.id = id
        self.receiver = receiver
        self.groupKey = groupKey
        self.payload = payload
        self.createdAt = createdAt
        self.fingerprints = fingerprints
    }
}
