public import Foundation
public import Logging
internal import Metrics
import Synchronization
public import TroncalProtocol

/// Reroute on media quality: the monitor reports each carrier trunk's MOS over its window (`routing.trunkQuality`);
/// a trunk below `routing.minimumTrunkMOS` is tried after every other available trunk of its routes (demoted, not
/// removed) for as long as the latest report says so. A trunk with too few calls in the window is not in the report
/// and so not demoted: a demoted trunk that gets no calls comes back to its place when its bad calls leave the
/// window, and goes down again if it is still bad. A report past its `validSeconds` counts for nothing, so a monitor
/// that stops reporting demotes nothing.
public final class TrunkQualityBoard: Sendable {
    public struct Verdict: Sendable, Hashable {
        public var mos: Double
        public var calls: Int
        public var lossPercent: Double
        public var demoted: Bool
    }

    private struct State {
        var report: TrunkQualityReport?
        var receivedAt: Date = .distantPast
        var demoted: Set<CarrierHealth.Trunk> = []
    }

    public let minimumMOS: Double
    private let state = Mutex(State())
    private let logger: Logger

    public init(minimumMOS: Double, logger: Logger) {
        self.minimumMOS = minimumMOS
        self.logger = logger
    }

    /// Takes a new report (`now`: when it arrived, by routing's own clock).
    public func update(_ report: TrunkQualityReport, at now: Date = Date()) {
        let demoted = minimumMOS > 0 ? Set(report.trunks.filter { $0.mos < minimumMOS }.map { CarrierHealth.Trunk(carrier: $0.carrier, trunk: $0.trunk) }) : []
        let before = state.withLock { state in
            let before = state.demoted
            state.report = report
            state.receivedAt = now
            state.demoted = demoted
            return before
        }
        for trunk in demoted.subtracting(before) {
            let mos = report.trunks.first { $0.carrier == trunk.carrier && $0.trunk == trunk.trunk }?.mos ?? 0
            logger.warning("trunk demoted for media quality: tried after the others of its routes", metadata: [
                "carrier": "\(trunk.carrier)", "trunk": "\(trunk.trunk)", "mos": "\((mos * 100).rounded() / 100)", "minimum": "\(minimumMOS)",
            ])
        }
        for trunk in before.subtracting(demoted) {
            logger.notice("trunk back in its place: media quality recovered or no longer judged", metadata: [
                "carrier": "\(trunk.carrier)", "trunk": "\(trunk.trunk)",
            ])
        }
        Gauge(label: "troncal_routing_trunks_demoted").record(demoted.count)
    }

    /// Whether the trunk goes after the others now. A report past its validity demotes nothing: the first question
    /// after it expired drops its demotions (logged, and the gauge back to 0).
    public func isDemoted(_ trunk: CarrierHealth.Trunk, now: Date = Date()) -> Bool {
        let (answer, expired) = state.withLock { state -> (Bool, Set<CarrierHealth.Trunk>) in
            guard !state.demoted.isEmpty, let report = state.report else { return (false, []) }
            guard now.timeIntervalSince(state.receivedAt) <= Double(report.validSeconds) else {
                let expired = state.demoted
                state.demoted = []
                return (false, expired)
            }
            return (state.demoted.contains(trunk), [])
        }
        if !expired.isEmpty {
            logger.notice("media quality report expired: no trunk demoted until the monitor reports again", metadata: [
                "trunks": "\(expired.map { "\($0.carrier)/\($0.trunk)" }.sorted().joined(separator: ", "))",
            ])
            Gauge(label: "troncal_routing_trunks_demoted").record(0)
        }
        return answer
    }

    /// The latest verdict on a trunk, for `routing.inspect`; nil when the monitor gave none (or it expired).
    public func verdict(_ trunk: CarrierHealth.Trunk, now: Date = Date()) -> Verdict? {
        state.withLock { state in
            guard let report = state.report, now.timeIntervalSince(state.receivedAt) <= Double(report.validSeconds),
                let entry = report.trunks.first(where: { $0.carrier == trunk.carrier && $0.trunk == trunk.trunk })
            else { return nil }
            return Verdict(mos: entry.mos, calls: entry.calls, lossPercent: entry.lossPercent, demoted: state.demoted.contains(trunk))
        }
    }
}
