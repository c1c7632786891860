import TroncalProtocol
internal import Foundation

/// `sbc`: call handling at the SBC edge (the border itself is `sip`).
public struct SBCSettings: Codable, Sendable, Equatable {
    /// The address the SBC writes into Via, Contact and SDP: where customers and carriers send SIP and RTP.
    /// Empty: `sip.listenAddress`, or 127.0.0.1 when that is a wildcard.
    public var advertisedAddress: String = ""
    /// Each SBC instance writes its own host's address (`instances[].host`) into Via, Contact and SDP instead of
    /// `advertisedAddress`: a customer sends a call's first INVITE to the floating address, and everything after it
    /// (ACK, BYE, re-INVITEs, RTP) to the instance that took the call. The floating address can then move (a drain,
    /// a withdrawal, a scale-out) without cutting the calls in progress. Customers' and carriers' firewalls must let
    /// every SBC host's address through.
    public var advertiseInstanceAddress: Bool = false
    /// With `advertiseInstanceAddress`: the address each SBC instance advertises when it is not its `instances[].host`
    /// (a public address on the host, or its 1:1 NAT), by instance name: `{"sbc-1": "198.51.100.11"}`.
    public var instanceAddresses: [String: String] = [:]
    /// The address RTP relay sockets bind to. Empty: the advertised address.
    public var mediaListenAddress: String = ""
    /// The RTP relay port range (each call takes 4 consecutive ports: RTP and RTCP per leg).
    public var mediaPortMin: Int = 20000
    public var mediaPortMax: Int = 29999
    /// The longest any call may last, whatever billing authorises; the SBC then hangs up both legs.
    public var maximumCallSeconds: Int = 14400
    /// Concurrent calls through this SBC instance; beyond it new INVITEs are answered 503.
    public var maximumCalls: Int = 10000
    /// SIP transactions held at once. A finished transaction stays 32 s (64·T1) to absorb retransmissions and a
    /// call makes about four, so this bounds the sustained call rate at about this / 130 calls per second;
    /// beyond it new requests are answered 503 rather than any live transaction forgotten.
    public var maximumTransactions: Int = 262_144
    /// Concurrent calls per customer when the customer does not set its own.
    public var maximumCallsPerCustomer: Int = 100
    /// Event loops (threads) that carry SIP and calls: each call lives on one, chosen by a hash of its Call-ID, with its
    /// transactions, timers, media relay sockets and routing link; each loop has its own UDP socket on the SIP port
    /// (SO_REUSEPORT). 0: one per CPU core.
    public var eventLoops: Int = 0
    /// Relay sessions (4 sockets each) each event loop binds at start so that the first calls do not pay for binding;
    /// released sessions are kept bound for the next call anyway (see sbc.md, "Relay sockets").
    public var relayPrebindSessions: Int = 32
    /// REGISTERs relayed to the PBX and not yet answered, over the SBC's loops; more are answered 503 with a
    /// Retry-After of 2 to 6 s (a burst after an outage is spread, never dropped).
    public var maximumPendingRegistrations: Int = 512
    /// Every this many seconds an OPTIONS goes to each phone registered over UDP, keeping its NAT binding open
    /// (0: none). TCP/TLS phones keep their connection with CRLF pings.
    public var keepAliveSeconds: Int = 25
    /// How long a relayed REGISTER waits for a PBX instance before the next instance is tried.
    public var registrationAttemptMilliseconds: Int = 4000
    /// Every this many milliseconds the SBC's first event loop sends billing a heartbeat, and each loop the checkpoints of its calls
    /// (`billing.calls`): if the SBC is lost, billing ends its calls at the last heartbeat and releases their
    /// reservations. 0: off (a lost SBC's calls then get no CDR and hold their reservations until they expire).
    public var checkpointIntervalMilliseconds: Int = 1000
    /// At a graceful stop (SIGTERM) the SBC drains: new calls get 503 (and `/health` says it is stopping, so a
    /// keepalived check moves the floating address away), calls in progress go on for up to this many seconds, then
    /// those still up are hung up on both sides (`SBC drained`) and the process exits. 0: hang up at once. Keep
    /// `drainGraceSeconds` + it below the unit's `TimeoutStopSec` (the rendered units give their sum + 10 s, at least 40).
    public var drainSeconds: Int = 30
    /// At a graceful stop, before the drain: for this many seconds `/health` already says the SBC is stopping but new
    /// calls are still taken, while keepalived moves the floating address to another SBC (its check every second,
    /// two failures, then a VRRP advertisement: about 3 s). Without it the calls that reach the address in that
    /// time get 503. `troncal infra render` sets 4 for a site with a floating address unless the inventory sets it;
    /// 0: refuse new calls at once (a single SBC, development).
    public var drainGraceSeconds: Int = 0
    /// The digest realm customers authenticate in.
    public var realm: String = "troncal"
    /// The digest algorithms offered in a 407, one challenge each, in this order. RFC 8760 puts the strongest
    /// first; some older phones answer only the first challenge, so an operator with such phones lists MD5 first.
    public var digestAlgorithms: [String] = ["SHA-256", "MD5"]
    /// The customers allowed to send calls, by source address and optionally digest credentials.
    public var customers: [CustomerSettings] = []
    /// Carrier trunks allowed to send calls in (origination to the operator's DIDs, `routing.dids`), by source address.
    public var carriers: [CarrierSourceSettings] = []
    public init() {}

    /// The advertised address of an instance (`instanceHost`: its `instances[].host`) for a SIP listen address.
    public func advertised(listenAddress: String, instance: String? = nil, instanceHost: String? = nil) -> String {
        if advertiseInstanceAddress, let instance, let address = instanceAddresses[instance] { return address }
        if advertiseInstanceAddress, let instanceHost, !Self.isWildcard(instanceHost) { return instanceHost }
        if !advertisedAddress.isEmpty { return advertisedAddress }
        return Self.isWildcard(listenAddress) ? "127.0.0.1" : listenAddress
    }

    /// The address relay sockets bind: `mediaListenAddress`, else the advertised address, except a public one of
    /// `instanceAddresses` (not on the host: a 1:1 NAT in front of it), for which the instance's own host address.
    public func mediaBindAddress(advertised: String, instance: String, instanceHost: String) -> String {
        if !mediaListenAddress.isEmpty { return mediaListenAddress }
        if advertiseInstanceAddress, instanceAddresses[instance] != nil, !Self.isWildcard(instanceHost) { return instanceHost }
        return advertised
    }

    /// An address that names no one host: empty, `0.0.0.0` or `::`.
    public static func isWildcard(_ address: String) -> Bool { ["0.0.0.0", "::", ""].contains(address) }
}

/// One entry of `sbc.customers`.
public struct CustomerSettings: Codable, Sendable, Equatable {
    /// The customer's account id (CDRs, billing, routing plans).
    public var id: String = ""
    /// The customer's trunk addresses (IP or CIDR). A call from one of them belongs to this customer.
    public var addresses: [String] = []
    /// With a username, calls must also authenticate with digest (407 challenge, MD5/SHA-256).
    public var username: String = ""
    public var password: String = ""
    /// Concurrent calls allowed; 0 takes `sbc.maximumCallsPerCustomer`.
    public var maximumConcurrentCalls: Int = 0
    public init() {}
    public init(id: String, addresses: [String], username: String = "", password: String = "", maximumConcurrentCalls: Int = 0) {
        self.id = id
        self.addresses = addresses
        self.username = username
        self.password = password
        self.maximumConcurrentCalls = maximumConcurrentCalls
    }
}

/// One entry of `sbc.carriers`: a carrier whose calls to DIDs the SBC accepts.
public struct CarrierSourceSettings: Codable, Sendable, Equatable {
    public var id: String = ""
    /// The carrier's signalling addresses (IP or CIDR).
    public var addresses: [String] = []
    public init() {}
    public init(id: String, addresses: [String]) {
        self.id = id
        self.addresses = addresses
    }
}

/// One entry of `routing.dids`: a number the operator owns, and the customer trunk its calls go to.
public struct DIDSettings: Codable, Sendable, Equatable {
    /// E.164 digits without `+`.
    public var number: String = ""
    /// The customer the number belongs to (CDRs, billing).
    public var customer: String = ""
    /// Where the customer's trunk (or PBX) takes the call.
    public var host: String = ""
    public var port: Int = 5060
    /// `udp`, `tcp` or `tls`.
    public var transport: String = "udp"
    public init() {}
    public init(number: String, customer: String, host: String, port: Int, transport: String = "udp") {
        self.number = number
        self.customer = customer
        self.host = host
        self.port = port
        self.transport = transport
    }
}

/// `routing`: the route table the routing core answers `routing.route` from.
public struct RoutingSettings: Codable, Sendable, Equatable {
    /// How long the SBC waits for an answer (18x or final) from a target before it tries the next.
    public var setupTimeoutMilliseconds: Int = 8000
    /// ISO code of the country whose dialling rules read numbers that are not international (`GB`: 020… is
    /// +4420…). Empty: such numbers are taken as E.164 digits already, as carrier-grade trunks send them.
    public var nationalCountry: String = ""
    /// Consecutive failed calls (408, 5xx, no answer, transport error) or failed OPTIONS probes after which a
    /// trunk is taken out of routes; the first successful probe puts it back.
    public var failuresToTakeOut: Int = 5
    /// How often every trunk is probed with SIP OPTIONS (through an SBC); 0 turns probing off.
    public var probeIntervalMilliseconds: Int = 10000
    /// How long a probe waits for an answer.
    public var probeTimeoutMilliseconds: Int = 2000
    /// Routes by destination prefix (E.164 digits); the longest matching prefix wins.
    public var routes: [RouteSettings] = []
    /// The operator's numbers (DIDs) and where calls from carriers to them go.
    public var dids: [DIDSettings] = []
    /// The IANA time zone (`Europe/Madrid`) in which the `days` and `hours` of imported routes are read.
    public var timeZone: String = "UTC"
    /// `required`: every customer call needs billing's authorisation (`billing.authorize`); without an answer from
    /// billing it gets 503. `off`: calls are not authorised (a test bench, or a site that bills elsewhere).
    public var authorization: String = "required"
    /// A carrier trunk whose MOS (as the monitor measures it over its window) is below this is moved to the end of
    /// its routes' target lists, not removed, until it recovers. 0 turns reroute on quality off.
    public var minimumTrunkMOS: Double = 3.6
    public init() {}
}

/// `billing`: rating, authorisation and CDRs (`troncal-billing`).
public struct BillingSettings: Codable, Sendable, Equatable {
    /// The time a call is granted at once; the SBC asks for more before it runs out, so parallel calls share a
    /// balance instead of one call holding all of it.
    public var grantSeconds: Int = 300
    /// An SBC run whose heartbeats (`billing.calls`) stop for this long is lost: billing makes the CDRs of its
    /// checkpointed calls (ended at its last heartbeat) and releases their reservations. Several times
    /// `sbc.checkpointIntervalMilliseconds`, so that a late heartbeat does not end calls that are up.
    public var sbcSilenceSeconds: Double = 3
    /// The IANA time zone in which the `days` and `hours` of rates are read.
    public var timeZone: String = "UTC"
    public init() {}
}

/// One entry of `routing.routes`.
public struct RouteSettings: Codable, Sendable, Equatable {
    /// E.164 digits without `+`; "" matches every number (a default route).
    public var prefix: String = ""
    /// Customers this route applies to; empty: every customer. A customer-specific route beats a general one.
    public var customers: [String] = []
    /// Calls to this prefix are refused with 403.
    public var blocked: Bool = false
    /// The carriers to try, in order.
    public var targets: [RouteTargetSettings] = []
    public init() {}
    public init(prefix: String, customers: [String] = [], blocked: Bool = false, targets: [RouteTargetSettings] = []) {
        self.prefix = prefix
        self.customers = customers
        self.blocked = blocked
        self.targets = targets
    }
}

/// One entry of `routing.routes[].targets`: a carrier trunk.
public struct RouteTargetSettings: Codable, Sendable, Equatable {
    public var carrier: String = ""
    /// Trunk name; empty: the carrier's name.
    public var trunk: String = ""
    public var host: String = ""
    public var port: Int = 5060
    /// `udp`, `tcp` or `tls`.
    public var transport: String = "udp"
    /// Digits removed from the front of the E.164 number, then `addPrefix` put in front (tech prefix, 00…).
    public var stripDigits: Int = 0
    public var addPrefix: String = ""
    /// 0: `routing.setupTimeoutMilliseconds`.
    public var setupTimeoutMilliseconds: Int = 0
    /// Whether the routing core probes this trunk with OPTIONS (some carriers do not answer them).
    public var probe: Bool = true
    public init() {}
    public init(carrier: String, host: String, port: Int, transport: String = "udp", setupTimeoutMilliseconds: Int = 0) {
        self.carrier = carrier
        self.host = host
        self.port = port
        self.transport = transport
        self.setupTimeoutMilliseconds = setupTimeoutMilliseconds
    }
}

extension ConfigLoader {
    static func validateCalls(_ config: SiteConfig, file: String) throws(ConfigError) {
        func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(file: file, key: key, message) }
        let sbc = config.sbc
        let pbx = config.pbx
        let instances = config.instances
        if !sbc.advertisedAddress.isEmpty, !isNetwork(sbc.advertisedAddress) || sbc.advertisedAddress.contains("/") {
            throw fail("sbc.advertisedAddress", "must be an IP address, got '\(sbc.advertisedAddress)'")
        }
        for (name, address) in sbc.instanceAddresses.sorted(by: { $0.key < $1.key }) {
            guard instances.contains(where: { $0.role == .sbc && $0.name == name }) else {
                throw fail("sbc.instanceAddresses", "'\(name)' is not an SBC instance of the site")
            }
            guard isNetwork(address), !address.contains("/"), !SBCSettings.isWildcard(address) else {
                throw fail("sbc.instanceAddresses", "\(name): must be the instance's own IP address, got '\(address)'")
            }
        }
        if sbc.advertiseInstanceAddress {
            for instance in instances where instance.role == .sbc && sbc.instanceAddresses[instance.name] == nil {
                guard isNetwork(instance.host), !instance.host.contains("/"), !SBCSettings.isWildcard(instance.host) else {
                    throw fail("sbc.advertiseInstanceAddress", "\(instance.name)'s host must be its own IP address, got '\(instance.host)'")
                }
            }
        }
        if !sbc.mediaListenAddress.isEmpty, !isNetwork(sbc.mediaListenAddress) || sbc.mediaListenAddress.contains("/") {
            throw fail("sbc.mediaListenAddress", "must be an IP address, got '\(sbc.mediaListenAddress)'")
        }
        guard (1024...65535).contains(sbc.mediaPortMin) else { throw fail("sbc.mediaPortMin", "must be from 1024 to 65535") }
        guard (1024...65535).contains(sbc.mediaPortMax) else { throw fail("sbc.mediaPortMax", "must be from 1024 to 65535") }
        guard sbc.mediaPortMax - sbc.mediaPortMin >= 3 else {
            throw fail("sbc.mediaPortMax", "the media port range must hold at least 4 ports (one call)")
        }
        guard (1...604_800).contains(sbc.maximumCallSeconds) else { throw fail("sbc.maximumCallSeconds", "must be from 1 to 604800") }
        guard sbc.maximumCalls >= 1 else { throw fail("sbc.maximumCalls", "must be at least 1") }
        guard (1024...16_777_216).contains(sbc.maximumTransactions) else {
            throw fail("sbc.maximumTransactions", "must be from 1024 to 16777216")
        }
        guard sbc.maximumCallsPerCustomer >= 1 else { throw fail("sbc.maximumCallsPerCustomer", "must be at least 1") }
        guard (0...64).contains(sbc.eventLoops) else { throw fail("sbc.eventLoops", "must be from 0 (one per core) to 64") }
        guard (0...4096).contains(sbc.relayPrebindSessions) else { throw fail("sbc.relayPrebindSessions", "must be from 0 to 4096") }
        guard (1...1_000_000).contains(sbc.maximumPendingRegistrations) else {
            throw fail("sbc.maximumPendingRegistrations", "must be from 1 to 1000000")
        }
        guard (0...3600).contains(sbc.keepAliveSeconds) else { throw fail("sbc.keepAliveSeconds", "must be from 0 (off) to 3600") }
        guard (200...32_000).contains(sbc.registrationAttemptMilliseconds) else {
            throw fail("sbc.registrationAttemptMilliseconds", "must be from 200 to 32000")
        }
        guard (0...3600).contains(sbc.drainSeconds) else { throw fail("sbc.drainSeconds", "must be from 0 to 3600") }
        guard (0...60).contains(sbc.drainGraceSeconds) else { throw fail("sbc.drainGraceSeconds", "must be from 0 to 60") }
        guard sbc.checkpointIntervalMilliseconds == 0 || (100...60_000).contains(sbc.checkpointIntervalMilliseconds) else {
            throw fail("sbc.checkpointIntervalMilliseconds", "must be 0 (off) or from 100 to 60000")
        }
        guard (1...86_400).contains(pbx.minimumExpires) else { throw fail("pbx.minimumExpires", "must be from 1 to 86400") }
        guard pbx.defaultExpires >= pbx.minimumExpires else { throw fail("pbx.defaultExpires", "must be at least pbx.minimumExpires") }
        guard pbx.maximumExpires >= pbx.defaultExpires, pbx.maximumExpires <= 604_800 else {
            throw fail("pbx.maximumExpires", "must be from pbx.defaultExpires to 604800")
        }
        guard (1...1000).contains(pbx.maximumContactsPerExtension) else { throw fail("pbx.maximumContactsPerExtension", "must be from 1 to 1000") }
        guard (1...100_000).contains(pbx.maximumPendingRegistrations) else { throw fail("pbx.maximumPendingRegistrations", "must be from 1 to 100000") }
        guard !pbx.digestAlgorithms.isEmpty else { throw fail("pbx.digestAlgorithms", "must offer at least one algorithm") }
        guard (1024...65535).contains(pbx.mediaPortMin), (1024...65535).contains(pbx.mediaPortMax), pbx.mediaPortMax - pbx.mediaPortMin >= 1 else {
            throw fail("pbx.mediaPortMax", "the PBX's media ports must be from 1024 to 65535, at least 2 of them, min below max")
        }
        guard pbx.voicemailCode.count >= 2, pbx.voicemailCode.count <= 6, pbx.voicemailCode.hasPrefix("*"),
            pbx.voicemailCode.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber })
        else { throw fail("pbx.voicemailCode", "must be * and 1 to 5 digits, got '\(pbx.voicemailCode)'") }
        guard (5...3600).contains(pbx.voicemailMaxSeconds) else { throw fail("pbx.voicemailMaxSeconds", "must be from 5 to 3600") }
        guard (1...60).contains(pbx.voicemailSilenceSeconds) else { throw fail("pbx.voicemailSilenceSeconds", "must be from 1 to 60") }
        guard (1...86_400).contains(pbx.voicemailRetrySeconds) else { throw fail("pbx.voicemailRetrySeconds", "must be from 1 to 86400") }
        guard (1...100).contains(pbx.voicemailMaxAttempts) else { throw fail("pbx.voicemailMaxAttempts", "must be from 1 to 100") }
        if let command = pbx.voicemailMailCommand.first, !command.hasPrefix("/") {
            throw fail("pbx.voicemailMailCommand", "the command must be an absolute path, got '\(command)'")
        }
        if !pbx.voicemailWebhook.isEmpty, !(pbx.voicemailWebhook.hasPrefix("http://") || pbx.voicemailWebhook.hasPrefix("https://")) {
            throw fail("pbx.voicemailWebhook", "must be an http:// or https:// URL, got '\(pbx.voicemailWebhook)'")
        }
        if !pbx.mediaAddress.isEmpty, !isNetwork(pbx.mediaAddress) || pbx.mediaAddress.contains("/") {
            throw fail("pbx.mediaAddress", "must be an IP address, got '\(pbx.mediaAddress)'")
        }
        for (index, address) in pbx.trustedSources.enumerated() where !isNetwork(address) || address.contains("/") {
            throw fail("pbx.trustedSources[\(index)]", "must be an IP address, got '\(address)'")
        }
        for (index, name) in pbx.digestAlgorithms.enumerated() where !["MD5", "SHA-256", "SHA-512-256"].contains(name) {
            throw fail("pbx.digestAlgorithms[\(index)]", "must be one of MD5, SHA-256, SHA-512-256, got '\(name)'")
        }
        for (index, instance) in instances.enumerated() where instance.role == .pbx && !(1...65535).contains(instance.sipPort) {
            throw fail("instances[\(index)].sipPort", "a PBX instance needs a SIP port from 1 to 65535")
        }
        guard !sbc.realm.isEmpty, !sbc.realm.contains("\"") else { throw fail("sbc.realm", "must be non-empty and without quotes") }
        guard !sbc.digestAlgorithms.isEmpty else { throw fail("sbc.digestAlgorithms", "must offer at least one algorithm") }
        for (index, name) in sbc.digestAlgorithms.enumerated() where !["MD5", "SHA-256", "SHA-512-256"].contains(name) {
            throw fail("sbc.digestAlgorithms[\(index)]", "must be one of MD5, SHA-256, SHA-512-256, got '\(name)'")
        }
        var ids = Set<String>()
        for (index, customer) in sbc.customers.enumerated() {
            let key = "sbc.customers[\(index)]"
            guard !customer.id.isEmpty else { throw fail("\(key).id", "must not be empty") }
            guard ids.insert(customer.id).inserted else { throw fail("\(key).id", "'\(customer.id)' is used twice") }
            guard !customer.addresses.isEmpty else {
                throw fail("\(key).addresses", "must list at least one address or network (0.0.0.0/0 for anywhere, with credentials)")
            }
            for (position, entry) in customer.addresses.enumerated() where !isNetwork(entry) {
                throw fail("\(key).addresses[\(position)]", "'\(entry)' is not an IP address or CIDR network")
            }
            if customer.username.isEmpty != customer.password.isEmpty {
                throw fail("\(key).\(customer.username.isEmpty ? "username" : "password")", "username and password go together")
            }
            guard customer.maximumConcurrentCalls >= 0 else { throw fail("\(key).maximumConcurrentCalls", "must not be negative") }
        }
        for (index, carrier) in sbc.carriers.enumerated() {
            let key = "sbc.carriers[\(index)]"
            guard !carrier.id.isEmpty else { throw fail("\(key).id", "must not be empty") }
            guard !carrier.addresses.isEmpty else { throw fail("\(key).addresses", "must list at least one address or network") }
            for (position, entry) in carrier.addresses.enumerated() where !isNetwork(entry) {
                throw fail("\(key).addresses[\(position)]", "'\(entry)' is not an IP address or CIDR network")
            }
        }
        let routing = config.routing
        var numbers = Set<String>()
        for (index, did) in routing.dids.enumerated() {
            let key = "routing.dids[\(index)]"
            guard (6...15).contains(did.number.count), did.number.allSatisfy(\.isASCIIDigitCharacter) else {
                throw fail("\(key).number", "must be an E.164 number of 6 to 15 digits without '+', got '\(did.number)'")
            }
            guard numbers.insert(did.number).inserted else { throw fail("\(key).number", "+\(did.number) is listed twice") }
            guard !did.customer.isEmpty else { throw fail("\(key).customer", "must not be empty") }
            guard !did.host.isEmpty else { throw fail("\(key).host", "must not be empty") }
            guard (1...65535).contains(did.port) else { throw fail("\(key).port", "must be a port number from 1 to 65535") }
            guard ["udp", "tcp", "tls"].contains(did.transport) else {
                throw fail("\(key).transport", "must be one of udp, tcp, tls, got '\(did.transport)'")
            }
        }
        guard (100...300_000).contains(routing.setupTimeoutMilliseconds) else {
            throw fail("routing.setupTimeoutMilliseconds", "must be from 100 to 300000")
        }
        guard (1...1000).contains(routing.failuresToTakeOut) else { throw fail("routing.failuresToTakeOut", "must be from 1 to 1000") }
        guard routing.probeIntervalMilliseconds == 0 || (100...3_600_000).contains(routing.probeIntervalMilliseconds) else {
            throw fail("routing.probeIntervalMilliseconds", "must be 0 (off) or from 100 to 3600000")
        }
        guard (100...32000).contains(routing.probeTimeoutMilliseconds) else {
            throw fail("routing.probeTimeoutMilliseconds", "must be from 100 to 32000")
        }
        guard ["required", "off"].contains(routing.authorization) else {
            throw fail("routing.authorization", "must be required or off, got '\(routing.authorization.prefix(20))'")
        }
        guard routing.minimumTrunkMOS == 0 || (1.0...4.5).contains(routing.minimumTrunkMOS) else {
            throw fail("routing.minimumTrunkMOS", "must be 0 (off) or a MOS from 1 to 4.5")
        }
        guard (10...86400).contains(config.billing.grantSeconds) else { throw fail("billing.grantSeconds", "must be from 10 to 86400") }
        guard config.billing.sbcSilenceSeconds >= 0.5, config.billing.sbcSilenceSeconds <= 3600 else {
            throw fail("billing.sbcSilenceSeconds", "must be from 0.5 to 3600")
        }
        if config.sbc.checkpointIntervalMilliseconds > 0, config.billing.sbcSilenceSeconds * 1000 < Double(2 * config.sbc.checkpointIntervalMilliseconds) {
            throw fail("billing.sbcSilenceSeconds", "must be at least two heartbeats (2 × sbc.checkpointIntervalMilliseconds)")
        }
        guard TimeZone(identifier: config.billing.timeZone) != nil else {
            throw fail("billing.timeZone", "must be an IANA time zone such as UTC or Europe/Madrid, got '\(config.billing.timeZone.prefix(40))'")
        }
        guard TimeZone(identifier: routing.timeZone) != nil else {
            throw fail("routing.timeZone", "must be an IANA time zone such as UTC or Europe/Madrid, got '\(routing.timeZone.prefix(40))'")
        }
        for (index, route) in routing.routes.enumerated() {
            let key = "routing.routes[\(index)]"
            guard route.prefix.count <= 15, route.prefix.allSatisfy(\.isASCIIDigitCharacter) else {
                throw fail("\(key).prefix", "must be up to 15 E.164 digits without '+', got '\(route.prefix)'")
            }
            guard route.blocked || !route.targets.isEmpty else { throw fail("\(key).targets", "a route that is not blocked needs a target") }
            for (position, target) in route.targets.enumerated() {
                let targetKey = "\(key).targets[\(position)]"
                guard !target.carrier.isEmpty else { throw fail("\(targetKey).carrier", "must not be empty") }
                guard !target.host.isEmpty else { throw fail("\(targetKey).host", "must not be empty") }
                guard (1...65535).contains(target.port) else { throw fail("\(targetKey).port", "must be a port number from 1 to 65535") }
                guard ["udp", "tcp", "tls"].contains(target.transport) else {
                    throw fail("\(targetKey).transport", "must be one of udp, tcp, tls, got '\(target.transport)'")
                }
                guard (0...15).contains(target.stripDigits) else { throw fail("\(targetKey).stripDigits", "must be from 0 to 15") }
                guard target.addPrefix.allSatisfy({ $0.isASCIIDigitCharacter || $0 == "#" || $0 == "*" }) else {
                    throw fail("\(targetKey).addPrefix", "must be digits, * or #")
                }
                guard (0...300_000).contains(target.setupTimeoutMilliseconds) else {
                    throw fail("\(targetKey).setupTimeoutMilliseconds", "must be from 0 to 300000")
                }
            }
        }
    }
}

extension Character {
    var isASCIIDigitCharacter: Bool { isASCII && isNumber }
}

/// `pbx`: the hosted PBX's registrar (its SIP port is each PBX instance's `sipPort`).
public struct PBXSettings: Codable, Sendable, Equatable {
    /// A registration asking for less (but not 0) gets 423 Interval Too Brief with this Min-Expires.
    public var minimumExpires: Int = 60
    /// A registration asking for more is granted this.
    public var maximumExpires: Int = 3600
    /// What a registration without Expires gets.
    public var defaultExpires: Int = 600
    /// Contacts one extension may have registered at once (desk phone, softphone, ...); more gets 403.
    public var maximumContactsPerExtension: Int = 10
    /// Registrations being written to the store at once on one instance; more are answered 503 with Retry-After.
    public var maximumPendingRegistrations: Int = 256
    /// Digest algorithms offered to phones, strongest first (SHA-256, MD5).
    public var digestAlgorithms: [String] = ["SHA-256", "MD5"]
    /// Addresses besides the site's SBC instances' hosts (and loopback) allowed to send SIP to the PBX, e.g. an SBC's
    /// SIP source address when it differs from its link address. Everything else is dropped.
    public var trustedSources: [String] = []
    /// The address the PBX's own media (music on hold) is sent from and received on; empty: the instance's host.
    public var mediaAddress: String = ""
    /// The ports of that media, one per call on hold (even ports are used).
    public var mediaPortMin: Int = 30000
    public var mediaPortMax: Int = 31999
    /// A WAV file (mono 8 kHz: 16-bit PCM, µ-law or A-law) played to a party put on hold; empty: a built-in tune.
    /// Relative paths are resolved against the configuration file's directory.
    public var holdMusic: String = ""
    /// Where `file:` prompts of IVR menus are read; empty: `prompts` in the instance's data directory. Relative paths
    /// are resolved against the configuration file's directory.
    public var promptsDirectory: String = ""
    /// The text-to-speech command for `say:` prompts and the PBX's own phrases (Debian's espeak-ng), and its voice.
    public var speechCommand: String = "espeak-ng"
    public var speechVoice: String = "en-us"
    /// What an extension dials to reach its own voicemail box.
    public var voicemailCode: String = "*97"
    /// A voicemail message is cut at this length (seconds).
    public var voicemailMaxSeconds: Int = 120
    /// A recording stops after this many seconds of silence.
    public var voicemailSilenceSeconds: Int = 5
    /// A sendmail-compatible command that takes an e-mail on its standard input (Debian's msmtp: ["/usr/bin/msmtp", "-t"]).
    public var voicemailMailCommand: [String] = ["/usr/sbin/sendmail", "-t", "-i"]
    /// The From of voicemail e-mails.
    public var voicemailMailFrom: String = "voicemail@troncal.invalid"
    /// Every new voicemail is also POSTed (JSON, the recording in base64) to this URL; empty: no webhook.
    public var voicemailWebhook: String = ""
    /// A failed delivery is tried again after this many seconds, doubling each time (at most an hour) ...
    public var voicemailRetrySeconds: Int = 60
    /// ... up to this many attempts in all; then it is shown as failed.
    public var voicemailMaxAttempts: Int = 10
    public init() {}
}
