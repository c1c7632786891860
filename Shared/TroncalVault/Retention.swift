public import Foundation

/// Grandfather-father-son retention with the meaning of restic's `forget --keep-daily/--keep-weekly/--keep-monthly`:
///
/// Backups are taken newest first. For each rule, a backup is kept if it is the newest of its period (day, ISO week,
/// month, in `timeZone`) and fewer than the rule's count of periods have been kept yet; a backup kept by one rule is
/// kept, and counts for every rule whose period it is the newest of. Periods without a backup do not count (seven
/// daily means the last seven days that *have* backups). The newest backup is always kept (even with every count at
/// zero), so that pruning never empties a source. Times are the backup service's own clock at writing, never a
/// source's.
///
/// Edge cases: two backups on one day keep only the newer; a weekly one is the newest of its Monday-to-Sunday week
/// (ISO 8601); a month with no backup at all is skipped, not counted; a backup older than every kept period goes.
public struct RetentionPolicy: Sendable, Hashable, Codable {
    public var daily: Int
    public var weekly: Int
    public var monthly: Int

    public init(daily: Int = 7, weekly: Int = 4, monthly: Int = 12) {
        self.daily = daily
        self.weekly = weekly
        self.monthly = monthly
    }

    /// The backups to keep, of `backups` (id and time); the rest may be pruned.
    public func keep(_ backups: [(id: String, at: Date)], timeZone: TimeZone = TimeZone(identifier: "UTC")!) -> Set<String> {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = timeZone
        let newestFirst = backups.sorted { ($0.at, $0.id) > ($1.at, $1.id) }
        var kept = Set<String>()
        if let newest = newestFirst.first { kept.insert(newest.id) }
        let rules: [(count: Int, period: (Date) -> String)] = [
            (daily, { date in let c = calendar.dateComponents([.year, .month, .day], from: date); return "\(c.year!)-\(c.month!)-\(c.day!)" }),
            (weekly, { date in let c = calendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: date); return "\(c.yearForWeekOfYear!)-W\(c.weekOfYear!)" }),
            (monthly, { date in let c = calendar.dateComponents([.year, .month], from: date); return "\(c.year!)-\(c.month!)" }),
        ]
        for rule in rules where rule.count > 0 {
            var lastPeriod: String?
            var used = 0
            for backup in newestFirst {
                let period = rule.period(backup.at)
                guard period != lastPeriod else { continue }
                lastPeriod = period
                kept.insert(backup.id)
                used += 1
                if used == rule.count { break }
            }
        }
        return kept
    }
}
