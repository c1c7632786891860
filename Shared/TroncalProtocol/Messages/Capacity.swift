public import Foundation

/// One decision of the capacity controller: what the sizing rules said for a role, and why.
public struct CapacityEvent: Codable, Sendable, Hashable {
    public var at: Date
    public var role: String
    /// `hold`, `scale-out` or `scale-in`; in act mode also `replace` (an instance withdrawn, a standby started in its
    /// place: `busiestInstance` then names the instance withdrawn, and the peak fields are 0).
    public var action: String
    /// Instances in service, the count the rules plan for, and the count after the decision.
    public var instances: Int
    public var planned: Int
    public var after: Int
    /// Of the instances to add: from the site's standby pool, and beyond it (to provision).
    public var fromStandby: Int
    public var missing: Int
    /// The sum of the instances' loads at the peak (1.0 = one instance fully loaded), and when it was.
    public var peakTotal: Double
    public var peakAt: Date?
    public var busiestInstance: String?
    public var busiestLoad: Double
    /// The rule, the figures and the arithmetic, in words.
    public var reason: String
    /// `advise`: recorded and announced, nothing started or stopped.
    public var mode: String

    public init(
        at: Date, role: String, action: String, instances: Int, planned: Int, after: Int, fromStandby: Int, missing: Int, peakTotal: Double,
        peakAt: Date?, busiestInstance: String?, busiestLoad: Double, reason: String, mode: String
    ) {
        self.at = at
        self.role = role
        self.action = action
        self.instances = instances
        self.planned = planned
        self.after = after
        self.fromStandby = fromStandby
        self.missing = missing
        self.peakTotal = peakTotal
        self.peakAt = peakAt
        self.busiestInstance = busiestInstance
        self.busiestLoad = busiestLoad
        self.reason = reason
        self.mode = mode
    }
}

/// `monitor.capacityHistory` (operator → monitor): the capacity controller's decisions, newest first.
public struct CapacityHistoryRequest: LinkRequest, Hashable {
    public typealias Reply = CapacityHistory
    public static let messageType = "monitor.capacityHistory"
    public var role: String?
    public var limit: Int
    public init(role: String? = nil, limit: Int = 100) {
        self.role = role
        self.limit = limit
    }
}

/// `monitor.capacityHistory.reply`.
public struct CapacityHistory: LinkMessage, Hashable {
    public static let messageType = "monitor.capacityHistory.reply"
    public var events: [CapacityEvent]
    public init(events: [CapacityEvent]) { self.events = events }
}

/// `monitor.capacityWithdraw` (operator → monitor): take an instance out of service for good (a server found
/// compromised, or to be rebuilt): it is stopped (an SBC drains), withdrawn, and a standby of its role started in its
/// place, like a failed one. Needs `monitor.capacity.mode` `act`. Not retryable: it starts and stops processes (sent
/// twice, the second is refused: the instance is withdrawn already).
public struct CapacityWithdrawRequest: LinkRequest, Hashable {
    public typealias Reply = CapacityWithdrawal
    public static let messageType = "monitor.capacityWithdraw"
    public var instance: String
    public var reason: String
    /// Marked compromised: the reason says so; it is never taken back by the controller (neither is any withdrawn one).
    public var compromised: Bool
    public var by: String
    public init(instance: String, reason: String, compromised: Bool, by: String = "") {
        self.instance = instance
        self.reason = reason
        self.compromised = compromised
        self.by = by
    }
}

/// `monitor.capacityWithdraw.reply`: the decision, as recorded in the history.
public struct CapacityWithdrawal: LinkMessage, Hashable {
    public static let messageType = "monitor.capacityWithdraw.reply"
    public var event: CapacityEvent
    public init(event: CapacityEvent) { self.event = event }
}

/// `monitor.capacityReturn` (operator → monitor): a withdrawn instance, its server rebuilt from a clean
/// configuration, goes back to the standby pool.
public struct CapacityReturnRequest: LinkRequest, Hashable {
    public typealias Reply = CapacityInstanceState
    public static let messageType = "monitor.capacityReturn"
    public var instance: String
    public var by: String
    public init(instance: String, by: String = "") {
        self.instance = instance
        self.by = by
    }
}

/// `monitor.capacityReturn.reply`.
public struct CapacityInstanceState: LinkMessage, Hashable {
    public static let messageType = "monitor.capacityReturn.reply"
    public var instance: String
    /// `service`, `standby` or `withdrawn`.
    public var state: String
    public init(instance: String, state: String) {
        self.instance = instance
        self.state = state
    }
}
