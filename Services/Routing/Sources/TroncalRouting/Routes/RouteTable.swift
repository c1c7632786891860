public import Foundation
public import TroncalProtocol
public import TroncalCatalog
public import TroncalRuntime

/// The routes the routing core answers `routing.route` from: per route plan and destination prefix, the carrier
/// choices with their strategy (least cost, priority, weighted share, or as listed), time-of-day variants and
/// blocks; the carriers' trunks with their number shaping and capacity; the carriers' buy rates for least-cost
/// ordering; and the operator's DIDs.
///
/// Built from the configured routes of `site.json` (`routing.routes`, `routing.dids`) and the imported catalogs
/// (``RoutingCatalog``), and swapped whole when a catalog changes, so lookups never wait for a rebuild.
///
/// A customer's own routes (configured routes that list the customer, and the routes of the customer's plan)
/// beat the general ones (configured routes for every customer, and plan `default`) of the same or a shorter
/// prefix; between two routes of one kind the longest prefix wins.
public struct RouteTable: Sendable {
    /// A trunk as routes use it.
    public struct Trunk: Sendable, Hashable {
        public var carrier: String
        public var trunk: String
        public var host: String
        public var port: Int
        public var transport: String
        public var stripDigits: Int
        public var addPrefix: String
        public var setupTimeoutMilliseconds: Int
        public var probe: Bool
        public var maximumCalls: Int
        public var maximumCallsPerSecond: Int

        public var key: CarrierHealth.Trunk { CarrierHealth.Trunk(carrier: carrier, trunk: trunk) }
    }

    struct Choice: Sendable {
        var carrier: String
        var trunks: [Trunk]
        var priority: Int
        var weight: Int
        var costMicros: Int64?
        var schedule: Schedule
        var blocked: Bool
        var index: Int
    }

    struct Entry: Sendable {
        var strategy: RouteStrategy
        var choices: [Choice]
        var hasSchedules: Bool { choices.contains { !$0.schedule.isAlways } }
    }

    static let generalPlan = PlanRecord.defaultPlan

    /// Route tries by plan; the general routes are plan `default`; a configured customer route lives in a plan of
    /// its own named after the customer.
    let plans: [String: PrefixTrie<Entry>]
    /// Per customer, the plans holding its own routes (configured ones first).
    let customerPlans: [String: [String]]
    /// Per carrier, its buy rates by prefix, in millionths per minute.
    let rates: [String: PrefixTrie<Int64>]
    let normalizer: NumberNormalizer?
    let setupTimeoutMilliseconds: Int
    /// The operator's numbers, by E.164 digits.
    let dids: [String: DIDRecord]
    let timeZone: TimeZone
    /// Every trunk named by the configured routes or the carriers catalog, once.
    public let allTrunks: [Trunk]
    /// Route rows skipped because their carrier or trunk is unknown (logged at load).
    public let skippedRoutes: Int

    /// The configured routes only (no catalogs).
    public init(_ settings: RoutingSettings) throws(NumberingError) {
        try self.init(settings, catalog: RoutingCatalog())
    }

    public init(_ settings: RoutingSettings, catalog: RoutingCatalog) throws(NumberingError) {
        var builders: [String: [(prefix: String, entry: Entry)]] = [:]
        var customerPlans: [String: [String]] = [:]
        var trunks: [Trunk] = []
        var seenTrunks = Set<CarrierHealth.Trunk>()
        func remember(_ trunk: Trunk) {
            if seenTrunks.insert(trunk.key).inserted { trunks.append(trunk) }
        }

        // The configured routes: each target is one choice of one trunk, tried in the order listed.
        for route in settings.routes {
            let choices = route.blocked
                ? [Choice(carrier: "", trunks: [], priority: 0, weight: 1, costMicros: nil, schedule: .always, blocked: true, index: 0)]
                : route.targets.enumerated().map { offset, target in
                    let trunk = Trunk(
                        carrier: target.carrier, trunk: target.trunk.isEmpty ? target.carrier : target.trunk, host: target.host, port: target.port,
                        transport: target.transport, stripDigits: target.stripDigits, addPrefix: target.addPrefix,
                        setupTimeoutMilliseconds: target.setupTimeoutMilliseconds, probe: target.probe, maximumCalls: 0, maximumCallsPerSecond: 0)
                    remember(trunk)
                    return Choice(
                        carrier: target.carrier, trunks: [trunk], priority: offset, weight: 1, costMicros: nil, schedule: .always, blocked: false,
                        index: offset)
                }
            let entry = Entry(strategy: .ordered, choices: choices)
            if route.customers.isEmpty {
                builders[Self.generalPlan, default: []].append((route.prefix, entry))
            } else {
                for customer in route.customers {
                    let plan = "\u{1}config:\(customer)"
                    builders[plan, default: []].append((route.prefix, entry))
                    if customerPlans[customer]?.contains(plan) != true { customerPlans[customer, default: []].append(plan) }
                }
            }
        }

        // The catalogs: trunks by carrier, plans and their customers, then routes grouped by plan and prefix.
        var trunksByCarrier: [String: [Trunk]] = [:]
        for record in catalog.trunks {
            let trunk = Trunk(
                carrier: record.carrier, trunk: record.trunk, host: record.host, port: record.port, transport: record.transport,
                stripDigits: record.stripDigits, addPrefix: record.addPrefix, setupTimeoutMilliseconds: record.setupTimeoutMilliseconds,
                probe: record.probe, maximumCalls: record.maximumCalls, maximumCallsPerSecond: record.maximumCallsPerSecond)
            trunksByCarrier[record.carrier, default: []].append(trunk)
            remember(trunk)
        }
        var strategies: [String: RouteStrategy] = [Self.generalPlan: .cost]
        for plan in catalog.plans {
            strategies[plan.plan] = plan.strategy
            for customer in plan.customers where plan.plan != Self.generalPlan {
                customerPlans[customer, default: []].append("\u{2}plan:\(plan.plan)")
            }
        }
        var grouped: [String: [String: Entry]] = [:]
        var order: [(plan: String, prefix: String)] = []
        var skipped = 0
        for (index, record) in catalog.routes.enumerated() {
            let plan = record.plan == Self.generalPlan ? Self.generalPlan : "\u{2}plan:\(record.plan)"
            var choice = Choice(
                carrier: record.carrier, trunks: [], priority: record.priority, weight: record.weight, costMicros: record.costMicros,
                schedule: record.schedule, blocked: record.blocked, index: index)
            if !record.blocked {
                let trunks = (trunksByCarrier[record.carrier] ?? []).filter { record.trunk.isEmpty || $0.trunk == record.trunk }
                guard !trunks.isEmpty else {
                    skipped += 1
                    continue
                }
                choice.trunks = trunks
            }
            if grouped[plan]?[record.prefix] == nil {
                order.append((plan, record.prefix))
                grouped[plan, default: [:]][record.prefix] = Entry(strategy: strategies[record.plan] ?? .cost, choices: [])
            }
            grouped[plan]?[record.prefix]?.choices.append(choice)
        }
        for (plan, prefix) in order {
            if let entry = grouped[plan]?[prefix] { builders[plan, default: []].append((prefix, entry)) }
        }

        var plans: [String: PrefixTrie<Entry>] = [:]
        for (plan, entries) in builders {
            var trie = PrefixTrie<Entry>(minimumCapacity: entries.count)
            for (prefix, entry) in entries { try trie.insert(prefix, entry) }
            trie.compact()
            plans[plan] = trie
        }
        var rateBuilders: [String: [(String, Int64)]] = [:]
        for rate in catalog.rates { rateBuilders[rate.carrier, default: []].append((rate.prefix, rate.rateMicros)) }
        var rates: [String: PrefixTrie<Int64>] = [:]
        for (carrier, entries) in rateBuilders { rates[carrier] = try PrefixTrie(entries) }

        var dids: [String: DIDRecord] = [:]
        for did in settings.dids where dids[did.number] == nil {
            dids[did.number] = DIDRecord(number: did.number, customer: did.customer, host: did.host, port: did.port, transport: did.transport)
        }
        for did in catalog.dids { dids[did.number] = did }

        self.plans = plans
        self.customerPlans = customerPlans
        self.rates = rates
        self.normalizer = settings.nationalCountry.isEmpty ? nil : try NumberNormalizer(country: settings.nationalCountry)
        self.setupTimeoutMilliseconds = settings.setupTimeoutMilliseconds
        self.dids = dids
        self.timeZone = TimeZone(identifier: settings.timeZone) ?? TimeZone(secondsFromGMT: 0) ?? .current
        self.allTrunks = trunks
        self.skippedRoutes = skipped
    }

    /// How many DIDs the table holds.
    public var didCount: Int { dids.count }

    /// Distinct prefixes over every plan (a configured customer route counted once per customer it lists).
    public var count: Int { plans.values.reduce(0) { $0 + $1.count } }

    /// Every distinct trunk of the table that is to be probed.
    public var trunks: [RouteTarget] {
        var seen = Set<String>()
        return allTrunks.filter(\.probe).compactMap { trunk in
            guard seen.insert("\(trunk.carrier)|\(trunk.trunk)|\(trunk.host)|\(trunk.port)|\(trunk.transport)").inserted else { return nil }
            return RouteTarget(
                carrier: trunk.carrier, trunk: trunk.trunk, host: trunk.host, port: trunk.port, transport: trunk.transport, number: "",
                setupTimeoutMilliseconds: 0)
        }
    }

    /// Whether a trunk may take one more call now. `demoted`: it may, but after every available trunk of the route
    /// (its media quality is below `routing.minimumTrunkMOS`).
    public enum Availability: Sendable { case available, demoted, outOfService, atCapacity }

    /// The answer to one `routing.route` at `now`; `availability` says which trunks can take the call (out of
    /// service or at capacity ones are left out).
    public func decide(
        _ request: RouteRequest, now: Date = Date(), availability: (Trunk) -> Availability = { _ in .available }
    ) -> RouteDecision {
        var generator = SystemRandomNumberGenerator()
        return decide(request, now: now, availability: availability, using: &generator)
    }

    /// The configured-routes form kept for callers that only know health.
    public func decide(_ request: RouteRequest, inService: (CarrierHealth.Trunk) -> Bool) -> RouteDecision {
        decide(request, availability: { inService($0.key) ? .available : .outOfService })
    }

    public func decide(
        _ request: RouteRequest, now: Date, availability: (Trunk) -> Availability, using generator: inout some RandomNumberGenerator
    ) -> RouteDecision {
        let digits: String
        do {
            digits = try e164Digits(request.callee)
        } catch {
            return RouteDecision(outcome: .reject, rejectStatus: 404, reason: "the called number is not a valid number: \(error.detail)")
        }
        if request.fromCarrier {
            // Origination: only the operator's own numbers are taken from carriers.
            guard let did = dids[digits] else {
                return RouteDecision(outcome: .reject, callee: digits, rejectStatus: 404, reason: "+\(digits) is not one of our numbers")
            }
            let target = RouteTarget(
                carrier: "on-net", trunk: did.customer, host: did.host, port: did.port, transport: did.transport, number: digits,
                setupTimeoutMilliseconds: setupTimeoutMilliseconds)
            return RouteDecision(outcome: .onNet, callee: digits, onNet: target)
        }
        // The weekday and minute cost a calendar computation: only for routes that have time-of-day rows.
        var cachedMoment: (weekday: Int, minute: Int)??
        let moment = { () -> (weekday: Int, minute: Int)? in
            if let cachedMoment { return cachedMoment }
            let computed = self.moment(now)
            cachedMoment = .some(computed)
            return computed
        }
        var specific: (length: Int, entry: Entry, active: [Choice])?
        for plan in customerPlans[request.customer] ?? [] {
            guard let trie = plans[plan], let found = Self.match(trie, digits, moment) else { continue }
            if specific == nil || found.length > specific!.length { specific = found }
        }
        let general = plans[Self.generalPlan].flatMap { Self.match($0, digits, moment) }
        let chosen: (length: Int, entry: Entry, active: [Choice])?
        switch (specific, general) {
        case (let specific?, let general?): chosen = specific.length >= general.length ? specific : general
        case (let specific?, nil): chosen = specific
        case (nil, let general?): chosen = general
        case (nil, nil): chosen = nil
        }
        guard let route = chosen else {
            return RouteDecision(outcome: .reject, callee: digits, rejectStatus: 404, reason: "no route for +\(digits)")
        }
        let prefix = String(digits.prefix(route.length))
        if route.active.contains(where: \.blocked) {
            return RouteDecision(outcome: .reject, callee: digits, rejectStatus: 403, reason: "destination +\(prefix) is blocked")
        }
        let ordered = order(route.active, strategy: route.entry.strategy, digits: digits, using: &generator)
        var seen = Set<CarrierHealth.Trunk>()
        var targets: [RouteTarget] = []
        var demoted: [RouteTarget] = []
        var outOfService = 0
        var full = 0
        for choice in ordered {
            for trunk in choice.trunks where seen.insert(trunk.key).inserted {
                let target = {
                    RouteTarget(
                        carrier: trunk.carrier, trunk: trunk.trunk, host: trunk.host, port: trunk.port, transport: trunk.transport,
                        number: trunk.addPrefix + digits.dropFirst(min(trunk.stripDigits, digits.count)),
                        setupTimeoutMilliseconds: trunk.setupTimeoutMilliseconds > 0 ? trunk.setupTimeoutMilliseconds : self.setupTimeoutMilliseconds)
                }
                switch availability(trunk) {
                case .outOfService: outOfService += 1
                case .atCapacity: full += 1
                case .available: targets.append(target())
                case .demoted: demoted.append(target())
                }
            }
        }
        targets += demoted
        guard !targets.isEmpty else {
            let why = full > 0 ? "\(outOfService) out of service, \(full) at capacity" : "\(outOfService) out of service"
            return RouteDecision(outcome: .reject, callee: digits, rejectStatus: 503, reason: "no carrier in service for +\(prefix) (\(why))")
        }
        return RouteDecision(outcome: .route, callee: digits, targets: targets)
    }

    /// The longest prefix of `digits` in `trie` that has a choice (or block) in force at `moment`; an entry whose
    /// every row is for other times is passed over for the next shorter prefix.
    static func match(
        _ trie: PrefixTrie<Entry>, _ digits: String, _ moment: () -> (weekday: Int, minute: Int)?
    ) -> (length: Int, entry: Entry, active: [Choice])? {
        var limit = digits.utf8.count
        while limit >= 0, let found = trie.longestMatch(utf8: digits.utf8.prefix(limit)) {
            let entry = found.value
            let active: [Choice]
            if entry.hasSchedules {
                let now = moment()
                active = entry.choices.filter { choice in now.map { choice.schedule.contains(weekday: $0.weekday, minute: $0.minute) } ?? true }
            } else {
                active = entry.choices
            }
            if !active.isEmpty { return (found.length, entry, active) }
            limit = found.length - 1
        }
        return nil
    }

    /// Weekday (0 Monday) and minute of the day in the routing time zone.
    func moment(_ now: Date) -> (weekday: Int, minute: Int)? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.weekday, .hour, .minute], from: now)
        guard let weekday = parts.weekday, let hour = parts.hour, let minute = parts.minute else { return nil }
        return ((weekday + 5) % 7, hour * 60 + minute)
    }

    func order(_ choices: [Choice], strategy: RouteStrategy, digits: String, using generator: inout some RandomNumberGenerator) -> [Choice] {
        switch strategy {
        case .ordered:
            return choices
        case .cost:
            let keyed = choices.map { choice in
                (choice, choice.costMicros ?? rates[choice.carrier]?.longestMatch(utf8: digits.utf8)?.value)
            }
            return keyed.sorted { a, b in
                switch (a.1, b.1) {
                case (let x?, let y?) where x != y: return x < y
                case (.some, nil): return true
                case (nil, .some): return false
                default: return (a.0.priority, a.0.index) < (b.0.priority, b.0.index)
                }
            }.map(\.0)
        case .priority:
            let groups = Dictionary(grouping: choices, by: \.priority)
            return groups.keys.sorted().flatMap { Self.weightedShuffle(groups[$0] ?? [], using: &generator) }
        case .weight:
            return Self.weightedShuffle(choices, using: &generator)
        }
    }

    /// A random order in which a choice comes first with probability weight / total weight (exponential keys);
    /// weight 0 choices go last, in file order.
    static func weightedShuffle(_ choices: [Choice], using generator: inout some RandomNumberGenerator) -> [Choice] {
        guard choices.count > 1 else { return choices }
        var keyed: [(Double, Choice)] = []
        var zero: [Choice] = []
        for choice in choices {
            if choice.weight <= 0 {
                zero.append(choice)
            } else {
                let u = Double.random(in: Double.ulpOfOne..<1, using: &generator)
                keyed.append((-log(u) / Double(choice.weight), choice))
            }
        }
        return keyed.sorted { $0.0 < $1.0 }.map(\.1) + zero.sorted { $0.index < $1.index }
    }

    /// The called number as E.164 digits: through the national dialling rules when configured, otherwise
    /// `+`/`00` stripped and the digits taken as they are.
    func e164Digits(_ callee: String) throws(NumberingError) -> String {
        if let normalizer {
            switch try normalizer.normalize(callee) {
            case .e164(let number): return number.digits
            case .shortCode(let code): throw NumberingError(.tooShort, "short code \(code.prefix(8)) is not routed to carriers")
            }
        }
        let dial = try DialString(parsing: callee)
        var digits = dial.digits
        if !dial.isGlobal, digits.hasPrefix("00") { digits.removeFirst(2) }
        guard (3...15).contains(digits.count) else {
            throw NumberingError(digits.count < 3 ? .tooShort : .tooLong, "an E.164 number has 3 to 15 digits, got \(digits.count)")
        }
        return digits
    }
}
