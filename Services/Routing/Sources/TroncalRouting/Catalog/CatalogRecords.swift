public import TroncalProtocol

/// One carrier trunk (a row of the `carriers` catalog): where to send calls, how to shape the number, and its
/// capacity.
public struct TrunkRecord: Sendable, Hashable {
    public var carrier: String
    /// Unique within the carrier; empty in the file means the carrier's name.
    public var trunk: String
    public var host: String
    public var port: Int = 5060
    public var transport: String = "udp"
    public var stripDigits: Int = 0
    public var addPrefix: String = ""
    /// Calls in progress allowed on the trunk; 0: no limit.
    public var maximumCalls: Int = 0
    /// New calls per second allowed on the trunk; 0: no limit.
    public var maximumCallsPerSecond: Int = 0
    public var probe: Bool = true
    /// 0: `routing.setupTimeoutMilliseconds`.
    public var setupTimeoutMilliseconds: Int = 0

    public init(carrier: String, trunk: String = "", host: String, port: Int = 5060, transport: String = "udp") {
        self.carrier = carrier
        self.trunk = trunk.isEmpty ? carrier : trunk
        self.host = host
        self.port = port
        self.transport = transport
    }
}

/// How a route orders its carrier choices.
public enum RouteStrategy: String, Sendable, Hashable, CaseIterable, Codable {
    /// Least cost first: the route row's `cost`, else the carrier's rate for the number (the `rates` catalog);
    /// choices with neither come last. Ties by priority, then file order.
    case cost
    /// Lowest `priority` first; within one priority, a weighted random order (by `weight`), as DNS SRV does.
    case priority
    /// A weighted random order over all choices (load share by `weight`).
    case weight
    /// As listed (the configured routes of `site.json`).
    case ordered
}

/// A route plan: the strategy of its routes and the customers on it. Customers on no plan use `default`.
public struct PlanRecord: Sendable, Hashable {
    public static let defaultPlan = "default"
    public var plan: String
    public var strategy: RouteStrategy
    public var customers: [String]

    public init(plan: String, strategy: RouteStrategy, customers: [String] = []) {
        self.plan = plan
        self.strategy = strategy
        self.customers = customers
    }
}

/// One row of the `routes` catalog: in `plan`, for numbers starting with `prefix`, a carrier to choose (or a block),
/// valid at the times of `schedule`.
public struct RouteRecord: Sendable, Hashable {
    public var plan: String = PlanRecord.defaultPlan
    public var prefix: String
    /// Empty only for a block.
    public var carrier: String = ""
    /// Empty: every trunk of the carrier, in the order of the `carriers` catalog.
    public var trunk: String = ""
    public var priority: Int = 1
    public var weight: Int = 1
    /// A fixed cost for least-cost ordering, in millionths of the currency unit per minute; nil: the rates catalog.
    public var costMicros: Int64?
    public var schedule: Schedule = .always
    public var blocked: Bool = false

    public init(plan: String = PlanRecord.defaultPlan, prefix: String, carrier: String = "", blocked: Bool = false) {
        self.plan = plan
        self.prefix = prefix
        self.carrier = carrier
        self.blocked = blocked
    }
}

/// A carrier's buy rate for a destination prefix, per minute, in millionths of the currency unit.
public struct RateRecord: Sendable, Hashable {
    public var carrier: String
    public var prefix: String
    public var rateMicros: Int64

    public init(carrier: String, prefix: String, rateMicros: Int64) {
        self.carrier = carrier
        self.prefix = prefix
        self.rateMicros = rateMicros
    }
}

/// One of the operator's numbers and the customer trunk (or PBX) that takes its calls.
public struct DIDRecord: Sendable, Hashable {
    public var number: String
    public var customer: String
    public var host: String
    public var port: Int = 5060
    public var transport: String = "udp"

    public init(number: String, customer: String, host: String, port: Int = 5060, transport: String = "udp") {
        self.number = number
        self.customer = customer
        self.host = host
        self.port = port
        self.transport = transport
    }
}

/// Everything the routing core routes from besides `site.json`: the five catalogs, each replaced whole by an import.
public struct RoutingCatalog: Sendable, Hashable {
    public var trunks: [TrunkRecord] = []
    public var plans: [PlanRecord] = []
    public var routes: [RouteRecord] = []
    public var rates: [RateRecord] = []
    public var dids: [DIDRecord] = []
    /// Per kind, the generation of the import it came from (0: never imported).
    public var generations: [RoutingCatalogKind: Int64] = [:]

    public init() {}

    public func rows(of kind: RoutingCatalogKind) -> Int {
        switch kind {
        case .carriers: trunks.count
        case .plans: plans.count
        case .routes: routes.count
        case .rates: rates.count
        case .dids: dids.count
        }
    }
}

/// When a route row applies: days of the week and a time window, in the site's time zone (`routing.timeZone`).
public struct Schedule: Sendable, Hashable, CustomStringConvertible {
    /// Bit 0 Monday … bit 6 Sunday.
    public var days: UInt8
    /// Minutes after midnight, start inclusive, end exclusive; start > end wraps past midnight (22:00-06:00).
    public var startMinute: Int
    public var endMinute: Int
    /// The text it was read from ("" for always), written back on export.
    public var daysText: String
    public var hoursText: String

    public static let always = Schedule(days: 0x7F, startMinute: 0, endMinute: 1440, daysText: "", hoursText: "")

    static let dayNames = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    public var isAlways: Bool { days == 0x7F && startMinute == 0 && endMinute == 1440 }

    /// Whether the moment (weekday 0 = Monday, minute of the day) is in the schedule. A window that wraps past
    /// midnight belongs to the day it starts on.
    public func contains(weekday: Int, minute: Int) -> Bool {
        if startMinute <= endMinute {
            return days & (1 << weekday) != 0 && minute >= startMinute && minute < endMinute
        }
        if minute >= startMinute { return days & (1 << weekday) != 0 }
        if minute < endMinute { return days & (1 << ((weekday + 6) % 7)) != 0 }
        return false
    }

    /// `days`: empty (every day), or `;`-separated day names and ranges (`mon-fri`, `sat;sun`, `mon;wed-fri`).
    /// `hours`: empty (all day), or `HH:MM-HH:MM` (`08:00-18:00`, `22:00-06:00`; `24:00` ends at midnight).
    public init(days daysText: String, hours hoursText: String) throws(CatalogError) {
        var days: UInt8 = 0
        let daysTrimmed = daysText.trimmingSpaces.lowercased()
        if daysTrimmed.isEmpty {
            days = 0x7F
        } else {
            for token in daysTrimmed.split(separator: ";", omittingEmptySubsequences: false) {
                let parts = token.split(separator: "-", omittingEmptySubsequences: false).map { String($0).trimmingSpaces }
                guard (1...2).contains(parts.count), let first = Self.dayNames.firstIndex(of: parts[0]),
                    let last = Self.dayNames.firstIndex(of: parts.last ?? "")
                else {
                    throw CatalogError(column: "days", "\(String(token).quotedForError) is not a day (mon … sun) or a range of days (mon-fri)")
                }
                var day = first
                while true {
                    days |= 1 << day
                    if day == last { break }
                    day = (day + 1) % 7
                }
            }
        }
        var start = 0
        var end = 1440
        let hoursTrimmed = hoursText.trimmingSpaces
        if !hoursTrimmed.isEmpty {
            let parts = hoursTrimmed.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let from = Self.minute(parts[0]), let to = Self.minute(parts[1]), from != to, from < 1440 else {
                throw CatalogError(column: "hours", "\(hoursTrimmed.quotedForError) is not a window HH:MM-HH:MM of two different times")
            }
            start = from
            end = to == 0 ? 1440 : to
        }
        self.init(days: days, startMinute: start, endMinute: end, daysText: daysTrimmed, hoursText: hoursTrimmed)
    }

    init(days: UInt8, startMinute: Int, endMinute: Int, daysText: String, hoursText: String) {
        self.days = days
        self.startMinute = startMinute
        self.endMinute = endMinute
        self.daysText = daysText
        self.hoursText = hoursText
    }

    static func minute(_ text: Substring) -> Int? {
        let parts = String(text).trimmingSpaces.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let hour = Int(parts[0]), let minute = Int(parts[1]),
            parts[0].allSatisfy(\.isASCIIDigit), parts[1].allSatisfy(\.isASCIIDigit), minute < 60, hour < 24 || (hour == 24 && minute == 0)
        else { return nil }
        return hour * 60 + minute
    }

    public var description: String { isAlways ? "always" : "\(daysText.isEmpty ? "every day" : daysText) \(hoursText.isEmpty ? "all day" : hoursText)" }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

/// Amounts in millionths of the currency unit, read from and written as exact decimals: money is never a Double.
public enum MicroAmount {
    /// `0.0125` → 12500; up to 6 decimals, no sign, no exponent.
    public static func parse(_ text: String) -> Int64? {
        let trimmed = text.trimmingSpaces
        let parts = trimmed.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !trimmed.isEmpty, parts.allSatisfy({ $0.allSatisfy(\.isASCIIDigit) }) else { return nil }
        let whole = parts[0]
        let fraction = parts.count == 2 ? parts[1] : ""
        guard !(whole.isEmpty && fraction.isEmpty), fraction.count <= 6, whole.count <= 12 else { return nil }
        let wholeValue = whole.isEmpty ? 0 : Int64(whole) ?? 0
        let padded = fraction + String(repeating: "0", count: 6 - fraction.count)
        return wholeValue * 1_000_000 + (Int64(padded) ?? 0)
    }

    /// 12500 → `0.0125`; 2000000 → `2`.
    public static func format(_ micros: Int64) -> String {
        let whole = micros / 1_000_000
        var fraction = String(micros % 1_000_000)
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return fraction.isEmpty ? "\(whole)" : "\(whole).\(fraction)"
    }
}
