/// `routing.attempt` (sbc → routing, one-way): the outcome of one attempt towards a carrier trunk, so
/// that routing keeps each trunk's answer-seizure ratio, post-dial delay and failure streak.
public struct CallAttemptReport: LinkMessage, Hashable {
    public static let messageType = "routing.attempt"

    public enum Result: String, Codable, Sendable, Hashable {
        /// A 2xx.
        case answered
        /// A final non-2xx status (in `status`).
        case failed
        /// No final answer within the setup timeout.
        case noAnswer
        /// ICMP port unreachable, refused or reset connection: the trunk is down.
        case transportError
        /// The caller hung up (CANCEL) before the carrier answered.
        case cancelled
    }

    public var carrier: String
    public var trunk: String
    public var result: Result
    public var status: Int?
    /// INVITE to first 18x (or final answer), in milliseconds.
    public var postDialDelayMilliseconds: Int?
    public var callID: String

    public init(carrier: String, trunk: String, result: Result, status: Int?, postDialDelayMilliseconds: Int?, callID: String) {
        self.carrier = carrier
        self.trunk = trunk
        self.result = result
        self.status = status
        self.postDialDelayMilliseconds = postDialDelayMilliseconds
        self.callID = callID
    }
}

/// `routing.reports` (sbc → routing, one-way): the attempt reports and trunk seizures of a few milliseconds of one SBC
/// event loop in one frame, instead of one frame each. Routing handles each entry as if it had come alone
/// (`routing.attempt`, `routing.usage`), the seizures first.
public struct RoutingReports: LinkMessage, Hashable {
    public static let messageType = "routing.reports"

    public var attempts: [CallAttemptReport]
    public var usage: [TrunkUsage]
    /// The SBC sends its reports to every routing instance of the site, so that each sees the load and the health of
    /// every trunk; one gets the original, the others a copy (`true`), which updates their state but not their
    /// counters (so that a site's metrics count each attempt once). Absent: the original.
    public var copy: Bool?

    public init(attempts: [CallAttemptReport] = [], usage: [TrunkUsage] = [], copy: Bool? = nil) {
        self.attempts = attempts
        self.usage = usage
        self.copy = copy
    }

    public var isEmpty: Bool { attempts.isEmpty && usage.isEmpty }
    public var count: Int { attempts.count + usage.count }
}
