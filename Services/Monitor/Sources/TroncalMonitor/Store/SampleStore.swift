public import Foundation
public import TroncalProtocol
public import TroncalStore

/// How long collected series are kept (`monitor.retention`).
public struct SampleRetention: Sendable, Hashable {
    public var rawHours: Int
    public var minuteDays: Int
    public var hourMonths: Int
    public init(rawHours: Int = 48, minuteDays: Int = 31, hourMonths: Int = 13) {
        self.rawHours = rawHours
        self.minuteDays = minuteDays
        self.hourMonths = hourMonths
    }
}

/// One point of a stored series: raw (count 1) or a rollup over a minute or an hour.
public struct SeriesPoint: Sendable, Hashable {
    public var at: Date
    public var count: Int
    public var average: Double
    public var minimum: Double
    public var maximum: Double

    public init(at: Date, count: Int, average: Double, minimum: Double, maximum: Double) {
        self.at = at
        self.count = count
        self.average = average
        self.minimum = minimum
        self.maximum = maximum
    }
}

/// The collected series over time: raw samples of every round, 1-minute and 1-hour rollups (count, sum, min, max),
/// each in its own table. Raw samples are written in bulk (`COPY` on PostgreSQL); rollups are computed by the
/// database from the finer table (`INSERT … SELECT … GROUP BY`); old data goes by whole day buckets in one statement
/// per table from the maintenance task, never row by row on the collection path.
public struct SampleStore: Sendable {
    static let migration = Migration(
        version: 3, name: "samples and rollups",
        sql: [
            "CREATE TABLE monitor_samples (day BIGINT NOT NULL, series TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, value DOUBLE PRECISION NOT NULL)",
            "CREATE INDEX monitor_samples_series ON monitor_samples (series, at)",
            "CREATE INDEX monitor_samples_day ON monitor_samples (day)",
            """
            CREATE TABLE monitor_rollups_minute (day BIGINT NOT NULL, series TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, count BIGINT NOT NULL,
            sum DOUBLE PRECISION NOT NULL, minimum DOUBLE PRECISION NOT NULL, maximum DOUBLE PRECISION NOT NULL, PRIMARY KEY (series, at))
            """,
            "CREATE INDEX monitor_rollups_minute_day ON monitor_rollups_minute (day)",
            """
            CREATE TABLE monitor_rollups_hour (day BIGINT NOT NULL, series TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, count BIGINT NOT NULL,
            sum DOUBLE PRECISION NOT NULL, minimum DOUBLE PRECISION NOT NULL, maximum DOUBLE PRECISION NOT NULL, PRIMARY KEY (series, at))
            """,
            "CREATE INDEX monitor_rollups_hour_day ON monitor_rollups_hour (day)",
            "CREATE TABLE monitor_rollup_marks (resolution TEXT PRIMARY KEY, done_until DOUBLE PRECISION NOT NULL)",
        ])

    let store: any SQLStore
    public init(store: any SQLStore) { self.store = store }

    static func day(_ seconds: Double) -> Int64 { Int64((seconds / 86_400).rounded(.down)) }

    /// Writes one collection round (non-finite values are skipped: NaN and ±Inf do not aggregate).
    public func ingest(_ samples: [MetricSample], at now: Date) async throws {
        let seconds = now.timeIntervalSince1970
        let rows: [[SQLValue]] = samples.compactMap { sample in
            guard sample.value.isFinite else { return nil }
            return [.integer(Self.day(seconds)), .text(sample.seriesKey), .real(seconds), .real(sample.value)]
        }
        guard !rows.isEmpty else { return }
        try await store.bulkLoad(table: "monitor_samples", columns: ["day", "series", "at", "value"], rows: rows)
    }

    /// Rolls up every whole minute (and hour) that ended before `now` and is not rolled up yet. Idempotent.
    public func rollUp(until now: Date) async throws {
        try await roll(from: "monitor_samples", into: "monitor_rollups_minute", width: 60, mark: "minute", until: now, raw: true)
        try await roll(from: "monitor_rollups_minute", into: "monitor_rollups_hour", width: 3600, mark: "hour", until: now, raw: false)
    }

    private func roll(from source: String, into target: String, width: Double, mark: String, until now: Date, raw: Bool) async throws {
        let end = (now.timeIntervalSince1970 / width).rounded(.down) * width
        try await store.transaction { transaction in
            let done = try await transaction.query("SELECT done_until FROM monitor_rollup_marks WHERE resolution = $1", [.text(mark)]).first
            // The first time: from the oldest data there is.
            let oldest = try await transaction.query("SELECT min(at) AS oldest FROM \(source)", []).first
            guard let start = try done?.double("done_until") ?? oldest?.optionalDouble("oldest").map({ ($0 / width).rounded(.down) * width }),
                start < end
            else { return }
            // Floor to the bucket: PostgreSQL's CAST rounds, SQLite's truncates (and times are positive).
            let bucket = transaction.backend == .postgres
                ? "(CAST(floor(at / \(Int(width))) AS BIGINT) * \(Int(width)))" : "(CAST(at / \(Int(width)) AS INTEGER) * \(Int(width)))"
            let aggregates = raw ? "count(*), sum(value), min(value), max(value)" : "sum(count), sum(sum), min(minimum), max(maximum)"
            try await transaction.execute(
                """
                INSERT INTO \(target) (day, series, at, count, sum, minimum, maximum)
                SELECT CAST(\(bucket) / 86400 AS BIGINT), series, \(bucket), \(aggregates) FROM \(source)
                WHERE at >= $1 AND at < $2 GROUP BY series, \(bucket)
                ON CONFLICT (series, at) DO UPDATE SET count = excluded.count, sum = excluded.sum, minimum = excluded.minimum,
                maximum = excluded.maximum
                """,
                [.real(start), .real(end)])
            try await transaction.execute(
                "INSERT INTO monitor_rollup_marks (resolution, done_until) VALUES ($1, $2) ON CONFLICT (resolution) DO UPDATE SET done_until = excluded.done_until",
                [.text(mark), .real(end)])
        }
    }

    /// Removes what is older than the retention, by whole days, one statement per table. Returns rows removed.
    @discardableResult
    public func prune(_ retention: SampleRetention, at now: Date) async throws -> Int {
        let seconds = now.timeIntervalSince1970
        var removed = 0
        for (table, age) in [
            ("monitor_samples", Double(retention.rawHours) * 3600), ("monitor_rollups_minute", Double(retention.minuteDays) * 86_400),
            ("monitor_rollups_hour", Double(retention.hourMonths) * 31 * 86_400),
        ] {
            // Whole days older than the retention: a day is dropped once all of it is past the limit.
            let lastDay = Self.day(seconds - age) - 1
            let count = try await store.query("SELECT count(*) AS n FROM \(table) WHERE day <= $1", [.integer(lastDay)])[0].int("n")
            if count > 0 { try await store.execute("DELETE FROM \(table) WHERE day <= $1", [.integer(lastDay)]) }
            removed += Int(count)
        }
        return removed
    }

    /// A series between two times at a resolution: `raw`, `minute` or `hour`.
    public func points(series: String, from: Date, to: Date, resolution: String) async throws -> [SeriesPoint] {
        switch resolution {
        case "raw":
            return try await store.query(
                "SELECT at, value FROM monitor_samples WHERE series = $1 AND at >= $2 AND at < $3 ORDER BY at",
                [.text(series), .real(from.timeIntervalSince1970), .real(to.timeIntervalSince1970)]
            ).map { row in
                let value = try row.double("value")
                return SeriesPoint(at: Date(timeIntervalSince1970: try row.double("at")), count: 1, average: value, minimum: value, maximum: value)
            }
        case "minute", "hour":
            return try await store.query(
                "SELECT at, count, sum, minimum, maximum FROM monitor_rollups_\(resolution) WHERE series = $1 AND at >= $2 AND at < $3 ORDER BY at",
                [.text(series), .real(from.timeIntervalSince1970), .real(to.timeIntervalSince1970)]
            ).map { row in
                let count = Int(try row.int("count"))
                return SeriesPoint(
                    at: Date(timeIntervalSince1970: try row.double("at")), count: count, average: try row.double("sum") / Double(max(count, 1)),
                    minimum: try row.double("minimum"), maximum: try row.double("maximum"))
            }
        default:
            throw MonitorError("resolution must be raw, minute or hour")
        }
    }
}
