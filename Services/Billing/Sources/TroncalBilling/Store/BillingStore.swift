public import Foundation
public import TroncalCatalog
public import TroncalProtocol
public import TroncalStore

/// Billing's database: accounts with their balances, rates (sell per plan, buy per carrier) by generation,
/// reservations of calls in progress, CDRs stored once by id, the ledger (every change of a balance, with its
/// reason: the audit trail) and fraud events. Every change of money happens in one transaction with what caused it.
public struct BillingStore: Sendable {
    public let store: any SQLStore

    public init(store: any SQLStore) {
        self.store = store
    }

    public static let migrations: [Migration] = [
        Migration(
            version: 1, name: "accounts, rates, reservations, cdrs, ledger",
            sql: [
                """
                CREATE TABLE billing_customers (customer TEXT PRIMARY KEY, kind TEXT NOT NULL, currency TEXT NOT NULL,
                credit_limit_micros BIGINT NOT NULL, rate_plan TEXT NOT NULL, max_calls BIGINT NOT NULL, status TEXT NOT NULL,
                status_reason TEXT NOT NULL, max_spend_per_hour_micros BIGINT NOT NULL, max_high_cost_calls_per_minute BIGINT NOT NULL,
                high_cost_rate_micros BIGINT NOT NULL, balance_micros BIGINT NOT NULL, updated_at TEXT NOT NULL)
                """,
                """
                CREATE TABLE billing_rates (generation BIGINT NOT NULL, position BIGINT NOT NULL, side TEXT NOT NULL, owner TEXT NOT NULL,
                prefix TEXT NOT NULL, per_minute_micros BIGINT NOT NULL, connection_fee_micros BIGINT NOT NULL, first_increment BIGINT NOT NULL,
                next_increment BIGINT NOT NULL, minimum_seconds BIGINT NOT NULL, days TEXT NOT NULL, hours TEXT NOT NULL,
                effective_from TEXT NOT NULL, effective_to TEXT NOT NULL)
                """,
                "CREATE INDEX billing_rates_generation ON billing_rates (side, generation, position)",
                "CREATE TABLE billing_rate_generations (side TEXT PRIMARY KEY, generation BIGINT NOT NULL, row_count BIGINT NOT NULL, imported_at TEXT NOT NULL)",
                """
                CREATE TABLE billing_reservations (call_id TEXT NOT NULL, customer TEXT NOT NULL, amount_micros BIGINT NOT NULL,
                seconds BIGINT NOT NULL, prefix TEXT NOT NULL, per_minute_micros BIGINT NOT NULL, connection_fee_micros BIGINT NOT NULL,
                first_increment BIGINT NOT NULL, next_increment BIGINT NOT NULL, minimum_seconds BIGINT NOT NULL, created_at TEXT NOT NULL,
                expires_at TEXT NOT NULL, PRIMARY KEY (customer, call_id))
                """,
                "CREATE INDEX billing_reservations_customer ON billing_reservations (customer, expires_at)",
                """
                CREATE TABLE billing_cdrs (id TEXT PRIMARY KEY, call_id TEXT NOT NULL, customer TEXT NOT NULL, caller TEXT NOT NULL,
                callee TEXT NOT NULL, carrier TEXT NOT NULL, trunk TEXT NOT NULL, setup_at TEXT NOT NULL, answer_at TEXT, end_at TEXT NOT NULL,
                duration_ms BIGINT NOT NULL, billed_seconds BIGINT NOT NULL, disconnect_status BIGINT NOT NULL, disconnect_by TEXT NOT NULL,
                currency TEXT NOT NULL, sell_micros BIGINT NOT NULL, buy_micros BIGINT NOT NULL, margin_micros BIGINT NOT NULL,
                rated BIGINT NOT NULL, rate_prefix TEXT NOT NULL, note TEXT NOT NULL, mos DOUBLE PRECISION, summary TEXT NOT NULL,
                stored_at TEXT NOT NULL)
                """,
                "CREATE INDEX billing_cdrs_setup ON billing_cdrs (setup_at, id)",
                "CREATE INDEX billing_cdrs_customer_end ON billing_cdrs (customer, end_at)",
                """
                CREATE TABLE billing_ledger (id TEXT PRIMARY KEY, customer TEXT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
                amount_micros BIGINT NOT NULL, balance_micros BIGINT NOT NULL, reference TEXT NOT NULL, by_whom TEXT NOT NULL)
                """,
                "CREATE INDEX billing_ledger_customer ON billing_ledger (customer, at)",
                "CREATE TABLE billing_events (id TEXT PRIMARY KEY, at TEXT NOT NULL, customer TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL)",
            ]),
        Migration(
            version: 2, name: "call checkpoints, SBC runs, high-cost call window",
            sql: [
                """
                CREATE TABLE billing_call_checkpoints (id TEXT PRIMARY KEY, instance TEXT NOT NULL, boot TEXT NOT NULL, final BIGINT NOT NULL,
                summary TEXT NOT NULL, updated_at TEXT NOT NULL)
                """,
                "CREATE INDEX billing_call_checkpoints_run ON billing_call_checkpoints (instance, boot)",
                """
                CREATE TABLE billing_sbc_runs (instance TEXT NOT NULL, boot TEXT NOT NULL, started_at TEXT NOT NULL, last_seen TEXT NOT NULL,
                PRIMARY KEY (instance, boot))
                """,
                "CREATE TABLE billing_high_cost_calls (customer TEXT NOT NULL, call_id TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (customer, call_id))",
            ]),
        Migration(
            version: 3, name: "the SBC run of each reservation",
            sql: [
                "ALTER TABLE billing_reservations ADD COLUMN sbc TEXT",
                "ALTER TABLE billing_reservations ADD COLUMN sbc_boot TEXT",
                "CREATE INDEX billing_reservations_sbc ON billing_reservations (sbc, sbc_boot)",
            ]),
    ]

    /// Fixed-width UTC times with milliseconds, so that text order is time order on both backends.
    public static let timeFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    public static func text(_ date: Date) -> String { date.formatted(timeFormat) }
    public static func date(_ text: String) -> Date? { try? timeFormat.parse(text) }

    // MARK: - Rates

    public enum Side: String, Sendable { case sell, buy }

    public func loadRates(_ side: Side) async throws -> [Rate] {
        try await loadRatesWithGeneration(side).rates
    }

    /// The generation of each side's rates in force (0: none imported yet): billing instances compare it with what they
    /// hold to pick up an import made through another instance.
    public func rateGenerations() async throws -> [Side: Int64] {
        var result: [Side: Int64] = [.sell: 0, .buy: 0]
        for row in try await store.query("SELECT side, generation FROM billing_rate_generations", []) {
            if let side = Side(rawValue: try row.string("side")) { result[side] = try row.int("generation") }
        }
        return result
    }

    /// The rates in force of `side` and their generation (0 and none when nothing was imported).
    public func loadRatesWithGeneration(_ side: Side) async throws -> (generation: Int64, rates: [Rate]) {
        guard let generation = try await store.query("SELECT generation FROM billing_rate_generations WHERE side = $1", [.text(side.rawValue)])
            .first.map({ try $0.int("generation") })
        else { return (0, []) }
        let rows = try await store.query(
            """
            SELECT owner, prefix, per_minute_micros, connection_fee_micros, first_increment, next_increment, minimum_seconds, days, hours,
            effective_from, effective_to FROM billing_rates WHERE side = $1 AND generation = $2 ORDER BY position
            """, [.text(side.rawValue), .integer(generation)])
        return (generation, try rows.map { row in
            var rate = Rate(owner: try row.string("owner"), prefix: try row.string("prefix"), perMinuteMicros: try row.int("per_minute_micros"))
            rate.connectionFeeMicros = try row.int("connection_fee_micros")
            rate.firstIncrement = Int(try row.int("first_increment"))
            rate.nextIncrement = Int(try row.int("next_increment"))
            rate.minimumSeconds = Int(try row.int("minimum_seconds"))
            rate.schedule = (try? Schedule(days: try row.string("days"), hours: try row.string("hours"))) ?? .always
            rate.effectiveFrom = try Self.date(row.string("effective_from"))
            rate.effectiveTo = try Self.date(row.string("effective_to"))
            return rate
        })
    }

    /// Stores `rates` as the new current generation of `side` (COPY on PostgreSQL), then switches in one transaction;
    /// returns the new generation.
    @discardableResult
    public func replaceRates(_ side: Side, _ rates: [Rate], now: Date = Date()) async throws -> Int64 {
        let current = try await store.query("SELECT MAX(generation) AS g FROM billing_rates WHERE side = $1", [.text(side.rawValue)])
            .first.flatMap { try $0.optionalInt("g") } ?? 0
        let recorded = try await store.query("SELECT generation FROM billing_rate_generations WHERE side = $1", [.text(side.rawValue)])
            .first.map { try $0.int("generation") } ?? 0
        let generation = max(current, recorded) + 1
        let rows: [[SQLValue]] = rates.enumerated().map { offset, r in
            [
                .integer(generation), .int(offset), .text(side.rawValue), .text(r.owner), .text(r.prefix), .integer(r.perMinuteMicros),
                .integer(r.connectionFeeMicros), .int(r.firstIncrement), .int(r.nextIncrement), .int(r.minimumSeconds), .text(r.schedule.daysText),
                .text(r.schedule.hoursText), .text(r.effectiveFrom.map(Self.text) ?? ""), .text(r.effectiveTo.map(Self.text) ?? ""),
            ]
        }
        try await store.bulkLoad(
            table: "billing_rates",
            columns: [
                "generation", "position", "side", "owner", "prefix", "per_minute_micros", "connection_fee_micros", "first_increment",
                "next_increment", "minimum_seconds", "days", "hours", "effective_from", "effective_to",
            ], rows: rows)
        try await store.transaction { transaction in
            try await transaction.execute("DELETE FROM billing_rate_generations WHERE side = $1", [.text(side.rawValue)])
            try await transaction.execute(
                "INSERT INTO billing_rate_generations (side, generation, row_count, imported_at) VALUES ($1, $2, $3, $4)",
                [.text(side.rawValue), .integer(generation), .int(rows.count), .text(Self.text(now))])
            try await transaction.execute("DELETE FROM billing_rates WHERE side = $1 AND generation <> $2", [.text(side.rawValue), .integer(generation)])
        }
        return generation
    }

    // MARK: - Customers

    static let customerColumns = """
        customer, kind, currency, credit_limit_micros, rate_plan, max_calls, status, status_reason, max_spend_per_hour_micros,
        max_high_cost_calls_per_minute, high_cost_rate_micros, balance_micros
        """

    static func customer(_ row: SQLRow) throws -> (CustomerRecord, balance: Int64, reason: String) {
        var customer = CustomerRecord(customer: try row.string("customer"), kind: CustomerRecord.Kind(rawValue: try row.string("kind")) ?? .prepaid)
        customer.currency = try row.string("currency")
        customer.creditLimitMicros = try row.int("credit_limit_micros")
        customer.ratePlan = try row.string("rate_plan")
        customer.maximumCalls = Int(try row.int("max_calls"))
        customer.status = CustomerRecord.Status(rawValue: try row.string("status")) ?? .suspended
        customer.maximumSpendPerHourMicros = try row.int("max_spend_per_hour_micros")
        customer.maximumHighCostCallsPerMinute = Int(try row.int("max_high_cost_calls_per_minute"))
        customer.highCostRateMicros = try row.int("high_cost_rate_micros")
        return (customer, try row.int("balance_micros"), try row.string("status_reason"))
    }

    /// Adds new customers (balance 0) and updates the settings of known ones; balances are never touched. Without a
    /// `status` column, existing customers keep their status.
    public func upsert(_ customers: [CustomerRecord], statusGiven: Bool, now: Date = Date()) async throws {
        let stamp = Self.text(now)
        try await store.transaction { transaction in
            for c in customers {
                let existing = try await transaction.query("SELECT status FROM billing_customers WHERE customer = $1", [.text(c.customer)])
                let values: [SQLValue] = [
                    .text(c.customer), .text(c.kind.rawValue), .text(c.currency), .integer(c.creditLimitMicros), .text(c.ratePlan), .int(c.maximumCalls),
                    .integer(c.maximumSpendPerHourMicros), .int(c.maximumHighCostCallsPerMinute), .integer(c.highCostRateMicros), .text(stamp),
                ]
                if existing.isEmpty {
                    try await transaction.execute(
                        """
                        INSERT INTO billing_customers (customer, kind, currency, credit_limit_micros, rate_plan, max_calls, max_spend_per_hour_micros,
                        max_high_cost_calls_per_minute, high_cost_rate_micros, updated_at, status, status_reason, balance_micros)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '', 0)
                        """, values + [.text(c.status.rawValue)])
                } else {
                    try await transaction.execute(
                        """
                        UPDATE billing_customers SET kind = $2, currency = $3, credit_limit_micros = $4, rate_plan = $5, max_calls = $6,
                        max_spend_per_hour_micros = $7, max_high_cost_calls_per_minute = $8, high_cost_rate_micros = $9, updated_at = $10
                        WHERE customer = $1
                        """, values)
                    if statusGiven {
                        try await transaction.execute(
                            "UPDATE billing_customers SET status = $2, status_reason = $3 WHERE customer = $1",
                            [.text(c.customer), .text(c.status.rawValue), .text(c.status == .suspended ? "suspended by import" : "")])
                    }
                }
            }
        }
    }

    public func customer(_ id: String) async throws -> CustomerRecord? {
        try await store.query("SELECT \(Self.customerColumns) FROM billing_customers WHERE customer = $1", [.text(id)]).first.map { try Self.customer($0).0 }
    }

    public func customers() async throws -> [(CustomerRecord, Int64)] {
        try await store.query("SELECT \(Self.customerColumns) FROM billing_customers ORDER BY customer").map {
            let (customer, balance, _) = try Self.customer($0)
            return (customer, balance)
        }
    }

    // MARK: - Authorisation

    static func lockClause(_ transaction: any SQLTransaction) -> String { transaction.backend == .postgres ? " FOR UPDATE" : "" }

    /// Available money of a customer inside a transaction: balance + credit limit − reservations still in force
    /// (other than `excluding`), and the number of those reservations.
    static func available(_ transaction: any SQLTransaction, _ customer: CustomerRecord, balance: Int64, now: Date, excluding: String? = nil) async throws
        -> (available: Int64, reserved: Int64, calls: Int)
    {
        let rows = try await transaction.query(
            "SELECT COALESCE(SUM(amount_micros), 0) AS reserved, COUNT(*) AS calls FROM billing_reservations WHERE customer = $1 AND expires_at > $2 AND call_id <> $3",
            [.text(customer.customer), .text(Self.text(now)), .text(excluding ?? "")])
        let reserved = try rows.first?.int("reserved") ?? 0
        let calls = Int(try rows.first?.int("calls") ?? 0)
        let credit = customer.kind == .postpaid ? customer.creditLimitMicros : 0
        return (balance + credit - reserved, reserved, calls)
    }

    public struct Decision: Sendable {
        public var authorization: Authorization
        /// The sell rate of the call, when one applied (for the fraud guard).
        public var rate: Rate?
        public var customer: CustomerRecord?
    }

    /// Authorises one call: the longest time (up to `grantSeconds`) its price fits in what the customer has available,
    /// reserved at once in the same transaction, so that parallel calls never promise more than there is.
    public func authorize(_ request: AuthorizeRequest, sell: RateBook, grantSeconds: Int, now: Date = Date()) async throws -> Decision {
        try await store.transaction { transaction in
            let rows = try await transaction.query(
                "SELECT \(Self.customerColumns) FROM billing_customers WHERE customer = $1\(Self.lockClause(transaction))", [.text(request.customer)])
            guard let row = rows.first else {
                return Decision(authorization: Authorization(allowed: false, status: 403, reason: "customer \(request.customer.prefix(64)) has no billing account"))
            }
            let (customer, balance, reason) = try Self.customer(row)
            guard customer.status == .active else {
                return Decision(
                    authorization: Authorization(allowed: false, status: 403, reason: "the account is suspended\(reason.isEmpty ? "" : ": \(reason)")"),
                    customer: customer)
            }
            guard let rate = sell.rate(owner: customer.ratePlan, number: request.callee, at: now) else {
                return Decision(
                    authorization: Authorization(allowed: false, status: 403, reason: "rate plan \(customer.ratePlan) has no rate for +\(request.callee.prefix(15))"),
                    customer: customer)
            }
            let (available, _, calls) = try await Self.available(transaction, customer, balance: balance, now: now, excluding: request.callID)
            if customer.maximumCalls > 0, calls >= customer.maximumCalls {
                return Decision(
                    authorization: Authorization(allowed: false, status: 403, reason: "\(calls) calls in progress: the account's limit"), rate: rate, customer: customer)
            }
            let seconds = rate.maximumSeconds(affordableWith: available, cap: grantSeconds)
            guard seconds > 0 else {
                return Decision(
                    authorization: Authorization(allowed: false, status: 402, reason: "insufficient credit for +\(rate.prefix)"), rate: rate, customer: customer)
            }
            try await Self.reserve(
                transaction, callID: request.callID, customer: customer.customer, rate: rate, seconds: seconds, now: now,
                sbc: request.sbc.flatMap { sbc in request.sbcBoot.map { (sbc, $0) } })
            return Decision(
                authorization: Authorization(allowed: true, maximumDurationSeconds: seconds, renewable: seconds == grantSeconds), rate: rate, customer: customer)
        }
    }

    /// Replaces the reservation of a call. `sbc`: the SBC run (instance, boot) the call is on, when known.
    static func reserve(
        _ transaction: any SQLTransaction, callID: String, customer: String, rate: Rate, seconds: Int, now: Date, sbc: (String, String)?
    ) async throws {
        try await transaction.execute("DELETE FROM billing_reservations WHERE customer = $1 AND call_id = $2", [.text(customer), .text(callID)])
        // A reservation outlives its grant by ten minutes: time for the CDR to arrive; after that it no longer counts.
        try await transaction.execute(
            """
            INSERT INTO billing_reservations (call_id, customer, amount_micros, seconds, prefix, per_minute_micros, connection_fee_micros,
            first_increment, next_increment, minimum_seconds, created_at, expires_at, sbc, sbc_boot)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
            """,
            [
                .text(callID), .text(customer), .integer(rate.cost(seconds: seconds)), .int(seconds), .text(rate.prefix), .integer(rate.perMinuteMicros),
                .integer(rate.connectionFeeMicros), .int(rate.firstIncrement), .int(rate.nextIncrement), .int(rate.minimumSeconds), .text(Self.text(now)),
                .text(Self.text(now.addingTimeInterval(TimeInterval(seconds + 600)))), sbc.map { .text($0.0) } ?? .null, sbc.map { .text($0.1) } ?? .null,
            ])
    }

    static func reservedRate(_ row: SQLRow, owner: String) throws -> Rate {
        var rate = Rate(owner: owner, prefix: try row.string("prefix"), perMinuteMicros: try row.int("per_minute_micros"))
        rate.connectionFeeMicros = try row.int("connection_fee_micros")
        rate.firstIncrement = Int(try row.int("first_increment"))
        rate.nextIncrement = Int(try row.int("next_increment"))
        rate.minimumSeconds = Int(try row.int("minimum_seconds"))
        return rate
    }

    /// Extends a call's grant by up to `grantSeconds` more, at the rate it was authorised at.
    public func renew(_ request: RenewRequest, grantSeconds: Int, now: Date = Date()) async throws -> Authorization {
        try await store.transaction { transaction in
            let rows = try await transaction.query(
                "SELECT \(Self.customerColumns) FROM billing_customers WHERE customer = $1\(Self.lockClause(transaction))", [.text(request.customer)])
            guard let row = rows.first else { return Authorization(allowed: false, status: 403, reason: "no billing account") }
            let (customer, balance, reason) = try Self.customer(row)
            let reservations = try await transaction.query(
                "SELECT * FROM billing_reservations WHERE call_id = $1 AND customer = $2", [.text(request.callID), .text(request.customer)])
            guard let reservation = reservations.first else { return Authorization(allowed: false, status: 403, reason: "no grant for this call") }
            let granted = Int(try reservation.int("seconds"))
            guard customer.status == .active else {
                return Authorization(allowed: false, status: 403, reason: "the account is suspended: \(reason)", maximumDurationSeconds: granted)
            }
            let rate = try Self.reservedRate(reservation, owner: customer.ratePlan)
            let (available, _, _) = try await Self.available(transaction, customer, balance: balance, now: now, excluding: request.callID)
            let total = rate.maximumSeconds(affordableWith: available, cap: max(granted, request.elapsedSeconds) + grantSeconds)
            guard total > granted else {
                return Authorization(allowed: false, status: 402, reason: "insufficient credit to go on", maximumDurationSeconds: granted)
            }
            let sbc = try reservation.optionalString("sbc")
            let boot = try reservation.optionalString("sbc_boot")
            try await Self.reserve(
                transaction, callID: request.callID, customer: customer.customer, rate: rate, seconds: total, now: now,
                sbc: sbc.flatMap { sbc in boot.map { (sbc, $0) } })
            return Authorization(allowed: true, maximumDurationSeconds: total, renewable: total == max(granted, request.elapsedSeconds) + grantSeconds)
        }
    }

    // MARK: - CDRs

    /// Stores one call summary as a CDR exactly once: rated (sell and buy), the customer charged and the reservation
    /// settled in the same transaction. A summary whose id is stored already changes nothing.
    public func ingest(_ summary: CallSummary, sell: RateBook, buy: RateBook, now: Date = Date()) async throws -> (duplicate: Bool, cdr: RatedCDR) {
        let result = try await ingest([summary], sell: sell, buy: buy, now: now)
        return (result[0].duplicate, result[0].cdr)
    }

    /// Stores a batch of call summaries in one transaction: those whose id is stored already change nothing (also when
    /// one id comes twice in the batch); the others are rated, their customers charged once each (one balance update and
    /// one ledger row per CDR), their reservations settled. All of it commits, or none of it.
    public func ingest(_ summaries: [CallSummary], sell: RateBook, buy: RateBook, now: Date = Date()) async throws -> [(duplicate: Bool, cdr: RatedCDR)] {
        guard !summaries.isEmpty else { return [] }
        return try await store.transaction { transaction in
            // Accounts, locked in a fixed order (no deadlock between two batches), and the calls' reservations.
            var accounts: [String: (CustomerRecord, balance: Int64)] = [:]
            let customers = Array(Set(summaries.map(\.customer))).sorted()
            for customer in customers {
                if let row = try await transaction.query(
                    "SELECT \(Self.customerColumns) FROM billing_customers WHERE customer = $1\(Self.lockClause(transaction))", [.text(customer)]).first
                {
                    let (record, balance, _) = try Self.customer(row)
                    accounts[customer] = (record, balance)
                }
            }
            // The CDRs stored already, read after the locks: a batch that was storing the same calls (another billing
            // instance closing the same lost SBC's calls, a resent batch) has committed by now, so its CDRs are seen
            // here rather than colliding on their ids.
            let ids = Array(Set(summaries.map(\.id)))
            var existing: [String: RatedCDR] = [:]
            for chunk in ids.chunked(500) {
                let placeholders = (1...chunk.count).map { "$\($0)" }.joined(separator: ", ")
                for row in try await transaction.query("SELECT \(Self.cdrColumns) FROM billing_cdrs WHERE id IN (\(placeholders))", chunk.map(SQLValue.text)) {
                    let cdr = try Self.cdr(row)
                    existing[cdr.id] = cdr
                }
            }
            var reservations: [String: SQLRow] = [:]
            for chunk in summaries.chunked(200) {
                let conditions = (0..<chunk.count).map { "(customer = $\($0 * 2 + 1) AND call_id = $\($0 * 2 + 2))" }.joined(separator: " OR ")
                let binds = chunk.flatMap { [SQLValue.text($0.customer), .text($0.callID)] }
                for row in try await transaction.query("SELECT * FROM billing_reservations WHERE \(conditions)", binds) {
                    reservations["\(try row.string("customer"))\u{0}\(try row.string("call_id"))"] = row
                }
            }
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .custom { date, encoder in
                var container = encoder.singleValueContainer()
                try container.encode(Self.text(date))
            }
            encoder.outputFormatting = [.sortedKeys]
            let stamp = Self.text(now)
            var results: [(duplicate: Bool, cdr: RatedCDR)] = []
            var cdrRows: [[SQLValue]] = []
            var ledgerRows: [[SQLValue]] = []
            var settled: [(String, String)] = []
            var stored = Set<String>()
            for summary in summaries {
                if let cdr = existing[summary.id] {
                    results.append((true, cdr))
                    continue
                }
                guard stored.insert(summary.id).inserted else {
                    // The same id twice in one batch: the first one counts.
                    results.append((true, results.first { $0.cdr.id == summary.id }!.cdr))
                    continue
                }
                let account = accounts[summary.customer]
                let answered = summary.attempts.last { $0.result == .answered }
                let rated = Self.rate(
                    summary, account: account?.0, reservation: reservations["\(summary.customer)\u{0}\(summary.callID)"], sell: sell, buy: buy,
                    carrier: answered?.carrier ?? "")
                let cdr = RatedCDR(
                    id: summary.id, callID: summary.callID, customer: summary.customer, caller: summary.caller, callee: summary.callee,
                    carrier: answered?.carrier ?? summary.attempts.last?.carrier ?? "", trunk: answered?.trunk ?? summary.attempts.last?.trunk ?? "",
                    setupAt: Self.text(summary.setupAt), answerAt: summary.answerAt.map(Self.text), endAt: Self.text(summary.endAt),
                    durationMilliseconds: summary.durationMilliseconds, billedSeconds: rated.billedSeconds, disconnectStatus: summary.disconnect.status,
                    disconnectBy: summary.disconnect.by.rawValue, currency: account?.0.currency ?? "", sellMicros: rated.sell, buyMicros: rated.buy,
                    marginMicros: rated.sell - rated.buy, rated: rated.rated, ratePrefix: rated.prefix, note: rated.note,
                    mos: summary.streams.map(\.mos).min())
                cdrRows.append([
                    .text(cdr.id), .text(cdr.callID), .text(cdr.customer), .text(cdr.caller), .text(cdr.callee), .text(cdr.carrier), .text(cdr.trunk),
                    .text(cdr.setupAt), cdr.answerAt.map(SQLValue.text) ?? .null, .text(cdr.endAt), .int(cdr.durationMilliseconds), .int(cdr.billedSeconds),
                    .int(cdr.disconnectStatus), .text(cdr.disconnectBy), .text(cdr.currency), .integer(cdr.sellMicros), .integer(cdr.buyMicros),
                    .integer(cdr.marginMicros), .int(cdr.rated ? 1 : 0), .text(cdr.ratePrefix), .text(cdr.note), cdr.mos.map(SQLValue.real) ?? .null,
                    .text(String(decoding: try encoder.encode(summary), as: UTF8.self)), .text(stamp),
                ])
                if let (customer, balance) = accounts[summary.customer], cdr.sellMicros != 0 {
                    let after = balance - cdr.sellMicros
                    accounts[summary.customer] = (customer, after)
                    ledgerRows.append([
                        .text(RandomID.uuidString()), .text(customer.customer), .text(stamp), .text("call"), .integer(-cdr.sellMicros), .integer(after),
                        .text(cdr.id), .text("billing"),
                    ])
                }
                settled.append((summary.customer, summary.callID))
                results.append((false, cdr))
            }
            try await Self.insert(
                transaction, table: "billing_cdrs",
                columns: [
                    "id", "call_id", "customer", "caller", "callee", "carrier", "trunk", "setup_at", "answer_at", "end_at", "duration_ms", "billed_seconds",
                    "disconnect_status", "disconnect_by", "currency", "sell_micros", "buy_micros", "margin_micros", "rated", "rate_prefix", "note", "mos",
                    "summary", "stored_at",
                ], rows: cdrRows)
            try await Self.insert(
                transaction, table: "billing_ledger", columns: ["id", "customer", "at", "kind", "amount_micros", "balance_micros", "reference", "by_whom"],
                rows: ledgerRows)
            let charged = Set(ledgerRows.map { if case .text(let customer) = $0[1] { customer } else { "" } })
            for customer in charged.sorted() {
                guard let (_, balance) = accounts[customer] else { continue }
                try await transaction.execute("UPDATE billing_customers SET balance_micros = $2 WHERE customer = $1", [.text(customer), .integer(balance)])
            }
            for chunk in settled.chunked(200) {
                let conditions = (0..<chunk.count).map { "(customer = $\($0 * 2 + 1) AND call_id = $\($0 * 2 + 2))" }.joined(separator: " OR ")
                try await transaction.execute("DELETE FROM billing_reservations WHERE \(conditions)", chunk.flatMap { [SQLValue.text($0.0), .text($0.1)] })
            }
            // The calls' checkpoints have served: their CDRs are stored.
            for chunk in ids.chunked(500) {
                let placeholders = (1...chunk.count).map { "$\($0)" }.joined(separator: ", ")
                try await transaction.execute("DELETE FROM billing_call_checkpoints WHERE id IN (\(placeholders))", chunk.map(SQLValue.text))
            }
            return results
        }
    }

    // MARK: - The fraud guard's window, shared by the billing instances of a site

    /// Records a call authorised to a high-cost destination (once per call id: a resent authorisation is not counted
    /// again) and returns how many the customer has had in the minute up to `now`.
    public func recordHighCostCall(customer: String, callID: String, now: Date, window: TimeInterval = 60) async throws -> Int {
        try await store.transaction { transaction in
            // The customer's row locked first (PostgreSQL): two instances counting one burst at once see each other's calls.
            _ = try await transaction.query(
                "SELECT customer FROM billing_customers WHERE customer = $1\(Self.lockClause(transaction))", [.text(customer)])
            try await transaction.execute(
                "DELETE FROM billing_high_cost_calls WHERE customer = $1 AND at <= $2", [.text(customer), .text(Self.text(now.addingTimeInterval(-window)))])
            try await transaction.execute(
                "INSERT INTO billing_high_cost_calls (customer, call_id, at) VALUES ($1, $2, $3) ON CONFLICT (customer, call_id) DO NOTHING",
                [.text(customer), .text(callID), .text(Self.text(now))])
            let rows = try await transaction.query("SELECT COUNT(*) AS n FROM billing_high_cost_calls WHERE customer = $1", [.text(customer)])
            return Int(try rows.first?.int("n") ?? 0)
        }
    }

    // MARK: - Checkpoints of calls in progress

    /// Summaries as stored (times as fixed-width text, keys sorted).
    static func summaryJSON(_ summary: CallSummary) throws -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Self.text(date))
        }
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(summary), as: UTF8.self)
    }

    static func summary(json: String) throws -> CallSummary {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = Self.date(text) else { throw StoreError(.decoding, "not a time: \(text)") }
            return date
        }
        return try decoder.decode(CallSummary.self, from: Data(json.utf8))
    }

    /// One SBC run's heartbeat: its last-seen time (billing's clock, never moved back) and its checkpoints, stored
    /// by summary id. A final summary replaces an answered call's checkpoint, never the other way round; calls whose
    /// CDR is stored already get none. Returns the checkpoints stored.
    public func record(_ report: CallCheckpoints, now: Date = Date()) async throws -> Int {
        try await store.transaction { transaction in
            let seen = Self.text(now)
            try await transaction.execute(
                """
                INSERT INTO billing_sbc_runs (instance, boot, started_at, last_seen) VALUES ($1, $2, $3, $4)
                ON CONFLICT (instance, boot) DO UPDATE SET last_seen = CASE WHEN excluded.last_seen > billing_sbc_runs.last_seen
                THEN excluded.last_seen ELSE billing_sbc_runs.last_seen END
                """, [.text(report.instance), .text(report.boot), .text(Self.text(report.startedAt)), .text(seen)])
            let checkpoints = report.answered.map { ($0, false) } + report.ended.map { ($0, true) }
            guard !checkpoints.isEmpty else { return 0 }
            var billed = Set<String>()
            for chunk in Array(Set(checkpoints.map(\.0.id))).chunked(500) {
                let placeholders = (1...chunk.count).map { "$\($0)" }.joined(separator: ", ")
                for row in try await transaction.query("SELECT id FROM billing_cdrs WHERE id IN (\(placeholders))", chunk.map(SQLValue.text)) {
                    billed.insert(try row.string("id"))
                }
            }
            var stored = 0
            for (summary, final) in checkpoints where !billed.contains(summary.id) {
                try await transaction.execute(
                    """
                    INSERT INTO billing_call_checkpoints (id, instance, boot, final, summary, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
                    ON CONFLICT (id) DO UPDATE SET final = excluded.final, summary = excluded.summary, updated_at = excluded.updated_at
                    WHERE billing_call_checkpoints.final = 0
                    """,
                    [.text(summary.id), .text(report.instance), .text(report.boot), .int(final ? 1 : 0), .text(try Self.summaryJSON(summary)), .text(seen)])
                stored += 1
            }
            return stored
        }
    }

    /// A call of a lost SBC run, as billing will record it.
    public struct LostCall: Sendable {
        public var summary: CallSummary
        public var instance: String
        /// The SBC's own final summary (the call had ended), or an answered call ended at the run's last heartbeat.
        public var final: Bool
    }

    /// A round trip to the database (the lost-SBC watch checks that it can store before it judges SBCs silent).
    public func ping() async throws {
        _ = try await store.query("SELECT 1 AS one", [])
    }

    /// The checkpointed calls of SBC runs that are lost: silent since before `silentSince`, or followed by a newer run of
    /// the same instance (the SBC started again: what it had up died with the old process). An answered call ends at
    /// its run's last heartbeat (never before its answer).
    public func lostCalls(silentSince: Date, limit: Int = 1000) async throws -> [LostCall] {
        let rows = try await store.query(
            """
            SELECT c.id, c.instance, c.final, c.summary, r.last_seen FROM billing_call_checkpoints c
            JOIN billing_sbc_runs r ON r.instance = c.instance AND r.boot = c.boot
            WHERE r.last_seen < $1 OR EXISTS (SELECT 1 FROM billing_sbc_runs n WHERE n.instance = r.instance AND n.started_at > r.started_at)
            ORDER BY c.id LIMIT $2
            """, [.text(Self.text(silentSince)), .int(limit)])
        return try rows.map { row in
            var summary = try Self.summary(json: try row.string("summary"))
            let final = try row.int("final") != 0
            if !final, let answerAt = summary.answerAt, let lastSeen = Self.date(try row.string("last_seen")) {
                summary.endAt = max(answerAt, lastSeen)
                summary.durationMilliseconds = Int((summary.endAt.timeIntervalSince(answerAt) * 1000).rounded())
            }
            return LostCall(summary: summary, instance: try row.string("instance"), final: final)
        }
    }

    /// A reservation released because its SBC run was lost before the call was answered.
    public struct ReleasedReservation: Sendable, Equatable {
        public var callID: String
        public var customer: String
        public var instance: String
    }

    /// Releases the reservations of calls on lost SBC runs (as in ``lostCalls(silentSince:limit:)``) once the run has no
    /// checkpoint left: its answered calls have their CDRs (which settled their reservations), so what remains are calls
    /// that were still being set up, ringing or routed, when the SBC died. They never got an answer, so no CDR is owed.
    public func releaseLostReservations(silentSince: Date) async throws -> [ReleasedReservation] {
        let runs = try await store.query(
            """
            SELECT r.instance, r.boot FROM billing_sbc_runs r
            WHERE (r.last_seen < $1 OR EXISTS (SELECT 1 FROM billing_sbc_runs n WHERE n.instance = r.instance AND n.started_at > r.started_at))
            AND NOT EXISTS (SELECT 1 FROM billing_call_checkpoints c WHERE c.instance = r.instance AND c.boot = r.boot)
            AND EXISTS (SELECT 1 FROM billing_reservations v WHERE v.sbc = r.instance AND v.sbc_boot = r.boot)
            """, [.text(Self.text(silentSince))])
        var released: [ReleasedReservation] = []
        for run in runs {
            let instance = try run.string("instance")
            let rows = try await store.query(
                "DELETE FROM billing_reservations WHERE sbc = $1 AND sbc_boot = $2 RETURNING call_id, customer",
                [.text(instance), .text(try run.string("boot"))])
            released += try rows.map { ReleasedReservation(callID: try $0.string("call_id"), customer: try $0.string("customer"), instance: instance) }
        }
        return released
    }

    /// Forgets SBC runs silent for a day that have no checkpoint left.
    public func forgetOldRuns(before: Date) async throws {
        try await store.execute(
            """
            DELETE FROM billing_sbc_runs WHERE last_seen < $1 AND NOT EXISTS
            (SELECT 1 FROM billing_call_checkpoints c WHERE c.instance = billing_sbc_runs.instance AND c.boot = billing_sbc_runs.boot)
            """, [.text(Self.text(before))])
    }

    /// Multi-row INSERTs, a few hundred rows a statement.
    static func insert(_ transaction: any SQLTransaction, table: String, columns: [String], rows: [[SQLValue]]) async throws {
        for chunk in rows.chunked(max(1, 20_000 / columns.count)) {
            var parameter = 0
            let tuples = chunk.map { _ in
                "(" + columns.map { _ in
                    parameter += 1
                    return "$\(parameter)"
                }.joined(separator: ", ") + ")"
            }
            try await transaction.execute(
                "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES \(tuples.joined(separator: ", "))", Array(chunk.joined()))
        }
    }

    struct Rating {
        var billedSeconds = 0
        var sell: Int64 = 0
        var buy: Int64 = 0
        var rated = true
        var prefix = ""
        var note = ""
    }

    /// The price of a call: the sell rate it was authorised at (or, without a reservation, the plan's rate at the
    /// answer), billed on its duration; for prepaid accounts never more than the time granted (the SBC cut the call
    /// there; its last milliseconds of signalling are not charged). The buy rate is the answering carrier's.
    static func rate(_ summary: CallSummary, account: CustomerRecord?, reservation: SQLRow?, sell: RateBook, buy: RateBook, carrier: String) -> Rating {
        var rating = Rating()
        guard let answerAt = summary.answerAt, summary.durationMilliseconds > 0 else {
            rating.note = "not answered"
            return rating
        }
        guard let account else {
            rating.rated = false
            rating.note = "no billing account for \(summary.customer.prefix(64))"
            if let buyRate = buy.rate(owner: carrier, number: summary.callee, at: answerAt) {
                rating.buy = buyRate.cost(billedSeconds: buyRate.billedSeconds(durationMilliseconds: summary.durationMilliseconds))
            }
            return rating
        }
        let reserved = reservation.flatMap { try? reservedRate($0, owner: account.ratePlan) }
        let grant = reservation.flatMap { try? $0.int("seconds") }.map(Int.init)
        if let rate = reserved ?? sell.rate(owner: account.ratePlan, number: summary.callee, at: answerAt) {
            var billed = rate.billedSeconds(durationMilliseconds: summary.durationMilliseconds)
            if account.kind == .prepaid, let grant, billed > rate.billedSeconds(seconds: grant) {
                billed = rate.billedSeconds(seconds: grant)
                rating.note = "capped at the granted \(grant) s"
            }
            rating.billedSeconds = billed
            rating.sell = rate.cost(billedSeconds: billed)
            rating.prefix = rate.prefix
        } else {
            rating.rated = false
            rating.billedSeconds = (summary.durationMilliseconds + 999) / 1000
            rating.note = "no rate in plan \(account.ratePlan) for +\(summary.callee.prefix(15))"
        }
        if let buyRate = buy.rate(owner: carrier, number: summary.callee, at: answerAt) {
            rating.buy = buyRate.cost(billedSeconds: buyRate.billedSeconds(durationMilliseconds: summary.durationMilliseconds))
        } else if !carrier.isEmpty, carrier != "on-net" {
            rating.note += rating.note.isEmpty ? "no buy rate for carrier \(carrier.prefix(64))" : "; no buy rate for carrier \(carrier.prefix(64))"
        }
        return rating
    }

    static let cdrColumns = """
        id, call_id, customer, caller, callee, carrier, trunk, setup_at, answer_at, end_at, duration_ms, billed_seconds, disconnect_status,
        disconnect_by, currency, sell_micros, buy_micros, margin_micros, rated, rate_prefix, note, mos
        """

    static func cdr(_ row: SQLRow) throws -> RatedCDR {
        RatedCDR(
            id: try row.string("id"), callID: try row.string("call_id"), customer: try row.string("customer"), caller: try row.string("caller"),
            callee: try row.string("callee"), carrier: try row.string("carrier"), trunk: try row.string("trunk"), setupAt: try row.string("setup_at"),
            answerAt: try row.optionalString("answer_at"), endAt: try row.string("end_at"), durationMilliseconds: Int(try row.int("duration_ms")),
            billedSeconds: Int(try row.int("billed_seconds")), disconnectStatus: Int(try row.int("disconnect_status")),
            disconnectBy: try row.string("disconnect_by"), currency: try row.string("currency"), sellMicros: try row.int("sell_micros"),
            buyMicros: try row.int("buy_micros"), marginMicros: try row.int("margin_micros"), rated: try row.int("rated") != 0,
            ratePrefix: try row.string("rate_prefix"), note: try row.string("note"), mos: try row.optionalDouble("mos"))
    }

    /// A page of CDRs by setup time, oldest first.
    public func cdrs(_ query: CDRQuery) async throws -> CDRPage {
        var sql = "SELECT \(Self.cdrColumns) FROM billing_cdrs WHERE setup_at >= $1 AND setup_at < $2"
        var binds: [SQLValue] = [.text(query.from), .text(query.to)]
        if let customer = query.customer, !customer.isEmpty {
            binds.append(.text(customer))
            sql += " AND customer = $\(binds.count)"
        }
        if let after = query.after, let bar = after.firstIndex(of: "|") {
            binds.append(.text(String(after[..<bar])))
            binds.append(.text(String(after[after.index(after: bar)...])))
            sql += " AND (setup_at > $\(binds.count - 1) OR (setup_at = $\(binds.count - 1) AND id > $\(binds.count)))"
        }
        let limit = min(max(query.limit, 1), 5000)
        sql += " ORDER BY setup_at, id LIMIT \(limit + 1)"
        let rows = try await store.query(sql, binds)
        let cdrs = try rows.prefix(limit).map(Self.cdr)
        let next = rows.count > limit ? cdrs.last.map { "\($0.setupAt)|\($0.id)" } : nil
        return CDRPage(cdrs: Array(cdrs), next: next)
    }

    // MARK: - Accounts and the ledger

    public func account(_ customerID: String, now: Date = Date()) async throws -> AccountState? {
        try await store.transaction { transaction in
            guard let row = try await transaction.query("SELECT \(Self.customerColumns) FROM billing_customers WHERE customer = $1", [.text(customerID)]).first
            else { return nil }
            return try await Self.state(transaction, row, now: now)
        }
    }

    static func state(_ transaction: any SQLTransaction, _ row: SQLRow, now: Date) async throws -> AccountState {
        let (customer, balance, reason) = try Self.customer(row)
        let (available, reserved, calls) = try await Self.available(transaction, customer, balance: balance, now: now)
        let ledger = try await transaction.query(
            "SELECT at, kind, amount_micros, balance_micros, reference, by_whom FROM billing_ledger WHERE customer = $1 ORDER BY at DESC, id DESC LIMIT 20",
            [.text(customer.customer)]
        ).map {
            AccountState.LedgerEntry(
                at: try $0.string("at"), kind: try $0.string("kind"), amountMicros: try $0.int("amount_micros"), balanceMicros: try $0.int("balance_micros"),
                reference: try $0.string("reference"), by: try $0.string("by_whom"))
        }
        return AccountState(
            customer: customer.customer, type: customer.kind.rawValue, currency: customer.currency, status: customer.status.rawValue,
            statusReason: reason.isEmpty ? nil : reason, balanceMicros: balance, creditLimitMicros: customer.kind == .postpaid ? customer.creditLimitMicros : 0,
            reservedMicros: reserved, availableMicros: available, callsInProgress: calls, ledger: ledger)
    }

    /// A top-up or adjustment, in the ledger with its reason and author, in one transaction with the balance.
    public func adjust(_ request: BalanceAdjustment, now: Date = Date()) async throws -> AccountState? {
        try await store.transaction { transaction in
            guard let row = try await transaction.query(
                "SELECT \(Self.customerColumns) FROM billing_customers WHERE customer = $1\(Self.lockClause(transaction))", [.text(request.customer)]).first
            else { return nil }
            let (customer, balance, _) = try Self.customer(row)
            let after = balance + request.amountMicros
            try await transaction.execute("UPDATE billing_customers SET balance_micros = $2 WHERE customer = $1", [.text(customer.customer), .integer(after)])
            try await transaction.execute(
                "INSERT INTO billing_ledger (id, customer, at, kind, amount_micros, balance_micros, reference, by_whom) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                [
                    .text(RandomID.uuidString()), .text(customer.customer), .text(Self.text(now)), .text(request.kind.rawValue), .integer(request.amountMicros),
                    .integer(after), .text(request.reason), .text(request.by),
                ])
            let updated = try await transaction.query("SELECT \(Self.customerColumns) FROM billing_customers WHERE customer = $1", [.text(customer.customer)])
            return try await Self.state(transaction, updated[0], now: now)
        }
    }

    /// Drops a call's reservation (an authorisation withdrawn after it was made).
    public func release(customer: String, callID: String) async throws {
        try await store.execute("DELETE FROM billing_reservations WHERE customer = $1 AND call_id = $2", [.text(customer), .text(callID)])
    }

    /// Suspends a customer (fraud guard) and records the event.
    public func suspend(_ customer: String, kind: String, detail: String, now: Date = Date()) async throws {
        try await store.transaction { transaction in
            try await transaction.execute(
                "UPDATE billing_customers SET status = 'suspended', status_reason = $2 WHERE customer = $1", [.text(customer), .text(detail)])
            try await transaction.execute(
                "INSERT INTO billing_events (id, at, customer, kind, detail) VALUES ($1, $2, $3, $4, $5)",
                [.text(RandomID.uuidString()), .text(Self.text(now)), .text(customer), .text(kind), .text(detail)])
        }
    }

    /// What the customer was charged for calls that ended in the hour before `now`.
    public func spendLastHour(_ customer: String, now: Date = Date()) async throws -> Int64 {
        try await store.query(
            "SELECT COALESCE(SUM(sell_micros), 0) AS spent FROM billing_cdrs WHERE customer = $1 AND end_at >= $2",
            [.text(customer), .text(Self.text(now.addingTimeInterval(-3600)))]
        ).first?.int("spent") ?? 0
    }
}

extension Array {
    /// Consecutive slices of at most `size` elements.
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
