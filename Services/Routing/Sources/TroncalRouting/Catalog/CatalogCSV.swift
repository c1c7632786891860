public import TroncalProtocol
public import TroncalCatalog

/// The CSV format of each routing catalog: its columns, required ones and defaults, and the checks every row
/// passes before an import is applied. Columns may come in any order; an unknown column is an error (a typo
/// must not silently drop a setting).
public enum CatalogCSV {
    public struct Column: Sendable {
        public var name: String
        public var required: Bool
    }

    public static func columns(of kind: RoutingCatalogKind) -> [Column] {
        func c(_ name: String, _ required: Bool = false) -> Column { Column(name: name, required: required) }
        switch kind {
        case .carriers:
            return [
                c("carrier", true), c("trunk"), c("host", true), c("port"), c("transport"), c("strip_digits"), c("add_prefix"),
                c("max_calls"), c("max_cps"), c("probe"), c("setup_timeout_ms"),
            ]
        case .plans: return [c("plan", true), c("strategy", true), c("customers")]
        case .routes:
            return [
                c("plan"), c("prefix", true), c("carrier"), c("trunk"), c("priority"), c("weight"), c("cost"), c("days"), c("hours"),
                c("blocked"),
            ]
        case .rates: return [c("carrier", true), c("prefix", true), c("rate", true)]
        case .dids: return [c("number", true), c("customer", true), c("host", true), c("port"), c("transport")]
        }
    }

    /// Reads `text` as a catalog of `kind` into `catalog` (replacing that kind), checking every row; the first bad
    /// row stops the import with its line and column.
    public static func read(_ kind: RoutingCatalogKind, _ text: String, into catalog: inout RoutingCatalog) throws(CatalogError) {
        let known = columns(of: kind)
        let file = try CSVRecords(
            parsing: text, kind: kind.rawValue, columns: known.map(\.name), required: known.filter(\.required).map(\.name))
        switch kind {
        case .carriers: catalog.trunks = []
        case .plans: catalog.plans = []
        case .routes: catalog.routes = []
        case .rates: catalog.rates = []
        case .dids: catalog.dids = []
        }
        var seen = Set<String>()
        for row in file.records {
            let line = row.line
            switch kind {
            case .carriers:
                var trunk = TrunkRecord(carrier: try row.name("carrier"), trunk: try row.name("trunk", optional: true), host: try row.host("host"))
                trunk.port = try row.integer("port", default: 5060, 1...65535)
                trunk.transport = try row.transport("transport")
                trunk.stripDigits = try row.integer("strip_digits", default: 0, 0...15)
                trunk.addPrefix = try row.dialPrefix("add_prefix")
                trunk.maximumCalls = try row.integer("max_calls", default: 0, 0...10_000_000)
                trunk.maximumCallsPerSecond = try row.integer("max_cps", default: 0, 0...1_000_000)
                trunk.probe = try row.bool("probe", default: true)
                trunk.setupTimeoutMilliseconds = try row.integer("setup_timeout_ms", default: 0, 0...300_000)
                guard seen.insert("\(trunk.carrier)\u{0}\(trunk.trunk)").inserted else {
                    throw CatalogError(line: line, column: "trunk", "carrier \(trunk.carrier.quotedForError) has trunk \(trunk.trunk.quotedForError) twice")
                }
                catalog.trunks.append(trunk)
            case .plans:
                let name = try row.name("plan")
                let strategyText = row["strategy"].lowercased()
                guard let strategy = RouteStrategy(rawValue: strategyText), strategy != .ordered else {
                    throw CatalogError(line: line, column: "strategy", "\(strategyText.quotedForError) is not cost, priority or weight")
                }
                let customers = try row["customers"].split(separator: ";").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }.map {
                    (customer: String) throws(CatalogError) -> String in
                    try CSVRecord.checkName(customer, line: line, column: "customers")
                    guard seen.insert("customer\u{0}\(customer)").inserted else {
                        throw CatalogError(line: line, column: "customers", "customer \(customer.quotedForError) is on two plans")
                    }
                    return customer
                }
                guard seen.insert("plan\u{0}\(name)").inserted else { throw CatalogError(line: line, column: "plan", "plan \(name.quotedForError) appears twice") }
                catalog.plans.append(PlanRecord(plan: name, strategy: strategy, customers: customers))
            case .routes:
                var route = RouteRecord(plan: try row.name("plan", optional: true, default: PlanRecord.defaultPlan), prefix: try row.prefix("prefix"))
                route.blocked = try row.bool("blocked", default: false)
                route.carrier = try row.name("carrier", optional: true)
                route.trunk = try row.name("trunk", optional: true)
                if route.blocked {
                    guard route.carrier.isEmpty else { throw CatalogError(line: line, column: "carrier", "a blocked route names no carrier") }
                } else if route.carrier.isEmpty {
                    throw CatalogError(line: line, column: "carrier", "a route needs a carrier, or blocked=true")
                }
                if !route.trunk.isEmpty, route.carrier.isEmpty { throw CatalogError(line: line, column: "trunk", "a trunk needs its carrier") }
                route.priority = try row.integer("priority", default: 1, 0...1_000_000)
                route.weight = try row.integer("weight", default: 1, 0...1_000_000)
                if !row["cost"].isEmpty { route.costMicros = try row.amount("cost") }
                route.schedule = try row.schedule()
                catalog.routes.append(route)
            case .rates:
                let carrier = try row.name("carrier")
                let prefix = try row.prefix("prefix")
                let micros = try row.amount("rate", default: nil)
                guard seen.insert("\(carrier)\u{0}\(prefix)").inserted else {
                    throw CatalogError(line: line, column: "prefix", "carrier \(carrier.quotedForError) has prefix \(prefix) twice")
                }
                catalog.rates.append(RateRecord(carrier: carrier, prefix: prefix, rateMicros: micros))
            case .dids:
                let number = try row.prefix("number")
                guard (6...15).contains(number.count) else { throw CatalogError(line: line, column: "number", "a DID has 6 to 15 E.164 digits") }
                guard seen.insert(number).inserted else { throw CatalogError(line: line, column: "number", "+\(number) appears twice") }
                catalog.dids.append(DIDRecord(
                    number: number, customer: try row.name("customer"), host: try row.host("host"), port: try row.integer("port", default: 5060, 1...65535),
                    transport: try row.transport("transport")))
            }
        }
    }

    /// The catalog of `kind` as CSV, every column written, in the order `read` accepts.
    public static func render(_ kind: RoutingCatalogKind, _ catalog: RoutingCatalog) -> String {
        let header = columns(of: kind).map(\.name)
        var rows: [(line: Int, fields: [String])] = []
        func add(_ fields: [String]) { rows.append((rows.count + 2, fields)) }
        switch kind {
        case .carriers:
            for t in catalog.trunks {
                add([
                    t.carrier, t.trunk, t.host, "\(t.port)", t.transport, "\(t.stripDigits)", t.addPrefix, "\(t.maximumCalls)",
                    "\(t.maximumCallsPerSecond)", t.probe ? "true" : "false", "\(t.setupTimeoutMilliseconds)",
                ])
            }
        case .plans:
            for p in catalog.plans { add([p.plan, p.strategy.rawValue, p.customers.joined(separator: ";")]) }
        case .routes:
            for r in catalog.routes {
                add([
                    r.plan, r.prefix, r.carrier, r.trunk, "\(r.priority)", "\(r.weight)", r.costMicros.map(MicroAmount.format) ?? "",
                    r.schedule.daysText, r.schedule.hoursText, r.blocked ? "true" : "false",
                ])
            }
        case .rates:
            for r in catalog.rates { add([r.carrier, r.prefix, MicroAmount.format(r.rateMicros)]) }
        case .dids:
            for d in catalog.dids { add([d.number, d.customer, d.host, "\(d.port)", d.transport]) }
        }
        return CSVTable(header: header, rows: rows).render()
    }

    /// Cross-catalog checks: every route's carrier (and trunk) exists, every plan named by a route exists (or is `default`).
    public static func checkReferences(_ catalog: RoutingCatalog) throws(CatalogError) {
        var trunksByCarrier: [String: Set<String>] = [:]
        for trunk in catalog.trunks { trunksByCarrier[trunk.carrier, default: []].insert(trunk.trunk) }
        let plans = Set(catalog.plans.map(\.plan)).union([PlanRecord.defaultPlan])
        for (offset, route) in catalog.routes.enumerated() {
            let line = offset + 2
            if !route.carrier.isEmpty {
                guard let trunks = trunksByCarrier[route.carrier] else {
                    throw CatalogError(line: line, column: "carrier", "carrier \(route.carrier.quotedForError) has no trunk in the carriers catalog")
                }
                if !route.trunk.isEmpty, !trunks.contains(route.trunk) {
                    throw CatalogError(line: line, column: "trunk", "carrier \(route.carrier.quotedForError) has no trunk \(route.trunk.quotedForError)")
                }
            }
            guard plans.contains(route.plan) else {
                throw CatalogError(line: line, column: "plan", "plan \(route.plan.quotedForError) is not in the plans catalog")
            }
        }
    }
}
