public import Foundation
public import TroncalCatalog
public import TroncalProtocol

/// Alarm rules as a CSV file (`monitor.rulesFile`), one rule per row, for operators who keep their thresholds in a
/// spreadsheet: `name,category,metric,matchers,function,comparison,warning,critical,clear,for_seconds,summary,action`.
/// `matchers` are `;`-separated (`role=sbc;instance!=sbc-9`); empty thresholds are absent; `function` defaults to
/// `value`, `comparison` to `above`. A bad row stops the monitor at start with its line and column; nothing of a bad
/// file is used.
public enum RulesCSV {
    public static let columns = [
        "name", "category", "metric", "matchers", "function", "comparison", "warning", "critical", "clear", "for_seconds", "summary", "action",
    ]

    public static func read(_ text: String) throws(CatalogError) -> [AlarmRule] {
        let file = try CSVRecords(parsing: text, kind: "alarm rules", columns: columns, required: ["name", "category", "metric"])
        var rules: [AlarmRule] = []
        var names = Set<String>()
        for record in file.records {
            let name = record["name"]
            guard !name.isEmpty else { throw record.fail("name", "a value is required") }
            guard names.insert(name).inserted else { throw record.fail("name", "'\(name)' is used twice") }
            guard name != "CustomerMOSLow" else { throw record.fail("name", "CustomerMOSLow is the voice notice, set by monitor.voice") }
            guard let category = AlarmCategory(rawValue: record["category"]) else {
                throw record.fail("category", "must be one of \(AlarmCategory.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let function = record["function"].isEmpty ? AlarmRule.Function.value : AlarmRule.Function(rawValue: record["function"])
            guard let function else { throw record.fail("function", "must be value or increase-per-minute") }
            let comparison = record["comparison"].isEmpty ? AlarmRule.Comparison.above : AlarmRule.Comparison(rawValue: record["comparison"])
            guard let comparison else { throw record.fail("comparison", "must be above or below") }
            func number(_ column: String) throws(CatalogError) -> Double? {
                let text = record[column]
                guard !text.isEmpty else { return nil }
                guard let value = Double(text), value.isFinite else { throw record.fail(column, "'\(text)' is not a number") }
                return value
            }
            let matchers = record["matchers"].split(separator: ";").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let rule = AlarmRule(
                name: name, category: category, metric: record["metric"], matchers: matchers, function: function, comparison: comparison,
                warning: try number("warning"), critical: try number("critical"), clear: try number("clear"),
                forSeconds: try number("for_seconds") ?? 0, summary: record["summary"].isEmpty ? "{{alertname}}: {{value}}" : record["summary"],
                action: record["action"])
            if let problem = rule.problems().first { throw CatalogError(line: record.line, problem) }
            rules.append(rule)
        }
        return rules
    }
}
