import Foundation
import Testing
import TroncalCatalog
import TroncalProtocol

@testable import TroncalBilling

/// Rating against a table of cases with exact amounts (millionths): increments, connection fee, minimum duration,
/// longest prefix, time of day, effective dates; and the longest affordable call.
@Suite struct RatingTests {
    static func rate(_ perMinute: String, fee: String = "0", first: Int = 1, next: Int = 1, minimum: Int = 0) -> Rate {
        var rate = Rate(owner: "p", prefix: "34", perMinuteMicros: MicroAmount.parse(perMinute)!)
        rate.connectionFeeMicros = MicroAmount.parse(fee)!
        rate.firstIncrement = first
        rate.nextIncrement = next
        rate.minimumSeconds = minimum
        return rate
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var perMinute: String
        var fee = "0"
        var first = 1
        var next = 1
        var minimum = 0
        var milliseconds: Int
        var billed: Int
        var cost: Int64
        var testDescription: String { "\(perMinute)/min +\(fee) \(first)/\(next) min \(minimum)s, \(milliseconds) ms → \(billed) s, \(cost)" }
    }

    static let cases: [Case] = [
        // 1/1: every started second.
        Case(perMinute: "0.06", milliseconds: 90_000, billed: 90, cost: 90_000),
        Case(perMinute: "0.06", milliseconds: 90_001, billed: 91, cost: 91_000),
        Case(perMinute: "0.06", milliseconds: 1, billed: 1, cost: 1_000),
        Case(perMinute: "0.06", milliseconds: 0, billed: 0, cost: 0),
        // 60/60: whole minutes.
        Case(perMinute: "0.10", first: 60, next: 60, milliseconds: 1_000, billed: 60, cost: 100_000),
        Case(perMinute: "0.10", first: 60, next: 60, milliseconds: 60_000, billed: 60, cost: 100_000),
        Case(perMinute: "0.10", first: 60, next: 60, milliseconds: 60_001, billed: 120, cost: 200_000),
        Case(perMinute: "0.10", first: 60, next: 60, milliseconds: 181_000, billed: 240, cost: 400_000),
        // 30/6: a first half minute, then 6-second steps.
        Case(perMinute: "0.12", first: 30, next: 6, milliseconds: 5_000, billed: 30, cost: 60_000),
        Case(perMinute: "0.12", first: 30, next: 6, milliseconds: 31_000, billed: 36, cost: 72_000),
        Case(perMinute: "0.12", first: 30, next: 6, milliseconds: 36_000, billed: 36, cost: 72_000),
        Case(perMinute: "0.12", first: 30, next: 6, milliseconds: 37_000, billed: 42, cost: 84_000),
        // Connection fee: charged once, only for an answered call.
        Case(perMinute: "0.06", fee: "0.15", milliseconds: 10_000, billed: 10, cost: 160_000),
        Case(perMinute: "0.06", fee: "0.15", milliseconds: 0, billed: 0, cost: 0),
        // Minimum duration, then the increments.
        Case(perMinute: "0.06", minimum: 20, milliseconds: 3_000, billed: 20, cost: 20_000),
        Case(perMinute: "0.12", first: 30, next: 6, minimum: 45, milliseconds: 3_000, billed: 48, cost: 96_000),
        Case(perMinute: "0.06", minimum: 20, milliseconds: 25_000, billed: 25, cost: 25_000),
        // Rounding: a fraction of a millionth is rounded up.
        Case(perMinute: "0.000001", milliseconds: 1_000, billed: 1, cost: 1),
        Case(perMinute: "0.0125", milliseconds: 7_000, billed: 7, cost: 1_459),
        Case(perMinute: "1.234567", first: 60, next: 1, milliseconds: 61_500, billed: 62, cost: 1_275_720),
    ]

    @Test(arguments: cases)
    func aCallIsBilledItsIncrementsAndCostsTheExactAmount(_ c: Case) {
        let rate = Self.rate(c.perMinute, fee: c.fee, first: c.first, next: c.next, minimum: c.minimum)
        let billed = rate.billedSeconds(durationMilliseconds: c.milliseconds)
        #expect(billed == c.billed)
        #expect(rate.cost(billedSeconds: billed) == c.cost)
    }

    @Test func theLongestAffordableCallFitsTheBalanceExactlyWithItsIncrements() {
        // 90 seconds at 0.06/min is 0.09.
        #expect(Self.rate("0.06").maximumSeconds(affordableWith: 90_000, cap: 300) == 90)
        #expect(Self.rate("0.06").maximumSeconds(affordableWith: 89_999, cap: 300) == 89)
        #expect(Self.rate("0.06").maximumSeconds(affordableWith: 10_000_000, cap: 300) == 300)
        // 60/60 at 0.10: 0.15 buys one minute, not 90 s.
        #expect(Self.rate("0.10", first: 60, next: 60).maximumSeconds(affordableWith: 150_000, cap: 3600) == 60)
        // The connection fee comes first.
        #expect(Self.rate("0.06", fee: "0.05").maximumSeconds(affordableWith: 50_000, cap: 300) == 0)
        #expect(Self.rate("0.06", fee: "0.05").maximumSeconds(affordableWith: 60_000, cap: 300) == 10)
        #expect(Self.rate("0.06").maximumSeconds(affordableWith: 0, cap: 300) == 0)
        #expect(Self.rate("0.06").maximumSeconds(affordableWith: -5, cap: 300) == 0)
        // Whatever it answers, the next second would not be affordable.
        for available in stride(from: Int64(1_000), to: 2_000_000, by: 37_777) {
            for rate in [Self.rate("0.06"), Self.rate("0.12", fee: "0.01", first: 30, next: 6, minimum: 10), Self.rate("0.10", first: 60, next: 60)] {
                let seconds = rate.maximumSeconds(affordableWith: available, cap: 7200)
                if seconds > 0 { #expect(rate.cost(seconds: seconds) <= available) }
                if seconds < 7200 { #expect(rate.cost(seconds: seconds + 1) > available) }
            }
        }
    }

    static func book(_ csv: String, timeZone: String = "UTC") throws -> RateBook {
        RateBook(try BillingCSV.rates(.rates, csv), timeZone: TimeZone(identifier: timeZone)!)
    }

    static func at(_ text: String) -> Date { try! Date(text, strategy: .iso8601) }

    @Test func theLongestPrefixInForceAtTheCallsTimeIsTheRate() throws {
        let book = try Self.book("""
            plan,prefix,rate,days,hours,effective_from,effective_to
            retail,34,0.02,,,,
            retail,346,0.09,,,,
            retail,346,0.05,sat;sun,,,
            retail,3491,0.01,mon-fri,08:00-18:00,,
            retail,44,0.03,,,,2027-01-01
            retail,44,0.025,,,2027-01-01,
            wholesale,34,0.005,,,,
            """)
        // Tuesday 2026-12-01.
        #expect(book.rate(owner: "retail", number: "34611111111", at: Self.at("2026-12-01T10:00:00Z"))?.perMinuteMicros == 90_000)
        // Saturday: the weekend variant of 346 beats its all-week rate.
        #expect(book.rate(owner: "retail", number: "34611111111", at: Self.at("2026-12-05T10:00:00Z"))?.perMinuteMicros == 50_000)
        #expect(book.rate(owner: "retail", number: "34911111111", at: Self.at("2026-12-01T10:00:00Z"))?.perMinuteMicros == 10_000)
        // Outside its hours the Madrid rate gives way to the Spain one.
        #expect(book.rate(owner: "retail", number: "34911111111", at: Self.at("2026-12-01T19:00:00Z"))?.perMinuteMicros == 20_000)
        #expect(book.rate(owner: "retail", number: "442079460018", at: Self.at("2026-12-31T23:59:59Z"))?.perMinuteMicros == 30_000)
        #expect(book.rate(owner: "retail", number: "442079460018", at: Self.at("2027-01-01T00:00:00Z"))?.perMinuteMicros == 25_000)
        #expect(book.rate(owner: "wholesale", number: "34911111111", at: Self.at("2026-12-01T10:00:00Z"))?.perMinuteMicros == 5_000)
        #expect(book.rate(owner: "retail", number: "33123456789", at: Self.at("2026-12-01T10:00:00Z")) == nil)
        #expect(book.rate(owner: "nobody", number: "34911111111", at: Self.at("2026-12-01T10:00:00Z")) == nil)
    }

    @Test func weekendRatesFollowTheBillingTimeZone() throws {
        let csv = "plan,prefix,rate,days\nretail,1,0.02,\nretail,1,0.01,sat;sun\n"
        // 2026-12-04 23:30 UTC is a Friday in UTC and a Saturday in Tokyo.
        let friday = Self.at("2026-12-04T23:30:00Z")
        #expect(try Self.book(csv).rate(owner: "retail", number: "12025550100", at: friday)?.perMinuteMicros == 20_000)
        #expect(try Self.book(csv, timeZone: "Asia/Tokyo").rate(owner: "retail", number: "12025550100", at: friday)?.perMinuteMicros == 10_000)
        // 2026-12-06 23:30 UTC is Sunday in UTC and New York, Monday in Tokyo.
        let monday = Self.at("2026-12-06T23:30:00Z")
        #expect(try Self.book(csv).rate(owner: "retail", number: "12025550100", at: monday)?.perMinuteMicros == 10_000)
        #expect(try Self.book(csv, timeZone: "Asia/Tokyo").rate(owner: "retail", number: "12025550100", at: monday)?.perMinuteMicros == 20_000)
        #expect(try Self.book(csv, timeZone: "America/New_York").rate(owner: "retail", number: "12025550100", at: monday)?.perMinuteMicros == 10_000)
    }

    @Test(arguments: [
        ("plan,prefix\nretail,34\n", "line 1, column 'rate': this column is required"),
        ("plan,prefix,rate\nretail,34,-0.01\n", "line 2, column 'rate'"),
        ("plan,prefix,rate\nretail,34,0.0000001\n", "line 2, column 'rate'"),
        ("plan,prefix,rate,first_increment\nretail,34,0.01,0\n", "line 2, column 'first_increment'"),
        ("plan,prefix,rate,effective_from,effective_to\nretail,34,0.01,2027-01-01,2026-01-01\n", "line 2, column 'effective_to': must be after"),
        ("plan,prefix,rate,effective_from\nretail,34,0.01,tomorrow\n", "line 2, column 'effective_from'"),
        ("plan,prefix,rate,hours\nretail,34,0.01,9-5\n", "line 2, column 'hours'"),
    ])
    func aBadRateFileIsRefusedWithItsLineAndColumn(text: String, expected: String) {
        #expect { try BillingCSV.rates(.rates, text) } throws: { "\($0)".hasPrefix(expected) }
    }

    @Test func customersAreReadWithTheirLimitsAndCheckedForConsistency() throws {
        let (customers, _) = try BillingCSV.customers("""
            customer,type,currency,credit_limit,rate_plan,max_calls,max_spend_per_hour,max_high_cost_calls_per_minute,high_cost_rate
            acme,prepaid,eur,,retail,10,50,3,0.5
            globex,postpaid,USD,1000,wholesale,,,,
            """)
        #expect(customers.count == 2)
        #expect(customers[0].currency == "EUR" && customers[0].maximumCalls == 10 && customers[0].maximumSpendPerHourMicros == 50_000_000)
        #expect(customers[0].maximumHighCostCallsPerMinute == 3 && customers[0].highCostRateMicros == 500_000)
        #expect(customers[1].kind == .postpaid && customers[1].creditLimitMicros == 1_000_000_000 && customers[1].ratePlan == "wholesale")
        #expect(throws: CatalogError.self) { try BillingCSV.customers("customer,type,credit_limit\nacme,prepaid,10\n") }
        #expect(throws: CatalogError.self) { try BillingCSV.customers("customer,type\nacme,monthly\n") }
        #expect(throws: CatalogError.self) { try BillingCSV.customers("customer,type\nacme,prepaid\nacme,postpaid\n") }
        #expect(throws: CatalogError.self) { try BillingCSV.customers("customer,type,currency\nacme,prepaid,euro\n") }
    }

    @Test func ratesExportToCSVThatReadsBackTheSame() throws {
        let rates = try BillingCSV.rates(.carrierRates, """
            carrier,prefix,rate,connection_fee,first_increment,next_increment,minimum_seconds,days,hours,effective_from,effective_to
            alpha,34,0.004,0.01,30,6,10,mon-fri,08:00-18:00,2026-12-01T00:00:00Z,2027-06-01T00:00:00Z
            beta,,1.5,,,,,,,,
            """)
        #expect(try BillingCSV.rates(.carrierRates, BillingCSV.render(rates: rates, kind: .carrierRates)) == rates)
    }
}
