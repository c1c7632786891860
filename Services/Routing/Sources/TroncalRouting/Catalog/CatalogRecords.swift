public import TroncalProtocol
public import TroncalCatalog

/// One carrier trunk (a row of the `carriers` catalog): where to send calls, how to shape the number, and its
/// capacity.
public struct TrunkRecord: Sendable, Hashable {
    public var carrier: String
    /// Unique within the carrier; empty in the file means the carrier's name.
    public var trunk: String
    public var host: String
    public var port: Int = 5060
    public var transport: String = "udp"
    public var stripDigits: Int = 0
    public var addPrefix: String = ""
    /// Calls in progress allowed on the trunk; 0: no limit.
    public var maximumCalls: Int = 0
    /// New calls per second allowed on the trunk; 0: no limit.
    public var maximumCallsPerSecond: Int = 0
    public var probe: Bool = true
    /// 0: `routing.setupTimeoutMilliseconds`.
    public var setupTimeoutMilliseconds: Int = 0

    public init(carrier: String, trunk: String = "", host: String, port: Int = 5060, transport: String = "udp") {
        self.carrier = carrier
        self.trunk = trunk.isEmpty ? carrier : trunk
        self.host = host
        self.port = port
        self.transport = transport
    }
}

/// How a route orders its carrier choices.
public enum RouteStrategy: String, Sendable, Hashable, CaseIterable, Codable {
    /// Least cost first: the route row's `cost`, else the carrier's rate for the number (the `rates` catalog);
    /// choices with neither come last. Ties by priority, then file order.
    case cost
    /// Lowest `priority` first; within one priority, a weighted random order (by `weight`), as DNS SRV does.
    case priority
    /// A weighted random order over all choices (load share by `weight`).
    case weight
    /// As listed (the configured routes of `site.json`).
    case ordered
}

/// A route plan: the strategy of its routes and the customers on it. Customers on no plan use `default`.
public struct PlanRecord: Sendable, Hashable {
    public static let defaultPlan = "default"
    public var plan: String
    public var strategy: RouteStrategy
    public var customers: [String]

    public init(plan: String, strategy: RouteStrategy, customers: [String] = []) {
        self.plan = plan
        self.strategy = strategy
        self.customers = customers
    }
}

/// One row of the `routes` catalog: in `plan`, for numbers starting with `prefix`, a carrier to choose (or a block),
/// valid at the times of `schedule`.
public struct RouteRecord: Sendable, Hashable {
    public var plan: String = PlanRecord.defaultPlan
    public var prefix: String
    /// Empty only for a block.
    public var carrier: String = ""
    /// Empty: every trunk of the carrier, in the order of the `carriers` catalog.
    public var trunk: String = ""
    public var priority: Int = 1
    public var weight: Int = 1
    /// A fixed cost for least-cost ordering, in millionths of the currency unit per minute; nil: the rates catalog.
    public var costMicros: Int64?
    public var schedule: Schedule = .always
    public var blocked: Bool = false

    public init(plan: String = PlanRecord.defaultPlan, prefix: String, carrier: String = "", blocked: Bool = false) {
        self.plan = plan
        self.prefix = prefix
        self.carrier = carrier
        self.blocked = blocked
    }
}

/// A carrier's buy rate for a destination prefix, per minute, in millionths of the currency unit.
public struct RateRecord: Sendable, Hashable {
    public var carrier: String
    public var prefix: String
    public var rateMicros: Int64

    public init(carrier: String, prefix: String, rateMicros: Int64) {
        self.carrier = carrier
        self.prefix = prefix
        self.rateMicros = rateMicros
    }
}

/// One of the operator's numbers and the customer trunk (or PBX) that takes its calls.
public struct DIDRecord: Sendable, Hashable {
    public var number: String
    public var customer: String
    public var host: String
    public var port: Int = 5060
    public var transport: String = "udp"

    public init(number: String, customer: String, host: String, port: Int = 5060, transport: String = "udp") {
        self.number = number
        self.customer = customer
        self.host = host
        self.port = port
        self.transport = transport
    }
}

/// Everything the routing core routes from besides `site.json`: the five catalogs, each replaced whole by an import.
public struct RoutingCatalog: Sendable, Hashable {
    public var trunks: [TrunkRecord] = []
    public var plans: [PlanRecord] = []
    public var routes: [RouteRecord] = []
    public var rates: [RateRecord] = []
    public var dids: [DIDRecord] = []
    /// Per kind, the generation of the import it came from (0: never imported).
    public var generations: [RoutingCatalogKind: Int64] = [:]

    public init() {}

    public func rows(of kind: RoutingCatalogKind) -> Int {
        switch kind {
        case .carriers: trunks.count
        case .plans: plans.count
        case .routes: routes.count
        case .rates: rates.count
        case .dids: dids.count
        }
    }
}

