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

    package static let dayNames = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

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

    package init(days: UInt8, startMinute: Int, endMinute: Int, daysText: String, hoursText: String) {
        self.days = days
        self.startMinute = startMinute
        self.endMinute = endMinute
        self.daysText = daysText
        self.hoursText = hoursText
    }

    package static func minute(_ text: Substring) -> Int? {
        let parts = String(text).trimmingSpaces.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let hour = Int(parts[0]), let minute = Int(parts[1]),
            parts[0].allSatisfy(\.isASCIIDigit), parts[1].allSatisfy(\.isASCIIDigit), minute < 60, hour < 24 || (hour == 24 && minute == 0)
        else { return nil }
        return hour * 60 + minute
    }

    public var description: String { isAlways ? "always" : "\(daysText.isEmpty ? "every day" : daysText) \(hoursText.isEmpty ? "all day" : hoursText)" }
}

extension Character {
    package var isASCIIDigit: Bool { isASCII && isNumber }
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

/// Signed amounts (balances, adjustments): `-12.5`, `3`.
public enum SignedAmount {
    public static func parse(_ text: String) -> Int64? {
        let trimmed = text.trimmingSpaces
        if trimmed.hasPrefix("-") { return MicroAmount.parse(String(trimmed.dropFirst())).map { -$0 } }
        if trimmed.hasPrefix("+") { return MicroAmount.parse(String(trimmed.dropFirst())) }
        return MicroAmount.parse(trimmed)
    }

    public static func format(_ micros: Int64) -> String {
        micros < 0 ? "-" + MicroAmount.format(-micros) : MicroAmount.format(micros)
    }
}
