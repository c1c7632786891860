public import Foundation
public import TroncalCatalog
public import TroncalProtocol

/// A billing account's settings (a row of the `customers` catalog). The balance is not among them: it changes
/// only by rated calls and by top-ups and adjustments, each kept in the ledger.
public struct CustomerRecord: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable { case prepaid, postpaid }
    public enum Status: String, Sendable, Hashable { case active, suspended }

    public var customer: String
    public var kind: Kind
    /// ISO 4217 code; CDRs and balances are in it.
    public var currency: String = "EUR"
    /// How far below zero a postpaid balance may go (millionths); always 0 for prepaid.
    public var creditLimitMicros: Int64 = 0
    public var ratePlan: String = "default"
    /// Calls in progress allowed; 0: no limit here (the SBC has its own).
    public var maximumCalls: Int = 0
    public var status: Status = .active
    /// Fraud guard: spend allowed in any hour (millionths); 0: no limit.
    public var maximumSpendPerHourMicros: Int64 = 0
    /// Fraud guard: calls allowed per minute to high-cost destinations; 0: no limit.
    public var maximumHighCostCallsPerMinute: Int = 0
    /// Destinations whose sell rate per minute is at least this are high-cost (millionths); 0: none is.
    public var highCostRateMicros: Int64 = 0

    public init(customer: String, kind: Kind) {
        self.customer = customer
        self.kind = kind
    }
}

/// The CSV formats of the billing catalogs (`docs/billing.md`): customers, sell rates per plan, buy rates per carrier.
public enum BillingCSV {
    static let customerColumns = [
        "customer", "type", "currency", "credit_limit", "rate_plan", "max_calls", "status", "max_spend_per_hour",
        "max_high_cost_calls_per_minute", "high_cost_rate", "balance",
    ]
    static func rateColumns(owner: String) -> [String] {
        [owner, "prefix", "rate", "connection_fee", "first_increment", "next_increment", "minimum_seconds", "days", "hours", "effective_from", "effective_to"]
    }

    static func columns(_ kind: BillingCatalogKind) -> (all: [String], required: [String]) {
        switch kind {
        case .customers: (customerColumns, ["customer", "type"])
        case .rates: (rateColumns(owner: "plan"), ["plan", "prefix", "rate"])
        case .carrierRates: (rateColumns(owner: "carrier"), ["carrier", "prefix", "rate"])
        }
    }

    static func records(_ kind: BillingCatalogKind, _ text: String) throws(CatalogError) -> CSVRecords {
        let (all, required) = columns(kind)
        return try CSVRecords(parsing: text, kind: kind.rawValue, columns: all, required: required)
    }

    /// The customers of a file, and whether it has a `status` column (without one, known customers keep theirs).
    public static func customers(_ text: String) throws(CatalogError) -> (customers: [CustomerRecord], statusGiven: Bool) {
        let file = try records(.customers, text)
        var seen = Set<String>()
        var result: [CustomerRecord] = []
        for row in file.records {
            let id = try row.name("customer")
            guard seen.insert(id).inserted else { throw row.fail("customer", "\(id.quotedForError) appears twice") }
            guard let kind = CustomerRecord.Kind(rawValue: row["type"].lowercased()) else {
                throw row.fail("type", "\(row["type"].quotedForError) is not prepaid or postpaid")
            }
            var customer = CustomerRecord(customer: id, kind: kind)
            let currency = row["currency"].uppercased()
            if !currency.isEmpty {
                guard currency.count == 3, currency.allSatisfy({ $0.isASCII && $0.isLetter }) else {
                    throw row.fail("currency", "\(currency.quotedForError) is not an ISO 4217 code such as EUR")
                }
                customer.currency = currency
            }
            customer.creditLimitMicros = try row.amount("credit_limit")
            if kind == .prepaid, customer.creditLimitMicros != 0 { throw row.fail("credit_limit", "a prepaid account has no credit limit") }
            customer.ratePlan = try row.name("rate_plan", optional: true, default: customer.ratePlan)
            customer.maximumCalls = try row.integer("max_calls", default: 0, 0...10_000_000)
            let status = row["status"].lowercased()
            if !status.isEmpty {
                guard let parsed = CustomerRecord.Status(rawValue: status) else {
                    throw row.fail("status", "\(status.quotedForError) is not active or suspended")
                }
                customer.status = parsed
            }
            customer.maximumSpendPerHourMicros = try row.amount("max_spend_per_hour")
            customer.maximumHighCostCallsPerMinute = try row.integer("max_high_cost_calls_per_minute", default: 0, 0...1_000_000)
            customer.highCostRateMicros = try row.amount("high_cost_rate")
            result.append(customer)
        }
        return (result, file.hasColumn("status"))
    }

    public static func rates(_ kind: BillingCatalogKind, _ text: String) throws(CatalogError) -> [Rate] {
        let owner = kind == .carrierRates ? "carrier" : "plan"
        var result: [Rate] = []
        for row in try records(kind, text).records {
            var rate = Rate(owner: try row.name(owner), prefix: try row.prefix("prefix"), perMinuteMicros: try row.amount("rate", default: nil))
            rate.connectionFeeMicros = try row.amount("connection_fee")
            rate.firstIncrement = try row.integer("first_increment", default: 1, 1...3600)
            rate.nextIncrement = try row.integer("next_increment", default: 1, 1...3600)
            rate.minimumSeconds = try row.integer("minimum_seconds", default: 0, 0...3600)
            rate.schedule = try row.schedule()
            rate.effectiveFrom = try row.date("effective_from")
            rate.effectiveTo = try row.date("effective_to")
            if let from = rate.effectiveFrom, let to = rate.effectiveTo, to <= from { throw row.fail("effective_to", "must be after effective_from") }
            result.append(rate)
        }
        return result
    }

    static let timeFormat = Date.ISO8601FormatStyle()

    public static func render(rates: [Rate], kind: BillingCatalogKind) -> String {
        let header = columns(kind).all
        let rows = rates.enumerated().map { offset, r in
            (
                offset + 2,
                [
                    r.owner, r.prefix, MicroAmount.format(r.perMinuteMicros), MicroAmount.format(r.connectionFeeMicros), "\(r.firstIncrement)",
                    "\(r.nextIncrement)", "\(r.minimumSeconds)", r.schedule.daysText, r.schedule.hoursText,
                    r.effectiveFrom.map { $0.formatted(timeFormat) } ?? "", r.effectiveTo.map { $0.formatted(timeFormat) } ?? "",
                ]
            )
        }
        return CSVTable(header: header, rows: rows).render()
    }

    /// Customers with their balances (the `balance` column is read back by an import but ignored).
    public static func render(customers: [(CustomerRecord, Int64)]) -> String {
        let rows = customers.enumerated().map { offset, entry in
            let (c, balance) = entry
            return (
                offset + 2,
                [
                    c.customer, c.kind.rawValue, c.currency, MicroAmount.format(c.creditLimitMicros), c.ratePlan, "\(c.maximumCalls)", c.status.rawValue,
                    MicroAmount.format(c.maximumSpendPerHourMicros), "\(c.maximumHighCostCallsPerMinute)", MicroAmount.format(c.highCostRateMicros),
                    SignedAmount.format(balance),
                ]
            )
        }
        return CSVTable(header: customerColumns, rows: rows).render()
    }
}

