/// `routing.usage` (sbc → routing, one-way): a carrier trunk was seized for a call (the SBC sent it an INVITE) or an
/// answered call on it has ended. With the attempt reports (an attempt that ends unanswered frees its trunk), the
/// routing core counts each trunk's calls in progress and call rate, and skips a trunk at its capacity.
public struct TrunkUsage: LinkMessage, Hashable {
    public static let messageType = "routing.usage"

    public enum Event: String, Codable, Sendable, Hashable {
        /// An INVITE went out to the trunk.
        case seized
        /// An answered call on the trunk ended (BYE, or the SBC hung up).
        case released
    }

    public var event: Event
    public var carrier: String
    public var trunk: String
    /// The customer leg's Call-ID, as in the attempt reports.
    public var callID: String

    public init(event: Event, carrier: String, trunk: String, callID: String) {
        self.event = event
        self.carrier = carrier
        self.trunk = trunk
        self.callID = callID
    }
}

/// What a routing catalog holds, one CSV format each (`docs/routing.md` gives the columns).
public enum RoutingCatalogKind: String, Codable, Sendable, Hashable, CaseIterable {
    /// Carrier trunks: address, transport, number shaping, capacity, probing.
    case carriers
    /// Route plans: strategy (least cost, priority, weight) and the customers on each.
    case plans
    /// Routes: per plan and destination prefix, the carriers to choose from, with time-of-day variants and blocks.
    case routes
    /// Carriers' buy rates per destination prefix, for least-cost routing.
    case rates
    /// The operator's numbers (DIDs) and the customer trunk each goes to.
    case dids
}

/// `routing.import` (operator → routing): one part of a CSV upload that replaces a whole catalog. Parts of one
/// `upload` are sent in order (`part` 0, 1, …), each a run of whole lines; the part with `final: true` makes the
/// routing core check every row and, only when all are good, store them and swap its route table at once.
public struct RoutingImport: LinkRequest, Hashable {
    public typealias Reply = RoutingImportResult
    public static let messageType = "routing.import"

    public var kind: RoutingCatalogKind
    /// Chosen by the sender, the same for every part of one upload.
    public var upload: String
    public var part: Int
    public var final: Bool
    /// CSV text (UTF-8), whole lines; the first part starts with the header line.
    public var csv: String

    public init(kind: RoutingCatalogKind, upload: String, part: Int, final: Bool, csv: String) {
        self.kind = kind
        self.upload = upload
        self.part = part
        self.final = final
        self.csv = csv
    }
}

/// `routing.import.reply`: the part was taken (`rows` 0 until the final part), or the whole import was applied.
public struct RoutingImportResult: LinkMessage, Hashable {
    public static let messageType = "routing.import.reply"

    public var kind: RoutingCatalogKind
    /// Rows stored (on the final part).
    public var rows: Int
    /// The catalog's new generation (on the final part).
    public var generation: Int64
    /// How long checking, storing and rebuilding took (on the final part).
    public var milliseconds: Int

    public init(kind: RoutingCatalogKind, rows: Int, generation: Int64, milliseconds: Int) {
        self.kind = kind
        self.rows = rows
        self.generation = generation
        self.milliseconds = milliseconds
    }
}

/// `routing.export` (operator → routing): one part of a catalog as CSV, the same columns `routing.import` takes.
public struct RoutingExport: LinkRequest, Hashable {
    public typealias Reply = RoutingExportPart
    public static let messageType = "routing.export"

    public var kind: RoutingCatalogKind
    public var part: Int

    public init(kind: RoutingCatalogKind, part: Int) {
        self.kind = kind
        self.part = part
    }
}

/// `routing.export.reply`: part `part` of `parts`; a client checks that `generation` stays the same across parts.
public struct RoutingExportPart: LinkMessage, Hashable {
    public static let messageType = "routing.export.reply"

    public var kind: RoutingCatalogKind
    public var part: Int
    public var parts: Int
    public var generation: Int64
    public var csv: String

    public init(kind: RoutingCatalogKind, part: Int, parts: Int, generation: Int64, csv: String) {
        self.kind = kind
        self.part = part
        self.parts = parts
        self.generation = generation
        self.csv = csv
    }
}

/// `routing.inspect` (operator, monitor → routing): the catalog sizes and every trunk's health and load.
public struct RoutingInspect: LinkRequest, Hashable {
    public typealias Reply = RoutingInspection
    public static let messageType = "routing.inspect"
    public init() {}
}

/// `routing.inspect.reply`.
public struct RoutingInspection: LinkMessage, Hashable {
    public static let messageType = "routing.inspect.reply"

    public struct Catalog: Codable, Sendable, Hashable {
        public var kind: RoutingCatalogKind
        public var rows: Int
        public var generation: Int64
        public init(kind: RoutingCatalogKind, rows: Int, generation: Int64) {
            self.kind = kind
            self.rows = rows
            self.generation = generation
        }
    }

    public struct Trunk: Codable, Sendable, Hashable {
        public var carrier: String
        public var trunk: String
        public var inService: Bool
        public var reason: String?
        public var consecutiveFailures: Int
        public var answerSeizureRatio: Double?
        /// Network effectiveness ratio over the same attempts (answered or refused by the called user).
        public var networkEffectivenessRatio: Double?
        public var postDialDelayMilliseconds: Double?
        public var callsInProgress: Int
        public var callsLastSecond: Int
        public var maximumCalls: Int
        public var maximumCallsPerSecond: Int
        /// The MOS the monitor reported for the trunk over its window, and over how many calls (nil: no verdict).
        public var mos: Double?
        public var qualityCalls: Int?
        /// Tried after the other trunks of its routes: its MOS is below `routing.minimumTrunkMOS`.
        public var demoted: Bool
        public init(
            carrier: String, trunk: String, inService: Bool, reason: String?, consecutiveFailures: Int, answerSeizureRatio: Double?,
            postDialDelayMilliseconds: Double?, callsInProgress: Int, callsLastSecond: Int, maximumCalls: Int, maximumCallsPerSecond: Int,
            mos: Double? = nil, qualityCalls: Int? = nil, demoted: Bool = false, networkEffectivenessRatio: Double? = nil
        ) {
            self.networkEffectivenessRatio = networkEffectivenessRatio
            self.mos = mos
            self.qualityCalls = qualityCalls
            self.demoted = demoted
            self.carrier = carrier
            self.trunk = trunk
            self.inService = inService
            self.reason = reason
            self.consecutiveFailures = consecutiveFailures
            self.answerSeizureRatio = answerSeizureRatio
            self.postDialDelayMilliseconds = postDialDelayMilliseconds
            self.callsInProgress = callsInProgress
            self.callsLastSecond = callsLastSecond
            self.maximumCalls = maximumCalls
            self.maximumCallsPerSecond = maximumCallsPerSecond
        }
    }

    public var catalogs: [Catalog]
    /// Prefixes in the route table (every plan, and the configured routes).
    public var prefixes: Int
    public var trunks: [Trunk]

    public init(catalogs: [Catalog], prefixes: Int, trunks: [Trunk]) {
        self.catalogs = catalogs
        self.prefixes = prefixes
        self.trunks = trunks
    }
}

extension RoutingInspection.Trunk {
    enum CodingKeys: String, CodingKey {
        case carrier, trunk, inService, reason, consecutiveFailures, answerSeizureRatio, networkEffectivenessRatio, postDialDelayMilliseconds
        case callsInProgress, callsLastSecond, maximumCalls, maximumCallsPerSecond, mos, qualityCalls, demoted
    }

    /// The fields added later (`networkEffectivenessRatio`, `mos`, `qualityCalls`, `demoted`) may be missing from an
    /// older routing instance's reply (a rolling upgrade): they read as unknown, not as an error.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            carrier: try c.decode(String.self, forKey: .carrier), trunk: try c.decode(String.self, forKey: .trunk),
            inService: try c.decode(Bool.self, forKey: .inService), reason: try c.decodeIfPresent(String.self, forKey: .reason),
            consecutiveFailures: try c.decode(Int.self, forKey: .consecutiveFailures),
            answerSeizureRatio: try c.decodeIfPresent(Double.self, forKey: .answerSeizureRatio),
            postDialDelayMilliseconds: try c.decodeIfPresent(Double.self, forKey: .postDialDelayMilliseconds),
            callsInProgress: try c.decode(Int.self, forKey: .callsInProgress), callsLastSecond: try c.decode(Int.self, forKey: .callsLastSecond),
            maximumCalls: try c.decode(Int.self, forKey: .maximumCalls), maximumCallsPerSecond: try c.decode(Int.self, forKey: .maximumCallsPerSecond),
            mos: try c.decodeIfPresent(Double.self, forKey: .mos), qualityCalls: try c.decodeIfPresent(Int.self, forKey: .qualityCalls),
            demoted: try c.decodeIfPresent(Bool.self, forKey: .demoted) ?? false,
            networkEffectivenessRatio: try c.decodeIfPresent(Double.self, forKey: .networkEffectivenessRatio))
    }
}
