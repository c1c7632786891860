public import Foundation
public import TroncalProtocol
import Synchronization

/// Calls in progress and new calls in the last second, per trunk, from the SBC's `routing.usage` messages and
/// attempt reports: a seizure (INVITE sent) counts until its attempt fails, is cancelled or goes unanswered, or
/// until the answered call is released. Seizures that are never closed (an SBC that died) expire after
/// `seizureLifetime`.
public final class TrunkLoad: Sendable {
    struct State {
        var active: [CarrierHealth.Trunk: [String: Date]] = [:]
        var recent: [CarrierHealth.Trunk: [Date]] = [:]
        /// Attempts closed before their seizure arrived (messages may cross), so a late seizure is not counted.
        var closedEarly: [String: Date] = [:]
        var lastSweep = Date.distantPast
    }

    private let state = Mutex(State())
    let seizureLifetime: TimeInterval

    public init(seizureLifetime: TimeInterval) {
        self.seizureLifetime = seizureLifetime
    }

    static func key(_ callID: String, _ trunk: CarrierHealth.Trunk) -> String { "\(callID)\u{0}\(trunk.carrier)\u{0}\(trunk.trunk)" }

    public func record(_ usage: TrunkUsage, now: Date = Date()) {
        let trunk = CarrierHealth.Trunk(carrier: usage.carrier, trunk: usage.trunk)
        switch usage.event {
        case .seized: seized(usage.callID, trunk, now: now)
        case .released: closed(usage.callID, trunk, now: now)
        }
    }

    /// An attempt report: every result but `answered` ends the attempt's seizure.
    public func record(_ report: CallAttemptReport, now: Date = Date()) {
        guard report.result != .answered else { return }
        closed(report.callID, CarrierHealth.Trunk(carrier: report.carrier, trunk: report.trunk), now: now)
    }

    func seized(_ callID: String, _ trunk: CarrierHealth.Trunk, now: Date) {
        state.withLock { state in
            sweep(&state, now: now)
            if state.closedEarly.removeValue(forKey: Self.key(callID, trunk)) != nil { return }
            state.active[trunk, default: [:]][callID] = now
            var recent = state.recent[trunk, default: []]
            recent.removeAll { now.timeIntervalSince($0) >= 1 }
            recent.append(now)
            state.recent[trunk] = recent
        }
    }

    func closed(_ callID: String, _ trunk: CarrierHealth.Trunk, now: Date) {
        state.withLock { state in
            if state.active[trunk]?.removeValue(forKey: callID) == nil {
                state.closedEarly[Self.key(callID, trunk)] = now
            }
        }
    }

    private func sweep(_ state: inout State, now: Date) {
        guard now.timeIntervalSince(state.lastSweep) >= 10 else { return }
        state.lastSweep = now
        let lifetime = seizureLifetime
        for trunk in state.active.keys {
            state.active[trunk] = state.active[trunk]?.filter { now.timeIntervalSince($0.value) < lifetime }
        }
        state.closedEarly = state.closedEarly.filter { now.timeIntervalSince($0.value) < 60 }
    }

    /// Calls in progress and calls seized in the last second.
    public func load(of trunk: CarrierHealth.Trunk, now: Date = Date()) -> (inProgress: Int, lastSecond: Int) {
        state.withLock { state in
            (state.active[trunk]?.count ?? 0, state.recent[trunk]?.filter { now.timeIntervalSince($0) < 1 }.count ?? 0)
        }
    }

    /// Whether the trunk may take one more call under its limits (0: no limit).
    public func hasRoom(_ trunk: RouteTable.Trunk, now: Date = Date()) -> Bool {
        guard trunk.maximumCalls > 0 || trunk.maximumCallsPerSecond > 0 else { return true }
        let (inProgress, lastSecond) = load(of: trunk.key, now: now)
        if trunk.maximumCalls > 0, inProgress >= trunk.maximumCalls { return false }
        if trunk.maximumCallsPerSecond > 0, lastSecond >= trunk.maximumCallsPerSecond { return false }
        return true
    }
}
