/// The SBC's pike-like flood and scanner defense, as a pure value type: feed it each request's source and
/// what is known of it, with the current time; it answers whether to process, refuse or silently drop, and
/// whether this refusal should be logged (once per source per window, never a log flood).
///
/// Scoring is per IP:port and per account, so that one bad phone behind an office NAT does not ban the whole
/// office; a source that authenticated successfully earns a higher limit. Repeated digest failures and known
/// scanner User-Agents ban the source at once.
public struct FloodGuard: Sendable {
    public struct Configuration: Sendable, Hashable, Codable {
        /// Requests allowed per window from one IP:port (or account) before a ban.
        public var requestsPerWindow: Int = 50
        /// The higher limit for sources that authenticated successfully.
        public var authenticatedRequestsPerWindow: Int = 200
        /// Requests per window allowed from one IP address across all its ports (an office NAT).
        public var requestsPerWindowPerAddress: Int = 500
        public var windowSeconds: Double = 2
        public var banSeconds: Double = 300
        /// Digest failures from one source within `banSeconds` before it is banned.
        public var maximumAuthenticationFailures: Int = 5
        /// User-Agent substrings (case-insensitive) of SIP scanners; a match bans at once.
        public var scannerUserAgents: [String] = [
            "friendly-scanner", "sipvicious", "sipcli", "vaxsipuseragent", "sip-scan", "sipsak", "sundayddr",
            "iWar", "sipv", "smap", "pplsip", "cantabile", "sivus", "fuck", "gulp",
        ]
        public init() {}
    }

    public enum Verdict: Sendable, Hashable {
        case process
        /// Answer with this status (e.g. 403) and do nothing else.
        case refuse(status: Int, reason: String)
        /// Say nothing (banned sources and scanners learn nothing).
        case drop(reason: String)
    }

    public struct Decision: Sendable, Hashable {
        public var verdict: Verdict
        /// Log this refusal: the first for this source in this window.
        public var log: Bool
        /// The bucket the decision was about, e.g. `198.51.100.7:5062` or `account:alice@example.com`.
        public var subject: String
    }

    public let configuration: Configuration
    private var counters: [String: (windowStart: Double, count: Int)] = [:]
    private var bans: [String: Double] = [:]
    private var authenticationFailures: [String: [Double]] = [:]
    private var authenticated: Set<String> = []
    private var lastLogged: [String: Double] = [:]
    private var lastSweep = 0.0
    private let lowercasedScanners: [String]

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        lowercasedScanners = configuration.scannerUserAgents.map { $0.lowercased() }
    }

    /// Decides about one request from `address:port`, with its account if digest authentication verified
    /// one (never a merely claimed From user, or an attacker could get that customer banned).
    public mutating func check(address: String, port: Int, account: String?, userAgent: String?, now: Double) -> Decision {
        sweep(now: now)
        let source = "\(address):\(port)"
        if let until = bans[source] ?? bans[address] ?? account.flatMap({ bans["account:\($0)"] }), until > now {
            return decide(.drop(reason: "banned"), subject: source, now: now)
        }
        if let userAgent {
            let lowered = userAgent.lowercased()
            if lowercasedScanners.contains(where: { lowered.contains($0) }) {
                bans[source] = now + configuration.banSeconds
                return decide(.drop(reason: "scanner user-agent"), subject: source, now: now)
            }
        }
        let limit = authenticated.contains(source) ? configuration.authenticatedRequestsPerWindow : configuration.requestsPerWindow
        if count(source, now: now) > limit {
            bans[source] = now + configuration.banSeconds
            return decide(.drop(reason: "rate limit"), subject: source, now: now)
        }
        if count("ip:\(address)", now: now) > configuration.requestsPerWindowPerAddress {
            bans[address] = now + configuration.banSeconds
            return decide(.drop(reason: "address rate limit"), subject: address, now: now)
        }
        if let account {
            let key = "account:\(account)"
            let accountLimit = authenticated.contains(key) ? configuration.authenticatedRequestsPerWindow : configuration.requestsPerWindow
            if count(key, now: now) > accountLimit {
                bans[key] = now + configuration.banSeconds
                return decide(.drop(reason: "account rate limit"), subject: key, now: now)
            }
        }
        return Decision(verdict: .process, log: false, subject: source)
    }

    /// Records a digest failure from a source; returns true when this one got the source banned.
    public mutating func recordAuthenticationFailure(address: String, port: Int, now: Double) -> Bool {
        let source = "\(address):\(port)"
        var failures = authenticationFailures[source, default: []].filter { $0 > now - configuration.banSeconds }
        failures.append(now)
        authenticationFailures[source] = failures
        if failures.count >= configuration.maximumAuthenticationFailures {
            bans[source] = now + configuration.banSeconds
            authenticationFailures[source] = nil
            return true
        }
        return false
    }

    /// Records a successful authentication: the source (and account) earn the higher limit.
    public mutating func recordAuthenticated(address: String, port: Int, account: String?) {
        authenticated.insert("\(address):\(port)")
        if let account { authenticated.insert("account:\(account)") }
        authenticationFailures["\(address):\(port)"] = nil
    }

    /// Whether a source is banned now.
    public func isBanned(address: String, port: Int, now: Double) -> Bool {
        (bans["\(address):\(port)"] ?? bans[address]).map { $0 > now } ?? false
    }

    /// Sources currently banned, for status pages.
    public func activeBans(now: Double) -> [String: Double] { bans.filter { $0.value > now } }

    private mutating func count(_ key: String, now: Double) -> Int {
        var counter = counters[key] ?? (now, 0)
        if now - counter.windowStart >= configuration.windowSeconds { counter = (now, 0) }
        counter.count += 1
        counters[key] = counter
        return counter.count
    }

    private mutating func decide(_ verdict: Verdict, subject: String, now: Double) -> Decision {
        let last = lastLogged[subject]
        let log = last.map { now - $0 >= max(configuration.windowSeconds, 60) } ?? true
        if log { lastLogged[subject] = now }
        return Decision(verdict: verdict, log: log, subject: subject)
    }

    /// Forgets expired counters and bans, at most once per window, so memory stays bounded by recent sources.
    private mutating func sweep(now: Double) {
        guard now - lastSweep >= max(configuration.windowSeconds, 1) else { return }
        lastSweep = now
        counters = counters.filter { now - $0.value.windowStart < configuration.windowSeconds }
        bans = bans.filter { $0.value > now }
        lastLogged = lastLogged.filter { now - $0.value < max(configuration.banSeconds, 60) }
        authenticationFailures = authenticationFailures.filter { !$0.value.allSatisfy { $0 <= now - configuration.banSeconds } }
    }
}
