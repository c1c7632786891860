public import Foundation
public import Logging
internal import Metrics
public import ServiceLifecycle
public import TroncalControl
public import TroncalProtocol
public import TroncalRuntime
public import TroncalStore

/// The capacity controller's decisions, kept in the monitor's database (`troncal capacity history`).
public struct CapacityHistoryStore: Sendable {
    static let migration = Migration(
        version: 5, name: "capacity decisions",
        sql: [
            "CREATE TABLE monitor_capacity_events (id TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL, role TEXT NOT NULL, document TEXT NOT NULL)",
            "CREATE INDEX monitor_capacity_events_role ON monitor_capacity_events (role, at)",
            "CREATE INDEX monitor_capacity_events_at ON monitor_capacity_events (at)",
        ])

    /// Sites sharing one database (PostgreSQL) keep their decisions apart.
    static let siteMigration = Migration(
        version: 6, name: "capacity decisions per site",
        sql: [
            "ALTER TABLE monitor_capacity_events ADD COLUMN site TEXT NOT NULL DEFAULT ''",
            "CREATE INDEX monitor_capacity_events_site ON monitor_capacity_events (site, role, at)",
        ])

    let store: any SQLStore
    /// The site whose decisions these are.
    let site: String
    public init(store: any SQLStore, site: String = "") {
        self.store = store
        self.site = site
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    public func append(_ event: CapacityEvent) async throws {
        let document = String(decoding: try Self.encoder.encode(event), as: UTF8.self)
        try await store.execute(
            "INSERT INTO monitor_capacity_events (id, at, role, document, site) VALUES ($1, $2, $3, $4, $5)",
            [.text(RandomID.uuidString()), .real(event.at.timeIntervalSince1970), .text(event.role), .text(document), .text(site)])
    }

    /// Newest first.
    public func history(role: String? = nil, limit: Int = 100) async throws -> [CapacityEvent] {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        let limit = SQLValue.int(max(1, min(limit, 10_000)))
        let rows: [SQLRow]
        if let role {
            rows = try await store.query(
                "SELECT document FROM monitor_capacity_events WHERE site = $3 AND role = $1 ORDER BY at DESC LIMIT $2", [.text(role), limit, .text(site)])
        } else {
            rows = try await store.query("SELECT document FROM monitor_capacity_events WHERE site = $2 ORDER BY at DESC LIMIT $1", [limit, .text(site)])
        }
        return try rows.map { try decoder.decode(CapacityEvent.self, from: Data(try $0.string("document").utf8)) }
    }
}

/// The control rules applied to what the monitor collected (docs/capacity.md): per role, each instance's load at each
/// bucket is the higher of its own CPU (`troncal_process_cpu_percent`, a share of its host) and its capacity figure
/// (an SBC's active calls against `sbc.maximumCalls`); the peak bucket of the window sizes the role. A decision that
/// differs from the role's last one is recorded with its reason, logged, and exported as metrics that the
/// `CapacityScaleOutAdvised` alarm reads (so it reaches the dashboard and the webhooks). In `advise` mode, the only one
/// built, nothing is started or stopped.
///
/// One controller per site is active: the monitor instance first by name among those the collected figures show
/// healthy; the others stand by, and take over when it stops answering.
public struct CapacityController: Service {
    let samples: SampleStore
    let history: CapacityHistoryStore
    let states: InstanceStateStore
    let settings: CapacitySettings
    let site: String
    let instances: [InstanceSettings]
    let sbcMaximumCalls: Int
    let me: String
    let scrapeIntervalSeconds: Int
    /// How `act` mode starts and stops instances; nil in the other modes.
    let executor: (any InstanceExecutor)?
    /// Where firing alarms are (an SBC with a critical security alarm is withdrawn in `act` mode).
    let alarms: MonitorStore?
    let logger: Logger

    public init(
        samples: SampleStore, history: CapacityHistoryStore, states: InstanceStateStore, settings: CapacitySettings, site: String,
        instances: [InstanceSettings], sbcMaximumCalls: Int, me: String, scrapeIntervalSeconds: Int, executor: (any InstanceExecutor)? = nil,
        alarms: MonitorStore? = nil, logger: Logger
    ) {
        self.alarms = alarms
        self.samples = samples
        self.history = history
        self.states = states
        self.settings = settings
        self.site = site
        self.instances = instances
        self.sbcMaximumCalls = sbcMaximumCalls
        self.me = me
        self.scrapeIntervalSeconds = scrapeIntervalSeconds
        self.executor = executor
        self.logger = logger
    }

    /// The executor `monitor.capacity.executor` names (`local`: through `dataDirectory`'s desired-state file).
    public static func executor(_ settings: ExecutorSettings, dataDirectory: URL) -> any InstanceExecutor {
        let timeout = Duration.seconds(settings.timeoutSeconds)
        switch settings.kind {
        case "systemd": return SystemdExecutor(systemctl: settings.systemctl, timeout: timeout)
        case "command": return CommandExecutor(program: settings.command[0], arguments: Array(settings.command.dropFirst()), timeout: timeout)
        default: return LocalProcessExecutor(dataDirectory: dataDirectory)
        }
    }

    var acting: Bool { settings.mode == "act" && executor != nil }

    public static let roles: [Role] = [.sbc, .routing, .billing, .pbx, .monitor]

    var rules: CapacityRules {
        var rules = CapacityRules()
        rules.plannedLoad = settings.plannedLoad
        rules.scaleOutLoad = settings.scaleOutLoad
        rules.minimumInstances = settings.minimumInstances
        rules.scaleInWindowSeconds = Double(settings.scaleInWindowSeconds)
        rules.bucketSeconds = Double(settings.bucketSeconds)
        return rules
    }

    public func run() async throws {
        guard settings.mode != "off" else { return await Task.sleepUnlessShuttingDown(for: .seconds(86_400 * 365)) }
        var wasActive: Bool?
        var activeSince = Date()
        while !Task.isCancelledOrShuttingDown {
            let now = Date()
            do {
                let active = try await isActive(now: now)
                if active != wasActive {
                    logger.info(active ? "capacity controller active for the site" : "capacity controller standing by: another monitor is active")
                    wasActive = active
                    activeSince = now
                }
                if active {
                    _ = try await evaluate(now: now, activeSince: activeSince)
                } else {
                    // Standing by: no advice of ours stays exported (the active monitor exports the site's).
                    for role in Self.roles {
                        for name in ["troncal_capacity_scale_out_advised", "troncal_capacity_scale_in_advised"] {
                            Gauge(label: name, dimensions: [("role", role.rawValue)]).record(0)
                        }
                    }
                }
            } catch {
                logger.error("capacity rules not applied this round", metadata: ["reason": "\(error)"])
            }
            await Task.sleepUnlessShuttingDown(for: .seconds(settings.intervalSeconds))
        }
    }

    func series(_ name: String, _ instance: InstanceSettings) -> String {
        MetricSample(name, ["site": site, "instance": instance.name, "role": instance.role.rawValue], 0).seriesKey
    }

    /// Active unless a monitor instance first by name was seen healthy in the last three scrapes (or 30 s).
    public func isActive(now: Date) async throws -> Bool {
        let recent = now.addingTimeInterval(-Double(max(30, 3 * scrapeIntervalSeconds)))
        for other in instances.filter({ $0.role == .monitor && $0.name < me }) {
            let points = try await samples.points(series: series("troncal_instance_healthy", other), from: recent, to: now.addingTimeInterval(1), resolution: "raw")
            if points.contains(where: { $0.average >= 0.5 }) { return false }
        }
        return true
    }

    /// The figures of a role over the window, and the SBCs whose CPU was left out of some buckets because they were
    /// flooded then (name → buckets).
    struct Loads {
        var samples: [LoadSample] = []
        var flooded: [String: Int] = [:]
    }

    /// Each instance's load per bucket of the window: the higher of its CPU and its capacity figure, at their highest.
    /// An SBC's CPU in a bucket where it dropped `floodRequestsPerMinute` or more requests a minute from banned
    /// sources is left out (the flood's, not demand); its calls count.
    func loads(of role: Role, among names: [String], now: Date, notBefore: Date? = nil) async throws -> Loads {
        let from = max(now.addingTimeInterval(-Double(settings.windowSeconds)), notBefore ?? .distantPast)
        let resolution = settings.windowSeconds <= 7200 ? "raw" : "minute"
        let bucket = Double(settings.bucketSeconds)
        var result = Loads()
        for instance in instances where instance.role == role && names.contains(instance.name) {
            var cpu: [Int: Double] = [:]
            var capacity: [Int: Double] = [:]
            for point in try await samples.points(series: series("troncal_process_cpu_percent", instance), from: from, to: now, resolution: resolution) {
                let key = Int((point.at.timeIntervalSince1970 / bucket).rounded(.down))
                cpu[key] = max(cpu[key] ?? 0, point.maximum / 100)
            }
            if role == .sbc, sbcMaximumCalls > 0 {
                for point in try await samples.points(series: series("troncal_sbc_calls_active", instance), from: from, to: now, resolution: resolution) {
                    let key = Int((point.at.timeIntervalSince1970 / bucket).rounded(.down))
                    capacity[key] = max(capacity[key] ?? 0, point.maximum / Double(sbcMaximumCalls))
                }
            }
            let flooded = role == .sbc ? try await floodedBuckets(of: instance, from: from, to: now, resolution: resolution) : []
            for key in Set(cpu.keys).union(capacity.keys).sorted() {
                var figure = cpu[key] ?? 0
                if flooded.contains(key) {
                    result.flooded[instance.name, default: 0] += 1
                    // Without a capacity figure, nothing of the bucket is demand.
                    guard capacity[key] != nil else { continue }
                    figure = 0
                }
                result.samples.append(LoadSample(
                    at: Date(timeIntervalSince1970: Double(key) * bucket), instance: instance.name, cpu: figure, capacity: capacity[key]))
            }
        }
        return result
    }

    /// The buckets in which `instance` (an SBC) dropped at least `floodRequestsPerMinute` requests a minute from
    /// sources it had banned: the increase of `troncal_sbc_requests_blocked_total{reason="banned"}` between scrapes,
    /// summed per bucket (a counter that went back, a restarted SBC, counts from zero).
    func floodedBuckets(of instance: InstanceSettings, from: Date, to: Date, resolution: String) async throws -> Set<Int> {
        guard settings.floodRequestsPerMinute > 0 else { return [] }
        let bucket = Double(settings.bucketSeconds)
        let labels = ["site": site, "instance": instance.name, "role": instance.role.rawValue, "reason": "banned"]
        // One scrape before the window, so that its first bucket has an increase too.
        let points = try await samples.points(
            series: MetricSample("troncal_sbc_requests_blocked_total", labels, 0).seriesKey, from: from.addingTimeInterval(-bucket), to: to,
            resolution: resolution)
        var increase: [Int: Double] = [:]
        for (previous, point) in zip(points, points.dropFirst()) {
            let key = Int((point.at.timeIntervalSince1970 / bucket).rounded(.down))
            increase[key, default: 0] += point.maximum >= previous.maximum ? point.maximum - previous.maximum : point.maximum
        }
        let threshold = Double(settings.floodRequestsPerMinute) * bucket / 60
        return Set(increase.filter { $0.value >= threshold }.keys)
    }

    /// Applies the rules to every role once; records (and returns) the decisions that changed.
    @discardableResult
    public func evaluate(now: Date, activeSince: Date = .distantPast) async throws -> [CapacityEvent] {
        let planner = CapacityPlanner(rules: rules)
        var recorded: [CapacityEvent] = []
        if acting { recorded += try await replaceFailed(now: now, activeSince: activeSince) }
        let entries = try await states.entries()
        for role in Self.roles {
            let names = entries.filter { $0.instance.role == role && $0.state == .service }.map(\.instance.name)
            guard !names.isEmpty else { continue }
            let pool = entries.filter { $0.instance.role == role && $0.state == .standby }.map(\.instance).sorted { $0.name < $1.name }
            // After a change of the role's instances, the role settles, then only figures from after it count.
            var settledSince: Date?
            if acting, let changed = entries.filter({ $0.instance.role == role }).compactMap(\.changedAt).max() {
                let settled = changed.addingTimeInterval(Double(settings.settleSeconds))
                if settled > now {
                    // Nothing advised while it settles (the advice alarm would otherwise stay up on the old figures).
                    Self.export(role: role, instances: names.count, planned: nil, action: .hold)
                    continue
                }
                settledSince = settled
            }
            let figures = try await loads(of: role, among: names, now: now, notBefore: settledSince)
            var plan = planner.plan(
                role: role, samples: figures.samples, instances: names, standby: (settings.standby[role.rawValue] ?? 0) + pool.count)
            if !figures.flooded.isEmpty {
                let which = figures.flooded.sorted { $0.key < $1.key }.map { "\($0.key) in \($0.value) bucket(s)" }.joined(separator: ", ")
                plan.reason += "; CPU not counted while flooded (at least \(settings.floodRequestsPerMinute) requests a minute from banned sources "
                    + "dropped): \(which)"
            }
            var changed = false
            if acting, plan.action != .hold {
                let (done, didChange) = try await carryOut(plan, role: role, inService: names, pool: pool, now: now)
                plan.reason += done
                changed = didChange
            }
            Self.export(role: role, instances: plan.instances, planned: plan.after, action: plan.action)
            let last = try await history.history(role: role.rawValue, limit: 1).first
            // Recorded when the decision differs from the last one, or when something was started or stopped.
            guard changed || last == nil || last?.action != plan.action.rawValue || last?.after != plan.after || last?.instances != plan.instances
            else { continue }
            let event = CapacityEvent(
                at: now, role: plan.role, action: plan.action.rawValue, instances: plan.instances, planned: plan.planned, after: plan.after,
                fromStandby: plan.fromStandby, missing: plan.missing, peakTotal: plan.peakTotal, peakAt: plan.peakAt,
                busiestInstance: plan.busiestInstance, busiestLoad: plan.busiestLoad, reason: plan.reason, mode: settings.mode)
            try await history.append(event)
            recorded.append(event)
            let metadata: Logger.Metadata = [
                "role": "\(role.rawValue)", "instances": "\(plan.instances)", "after": "\(plan.after)", "reason": "\(plan.reason)",
            ]
            switch plan.action {
            case .scaleOut where acting: logger.warning("capacity: more instances needed: scaling out", metadata: metadata)
            case .scaleIn where acting: logger.notice("capacity: fewer instances will do: scaling in", metadata: metadata)
            case .scaleOut: logger.warning("capacity: more instances needed (advice, nothing started)", metadata: metadata)
            case .scaleIn: logger.notice("capacity: fewer instances would do (advice, nothing stopped)", metadata: metadata)
            case .hold: logger.info("capacity: the instances in service fit the rules", metadata: metadata)
            }
            Counter(label: "troncal_capacity_decisions_total", dimensions: [("role", role.rawValue), ("action", plan.action.rawValue)]).increment()
        }
        return recorded
    }

    /// The role's gauges: instances in service, the planned count (when there is a plan) and the advice.
    static func export(role: Role, instances: Int, planned: Int?, action: CapacityPlan.Action) {
        let dimensions = [("role", role.rawValue)]
        Gauge(label: "troncal_capacity_instances", dimensions: dimensions).record(instances)
        if let planned { Gauge(label: "troncal_capacity_planned_instances", dimensions: dimensions).record(planned) }
        Gauge(label: "troncal_capacity_scale_out_advised", dimensions: dimensions).record(action == .scaleOut ? 1 : 0)
        Gauge(label: "troncal_capacity_scale_in_advised", dimensions: dimensions).record(action == .scaleIn ? 1 : 0)
    }

    /// `act`: starts standby instances for a scale-out (first by name), stops the surplus of a scale-in (last by name,
    /// never this monitor; SIGTERM, so an SBC drains); returns what was done, in words, for the reason, and whether
    /// an instance was started or stopped.
    func carryOut(_ plan: CapacityPlan, role: Role, inService: [String], pool: [InstanceSettings], now: Date) async throws -> (String, Bool) {
        guard let executor else { return ("", false) }
        var changed = false
        var done: [String] = []
        if plan.action == .scaleOut {
            for standby in pool.prefix(max(0, plan.after - plan.instances)) {
                do {
                    try await executor.start(role: role, instance: standby.name)
                    try await states.set(standby, .service, reason: "scale-out", at: now)
                    changed = true
                    done.append("started \(standby.name) (\(executor.kind))")
                } catch {
                    done.append("could not start \(standby.name): \(error)")
                    logger.error("capacity: a standby instance could not be started", metadata: ["instance": "\(standby.name)", "reason": "\(error)"])
                }
            }
            if done.isEmpty { done.append("no standby instance of \(role.rawValue) configured here to start: provision one") }
        } else if plan.action == .scaleIn {
            let surplus = inService.sorted().reversed().filter { $0 != me }.prefix(max(0, plan.instances - plan.after))
            for name in surplus {
                guard let instance = instances.first(where: { $0.name == name }) else { continue }
                do {
                    try await executor.stop(role: role, instance: name)
                    try await states.set(instance, .standby, reason: "scale-in", at: now)
                    changed = true
                    done.append("stopped \(name), back to the standby pool (\(executor.kind))")
                } catch {
                    done.append("could not stop \(name): \(error)")
                    logger.error("capacity: an instance could not be stopped", metadata: ["instance": "\(name)", "reason": "\(error)"])
                }
            }
        }
        return ("; " + done.joined(separator: "; "), changed)
    }

    /// Why an instance in service counts as failed now: not healthy in any scrape of the last `replaceAfterSeconds`
    /// (down, or unhealthy; degraded is not failed), found so in at least two scrapes, and watched since before that
    /// time (a scrape before it), so that a monitor that just started, or a slow round, judges nobody. Nil when it is
    /// not failed.
    func failure(of instance: InstanceSettings, now: Date, activeSince: Date) async throws -> String? {
        let window = Double(settings.replaceAfterSeconds)
        let from = now.addingTimeInterval(-window)
        let identity = ["site": site, "instance": instance.name, "role": instance.role.rawValue]
        let lookback = from.addingTimeInterval(-max(60, 5 * Double(scrapeIntervalSeconds)))
        let scrapes = try await samples.points(
            series: MetricSample("troncal_instance_up", identity.merging(["host": instance.host]) { $1 }, 0).seriesKey, from: lookback,
            to: now.addingTimeInterval(1), resolution: "raw")
        let up = scrapes.filter { $0.at > from }
        guard scrapes.contains(where: { $0.at <= from }), up.count >= 2 else { return nil }
        // One that has not answered since this controller became active may still be starting (a whole site starting
        // on a loaded machine): judged only after max(120 s, 3 × the replace time) of it; one that answered and then
        // failed, at once.
        let startedEarlier = now.timeIntervalSince(activeSince) >= max(120, 3 * window)
        guard startedEarlier || scrapes.contains(where: { $0.at <= from && $0.average >= 0.5 }) else { return nil }
        let healthy = try await samples.points(
            series: MetricSample("troncal_instance_healthy", identity, 0).seriesKey, from: from.addingTimeInterval(0.001), to: now.addingTimeInterval(1),
            resolution: "raw")
        guard !healthy.contains(where: { $0.average >= 0.5 }) else { return nil }
        let answered = up.contains { $0.average >= 0.5 }
        return answered
            ? "\(instance.name) was unhealthy in every scrape of the last \(Int(window)) s (\(up.count) scrapes)"
            : "\(instance.name) did not answer /health in any scrape of the last \(Int(window)) s (\(up.count) scrapes)"
    }

    /// Why an SBC counts as under attack: a critical security alarm fires for it (`SBCBanStorm`: a flood or a scan
    /// banning sources faster than the critical threshold). Such an SBC is drained (SIGTERM: no new calls, the calls up
    /// finish within `sbc.drainSeconds`), withdrawn and replaced, never taken back by the controller: an exposed
    /// server that was attacked is rebuilt from a clean configuration. Nil when it is not.
    func attack(on instance: InstanceSettings, firing: [Alarm]) -> String? {
        guard instance.role == .sbc else { return nil }
        let alarm = firing.first { alarm in
            alarm.category == .security && alarm.severity == .critical && alarm.labels["instance"] == instance.name
                && (alarm.labels["site"] ?? site) == site
        }
        return alarm.map { "\(instance.name) is under attack: \($0.rule) critical (\($0.summary))" }
    }

    /// `act`: each instance in service that failed for `replaceAfterSeconds` (and was not changed by the controller
    /// within that time) is stopped through the executor (it may be gone already), withdrawn, and the first standby of
    /// its role started in its place. Each replacement is recorded with its reason.
    func replaceFailed(now: Date, activeSince: Date) async throws -> [CapacityEvent] {
        guard acting else { return [] }
        var recorded: [CapacityEvent] = []
        var entries = try await states.entries()
        let firing = try await alarms?.firing() ?? []
        for entry in entries where entry.state == .service && entry.instance.name != me && Self.roles.contains(entry.instance.role) {
            if let changed = entry.changedAt, now.timeIntervalSince(changed) < Double(settings.replaceAfterSeconds) { continue }
            var found = attack(on: entry.instance, firing: firing)
            if found == nil { found = try await failure(of: entry.instance, now: now, activeSince: activeSince) }
            guard let why = found else { continue }
            recorded.append(try await replace(entry.instance, why: why, entries: entries, now: now))
            entries = try await states.entries()
        }
        return recorded
    }

    /// Stops `instance` through the executor (it may be gone already), withdraws it, starts the first standby of its
    /// role that starts, and records the decision (action `replace`) with `why` and what was done.
    func replace(_ instance: InstanceSettings, why: String, entries: [InstanceStateStore.Entry], now: Date) async throws -> CapacityEvent {
        guard let executor else { throw CapacityError("the capacity controller does not act here (monitor.capacity.mode is \(settings.mode))") }
        let role = instance.role
        var reason = why
        do {
            try await executor.stop(role: role, instance: instance.name)
            reason += role == .sbc ? "; drained, withdrawn and stopped (\(executor.kind))" : "; withdrawn and stopped (\(executor.kind))"
        } catch {
            reason += "; withdrawn (its stop failed: \(error))"
        }
        try await states.set(instance, .withdrawn, reason: why, at: now)
        let inService = entries.filter { $0.instance.role == role && $0.state == .service }.count
        var started = 0
        for standby in entries.filter({ $0.instance.role == role && $0.state == .standby }).map(\.instance).sorted(by: { $0.name < $1.name }) {
            do {
                try await executor.start(role: role, instance: standby.name)
                try await states.set(standby, .service, reason: "replaces \(instance.name)", at: now)
                reason += "; \(standby.name) from the standby pool started in its place"
                started = 1
                break
            } catch {
                reason += "; \(standby.name) could not be started: \(error)"
            }
        }
        if started == 0 { reason += "; no standby instance of \(role.rawValue) left to start: provision one" }
        let event = CapacityEvent(
            at: now, role: role.rawValue, action: "replace", instances: inService, planned: inService, after: inService - 1 + started,
            fromStandby: started, missing: 1 - started, peakTotal: 0, peakAt: nil, busiestInstance: instance.name, busiestLoad: 0,
            reason: reason, mode: settings.mode)
        try await history.append(event)
        logger.warning("capacity: an instance is withdrawn and replaced", metadata: [
            "role": "\(role.rawValue)", "instance": "\(instance.name)", "reason": "\(reason)", "site": "\(site)",
        ])
        Counter(label: "troncal_capacity_decisions_total", dimensions: [("role", role.rawValue), ("action", "replace")]).increment()
        return event
    }

    /// The operator withdraws an instance (`troncal capacity withdraw`): a server found compromised, or to be
    /// rebuilt. It is stopped, withdrawn and replaced like a failed one, and never taken back by the controller.
    public func withdraw(_ name: String, reason: String, compromised: Bool, by operatorName: String, now: Date = Date()) async throws -> CapacityEvent {
        guard acting else { throw CapacityError("withdrawing needs monitor.capacity.mode act (it is \(settings.mode) here)") }
        let entries = try await states.entries()
        guard let entry = entries.first(where: { $0.instance.name == name }) else { throw CapacityError("no instance \(name) in site \(site)") }
        guard entry.instance.name != me else { throw CapacityError("\(name) is this monitor: withdraw it through another monitor instance") }
        guard entry.state == .service else { throw CapacityError("\(name) is not in service (it is \(entry.state.rawValue))") }
        let what = compromised ? "marked compromised" : "withdrawn"
        return try await replace(entry.instance, why: "\(name) \(what) by \(operatorName): \(reason)", entries: entries, now: now)
    }

    /// The operator puts a withdrawn instance back in the standby pool (`troncal capacity return`), once its server
    /// is rebuilt from a clean configuration.
    public func returnToPool(_ name: String, by operatorName: String, now: Date = Date()) async throws -> InstanceStateStore.State {
        let entries = try await states.entries()
        guard let entry = entries.first(where: { $0.instance.name == name }) else { throw CapacityError("no instance \(name) in site \(site)") }
        guard entry.state == .withdrawn else { throw CapacityError("\(name) is not withdrawn (it is \(entry.state.rawValue))") }
        try await states.set(entry.instance, .standby, reason: "returned to the standby pool by \(operatorName)", at: now)
        logger.notice("capacity: a withdrawn instance is back in the standby pool", metadata: ["instance": "\(name)", "by": "\(operatorName)", "site": "\(site)"])
        return .standby
    }
}
