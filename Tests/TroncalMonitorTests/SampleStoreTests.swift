import Foundation
import Testing
import TestSupport
import TroncalMonitor
import TroncalProtocol
import TroncalStore

/// Collected series kept raw, rolled up by minute and hour, and dropped by whole days past the retention, on SQLite
/// and PostgreSQL.
@Suite("Monitor: samples and rollups")
struct SampleStoreTests {
    // A day boundary, so that the day buckets are easy to reason about.
    let t0 = Date(timeIntervalSince1970: 1_800_057_600)
    func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    @Test(arguments: TestBackend.allCases)
    func samplesRollUpByMinuteAndHourAndOldDaysGoInBulk(backend: TestBackend) async throws {
        try await withMigratedDatabase(backend, service: "monitor", migrations: MonitorStore.migrations) { store in
            let samples = SampleStore(store: store)
            let cpu = MetricSample("troncal_host_cpu_percent", ["host": "h1"], 0)
            // Two hours of a reading every 10 s: the value is the minute number, plus 0, 1, … 5 within the minute.
            for step in 0..<720 {
                let minute = Double(step / 6)
                var sample = cpu
                sample.value = minute + Double(step % 6)
                try await samples.ingest([sample, MetricSample("nan", [:], .nan)], at: at(Double(step) * 10))
            }
            try await samples.rollUp(until: at(7200))
            // Again: nothing changes (idempotent).
            try await samples.rollUp(until: at(7200))
            let minutes = try await samples.points(series: cpu.seriesKey, from: at(0), to: at(7200), resolution: "minute")
            #expect(minutes.count == 120)
            #expect(minutes[3] == SeriesPoint(at: at(180), count: 6, average: 3 + 2.5, minimum: 3, maximum: 8))
            let hours = try await samples.points(series: cpu.seriesKey, from: at(0), to: at(7200), resolution: "hour")
            #expect(hours.count == 2)
            #expect(hours[1].count == 360)
            #expect(hours[1].minimum == 60)
            #expect(hours[1].maximum == 124)
            #expect(abs(hours[0].average - (29.5 + 2.5)) < 1e-9)
            #expect(try await samples.points(series: cpu.seriesKey, from: at(0), to: at(60), resolution: "raw").count == 6)

            // Three days later with 48 h of raw samples kept: the first day's raw samples go, the rollups stay.
            let removed = try await samples.prune(SampleRetention(rawHours: 48, minuteDays: 31, hourMonths: 13), at: at(3 * 86_400 + 10))
            #expect(removed == 720)
            #expect(try await samples.points(series: cpu.seriesKey, from: at(0), to: at(7200), resolution: "raw").isEmpty)
            #expect(try await samples.points(series: cpu.seriesKey, from: at(0), to: at(7200), resolution: "minute").count == 120)
            // 32 days later the minute rollups go too; the hours stay for 13 months.
            _ = try await samples.prune(SampleRetention(rawHours: 48, minuteDays: 31, hourMonths: 13), at: at(33 * 86_400))
            #expect(try await samples.points(series: cpu.seriesKey, from: at(0), to: at(7200), resolution: "minute").isEmpty)
            #expect(try await samples.points(series: cpu.seriesKey, from: at(0), to: at(7200), resolution: "hour").count == 2)
        }
    }
}
