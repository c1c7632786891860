public import Foundation
public import TroncalProtocol

/// The operator's sizing rules: each service is sized so that its instances carry `plannedLoad` (40 %) at the peak;
/// an instance above `scaleOutLoad` (60 %) at the peak calls for one more; never fewer than `minimumInstances` (2);
/// an instance is removed only when the plan has been below the current count for the whole `scaleInWindow`.
public struct CapacityRules: Codable, Sendable, Equatable {
    public var plannedLoad = 0.40
    public var scaleOutLoad = 0.60
    public var minimumInstances = 2
    /// How long the figures must show too many instances before one is removed (default a week).
    public var scaleInWindowSeconds: Double = 7 * 86_400
    /// Samples are summed per bucket of this many seconds (an instance's last sample in the bucket counts).
    public var bucketSeconds: Double = 60

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CapacityRules()
        plannedLoad = try c.decodeIfPresent(Double.self, forKey: .plannedLoad) ?? d.plannedLoad
        scaleOutLoad = try c.decodeIfPresent(Double.self, forKey: .scaleOutLoad) ?? d.scaleOutLoad
        minimumInstances = try c.decodeIfPresent(Int.self, forKey: .minimumInstances) ?? d.minimumInstances
        scaleInWindowSeconds = try c.decodeIfPresent(Double.self, forKey: .scaleInWindowSeconds) ?? d.scaleInWindowSeconds
        bucketSeconds = try c.decodeIfPresent(Double.self, forKey: .bucketSeconds) ?? d.bucketSeconds
    }

    public func validate() throws {
        guard plannedLoad > 0, plannedLoad < scaleOutLoad, scaleOutLoad <= 1 else {
            throw CapacityError("rules: need 0 < plannedLoad < scaleOutLoad <= 1 (got \(plannedLoad), \(scaleOutLoad))")
        }
        guard minimumInstances >= 2 else { throw CapacityError("rules: minimumInstances must be at least 2") }
        guard bucketSeconds > 0, scaleInWindowSeconds >= 0 else { throw CapacityError("rules: windows must be positive") }
    }
}

/// One figure of one instance at one time: its CPU and its own capacity figure (calls per second or concurrent calls
/// against the SBC's limits, requests against routing or billing capacity), each a fraction of what it can carry.
public struct LoadSample: Sendable, Equatable {
    public var at: Date
    public var instance: String
    public var cpu: Double
    public var capacity: Double?

    public init(at: Date, instance: String, cpu: Double, capacity: Double?) {
        self.at = at
        self.instance = instance
        self.cpu = cpu
        self.capacity = capacity
    }

    public var role: Role? { Role(rawValue: String(instance.prefix { $0 != "-" })) }
    /// The instance's load: the higher of its CPU and its own capacity figure.
    public var load: Double { max(cpu, capacity ?? 0) }
}

/// What the rules say for one role, with the reason spelled out (metric, window, threshold, before and after).
public struct CapacityPlan: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable { case hold, scaleOut = "scale-out", scaleIn = "scale-in" }
    public var role: String
    public var instances: Int
    public var peakAt: Date?
    /// The sum of the instances' loads at the peak, in instance units (1.0 = one instance fully loaded).
    public var peakTotal: Double
    public var busiestInstance: String?
    public var busiestLoad: Double
    /// `max(minimumInstances, ceil(peakTotal / plannedLoad))`.
    public var planned: Int
    public var action: Action
    public var after: Int
    /// Standby instances to take into service (at most the pool), and how many more are needed beyond it.
    public var fromStandby: Int
    public var missing: Int
    public var reason: String
}

/// The sizing rules applied to a window of load figures. Pure: the controller and `troncal capacity plan` both
/// call it; it decides nothing by itself.
public struct CapacityPlanner: Sendable {
    public let rules: CapacityRules

    public init(rules: CapacityRules) { self.rules = rules }

    public func plan(role: Role, samples: [LoadSample], instances: [String], standby: Int) -> CapacityPlan {
        let mine = samples.filter { $0.role == role && instances.contains($0.instance) }.sorted { $0.at < $1.at }
        var buckets: [Int: [String: Double]] = [:]
        for sample in mine {
            let bucket = Int((sample.at.timeIntervalSince1970 / rules.bucketSeconds).rounded(.down))
            buckets[bucket, default: [:]][sample.instance] = sample.load
        }
        let totals = buckets.map { (bucket: $0.key, total: $0.value.values.reduce(0, +), loads: $0.value) }
        let peak = totals.max { $0.total < $1.total || ($0.total == $1.total && $0.bucket > $1.bucket) }
        let peakTotal = peak?.total ?? 0
        let busiest = peak?.loads.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }
        let planned = max(rules.minimumInstances, Int((peakTotal / rules.plannedLoad - 1e-9).rounded(.up)))
        let current = instances.count
        let peakAt = peak.map { Date(timeIntervalSince1970: Double($0.bucket) * rules.bucketSeconds) }
        let percent = { (value: Double) in "\(Int((value * 100).rounded()))%" }
        let two = { (value: Double) in String(format: "%.2f", value) }
        let sized = "the \(current) instance(s) carried \(two(peakTotal)) instance-units at the peak; sized for "
            + "\(percent(rules.plannedLoad)) that is max(\(rules.minimumInstances), ceil(\(two(peakTotal)) / \(two(rules.plannedLoad)))) = \(planned)"
        let window = mine.isEmpty ? 0 : mine.last!.at.timeIntervalSince(mine.first!.at)

        var action = CapacityPlan.Action.hold
        var target = current
        var why: String
        if current < rules.minimumInstances {
            action = .scaleOut
            target = max(planned, rules.minimumInstances)
            why = "\(role.rawValue) has \(current) instance(s), fewer than the minimum \(rules.minimumInstances); \(sized)"
        } else if let busiest, busiest.value > rules.scaleOutLoad {
            action = .scaleOut
            target = max(planned, current + 1)
            why = "\(role.rawValue): at the peak the busiest instance \(busiest.key) carried \(percent(busiest.value)) "
                + "(above \(percent(rules.scaleOutLoad))); \(sized)"
        } else if planned < current {
            if window >= rules.scaleInWindowSeconds {
                action = .scaleIn
                target = max(rules.minimumInstances, planned)
                why = "\(role.rawValue): over \(Self.span(window)) the plan stayed below \(current); \(sized)"
            } else {
                why = "\(role.rawValue): \(sized), but the figures cover \(Self.span(window)) of the "
                    + "\(Self.span(rules.scaleInWindowSeconds)) needed before removing an instance; holding"
            }
        } else if mine.isEmpty {
            why = "\(role.rawValue): no figures for its instances; holding at \(current)"
        } else {
            why = "\(role.rawValue): the busiest instance carried \(percent(busiest?.value ?? 0)) at the peak "
                + "(at most \(percent(rules.scaleOutLoad))); \(sized); holding"
        }
        let added = max(0, target - current)
        let fromStandby = min(added, standby)
        let missing = added - fromStandby
        if action == .scaleOut {
            why += "; add \(added) (\(fromStandby) from the standby pool of \(standby)"
                + (missing > 0 ? ", \(missing) more to provision)" : ")")
        } else if action == .scaleIn {
            why += "; remove \(current - target), never below \(rules.minimumInstances)"
        }
        return CapacityPlan(
            role: role.rawValue, instances: current, peakAt: peakAt, peakTotal: (peakTotal * 100).rounded() / 100,
            busiestInstance: busiest?.key, busiestLoad: ((busiest?.value ?? 0) * 100).rounded() / 100, planned: planned,
            action: action, after: target, fromStandby: fromStandby, missing: missing, reason: why)
    }
}

extension CapacityPlanner {
    /// A length of time for a reason: seconds under two minutes, minutes under two hours, then hours.
    static func span(_ seconds: Double) -> String {
        switch seconds {
        case ..<120: "\(Int(seconds)) s"
        case ..<7200: "\(Int(seconds / 60)) min"
        default: "\(Int(seconds / 3600)) h"
        }
    }
}

public struct CapacityError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
