public import Foundation
public import TroncalCatalog

/// One price for calls to numbers starting with `prefix`: per minute, a connection fee, billing increments and a
/// minimum, valid at some days and hours and between effective dates. Amounts are millionths of the currency unit.
public struct Rate: Sendable, Hashable {
    /// The rate plan (sell rates) or the carrier (buy rates).
    public var owner: String
    public var prefix: String
    public var perMinuteMicros: Int64
    public var connectionFeeMicros: Int64 = 0
    /// Seconds billed for the first increment (a call of 1 s to `firstIncrement` s pays this many).
    public var firstIncrement: Int = 1
    /// Seconds of each further increment.
    public var nextIncrement: Int = 1
    /// Seconds billed at least, for an answered call.
    public var minimumSeconds: Int = 0
    public var schedule: Schedule = .always
    /// In force from this instant (inclusive); nil: always.
    public var effectiveFrom: Date?
    /// In force until this instant (exclusive); nil: no end.
    public var effectiveTo: Date?

    public init(owner: String, prefix: String, perMinuteMicros: Int64) {
        self.owner = owner
        self.prefix = prefix
        self.perMinuteMicros = perMinuteMicros
    }

    /// Seconds billed for a call that lasted `durationMilliseconds` (answer to end): 0 when not answered; else the
    /// started seconds, at least `minimumSeconds`, rounded up to the first increment and then to whole next increments.
    public func billedSeconds(durationMilliseconds: Int) -> Int {
        guard durationMilliseconds > 0 else { return 0 }
        let seconds = max((durationMilliseconds + 999) / 1000, minimumSeconds)
        return billedSeconds(seconds: seconds)
    }

    /// The increments applied to whole seconds.
    public func billedSeconds(seconds: Int) -> Int {
        guard seconds > 0 else { return 0 }
        let seconds = max(seconds, minimumSeconds)
        let first = max(1, firstIncrement)
        let next = max(1, nextIncrement)
        if seconds <= first { return first }
        return first + (seconds - first + next - 1) / next * next
    }

    /// The price of `billedSeconds`: the connection fee plus the per-minute price for those seconds, rounded up to a
    /// whole millionth. Nothing for 0 seconds (an unanswered call pays no connection fee).
    public func cost(billedSeconds: Int) -> Int64 {
        guard billedSeconds > 0 else { return 0 }
        let product = perMinuteMicros.multipliedReportingOverflow(by: Int64(billedSeconds))
        let timePart = product.overflow ? Int64.max / 2 : (product.partialValue + 59) / 60
        return connectionFeeMicros + timePart
    }

    /// The price of a call of `seconds` whole seconds.
    public func cost(seconds: Int) -> Int64 { cost(billedSeconds: billedSeconds(seconds: seconds)) }

    /// The longest call (whole seconds, at most `cap`) whose price fits in `available`; 0 when not even one second does.
    public func maximumSeconds(affordableWith available: Int64, cap: Int) -> Int {
        guard available > 0, cap > 0, cost(seconds: 1) <= available else { return 0 }
        if cost(seconds: cap) <= available { return cap }
        var low = 1  // affordable
        var high = cap  // not affordable
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if cost(seconds: middle) <= available { low = middle } else { high = middle }
        }
        return low
    }

    /// Whether the rate is in force at `date`; `moment` gives its weekday (0 = Monday) and minute of the day.
    func applies(at date: Date, moment: () -> (weekday: Int, minute: Int)) -> Bool {
        if let effectiveFrom, date < effectiveFrom { return false }
        if let effectiveTo, date >= effectiveTo { return false }
        if schedule.isAlways { return true }
        let (weekday, minute) = moment()
        return schedule.contains(weekday: weekday, minute: minute)
    }
}

/// Rates by owner and prefix, looked up by the longest prefix that has a rate in force at the call's time (a prefix
/// whose rates are all for other times or dates gives way to a shorter one). Among a prefix's rates in force, one with
/// days or hours beats one without; otherwise the first in the file wins.
public struct RateBook: Sendable {
    private var byOwner: [String: [String: [Rate]]] = [:]
    public private(set) var count = 0
    let timeZone: TimeZone

    public init(_ rates: [Rate], timeZone: TimeZone) {
        self.timeZone = timeZone
        for rate in rates { byOwner[rate.owner, default: [:]][rate.prefix, default: []].append(rate) }
        count = rates.count
    }

    /// The rate of `owner` for `number` (E.164 digits) at `date`.
    public func rate(owner: String, number: String, at date: Date) -> Rate? {
        guard let prefixes = byOwner[owner] else { return nil }
        // The weekday and minute cost a calendar computation: only when a rate with days or hours is met.
        var moment: (weekday: Int, minute: Int)?
        let timeZone = timeZone
        func now() -> (weekday: Int, minute: Int) {
            if let moment { return moment }
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = timeZone
            let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
            let computed = (((parts.weekday ?? 2) + 5) % 7, (parts.hour ?? 0) * 60 + (parts.minute ?? 0))
            moment = computed
            return computed
        }
        var length = min(number.count, 15)
        while length >= 0 {
            if let rates = prefixes[String(number.prefix(length))] {
                // A rate for some days or hours (a weekend, a peak) beats the prefix's all-time rate when both are in force.
                let inForce = rates.filter { $0.applies(at: date, moment: now) }
                if let rate = inForce.first(where: { !$0.schedule.isAlways }) ?? inForce.first { return rate }
            }
            length -= 1
        }
        return nil
    }
}
