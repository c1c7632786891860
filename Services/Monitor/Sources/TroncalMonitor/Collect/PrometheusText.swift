public import TroncalProtocol

/// A line of Prometheus text that is not in the exposition format.
public struct PrometheusTextError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var reason: String
    public var description: String { "metrics text, line \(line): \(reason)" }
}

/// The Prometheus text exposition format (version 0.0.4), as every instance's `/metrics` writes it: `# HELP` and
/// `# TYPE` lines and comments are skipped; each other line is `name{label="value",...} value [timestamp]`.
/// Label values may hold `\\`, `\"` and `\n` escapes; values are floats, `+Inf`, `-Inf` or `NaN`.
public enum PrometheusText {
    /// Parses a whole scrape; the first malformed line refuses it with its number and what is wrong.
    public static func parse(_ text: String) throws(PrometheusTextError) -> [MetricSample] {
        var samples: [MetricSample] = []
        var number = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line = rawLine.drop { $0 == " " || $0 == "\t" }
            if line.isEmpty || line.first == "#" { continue }
            do {
                samples.append(try sample(Array(line.utf8)))
            } catch {
                throw PrometheusTextError(line: number, reason: error.reason)
            }
        }
        return samples
    }

    struct LineError: Error { var reason: String }

    static func sample(_ bytes: [UInt8]) throws(LineError) -> MetricSample {
        var index = 0
        func isNameByte(_ byte: UInt8, first: Bool) -> Bool {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"), UInt8(ascii: ":"): true
            case UInt8(ascii: "0")...UInt8(ascii: "9"): !first
            default: false
            }
        }
        func skipSpaces() { while index < bytes.count, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t") { index += 1 } }
        let nameStart = index
        while index < bytes.count, isNameByte(bytes[index], first: index == nameStart) { index += 1 }
        guard index > nameStart else { throw LineError(reason: "expected a metric name") }
        let name = String(decoding: bytes[nameStart..<index], as: UTF8.self)
        var labels: [String: String] = [:]
        if index < bytes.count, bytes[index] == UInt8(ascii: "{") {
            index += 1
            while true {
                skipSpaces()
                guard index < bytes.count else { throw LineError(reason: "unterminated label set") }
                if bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    break
                }
                let labelStart = index
                while index < bytes.count, isNameByte(bytes[index], first: index == labelStart), bytes[index] != UInt8(ascii: ":") { index += 1 }
                guard index > labelStart else { throw LineError(reason: "expected a label name") }
                let label = String(decoding: bytes[labelStart..<index], as: UTF8.self)
                skipSpaces()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "=") else { throw LineError(reason: "expected '=' after label '\(label)'") }
                index += 1
                skipSpaces()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw LineError(reason: "expected '\"' to open the value of '\(label)'") }
                index += 1
                var value: [UInt8] = []
                var closed = false
                while index < bytes.count {
                    let byte = bytes[index]
                    index += 1
                    if byte == UInt8(ascii: "\"") {
                        closed = true
                        break
                    }
                    if byte == UInt8(ascii: "\\") {
                        guard index < bytes.count else { break }
                        let escaped = bytes[index]
                        index += 1
                        switch escaped {
                        case UInt8(ascii: "n"): value.append(UInt8(ascii: "\n"))
                        case UInt8(ascii: "\\"), UInt8(ascii: "\""): value.append(escaped)
                        default: throw LineError(reason: "unknown escape '\\\(Character(UnicodeScalar(escaped)))' in label '\(label)'")
                        }
                    } else {
                        value.append(byte)
                    }
                }
                guard closed else { throw LineError(reason: "unterminated value of label '\(label)'") }
                guard labels.updateValue(String(decoding: value, as: UTF8.self), forKey: label) == nil else {
                    throw LineError(reason: "label '\(label)' given twice")
                }
                skipSpaces()
                if index < bytes.count, bytes[index] == UInt8(ascii: ",") {
                    index += 1
                } else if index >= bytes.count || bytes[index] != UInt8(ascii: "}") {
                    throw LineError(reason: "expected ',' or '}' after label '\(label)'")
                }
            }
        }
        guard index < bytes.count, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t") else {
            throw LineError(reason: "expected a space before the value")
        }
        skipSpaces()
        let valueStart = index
        while index < bytes.count, bytes[index] != UInt8(ascii: " "), bytes[index] != UInt8(ascii: "\t") { index += 1 }
        let text = String(decoding: bytes[valueStart..<index], as: UTF8.self)
        let value: Double
        switch text {
        case "+Inf", "Inf": value = .infinity
        case "-Inf": value = -.infinity
        case "NaN": value = .nan
        default:
            guard let parsed = Double(text), text.first != "+" || text.count > 1 else { throw LineError(reason: "'\(text)' is not a number") }
            value = parsed
        }
        skipSpaces()
        if index < bytes.count {
            // An optional timestamp in milliseconds; nothing after it.
            let rest = String(decoding: bytes[index...], as: UTF8.self).trimmingTrailingSpaces()
            guard Int64(rest) != nil else { throw LineError(reason: "unexpected '\(rest)' after the value") }
        }
        return MetricSample(name, labels, value)
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " || copy.last == "\t" || copy.last == "\r" { copy.removeLast() }
        return copy
    }
}
