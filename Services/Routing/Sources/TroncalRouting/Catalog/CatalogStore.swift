public import Foundation
public import TroncalProtocol
public import TroncalCatalog
public import TroncalStore

/// The routing catalogs in the service's database: one table per kind, every row tagged with the generation of the
/// import that wrote it, and `routing_catalog_generations` naming the current generation of each kind.
///
/// An import loads its rows under a new generation (COPY on PostgreSQL, batched INSERTs on SQLite), then one
/// transaction makes that generation current and deletes the older rows: readers see the old catalog or the new
/// one, never a mix, and a crash in the middle leaves the old one in force (the stray rows go at the next import).
public struct CatalogStore: Sendable {
    public let store: any SQLStore

    public init(store: any SQLStore) {
        self.store = store
    }

    public static let migrations: [Migration] = [
        Migration(
            version: 1, name: "routing catalogs",
            sql: [
                """
                CREATE TABLE routing_catalog_generations (kind TEXT PRIMARY KEY, generation BIGINT NOT NULL, row_count BIGINT NOT NULL,
                imported_at TEXT NOT NULL)
                """,
                """
                CREATE TABLE routing_trunks (generation BIGINT NOT NULL, position BIGINT NOT NULL, carrier TEXT NOT NULL, trunk TEXT NOT NULL,
                host TEXT NOT NULL, port BIGINT NOT NULL, transport TEXT NOT NULL, strip_digits BIGINT NOT NULL, add_prefix TEXT NOT NULL,
                max_calls BIGINT NOT NULL, max_cps BIGINT NOT NULL, probe BIGINT NOT NULL, setup_timeout_ms BIGINT NOT NULL)
                """,
                """
                CREATE TABLE routing_plans (generation BIGINT NOT NULL, position BIGINT NOT NULL, plan TEXT NOT NULL, strategy TEXT NOT NULL,
                customers TEXT NOT NULL)
                """,
                """
                CREATE TABLE routing_routes (generation BIGINT NOT NULL, position BIGINT NOT NULL, plan TEXT NOT NULL, prefix TEXT NOT NULL,
                carrier TEXT NOT NULL, trunk TEXT NOT NULL, priority BIGINT NOT NULL, weight BIGINT NOT NULL, cost_micros BIGINT,
                days TEXT NOT NULL, hours TEXT NOT NULL, blocked BIGINT NOT NULL)
                """,
                """
                CREATE TABLE routing_rates (generation BIGINT NOT NULL, position BIGINT NOT NULL, carrier TEXT NOT NULL, prefix TEXT NOT NULL,
                rate_micros BIGINT NOT NULL)
                """,
                """
                CREATE TABLE routing_dids (generation BIGINT NOT NULL, position BIGINT NOT NULL, number TEXT NOT NULL, customer TEXT NOT NULL,
                host TEXT NOT NULL, port BIGINT NOT NULL, transport TEXT NOT NULL)
                """,
                "CREATE INDEX routing_trunks_generation ON routing_trunks (generation, position)",
                "CREATE INDEX routing_plans_generation ON routing_plans (generation, position)",
                "CREATE INDEX routing_routes_generation ON routing_routes (generation, position)",
                "CREATE INDEX routing_rates_generation ON routing_rates (generation, position)",
                "CREATE INDEX routing_dids_generation ON routing_dids (generation, position)",
            ])
    ]

    static func table(_ kind: RoutingCatalogKind) -> String {
        switch kind {
        case .carriers: "routing_trunks"
        case .plans: "routing_plans"
        case .routes: "routing_routes"
        case .rates: "routing_rates"
        case .dids: "routing_dids"
        }
    }

    static func columns(_ kind: RoutingCatalogKind) -> [String] {
        switch kind {
        case .carriers:
            ["carrier", "trunk", "host", "port", "transport", "strip_digits", "add_prefix", "max_calls", "max_cps", "probe", "setup_timeout_ms"]
        case .plans: ["plan", "strategy", "customers"]
        case .routes: ["plan", "prefix", "carrier", "trunk", "priority", "weight", "cost_micros", "days", "hours", "blocked"]
        case .rates: ["carrier", "prefix", "rate_micros"]
        case .dids: ["number", "customer", "host", "port", "transport"]
        }
    }

    static func values(_ kind: RoutingCatalogKind, _ catalog: RoutingCatalog) -> [[SQLValue]] {
        switch kind {
        case .carriers:
            catalog.trunks.map {
                [
                    .text($0.carrier), .text($0.trunk), .text($0.host), .int($0.port), .text($0.transport), .int($0.stripDigits), .text($0.addPrefix),
                    .int($0.maximumCalls), .int($0.maximumCallsPerSecond), .int($0.probe ? 1 : 0), .int($0.setupTimeoutMilliseconds),
                ]
            }
        case .plans: catalog.plans.map { [.text($0.plan), .text($0.strategy.rawValue), .text($0.customers.joined(separator: ";"))] }
        case .routes:
            catalog.routes.map {
                [
                    .text($0.plan), .text($0.prefix), .text($0.carrier), .text($0.trunk), .int($0.priority), .int($0.weight),
                    $0.costMicros.map(SQLValue.integer) ?? .null, .text($0.schedule.daysText), .text($0.schedule.hoursText), .int($0.blocked ? 1 : 0),
                ]
            }
        case .rates: catalog.rates.map { [.text($0.carrier), .text($0.prefix), .integer($0.rateMicros)] }
        case .dids: catalog.dids.map { [.text($0.number), .text($0.customer), .text($0.host), .int($0.port), .text($0.transport)] }
        }
    }

    /// Stores `catalog`'s rows of `kind` as the new current generation, and returns it.
    @discardableResult
    public func replace(_ kind: RoutingCatalogKind, from catalog: RoutingCatalog, now: Date = Date()) async throws -> Int64 {
        let table = Self.table(kind)
        let current = try await store.query("SELECT MAX(generation) AS g FROM \(table)").first.flatMap { try $0.optionalInt("g") } ?? 0
        let recorded = try await store.query("SELECT generation FROM routing_catalog_generations WHERE kind = $1", [.text(kind.rawValue)])
            .first.map { try $0.int("generation") } ?? 0
        let generation = max(current, recorded, 0) + 1
        let rows = Self.values(kind, catalog).enumerated().map { [.integer(generation), .int($0.offset)] + $0.element }
        try await store.bulkLoad(table: table, columns: ["generation", "position"] + Self.columns(kind), rows: rows)
        let stamp = now.formatted(.iso8601)
        try await store.transaction { transaction in
            try await transaction.execute("DELETE FROM routing_catalog_generations WHERE kind = $1", [.text(kind.rawValue)])
            try await transaction.execute(
                "INSERT INTO routing_catalog_generations (kind, generation, row_count, imported_at) VALUES ($1, $2, $3, $4)",
                [.text(kind.rawValue), .integer(generation), .int(rows.count), .text(stamp)])
            try await transaction.execute("DELETE FROM \(table) WHERE generation <> $1", [.integer(generation)])
        }
        return generation
    }

    /// The current generation of each catalog stored (a cheap look: has another routing instance imported?).
    public func generations() async throws -> [RoutingCatalogKind: Int64] {
        var generations: [RoutingCatalogKind: Int64] = [:]
        for row in try await store.query("SELECT kind, generation FROM routing_catalog_generations") {
            if let kind = RoutingCatalogKind(rawValue: try row.string("kind")) { generations[kind] = try row.int("generation") }
        }
        return generations
    }

    /// Every catalog at its current generation.
    public func load() async throws -> RoutingCatalog {
        var catalog = RoutingCatalog()
        for row in try await store.query("SELECT kind, generation FROM routing_catalog_generations") {
            if let kind = RoutingCatalogKind(rawValue: try row.string("kind")) { catalog.generations[kind] = try row.int("generation") }
        }
        for kind in RoutingCatalogKind.allCases {
            guard let generation = catalog.generations[kind] else { continue }
            let rows = try await store.query(
                "SELECT \(Self.columns(kind).joined(separator: ", ")) FROM \(Self.table(kind)) WHERE generation = $1 ORDER BY position",
                [.integer(generation)])
            for row in rows {
                switch kind {
                case .carriers:
                    var trunk = TrunkRecord(
                        carrier: try row.string("carrier"), trunk: try row.string("trunk"), host: try row.string("host"), port: Int(try row.int("port")),
                        transport: try row.string("transport"))
                    trunk.stripDigits = Int(try row.int("strip_digits"))
                    trunk.addPrefix = try row.string("add_prefix")
                    trunk.maximumCalls = Int(try row.int("max_calls"))
                    trunk.maximumCallsPerSecond = Int(try row.int("max_cps"))
                    trunk.probe = try row.int("probe") != 0
                    trunk.setupTimeoutMilliseconds = Int(try row.int("setup_timeout_ms"))
                    catalog.trunks.append(trunk)
                case .plans:
                    let customers = try row.string("customers").split(separator: ";").map(String.init)
                    catalog.plans.append(PlanRecord(
                        plan: try row.string("plan"), strategy: RouteStrategy(rawValue: try row.string("strategy")) ?? .priority, customers: customers))
                case .routes:
                    var route = RouteRecord(plan: try row.string("plan"), prefix: try row.string("prefix"), carrier: try row.string("carrier"))
                    route.trunk = try row.string("trunk")
                    route.priority = Int(try row.int("priority"))
                    route.weight = Int(try row.int("weight"))
                    route.costMicros = try row.optionalInt("cost_micros")
                    route.schedule = (try? Schedule(days: try row.string("days"), hours: try row.string("hours"))) ?? .always
                    route.blocked = try row.int("blocked") != 0
                    catalog.routes.append(route)
                case .rates:
                    catalog.rates.append(RateRecord(carrier: try row.string("carrier"), prefix: try row.string("prefix"), rateMicros: try row.int("rate_micros")))
                case .dids:
                    catalog.dids.append(DIDRecord(
                        number: try row.string("number"), customer: try row.string("customer"), host: try row.string("host"), port: Int(try row.int("port")),
                        transport: try row.string("transport")))
                }
            }
        }
        return catalog
    }
}
