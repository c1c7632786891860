import Foundation
import Testing
import TroncalVault

/// Grandfather-father-son retention, restic's `forget --keep-daily 7 --keep-weekly 4 --keep-monthly 12` meaning.
@Suite struct RetentionTests {
    static let utc = TimeZone(identifier: "UTC")!
    static func day(_ text: String, hour: Int = 2) -> Date {
        try! Date("\(text)T\(String(format: "%02d", hour)):00:00Z", strategy: .iso8601)
    }
    static func name(_ date: Date) -> String { date.formatted(.iso8601.year().month().day()) }

    @Test func fourHundredDaysOfDailyBackupsKeepTheLastSevenDaysFourWeeksAndTwelveMonths() {
        let first = Self.day("2025-11-01")
        let backups = (0..<400).map { offset -> (id: String, at: Date) in
            let at = first.addingTimeInterval(Double(offset) * 86_400)
            return (Self.name(at), at)
        }
        let kept = RetentionPolicy(daily: 7, weekly: 4, monthly: 12).keep(backups, timeZone: Self.utc)
        // Worked out by hand from the rule: the last day is 2026-12-05 (a Saturday).
        let expected: Set<String> = [
            // daily: the last seven days
            "2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04", "2026-12-05",
            // weekly: this week's newest (2026-12-05) and the Sundays ending the three weeks before
            "2026-11-15", "2026-11-22",
            // monthly: this month's newest (2026-12-05) and the last day of the eleven months before
            "2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31", "2026-06-30", "2026-07-31", "2026-08-31",
            "2026-09-30", "2026-10-31",
        ]
        let printed = kept.sorted().joined(separator: " ")
        print("kept of 400 daily backups (7 daily, 4 weekly, 12 monthly): \(printed)")
        #expect(kept == expected, "kept: \(printed)")
        #expect(kept.count == 19)
    }

    @Test func periodsWithoutABackupDoNotCountTwoOnADayKeepTheNewerAndTheNewestIsAlwaysKept() {
        let backups: [(id: String, at: Date)] = [
            ("a", Self.day("2026-12-01", hour: 1)), ("b", Self.day("2026-12-01", hour: 23)),
            // ten days without backups
            ("c", Self.day("2026-11-20")), ("d", Self.day("2026-11-19")), ("e", Self.day("2026-11-18")),
        ]
        #expect(RetentionPolicy(daily: 3, weekly: 0, monthly: 0).keep(backups, timeZone: Self.utc) == ["b", "c", "d"])
        #expect(RetentionPolicy(daily: 0, weekly: 0, monthly: 0).keep(backups, timeZone: Self.utc) == ["b"])
        #expect(RetentionPolicy().keep([], timeZone: Self.utc).isEmpty)
    }
}
