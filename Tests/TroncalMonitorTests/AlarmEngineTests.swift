import Foundation
import Testing
import TroncalMonitor
import TroncalProtocol

@Suite("Monitor: alarm rules and escalation")
struct AlarmEngineTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    let cpu = AlarmRule(
        name: "CPU", category: .server, metric: "cpu", warning: 60, critical: 80, clear: 50, forSeconds: 300,
        summary: "{{host}} at {{value}} %", action: "act")

    func cpuSample(_ value: Double, host: String = "h1") -> [MetricSample] { [MetricSample("cpu", ["host": host], value)] }

    /// Feeds one reading a minute and returns the events, as "minute:event:severity".
    func run(_ engine: inout AlarmEngine, _ values: [Double]) -> [String] {
        var events: [String] = []
        for (minute, value) in values.enumerated() {
            for change in engine.evaluate(cpuSample(value), at: at(Double(minute) * 60)) {
                events.append("\(minute):\(change.event):\(change.alarm.severity.rawValue)")
            }
        }
        return events
    }

    @Test(arguments: [
        // Short spikes never last the five minutes: nothing fires.
        ([70, 70, 40, 70, 70, 70, 40.0], [String]()),
        // Five minutes above 60 fires a warning at minute 5.
        ([70, 70, 70, 70, 70, 70, 70.0], ["5:fired:warning"]),
        // Above 80 the severity rises; back at 55 it stays (hysteresis: clear is 50); at 45 it resolves.
        ([70, 70, 70, 70, 70, 70, 90, 55, 55, 45.0], ["5:fired:warning", "6:severity warning → critical:critical", "7:severity critical → warning:warning", "9:resolved:warning"]),
        // Critical from the start fires critical after the for-duration.
        ([95, 95, 95, 95, 95, 95.0], ["5:fired:critical"]),
    ])
    func thresholdsForDurationAndHysteresis(values: [Double], expected: [String]) {
        var engine = AlarmEngine(rules: [cpu], policy: EscalationPolicy(level2Minutes: 1000, level3Minutes: 1000))
        #expect(run(&engine, values) == expected)
    }

    @Test func aBelowRuleFiresUnderItsThresholdAndClearsAboveItsClearValue() {
        let mos = AlarmRule(
            name: "MOS", category: .voice, metric: "mos", comparison: .below, warning: 3.6, clear: 3.8, summary: "{{carrier}} {{value}}", action: "")
        var engine = AlarmEngine(rules: [mos])
        let sample = { (value: Double) in [MetricSample("mos", ["carrier": "c1"], value)] }
        #expect(engine.evaluate(sample(3.9), at: at(0)).isEmpty)
        let fired = engine.evaluate(sample(3.2), at: at(60))
        #expect(fired.map(\.event) == ["fired"])
        #expect(fired.first?.alarm.summary == "c1 3.2")
        #expect(engine.evaluate(sample(3.7), at: at(120)).isEmpty)
        #expect(engine.evaluate(sample(3.85), at: at(180)).map(\.event) == ["resolved"])
    }

    @Test func unacknowledgedAlarmsEscalateAtTheConfiguredMinutesAndAnAckStopsThem() {
        var engine = AlarmEngine(rules: [cpu], policy: EscalationPolicy(level2Minutes: 15, level3Minutes: 30))
        var events: [String] = []
        for minute in 0...40 {
            for change in engine.evaluate(cpuSample(95), at: at(Double(minute) * 60)) { events.append("\(minute):\(change.event)") }
        }
        // Fired at minute 5 (for 300 s); level 2 at 5 + 15; the SOC at 5 + 30.
        #expect(events == ["5:fired", "20:escalated noc-1 → noc-2", "35:escalated noc-2 → soc"])

        var acked = AlarmEngine(rules: [cpu], policy: EscalationPolicy(level2Minutes: 15, level3Minutes: 30))
        var ackedEvents: [String] = []
        for minute in 0...40 {
            for change in acked.evaluate(cpuSample(95), at: at(Double(minute) * 60)) { ackedEvents.append("\(minute):\(change.event)") }
            if minute == 10, let fingerprint = acked.active.keys.first {
                #expect(acked.acknowledge(fingerprint, by: "ana", at: at(600))?.acknowledgedBy == "ana")
            }
        }
        #expect(ackedEvents == ["5:fired"])
    }

    @Test func aWarningGoesToNOCLevel2ButNeverToTheSOCAndSecurityStartsAtTheSOC() {
        var engine = AlarmEngine(rules: [cpu], policy: EscalationPolicy(level2Minutes: 1, level3Minutes: 2))
        var levels: [String] = []
        for minute in 0...12 {
            for change in engine.evaluate(cpuSample(70), at: at(Double(minute) * 60)) { levels.append(change.alarm.level.rawValue) }
        }
        #expect(levels == ["noc-1", "noc-2"])

        let bans = AlarmRule(
            name: "Bans", category: .security, metric: "bans_total", function: .increasePerMinute, warning: 10, summary: "", action: "")
        var security = AlarmEngine(rules: [bans])
        #expect(security.evaluate([MetricSample("bans_total", ["instance": "sbc-1"], 100)], at: at(0)).isEmpty, "a first reading has no rate")
        #expect(security.evaluate([MetricSample("bans_total", ["instance": "sbc-1"], 105)], at: at(60)).isEmpty, "5 a minute")
        let storm = security.evaluate([MetricSample("bans_total", ["instance": "sbc-1"], 145)], at: at(90))
        #expect(storm.map(\.event) == ["fired"])
        #expect(storm.first?.alarm.level == .soc)
        #expect(storm.first?.alarm.value == 80)
        // A counter reset (the SBC restarted) counts from zero, not as a negative rate.
        #expect(security.evaluate([MetricSample("bans_total", ["instance": "sbc-1"], 0)], at: at(150)).map(\.event) == ["resolved"])
    }

    @Test func aCounterThatFirstAppearsOnAnInstanceAlreadyReportingCountsFromZero() {
        // Counters are exported from their first increment: the first ban makes the series appear, at 1 or more.
        let bans = AlarmRule(
            name: "Bans", category: .security, metric: "bans_total", function: .increasePerMinute, warning: 0.5, summary: "", action: "")
        var engine = AlarmEngine(rules: [bans])
        let up = MetricSample("up", ["instance": "sbc-1"], 1)
        #expect(engine.evaluate([up], at: at(0)).isEmpty)
        let fired = engine.evaluate([up, MetricSample("bans_total", ["instance": "sbc-1", "reason": "flood"], 1)], at: at(10))
        #expect(fired.map(\.event) == ["fired"])
        #expect(fired.first?.alarm.value == 6)
        // A round where the instance did not answer, then its counters again: they are compared with their last
        // reading, not counted from zero (20 bans in total would read as a storm).
        let down = MetricSample("troncal_instance_up", ["instance": "sbc-3"], 0)
        let upAgain = MetricSample("troncal_instance_up", ["instance": "sbc-3"], 1)
        var quiet = AlarmEngine(rules: [bans])
        _ = quiet.evaluate([upAgain, MetricSample("bans_total", ["instance": "sbc-3"], 20)], at: at(0))
        _ = quiet.evaluate([down], at: at(10))
        #expect(quiet.evaluate([upAgain, MetricSample("bans_total", ["instance": "sbc-3"], 20)], at: at(20)).isEmpty)
        // On an instance the engine has not seen before (the monitor just started), a first reading still has no rate.
        #expect(engine.evaluate([up, MetricSample("bans_total", ["instance": "sbc-2"], 50)], at: at(20)).filter { $0.alarm.labels["instance"] == "sbc-2" }.isEmpty)
    }

    @Test func aCounterSeenWithAnInstanceThatJustStartedCountsFromZeroSinceItsStart() {
        // The monitor's first scrape of an SBC came after a flood was banned (a loaded machine, or the monitor started
        // later): the instance's uptime says the counter grew from zero within it.
        let bans = AlarmRule(
            name: "Bans", category: .security, metric: "bans_total", function: .increasePerMinute, warning: 0.5, summary: "", action: "")
        var engine = AlarmEngine(rules: [bans])
        let young = [
            MetricSample("troncal_instance_up", ["instance": "sbc-1"], 1), MetricSample("troncal_instance_uptime_seconds", ["instance": "sbc-1"], 20),
            MetricSample("bans_total", ["instance": "sbc-1"], 3),
        ]
        let fired = engine.evaluate(young, at: at(0))
        #expect(fired.map(\.event) == ["fired"])
        #expect(fired.first?.alarm.value == 3, "three bans within the first minute")
        // An instance up for an hour: its counter's history is unknown, no rate from one reading.
        var later = AlarmEngine(rules: [bans])
        let old = [
            MetricSample("troncal_instance_up", ["instance": "sbc-1"], 1), MetricSample("troncal_instance_uptime_seconds", ["instance": "sbc-1"], 3600),
            MetricSample("bans_total", ["instance": "sbc-1"], 3),
        ]
        #expect(later.evaluate(old, at: at(0)).isEmpty)
    }

    @Test func eachSeriesIsItsOwnAlarmAndASeriesThatDisappearsResolves() {
        let rule = AlarmRule(name: "Down", category: .service, metric: "up", comparison: .below, critical: 1, summary: "{{instance}}", action: "")
        var engine = AlarmEngine(rules: [rule])
        let changes = engine.evaluate(
            [MetricSample("up", ["instance": "a"], 0), MetricSample("up", ["instance": "b"], 0), MetricSample("up", ["instance": "c"], 1)], at: at(0))
        #expect(Set(changes.map(\.alarm.summary)) == ["a", "b"])
        #expect(Set(changes.map(\.alarm.fingerprint)).count == 2)
        let later = engine.evaluate([MetricSample("up", ["instance": "a"], 0)], at: at(10))
        #expect(later.map { "\($0.event):\($0.alarm.summary)" } == ["resolved:b"])
        // Restarting from the stored alarms repeats nothing.
        var restarted = AlarmEngine(rules: [rule], active: Array(engine.active.values))
        #expect(restarted.evaluate([MetricSample("up", ["instance": "a"], 0)], at: at(20)).isEmpty)
    }

    @Test func fingerprintsDependOnLabelsOnlyNotOnTheirOrder() {
        #expect(Alarm.fingerprint(of: ["a": "1", "b": "2"]) == Alarm.fingerprint(of: ["b": "2", "a": "1"]))
        #expect(Alarm.fingerprint(of: ["a": "1", "b": "2"]) != Alarm.fingerprint(of: ["a": "12"]))
        #expect(Alarm.fingerprint(of: ["a": "1"]).count == 16)
    }

    @Test func shippedRulesAreValidAndBadRulesSayWhatIsWrong() {
        for rule in AlarmRule.defaults { #expect(rule.problems().isEmpty, "\(rule.name): \(rule.problems())") }
        #expect(Set(AlarmRule.defaults.map(\.name)).count == AlarmRule.defaults.count)
        let bad = AlarmRule(name: "x y", category: .server, metric: "", warning: 90, critical: 80, clear: 95, forSeconds: -1, summary: "", action: "")
        #expect(bad.problems().count == 5, "\(bad.problems())")
    }
}
