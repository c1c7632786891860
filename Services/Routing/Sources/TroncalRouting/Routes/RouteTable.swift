public import TroncalProtocol
public import TroncalRuntime

/// The routes the routing core answers `routing.route` from: per destination prefix, the carriers to try in
/// order, or a block. Built once from the site configuration (`routing.routes`) and swapped whole when the
/// table changes, so lookups never wait for a rebuild.
///
/// A customer-specific route (one that lists the customer) beats a general one of the same or a shorter
/// prefix; between two routes of one kind the longest prefix wins.
public struct RouteTable: Sendable {
    let general: PrefixTrie<RouteSettings>
    let byCustomer: [String: PrefixTrie<RouteSettings>]
    let normalizer: NumberNormalizer?
    let setupTimeoutMilliseconds: Int
    /// The operator's numbers, by E.164 digits.
    let dids: [String: DIDSettings]

    public init(_ settings: RoutingSettings) throws(NumberingError) {
        var general = PrefixTrie<RouteSettings>()
        var byCustomer: [String: PrefixTrie<RouteSettings>] = [:]
        for route in settings.routes {
            if route.customers.isEmpty {
                try general.insert(route.prefix, route)
            } else {
                for customer in route.customers {
                    try byCustomer[customer, default: PrefixTrie()].insert(route.prefix, route)
                }
            }
        }
        general.compact()
        self.general = general
        self.byCustomer = byCustomer.mapValues { var trie = $0; trie.compact(); return trie }
        self.normalizer = settings.nationalCountry.isEmpty ? nil : try NumberNormalizer(country: settings.nationalCountry)
        self.setupTimeoutMilliseconds = settings.setupTimeoutMilliseconds
        self.dids = Dictionary(settings.dids.map { ($0.number, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// How many DIDs the table holds.
    public var didCount: Int { dids.count }

    public var count: Int { general.count + byCustomer.values.reduce(0) { $0 + $1.count } }

    /// Every distinct trunk of the table that is to be probed.
    public var trunks: [RouteTarget] {
        var seen = Set<String>()
        var result: [RouteTarget] = []
        let routes = general.entries.map(\.value) + byCustomer.values.flatMap { $0.entries.map(\.value) }
        for route in routes {
            for target in route.targets where target.probe {
                let trunk = target.trunk.isEmpty ? target.carrier : target.trunk
                guard seen.insert("\(target.carrier)|\(trunk)|\(target.host)|\(target.port)|\(target.transport)").inserted else { continue }
                result.append(RouteTarget(
                    carrier: target.carrier, trunk: trunk, host: target.host, port: target.port, transport: target.transport, number: "",
                    setupTimeoutMilliseconds: 0))
            }
        }
        return result
    }

    /// The answer to one `routing.route`; trunks for which `inService` says false are left out.
    public func decide(_ request: RouteRequest, inService: (CarrierHealth.Trunk) -> Bool = { _ in true }) -> RouteDecision {
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
        let specific = byCustomer[request.customer]?.longestMatch(digits)
        let any = general.longestMatch(digits)
        let chosen: RouteSettings?
        switch (specific, any) {
        case (let specific?, let any?): chosen = specific.prefix.count >= any.prefix.count ? specific.value : any.value
        case (let specific?, nil): chosen = specific.value
        case (nil, let any?): chosen = any.value
        case (nil, nil): chosen = nil
        }
        guard let route = chosen else {
            return RouteDecision(outcome: .reject, callee: digits, rejectStatus: 404, reason: "no route for +\(digits)")
        }
        if route.blocked {
            return RouteDecision(outcome: .reject, callee: digits, rejectStatus: 403, reason: "destination +\(route.prefix) is blocked")
        }
        let targets = route.targets.filter { inService(CarrierHealth.Trunk(carrier: $0.carrier, trunk: $0.trunk.isEmpty ? $0.carrier : $0.trunk)) }.map { target in
            RouteTarget(
                carrier: target.carrier, trunk: target.trunk.isEmpty ? target.carrier : target.trunk, host: target.host, port: target.port,
                transport: target.transport, number: target.addPrefix + digits.dropFirst(min(target.stripDigits, digits.count)),
                setupTimeoutMilliseconds: target.setupTimeoutMilliseconds > 0 ? target.setupTimeoutMilliseconds : setupTimeoutMilliseconds)
        }
        guard !targets.isEmpty else {
            return RouteDecision(
                outcome: .reject, callee: digits, rejectStatus: 503, reason: "no carrier in service for +\(route.prefix) (\(route.targets.count) out of service)")
        }
        return RouteDecision(outcome: .route, callee: digits, targets: targets)
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
