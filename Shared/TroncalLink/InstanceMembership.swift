public import NIOCore

/// Which instances of a role get requests: alive ones share them, a suspected one gets none, a dead one is only
/// reconnected to. Lifeguard-style (Dadgar et al., "Lifeguard: Local Health Awareness for More Accurate Failure
/// Detection", 2018): a broken link (connection refused, reset or closed) is proof and makes an instance dead at
/// once; missed probes only make it *suspected*, and it is declared dead when the suspicion lasts
/// ``Settings/suspicion``. Both the probe timeout and the suspicion are stretched by a local health multiplier that
/// grows when our own probe timer fires late (this machine is starved, so the silence may be ours) and shrinks when
/// a probe round is on time and answered, so a loaded machine does not flap its peers.
///
/// A value type with no clock of its own: callers pass `now`. Not thread-safe; owned by one link client.
public struct InstanceMembership: Sendable {
    public struct Settings: Sendable, Equatable {
        /// How often each connected instance is probed.
        public var probeInterval: TimeAmount = .milliseconds(500)
        /// How long a probe may take before it counts as missed, before the local health multiplier.
        public var probeTimeout: TimeAmount = .milliseconds(500)
        /// Missed probes in a row that make an alive instance suspected.
        public var suspectAfterMissedProbes = 2
        /// How long a suspicion lasts before the instance is declared dead, before the local health multiplier.
        public var suspicion: TimeAmount = .seconds(30)
        /// The highest local health multiplier.
        public var maximumLocalHealth = 8
        public init() {}
    }

    public enum State: String, Sendable, Equatable, CustomStringConvertible {
        case alive, suspect, dead
        public var description: String { rawValue }
    }

    /// A change worth a log line and a metric.
    public enum Event: Sendable, Equatable {
        case suspected(Int, missedProbes: Int)
        case declaredDead(Int, reason: String)
        case recovered(Int, from: State)
    }

    public struct Member: Sendable, Equatable {
        public var state: State
        public var since: NIODeadline
        public var missedProbes = 0
    }

    public let settings: Settings
    public private(set) var members: [Member]
    /// Lifeguard's local health multiplier: 0 on a healthy machine, up to ``Settings/maximumLocalHealth``.
    public private(set) var localHealth = 0
    private var cursor = 0

    /// Every instance starts alive (never tried): the first request connects to it.
    public init(count: Int, settings: Settings = Settings(), now: NIODeadline) {
        self.settings = settings
        self.members = Array(repeating: Member(state: .alive, since: now), count: count)
    }

    public func state(_ index: Int) -> State { members[index].state }

    /// The probe timeout now, stretched by local health.
    public var probeTimeout: TimeAmount { settings.probeTimeout * Int64(1 + localHealth) }
    /// The suspicion now, stretched by local health.
    public var suspicion: TimeAmount { settings.suspicion * Int64(1 + localHealth) }

    /// The instances to try for the next request, best first: alive ones in turn (so they share the work), then
    /// suspected ones (a suspected instance is better than none), then dead ones (to reconnect).
    public mutating func order() -> [Int] {
        let count = members.count
        guard count > 0 else { return [] }
        let start = cursor % count
        cursor = (cursor + 1) % count
        let rotation = (0..<count).map { (start + $0) % count }
        return rotation.filter { members[$0].state == .alive } + rotation.filter { members[$0].state == .suspect }
            + rotation.filter { members[$0].state == .dead }
    }

    /// A probe or request was answered: the instance is alive.
    public mutating func answered(_ index: Int, now: NIODeadline) -> Event? {
        let previous = members[index].state
        members[index].missedProbes = 0
        guard previous != .alive else { return nil }
        members[index].state = .alive
        members[index].since = now
        return .recovered(index, from: previous)
    }

    /// A probe got no answer in time: suspected after enough in a row; declared dead when suspected too long.
    public mutating func missedProbe(_ index: Int, now: NIODeadline) -> Event? {
        members[index].missedProbes += 1
        switch members[index].state {
        case .alive where members[index].missedProbes >= settings.suspectAfterMissedProbes:
            members[index].state = .suspect
            members[index].since = now
            return .suspected(index, missedProbes: members[index].missedProbes)
        case .suspect where now - members[index].since >= suspicion:
            return linkFailed(index, now: now, reason: "suspected for \(now - members[index].since) without an answer")
        default:
            return nil
        }
    }

    /// The link itself failed (refused, reset, closed, TLS refused): proof, not suspicion.
    public mutating func linkFailed(_ index: Int, now: NIODeadline, reason: String) -> Event? {
        guard members[index].state != .dead else { return nil }
        members[index].state = .dead
        members[index].since = now
        return .declaredDead(index, reason: reason)
    }

    /// One probe round: `lateness` is how late our own timer fired, `allAnswered` whether every probe of the round
    /// came back in time. A late timer means this machine is slow: raise the multiplier; a clean round lowers it.
    public mutating func probeRound(lateness: TimeAmount, allAnswered: Bool) {
        if lateness > .nanoseconds(settings.probeInterval.nanoseconds / 2) {
            localHealth = min(localHealth + 1, settings.maximumLocalHealth)
        } else if allAnswered {
            localHealth = max(localHealth - 1, 0)
        }
    }
}
