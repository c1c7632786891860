import Testing
import TroncalCatalog
import TroncalMonitor
import TroncalProtocol
import TroncalRuntime

/// Alarm rules kept as a CSV file: read into rules, layered between the shipped ones and `monitor.rules`, and a bad
/// row refused with its line and column.
@Suite struct RulesCSVTests {
    @Test func rowsBecomeRulesAndOverrideTheShippedOnesBelowTheConfiguration() throws {
        let text = """
            name,category,metric,matchers,function,comparison,warning,critical,clear,for_seconds,summary,action
            CPUCritical,server,troncal_host_cpu_percent,,,,,90,75,120,{{host}} CPU at {{value}} %,Move work away.
            CallsHigh,capacity,troncal_sbc_calls_active,role=sbc;instance!=sbc-9,value,above,8000,9500,7000,60,{{instance}} carries {{value}} calls,Add an SBC.
            BansFast,security,troncal_sbc_bans_total,,increase-per-minute,,5,,,,,
            """
        let rules = try RulesCSV.read(text)
        #expect(rules.map(\.name) == ["CPUCritical", "CallsHigh", "BansFast"])
        #expect(rules[1].matchers == ["role=sbc", "instance!=sbc-9"])
        #expect(rules[1].warning == 8000 && rules[1].critical == 9500 && rules[1].clear == 7000 && rules[1].forSeconds == 60)
        #expect(rules[2].function == .increasePerMinute && rules[2].critical == nil && rules[2].summary == "{{alertname}}: {{value}}")

        var settings = MonitorSettings()
        settings.rules = [AlarmRule(name: "CallsHigh", category: .capacity, metric: "troncal_sbc_calls_active", warning: 100, summary: "", action: "")]
        let merged = AlarmDesk.rules(settings, file: rules)
        #expect(merged.first { $0.name == "CPUCritical" }?.critical == 90, "the file replaces the shipped rule")
        #expect(merged.first { $0.name == "CallsHigh" }?.warning == 100, "the configuration replaces the file's rule")
        #expect(merged.filter { $0.name == "CPUCritical" }.count == 1)
        #expect(merged.contains { $0.name == "BansFast" })
    }

    @Test(arguments: [
        ("name,category,metric\nA,bogus,m\n", 2, "category"),
        ("name,category,metric,warning\nA,server,m,lots\n", 2, "warning"),
        ("name,category,metric,warning\nA,server,m,1\nA,server,m,2\n", 3, "name"),
        ("name,category,metric,comparison,warning\nA,server,m,sideways,1\n", 2, "comparison"),
        ("name,category,metric,colour\nA,server,m,red\n", 1, "colour"),
    ])
    func aBadRowIsRefusedWithItsLineAndColumn(text: String, line: Int, column: String) {
        #expect {
            _ = try RulesCSV.read(text)
        } throws: { error in
            let error = error as? CatalogError
            return error?.line == line && error?.column == column
        }
    }

    @Test func aRuleWithoutThresholdIsRefusedWithItsLine() {
        #expect {
            _ = try RulesCSV.read("name,category,metric\nA,server,m\n")
        } throws: { error in
            (error as? CatalogError)?.line == 2 && "\(error)".contains("threshold")
        }
    }
}
