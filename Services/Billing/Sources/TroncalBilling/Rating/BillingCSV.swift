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

    /// A checked table with access by column.
    struct Rows {
        let table: CSVTable
        let index: [String: Int]

        init(_ kind: BillingCatalogKind, _ text: String) throws(CatalogError) {
            let table = try CSVTable(parsing: text)
            self.table = table
            let (all, required) = BillingCSV.columns(kind)
            for name in table.header where !all.contains(name) {
                throw CatalogError(line: 1, column: name, "not a column of \(kind.rawValue) (columns: \(all.joined(separator: ", ")))")
            }
            for name in required where !table.header.contains(name) { throw CatalogError(line: 1, column: name, "this column is required") }
            if let duplicate = table.header.enumerated().first(where: { table.header.firstIndex(of: $0.element) != $0.offset }) {
                throw CatalogError(line: 1, column: duplicate.element, "the column appears twice")
            }
            index = Dictionary(uniqueKeysWithValues: table.header.enumerated().map { ($0.element, $0.offset) })
            let width = table.header.count
            for row in table.rows where row.fields.count != width {
                throw CatalogError(line: row.line, "\(row.fields.count) fields, the header has \(width)")
            }
        }

        func value(_ row: [String], _ column: String) -> String {
            index[column].map { row[$0].trimmingSpaces } ?? ""
        }
    }

    static func name(_ value: String, line: Int, column: String) throws(CatalogError) -> String {
        guard !value.isEmpty else { throw CatalogError(line: line, column: column, "a value is required") }
        guard value.count <= 64, value.unicodeScalars.allSatisfy({ $0.value >= 0x21 && $0.value != 0x7F && $0 != ";" }) else {
            throw CatalogError(line: line, column: column, "a name has 1 to 64 visible characters, no spaces or ';'")
        }
        return value
    }

    static func amount(_ value: String, line: Int, column: String, default fallback: Int64 = 0) throws(CatalogError) -> Int64 {
        if value.isEmpty { return fallback }
        guard let micros = MicroAmount.parse(value) else {
            throw CatalogError(line: line, column: column, "\(value.quotedForError) is not an amount like 0.0125 (up to 6 decimals, no sign)")
        }
        return micros
    }

    static func integer(_ value: String, line: Int, column: String, default fallback: Int, _ range: ClosedRange<Int>) throws(CatalogError) -> Int {
        if value.isEmpty { return fallback }
        guard value.allSatisfy(\.isASCIIDigit), let number = Int(value), range.contains(number) else {
            throw CatalogError(line: line, column: column, "\(value.quotedForError) is not a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    static func date(_ value: String, line: Int, column: String) throws(CatalogError) -> Date? {
        if value.isEmpty { return nil }
        if let date = try? Date(value, strategy: .iso8601) { return date }
        if value.count == 10, let date = try? Date(value + "T00:00:00Z", strategy: .iso8601) { return date }
        throw CatalogError(line: line, column: column, "\(value.quotedForError) is not a date (2026-12-01) or an ISO 8601 time (2026-12-01T08:00:00Z)")
    }

    public static func customers(_ text: String) throws(CatalogError) -> [CustomerRecord] {
        let rows = try Rows(.customers, text)
        var seen = Set<String>()
        var result: [CustomerRecord] = []
        for (line, fields) in rows.table.rows {
            func v(_ column: String) -> String { rows.value(fields, column) }
            let id = try name(v("customer"), line: line, column: "customer")
            guard seen.insert(id).inserted else { throw CatalogError(line: line, column: "customer", "\(id.quotedForError) appears twice") }
            guard let kind = CustomerRecord.Kind(rawValue: v("type").lowercased()) else {
                throw CatalogError(line: line, column: "type", "\(v("type").quotedForError) is not prepaid or postpaid")
            }
            var customer = CustomerRecord(customer: id, kind: kind)
            let currency = v("currency").uppercased()
            if !currency.isEmpty {
                guard currency.count == 3, currency.allSatisfy({ $0.isASCII && $0.isLetter }) else {
                    throw CatalogError(line: line, column: "currency", "\(currency.quotedForError) is not an ISO 4217 code such as EUR")
                }
                customer.currency = currency
            }
            customer.creditLimitMicros = try amount(v("credit_limit"), line: line, column: "credit_limit")
            if kind == .prepaid, customer.creditLimitMicros != 0 {
                throw CatalogError(line: line, column: "credit_limit", "a prepaid account has no credit limit")
            }
            if !v("rate_plan").isEmpty { customer.ratePlan = try name(v("rate_plan"), line: line, column: "rate_plan") }
            customer.maximumCalls = try integer(v("max_calls"), line: line, column: "max_calls", default: 0, 0...10_000_000)
            let status = v("status").lowercased()
            if !status.isEmpty {
                guard let parsed = CustomerRecord.Status(rawValue: status) else {
                    throw CatalogError(line: line, column: "status", "\(status.quotedForError) is not active or suspended")
                }
                customer.status = parsed
            }
            customer.maximumSpendPerHourMicros = try amount(v("max_spend_per_hour"), line: line, column: "max_spend_per_hour")
            customer.maximumHighCostCallsPerMinute = try integer(
                v("max_high_cost_calls_per_minute"), line: line, column: "max_high_cost_calls_per_minute", default: 0, 0...1_000_000)
            customer.highCostRateMicros = try amount(v("high_cost_rate"), line: line, column: "high_cost_rate")
            result.append(customer)
        }
        return result
    }

    public static func rates(_ kind: BillingCatalogKind, _ text: String) throws(CatalogError) -> [Rate] {
        let owner = kind == .carrierRates ? "carrier" : "plan"
        let rows = try Rows(kind, text)
        var result: [Rate] = []
        for (line, fields) in rows.table.rows {
            func v(_ column: String) -> String { rows.value(fields, column) }
            var prefix = v("prefix")
            if prefix.hasPrefix("+") { prefix.removeFirst() }
            guard prefix.count <= 15, prefix.allSatisfy(\.isASCIIDigit) else {
                throw CatalogError(line: line, column: "prefix", "\(prefix.quotedForError) is not up to 15 digits")
            }
            let rateText = v("rate")
            guard !rateText.isEmpty else { throw CatalogError(line: line, column: "rate", "a value is required") }
            var rate = Rate(owner: try name(v(owner), line: line, column: owner), prefix: prefix, perMinuteMicros: try amount(rateText, line: line, column: "rate"))
            rate.connectionFeeMicros = try amount(v("connection_fee"), line: line, column: "connection_fee")
            rate.firstIncrement = try integer(v("first_increment"), line: line, column: "first_increment", default: 1, 1...3600)
            rate.nextIncrement = try integer(v("next_increment"), line: line, column: "next_increment", default: 1, 1...3600)
            rate.minimumSeconds = try integer(v("minimum_seconds"), line: line, column: "minimum_seconds", default: 0, 0...3600)
            do {
                rate.schedule = try Schedule(days: v("days"), hours: v("hours"))
            } catch {
                throw CatalogError(line: line, column: error.column, error.detail)
            }
            rate.effectiveFrom = try date(v("effective_from"), line: line, column: "effective_from")
            rate.effectiveTo = try date(v("effective_to"), line: line, column: "effective_to")
            if let from = rate.effectiveFrom, let to = rate.effectiveTo, to <= from {
                throw CatalogError(line: line, column: "effective_to", "must be after effective_from")
            }
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

