public import Foundation
public import TroncalProtocol
public import TroncalStore

/// The sums of one group of calls' quality (a customer through one carrier trunk, over a window), per direction.
public struct QualityAggregate: Sendable, Hashable {
    public struct Direction: Sendable, Hashable {
        public var streams: Int = 0
        public var lossSum: Double = 0
        public var jitterSum: Double = 0
        public var delaySum: Double = 0
        public var mosSum: Double = 0
        public init() {}
        public init(streams: Int, lossSum: Double, jitterSum: Double, delaySum: Double, mosSum: Double) {
            self.streams = streams
            self.lossSum = lossSum
            self.jitterSum = jitterSum
            self.delaySum = delaySum
            self.mosSum = mosSum
        }
        public var loss: Double { streams > 0 ? lossSum / Double(streams) : 0 }
        public var jitter: Double { streams > 0 ? jitterSum / Double(streams) : 0 }
        public var delay: Double { streams > 0 ? delaySum / Double(streams) : 0 }
        public var mos: Double? { streams > 0 ? mosSum / Double(streams) : nil }

        public static func + (lhs: Direction, rhs: Direction) -> Direction {
            Direction(
                streams: lhs.streams + rhs.streams, lossSum: lhs.lossSum + rhs.lossSum, jitterSum: lhs.jitterSum + rhs.jitterSum,
                delaySum: lhs.delaySum + rhs.delaySum, mosSum: lhs.mosSum + rhs.mosSum)
        }
    }

    public var customer: String
    public var carrier: String
    public var trunk: String
    public var codec: String
    public var calls: Int
    /// Sum of the calls' MOS (each call's worse direction).
    public var mosSum: Double
    public var fromCustomer: Direction
    public var fromCarrier: Direction

    public init(
        customer: String, carrier: String, trunk: String, codec: String, calls: Int, mosSum: Double, fromCustomer: Direction,
        fromCarrier: Direction
    ) {
        self.customer = customer
        self.carrier = carrier
        self.trunk = trunk
        self.codec = codec
        self.calls = calls
        self.mosSum = mosSum
        self.fromCustomer = fromCustomer
        self.fromCarrier = fromCarrier
    }

    public var mos: Double { calls > 0 ? mosSum / Double(calls) : 0 }
}

/// Each call's media quality (`monitor.qos` from the SBCs, and phones' RTCP XR reports): one row per report, written
/// in bulk; the voice rules read sums over windows from the database, so every monitor instance sharing it sees the
/// same figures and a restart loses no window. Old rows go by whole days.
public struct QualityStore: Sendable {
    static let migration = Migration(
        version: 4, name: "per-call media quality",
        sql: [
            """
            CREATE TABLE monitor_call_quality (call_id TEXT NOT NULL, source TEXT NOT NULL, day BIGINT NOT NULL,
            end_at DOUBLE PRECISION NOT NULL, customer TEXT NOT NULL, carrier TEXT NOT NULL, trunk TEXT NOT NULL, caller TEXT NOT NULL,
            callee TEXT NOT NULL, instance TEXT NOT NULL, codec TEXT NOT NULL, mos DOUBLE PRECISION NOT NULL, duration_ms BIGINT NOT NULL,
            cu_n BIGINT NOT NULL, cu_loss DOUBLE PRECISION NOT NULL, cu_jitter DOUBLE PRECISION NOT NULL, cu_delay DOUBLE PRECISION NOT NULL,
            cu_mos DOUBLE PRECISION NOT NULL,
            ca_n BIGINT NOT NULL, ca_loss DOUBLE PRECISION NOT NULL, ca_jitter DOUBLE PRECISION NOT NULL, ca_delay DOUBLE PRECISION NOT NULL,
            ca_mos DOUBLE PRECISION NOT NULL, document TEXT NOT NULL)
            """,
            "CREATE INDEX monitor_call_quality_end ON monitor_call_quality (end_at)",
            "CREATE INDEX monitor_call_quality_day ON monitor_call_quality (day)",
            "CREATE INDEX monitor_call_quality_call ON monitor_call_quality (call_id)",
            "CREATE INDEX monitor_call_quality_caller ON monitor_call_quality (caller)",
            "CREATE INDEX monitor_call_quality_callee ON monitor_call_quality (callee)",
        ])

    static let columns = [
        "call_id", "source", "day", "end_at", "customer", "carrier", "trunk", "caller", "callee", "instance", "codec", "mos", "duration_ms",
        "cu_n", "cu_loss", "cu_jitter", "cu_delay", "cu_mos", "ca_n", "ca_loss", "ca_jitter", "ca_delay", "ca_mos", "document",
    ]

    let store: any SQLStore
    public init(store: any SQLStore) { self.store = store }

    /// Stores reports (those without a stream are skipped: nothing was measured). A phone's report keeps what it
    /// heard in its document; the direction columns, which the windows sum, are the SBC's measurements.
    public func ingest(_ calls: [CallQuality]) async throws {
        let rows: [[SQLValue]] = try calls.compactMap { call in
            guard let mos = call.mos, mos.isFinite else { return nil }
            func direction(_ direction: CallQuality.Direction) -> [SQLValue] {
                guard let stream = call.stream(direction) else { return [.integer(0), .real(0), .real(0), .real(0), .real(0)] }
                return [
                    .integer(1), .real(stream.lossPercent), .real(stream.jitterMilliseconds), .real(stream.delayMilliseconds), .real(stream.mos),
                ]
            }
            let end = call.endAt.timeIntervalSince1970
            let document = String(decoding: try MonitorStore.encoder.encode(call), as: UTF8.self)
            return [
                .text(call.callID), .text(call.source.rawValue), .integer(SampleStore.day(end)), .real(end), .text(call.customer),
                .text(call.carrier), .text(call.trunk), .text(call.caller), .text(call.callee), .text(call.instance),
                .text(call.streams.first?.codec ?? ""), .real(mos), .integer(Int64(call.durationMilliseconds)),
            ] + direction(.customerToSBC) + direction(.carrierToSBC) + [.text(document)]
        }
        guard !rows.isEmpty else { return }
        try await store.bulkLoad(table: "monitor_call_quality", columns: Self.columns, rows: rows)
    }

    /// The SBC-measured calls that ended in `[from, to)`, summed per customer, carrier and trunk.
    public func aggregates(from: Date, to: Date) async throws -> [QualityAggregate] {
        let rows = try await store.query(
            """
            SELECT customer, carrier, trunk, max(codec) AS codec, count(*) AS calls, sum(mos) AS mos,
            sum(cu_n) AS cu_n, sum(cu_loss) AS cu_loss, sum(cu_jitter) AS cu_jitter, sum(cu_delay) AS cu_delay, sum(cu_mos) AS cu_mos,
            sum(ca_n) AS ca_n, sum(ca_loss) AS ca_loss, sum(ca_jitter) AS ca_jitter, sum(ca_delay) AS ca_delay, sum(ca_mos) AS ca_mos
            FROM monitor_call_quality WHERE source = 'sbc' AND end_at >= $1 AND end_at < $2 GROUP BY customer, carrier, trunk
            """,
            [.real(from.timeIntervalSince1970), .real(to.timeIntervalSince1970)])
        return try rows.map { row in
            func direction(_ prefix: String) throws -> QualityAggregate.Direction {
                QualityAggregate.Direction(
                    streams: Int(try row.int("\(prefix)_n")), lossSum: try row.double("\(prefix)_loss"),
                    jitterSum: try row.double("\(prefix)_jitter"), delaySum: try row.double("\(prefix)_delay"), mosSum: try row.double("\(prefix)_mos"))
            }
            return QualityAggregate(
                customer: try row.string("customer"), carrier: try row.string("carrier"), trunk: try row.string("trunk"),
                codec: try row.string("codec"), calls: Int(try row.int("calls")), mosSum: try row.double("mos"),
                fromCustomer: try direction("cu"), fromCarrier: try direction("ca"))
        }
    }

    /// Per carrier trunk, the SBC-measured answered calls that ended in `[from, to)` and their mean duration (the ACD),
    /// keyed `carrier/trunk`.
    public func averageDurations(from: Date, to: Date) async throws -> [String: (calls: Int, seconds: Double)] {
        let rows = try await store.query(
            """
            SELECT carrier, trunk, count(*) AS calls, avg(CAST(duration_ms AS DOUBLE PRECISION)) AS duration FROM monitor_call_quality
            WHERE source = 'sbc' AND end_at >= $1 AND end_at < $2 GROUP BY carrier, trunk
            """,
            [.real(from.timeIntervalSince1970), .real(to.timeIntervalSince1970)])
        var result: [String: (calls: Int, seconds: Double)] = [:]
        for row in rows {
            result[try row.string("carrier") + "/" + row.string("trunk")] = (Int(try row.int("calls")), try row.double("duration") / 1000)
        }
        return result
    }

    /// The latest calls whose Call-ID, caller or callee is `text` (a number with or without its `+`), newest first.
    public func search(_ text: String, limit: Int = 100) async throws -> [CallQuality] {
        let term = text.trimmingCharacters(in: .whitespaces)
        guard !term.isEmpty else { return [] }
        let digits = term.hasPrefix("+") ? String(term.dropFirst()) : term
        let rows = try await store.query(
            """
            SELECT document FROM monitor_call_quality WHERE call_id = $1 OR caller = $1 OR callee = $1 OR caller = $2 OR callee = $2
            OR caller = $3 OR callee = $3 ORDER BY end_at DESC LIMIT $4
            """,
            [.text(term), .text(digits), .text("+" + digits), .integer(Int64(max(1, min(limit, 1000))))])
        return try rows.map { try MonitorStore.decoder.decode(CallQuality.self, from: Data(try $0.string("document").utf8)) }
    }

    /// Removes the calls of whole days older than `days`. Returns the rows removed.
    @discardableResult
    public func prune(keepDays days: Int, at now: Date) async throws -> Int {
        let lastDay = SampleStore.day(now.timeIntervalSince1970 - Double(days) * 86_400) - 1
        let count = try await store.query("SELECT count(*) AS n FROM monitor_call_quality WHERE day <= $1", [.integer(lastDay)])[0].int("n")
        if count > 0 { try await store.execute("DELETE FROM monitor_call_quality WHERE day <= $1", [.integer(lastDay)]) }
        return Int(count)
    }
}
