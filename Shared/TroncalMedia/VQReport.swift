internal import Foundation

/// An RTCP XR voice quality summary report as phones send it in SIP `PUBLISH` (`Event: vq-rtcpxr`, body
/// `application/vq-rtcpxr`, RFC 6035 §4): the session's identity and what the reporting endpoint measured on the
/// stream it *received* (`LocalMetrics`). Only the fields Troncal uses are kept; unknown lines and parameters are
/// skipped, as the RFC asks of receivers.
public struct VQReport: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        /// At the end of a call.
        case callTerm = "CallTerm"
        /// During a call (interval or alert reports).
        case intervalOrAlert = "IntervalOrAlert"
    }

    public var kind: Kind
    public var callID: String
    public var localID: String
    public var remoteID: String
    /// `SessionDesc PD=`: the codec's name (`PCMU`, `G729` …), empty when not given.
    public var codec: String
    /// `PacketLoss NLR=`: network packet loss rate, percent.
    public var networkLossPercent: Double?
    /// `PacketLoss JDR=`: jitter-buffer discard rate, percent.
    public var discardPercent: Double?
    /// `Delay IAJ=`: inter-arrival jitter, milliseconds.
    public var jitterMilliseconds: Double?
    /// `JitterBuffer JBN=`: the nominal jitter buffer delay, milliseconds.
    public var jitterBufferMilliseconds: Double?
    /// `Delay RTD=`: round-trip delay, milliseconds.
    public var roundTripMilliseconds: Double?
    /// `Delay ESD=`: end-system delay, milliseconds.
    public var endSystemMilliseconds: Double?
    /// `QualityEst MOSCQ=` (conversational) and `MOSLQ=` (listening).
    public var conversationalMOS: Double?
    public var listeningMOS: Double?
    /// `Timestamps START= STOP=` as sent (ISO 8601).
    public var start: String?
    public var stop: String?

    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// Parses a report body. Throws when it is not one: the first line is not `VQSessionReport`, or it lacks the
    /// `CallID` or the `LocalMetrics` block.
    public static func parse(_ body: [UInt8]) throws(ParseError) -> VQReport {
        guard body.count <= 16_384 else { throw ParseError(description: "report larger than 16 KiB") }
        let text = String(decoding: body, as: UTF8.self)
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard let first = lines.first, let (name, value) = field(first), name.lowercased() == "vqsessionreport" else {
            throw ParseError(description: "the body does not start with VQSessionReport")
        }
        var report = VQReport(
            kind: value.hasPrefix("CallTerm") ? .callTerm : .intervalOrAlert, callID: "", localID: "", remoteID: "", codec: "")
        // Fields before any metrics block are the session's; after `LocalMetrics:` the local ones until `RemoteMetrics:`.
        var block = "session"
        var sawLocal = false
        for line in lines.dropFirst() {
            guard let (name, value) = field(line) else { continue }
            switch name.lowercased() {
            case "localmetrics":
                block = "local"
                sawLocal = true
                continue
            case "remotemetrics":
                block = "remote"
                continue
            case "callid" where block == "session" || report.callID.isEmpty: report.callID = value
            case "localid" where block == "session": report.localID = value
            case "remoteid" where block == "session": report.remoteID = value
            default: break
            }
            guard block == "local" else { continue }
            let parameters = Self.parameters(value)
            switch name.lowercased() {
            case "timestamps":
                report.start = parameters["START"]
                report.stop = parameters["STOP"]
            case "sessiondesc":
                report.codec = parameters["PD"] ?? ""
            case "packetloss":
                report.networkLossPercent = parameters["NLR"].flatMap(Double.init)
                report.discardPercent = parameters["JDR"].flatMap(Double.init)
            case "jitterbuffer":
                report.jitterBufferMilliseconds = parameters["JBN"].flatMap(Double.init)
            case "delay":
                report.roundTripMilliseconds = parameters["RTD"].flatMap(Double.init)
                report.endSystemMilliseconds = parameters["ESD"].flatMap(Double.init)
                report.jitterMilliseconds = parameters["IAJ"].flatMap(Double.init)
            case "qualityest":
                report.conversationalMOS = parameters["MOSCQ"].flatMap(Double.init).flatMap { (1...5).contains($0) ? $0 : nil }
                report.listeningMOS = parameters["MOSLQ"].flatMap(Double.init).flatMap { (1...5).contains($0) ? $0 : nil }
            default:
                break
            }
        }
        guard !report.callID.isEmpty else { throw ParseError(description: "the report has no CallID") }
        guard report.callID.utf8.count <= 256, report.localID.utf8.count <= 256, report.remoteID.utf8.count <= 256, report.codec.utf8.count <= 32
        else { throw ParseError(description: "an identifier longer than 256 bytes") }
        guard sawLocal else { throw ParseError(description: "the report has no LocalMetrics") }
        for value in [report.networkLossPercent, report.discardPercent] {
            if let value, !(0...100).contains(value) { throw ParseError(description: "a loss rate outside 0 to 100 %") }
        }
        for value in [report.jitterMilliseconds, report.roundTripMilliseconds, report.endSystemMilliseconds, report.jitterBufferMilliseconds] {
            if let value, !(0...60_000).contains(value) { throw ParseError(description: "a delay outside 0 to 60,000 ms") }
        }
        return report
    }

    /// What the phone heard, rated: its own MOS when it gave one (conversational first), else the E-model's from its
    /// loss (network loss plus discards) and delay (half the round trip plus the end system's delay, or the
    /// defaults the SBC assumes).
    public var quality: (lossPercent: Double, jitterMilliseconds: Double, delayMilliseconds: Double, mos: Double) {
        let loss = min(100, (networkLossPercent ?? 0) + (discardPercent ?? 0))
        let jitter = jitterMilliseconds ?? 0
        let delay = (roundTripMilliseconds.map { $0 / 2 } ?? 20) + (endSystemMilliseconds ?? (jitterBufferMilliseconds ?? 2 * jitter) + 20)
        let mos = conversationalMOS ?? listeningMOS
            ?? EModel(codec: CodecImpairment.forEncoding(codec), oneWayDelayMilliseconds: delay, packetLossPercent: loss).rating().mos
        return (loss, jitter, delay, mos)
    }

    /// `Name: value` (or `Name:` alone for a block header).
    static func field(_ line: String) -> (String, String)? {
        guard let colon = line.firstIndex(of: ":") else { return nil }
        let name = line[..<colon].trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, !name.contains(" ") else { return nil }
        return (name, line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
    }

    /// `A=1 B=x C="quoted value"` as a dictionary (keys upper-cased).
    static func parameters(_ value: String) -> [String: String] {
        var result: [String: String] = [:]
        var index = value.startIndex
        while index < value.endIndex {
            while index < value.endIndex, value[index] == " " || value[index] == "\t" { index = value.index(after: index) }
            guard let equals = value[index...].firstIndex(of: "=") else { break }
            let key = value[index..<equals].trimmingCharacters(in: .whitespaces).uppercased()
            var cursor = value.index(after: equals)
            var item = ""
            if cursor < value.endIndex, value[cursor] == "\"" {
                cursor = value.index(after: cursor)
                let close = value[cursor...].firstIndex(of: "\"") ?? value.endIndex
                item = String(value[cursor..<close])
                cursor = close < value.endIndex ? value.index(after: close) : close
            } else {
                let end = value[cursor...].firstIndex(where: { $0 == " " || $0 == "\t" }) ?? value.endIndex
                item = String(value[cursor..<end])
                cursor = end
            }
            if !key.isEmpty, !key.contains(" ") { result[key] = item }
            index = cursor
        }
        return result
    }
}
