public import Foundation
public import TroncalProtocol

/// What the routing core knows of each carrier trunk's health, from the SBC's attempt reports and from OPTIONS
/// probes: answer-seizure ratio, post-dial delay, the failure streak, and whether the trunk is in service.
///
/// A trunk is taken out of routes after `failuresToTakeOut` consecutive failed calls (408, 5xx, no answer in
/// the setup time, a transport error) or as many consecutive failed probes, and put back by the first
/// successful probe after that. A final answer such as 486 Busy or 404 shows the trunk works: it ends the streak.
public struct CarrierHealth: Sendable {
    public struct Trunk: Hashable, Sendable, CustomStringConvertible {
        public var carrier: String
        public var trunk: String
        public init(carrier: String, trunk: String) {
            self.carrier = carrier
            self.trunk = trunk
        }
        public var description: String { carrier == trunk ? carrier : "\(carrier)/\(trunk)" }
    }

    public struct Status: Sendable, Hashable, Codable {
        public var inService = true
        public var consecutiveFailures = 0
        public var consecutiveFailedProbes = 0
        /// Answered / seized over the last `window` attempts (cancelled ones not counted); nil before any.
        public var answerSeizureRatio: Double?
        /// Network effectiveness ratio (ITU-T E.425): attempts the network carried through (answered, or refused by
        /// the called user: busy, declined, not found …) over the last `window` attempts; not 408, 5xx, no answer
        /// within the setup time or a transport error. Nil before any.
        public var networkEffectivenessRatio: Double?
        /// Mean post-dial delay of the last `window` attempts that had one, in milliseconds.
        public var postDialDelayMilliseconds: Double?
        public var attempts = 0
        /// Why the trunk is out of service.
        public var reason: String?
        public var changedAt: Date?
    }

    /// A change of a trunk's service state, for logs and metrics.
    public enum Change: Sendable, Hashable {
        case takenOut(Trunk, reason: String)
        case restored(Trunk)
    }

    public let failuresToTakeOut: Int
    public let window: Int
    private var statuses: [Trunk: Status] = [:]
    private var outcomes: [Trunk: [Bool]] = [:]
    private var effective: [Trunk: [Bool]] = [:]
    private var delays: [Trunk: [Int]] = [:]

    public init(failuresToTakeOut: Int = 5, window: Int = 100) {
        self.failuresToTakeOut = max(1, failuresToTakeOut)
        self.window = max(1, window)
    }

    public func status(of trunk: Trunk) -> Status { statuses[trunk] ?? Status() }

    public func isInService(_ trunk: Trunk) -> Bool { statuses[trunk]?.inService ?? true }

    public var all: [Trunk: Status] { statuses }

    /// One attempt the SBC reported.
    public mutating func record(_ report: CallAttemptReport, now: Date = Date()) -> Change? {
        let trunk = Trunk(carrier: report.carrier, trunk: report.trunk)
        var status = statuses[trunk] ?? Status()
        let failure: String?
        switch report.result {
        case .answered: failure = nil
        case .failed:
            let code = report.status ?? 500
            failure = code == 408 || (500..<600).contains(code) ? "\(code) answers" : nil
        case .noAnswer: failure = "no answer within the setup time"
        case .transportError: failure = "transport errors"
        case .cancelled:
            return nil
        }
        if report.result != .cancelled {
            var seen = outcomes[trunk, default: []]
            seen.append(report.result == .answered)
            if seen.count > window { seen.removeFirst(seen.count - window) }
            outcomes[trunk] = seen
            status.answerSeizureRatio = Double(seen.filter { $0 }.count) / Double(seen.count)
            var carried = effective[trunk, default: []]
            carried.append(failure == nil)
            if carried.count > window { carried.removeFirst(carried.count - window) }
            effective[trunk] = carried
            status.networkEffectivenessRatio = Double(carried.filter { $0 }.count) / Double(carried.count)
            status.attempts += 1
        }
        if let delay = report.postDialDelayMilliseconds {
            var recent = delays[trunk, default: []]
            recent.append(delay)
            if recent.count > window { recent.removeFirst(recent.count - window) }
            delays[trunk] = recent
            status.postDialDelayMilliseconds = Double(recent.reduce(0, +)) / Double(recent.count)
        }
        var change: Change?
        if let failure {
            status.consecutiveFailures += 1
            if status.inService, status.consecutiveFailures >= failuresToTakeOut {
                status.inService = false
                status.reason = "\(status.consecutiveFailures) failed calls in a row (last: \(failure))"
                status.changedAt = now
                change = .takenOut(trunk, reason: status.reason ?? "")
            }
        } else {
            status.consecutiveFailures = 0
        }
        statuses[trunk] = status
        return change
    }

    /// The outcome of one OPTIONS probe of the trunk.
    public mutating func recordProbe(_ trunk: Trunk, alive: Bool, detail: String, now: Date = Date()) -> Change? {
        var status = statuses[trunk] ?? Status()
        var change: Change?
        if alive {
            status.consecutiveFailedProbes = 0
            if !status.inService {
                status.inService = true
                status.consecutiveFailures = 0
                status.reason = nil
                status.changedAt = now
                change = .restored(trunk)
            }
        } else {
            status.consecutiveFailedProbes += 1
            if status.inService, status.consecutiveFailedProbes >= failuresToTakeOut {
                status.inService = false
                status.reason = "\(status.consecutiveFailedProbes) failed probes in a row (last: \(detail))"
                status.changedAt = now
                change = .takenOut(trunk, reason: status.reason ?? "")
            }
        }
        statuses[trunk] = status
        return change
    }
}
