import Foundation
import Testing
import TestSupport

/// `troncal capacity plan`: the operator's sizing rules (40 % at peak, add at 60 %, never fewer than 2, remove only
/// after a long window) applied to load figures, with the reason spelled out.
@Suite(.startsProcesses) struct CapacityCommandTests {
    let troncal = troncalBinaryDirectory().appendingPathComponent("troncal")

    struct Plan: Decodable {
        var role: String
        var instances: Int
        var planned: Int
        var action: String
        var after: Int
        var fromStandby: Int
        var missing: Int
        var busiestInstance: String?
        var reason: String
    }

    func plan(_ csv: String, _ extra: [String] = []) async throws -> [String: Plan] {
        let directory = try TemporaryDirectory(prefix: "troncal-capacity")
        defer { directory.remove() }
        let figures = directory.url.appendingPathComponent("figures.csv")
        try csv.write(to: figures, atomically: true, encoding: .utf8)
        let (status, output) = try await ChildProcess.run(troncal, ["capacity", "plan", "--figures", figures.path, "--json"] + extra)
        #expect(status == 0, "\(output)")
        let plans = try JSONDecoder().decode([Plan].self, from: Data(output.utf8))
        return Dictionary(uniqueKeysWithValues: plans.map { ($0.role, $0) })
    }

    /// The worked example of docs/capacity.md, on the sample inventory's site A (sbc-3 and routing-3 on standby).
    @Test func anSBCAbove60PercentAtThePeakGetsWhatThe40PercentPlanNeedsFromTheStandbyPoolFirst() async throws {
        let csv = """
            time,instance,cpu,capacity
            2026-12-01T09:00:00Z,sbc-1,0.35,0.30
            2026-12-01T09:00:00Z,sbc-2,0.30,0.28
            2026-12-01T10:00:00Z,sbc-1,0.58,0.72
            2026-12-01T10:00:00Z,sbc-2,0.55,0.41
            2026-12-01T10:00:00Z,routing-1,0.30,
            2026-12-01T10:00:00Z,routing-2,0.25,
            2026-12-01T10:00:00Z,billing-1,0.10,
            2026-12-01T10:00:00Z,billing-2,0.05,
            """
        let plans = try await plan(csv, ["--inventory", "infra/inventory.sample.json", "--site", "site-a"])
        let sbc = try #require(plans["sbc"])
        // Peak 10:00: 0.72 + 0.55 = 1.27 instance-units; ceil(1.27 / 0.40) = 4; sbc-1 at 72 % > 60 %.
        #expect(sbc.action == "scale-out" && sbc.instances == 2 && sbc.planned == 4 && sbc.after == 4)
        #expect(sbc.busiestInstance == "sbc-1")
        #expect(sbc.fromStandby == 1 && sbc.missing == 1, "the pool holds sbc-3 only")
        #expect(sbc.reason.contains("sbc-1 carried 72% (above 60%)") && sbc.reason.contains("ceil(1.27 / 0.40)) = 4"), "\(sbc.reason)")
        let routing = try #require(plans["routing"])
        #expect(routing.action == "hold" && routing.planned == 2 && routing.after == 2, "\(routing.reason)")
        #expect(plans["billing"]?.action == "hold")
        // No figures for them: held at their count, never below two.
        #expect(plans["pbx"]?.action == "hold" && plans["pbx"]?.after == 2)
    }

    @Test func anInstanceIsRemovedOnlyAfterTheWholeWindowShowsTooManyAndNeverBelowTwo() async throws {
        var week = "time,instance,cpu,capacity\n"
        for day in 0...7 {
            for instance in ["pbx-1", "pbx-2", "pbx-3"] { week += "\(1_764_547_200 + day * 86_400),\(instance),0.12,\n" }
        }
        let removed = try #require(try await plan(week)["pbx"])
        #expect(removed.action == "scale-in" && removed.instances == 3 && removed.after == 2, "\(removed.reason)")
        let day = week.split(separator: "\n").prefix(7).joined(separator: "\n")
        let held = try #require(try await plan(day)["pbx"])
        #expect(held.action == "hold" && held.after == 3 && held.reason.contains("needed before removing"), "\(held.reason)")
    }

    @Test func badFiguresAreRefusedWithTheirLine() async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-capacity-bad")
        defer { directory.remove() }
        let figures = directory.url.appendingPathComponent("figures.csv")
        try "time,instance,cpu,capacity\n2026-12-01T10:00:00Z,sbc-1,1.7,\n".write(to: figures, atomically: true, encoding: .utf8)
        let (status, output) = try await ChildProcess.run(troncal, ["capacity", "plan", "--figures", figures.path])
        #expect(status != 0 && output.contains("line 2: cpu \"1.7\" is not a fraction"), "\(output)")
    }
}
