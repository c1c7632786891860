public import Foundation
internal import TroncalProtocol
public import Logging
internal import Metrics
public import TroncalRuntime
public import TroncalSIP
import Synchronization

/// Who may call through the SBC, shared by every event loop: the customers and carriers of `sbc.customers` and
/// `sbc.carriers` by source address, digest authentication of customers with credentials, and the concurrent call
/// limits (per SBC and per customer) counted with atomics, so that admitting a call on one loop takes no lock.
///
/// Every digest failure gets the same 403 whether the user exists or not. The digest nonce counts are the one piece
/// behind a lock: a replayed nonce count must be caught whichever loop its Call-ID lands on; only INVITEs of
/// customers with credentials take it.
public final class CallAdmission: Sendable {
    /// What the source address says about a new call.
    enum Caller {
        case unknown
        /// A carrier of `sbc.carriers` (its calls go to the operator's DIDs).
        case carrier(CustomerSettings)
        /// The customers whose trunk addresses hold the source, the most specific first.
        case customers([CustomerSettings])
    }

    enum Verdict {
        case authenticated(CustomerSettings)
        /// Answer this (a 407 challenge, or 403).
        case answer(SIPResponse)
    }

    let customers: CustomerDirectory
    let carriers: CustomerDirectory
    let authenticator: DigestAuthenticator
    let realm: String
    let maximumCalls: Int
    let maximumCallsPerCustomer: Int
    let frontDoor: SIPFrontDoor
    let logger: Logger
    private let nonceCounts = Mutex(DigestNonceCountTracker())
    private let total = Atomic<Int>(0)
    /// Set when the SBC drains (graceful stop, or withdrawn): new calls are refused with 503.
    private let drainingFlag = Atomic<Bool>(false)
    /// One counter per customer and carrier id, made at start (the ids come from the configuration).
    private let perCustomer: [String: CallCounter]
    private let authenticationFailures = Counter(label: "troncal_sbc_authentication_failures_total")
    private let activeCalls = Gauge(label: "troncal_sbc_calls_active")

    final class CallCounter: Sendable {
        let value = Atomic<Int>(0)
    }

    public init(
        customers: CustomerDirectory, carriers: CustomerDirectory, realm: String, digestAlgorithms: [DigestAlgorithm], maximumCalls: Int,
        maximumCallsPerCustomer: Int, frontDoor: SIPFrontDoor, logger: Logger
    ) {
        self.customers = customers
        self.carriers = carriers
        self.realm = realm
        self.maximumCalls = maximumCalls
        self.maximumCallsPerCustomer = maximumCallsPerCustomer
        self.frontDoor = frontDoor
        self.logger = logger
        var secret = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in secret.indices { secret[index] = UInt8.random(in: 0...255, using: &generator) }
        self.authenticator = DigestAuthenticator(realm: realm, nonces: DigestNonceAuthority(secret: secret)!, algorithms: digestAlgorithms)
        var counters: [String: CallCounter] = [:]
        for entry in customers.entries + carriers.entries { counters[entry.customer.id] = CallCounter() }
        perCustomer = counters
    }

    /// Calls admitted and not yet released.
    public var callCount: Int { total.load(ordering: .relaxed) }

    /// Who the source is. A carrier's own network beats a broader customer network (say a roaming customer on
    /// 0.0.0.0/0).
    func identify(_ address: String) -> Caller {
        let carrierLength = carriers.bestPrefixLength(at: address) ?? -1
        if carrierLength >= 0, carrierLength > (customers.bestPrefixLength(at: address) ?? -1), let carrier = carriers.customers(at: address).first {
            return .carrier(carrier)
        }
        let candidates = customers.customers(at: address)
        return candidates.isEmpty ? .unknown : .customers(candidates)
    }

    /// Digest authentication of a new call, or of a customer's out-of-dialog request such as a quality report
    /// (RFC 8760: a challenge per algorithm).
    func authenticate(_ invite: SIPRequest, source: SIPSource, candidates: [CustomerSettings], toTag: String, now: Date) -> Verdict {
        let authenticator = self.authenticator
        let challenge: (Bool) -> SIPResponse = { stale in
            var response = InviteServerTransaction.response(407, "Proxy Authentication Required", to: invite, toTag: toTag)
            for challenge in authenticator.challenges(now: now, stale: stale) {
                response.headers.insert(SIPHeaderField(.proxyAuthenticate, value: challenge.description), at: response.headers.count - 1)
            }
            return response
        }
        let header = invite.headers.first(.proxyAuthorization).flatMap { try? DigestCredentials(headerValue: $0.valueString) }
        guard let credentials = header, credentials.realm == realm else { return .answer(challenge(false)) }
        // The same work and the same answer whether or not the user exists: no extension enumeration.
        let customer = candidates.first { $0.username == credentials.username && !$0.username.isEmpty }
        // The digest-uri must name this request's host and port; its user part may be left out, as sipp and some
        // phones do (the nonce count still stops any replay).
        var requestURI = invite.uri
        if let digestURI = SIPURI(credentials.uri), digestURI.user == nil, digestURI.host == invite.uri.host, digestURI.port == invite.uri.port {
            requestURI = digestURI
        }
        let secret = customer?.password ?? RandomID.uuidString()
        let verification = nonceCounts.withLock { counts in
            authenticator.verify(
                credentials, method: invite.method.name, requestURI: requestURI, username: customer?.username ?? credentials.username,
                secret: .password(secret), now: now, nonceCounts: &counts)
        }
        switch verification {
        case .authenticated where customer != nil:
            guard let customer else { break }
            frontDoor.recordAuthenticated(source, account: customer.id)
            return .authenticated(customer)
        case .stale:
            return .answer(challenge(true))
        default:
            break
        }
        authenticationFailures.increment()
        logger.info("digest authentication failed", metadata: ["source": "\(source)", "reason": "\(verification)"])
        frontDoor.recordAuthenticationFailure(source)
        return .answer(InviteServerTransaction.response(403, "Forbidden", to: invite, toTag: toTag))
    }

    /// From now on, new calls are refused (503) while the calls in progress go on.
    public func startDraining() { drainingFlag.store(true, ordering: .relaxed) }
    public var isDraining: Bool { drainingFlag.load(ordering: .relaxed) }

    /// Counts a call in, unless the SBC or the customer is at its limit (the refusal reason then).
    func admit(_ customer: CustomerSettings) -> String? {
        if drainingFlag.load(ordering: .relaxed) { return "sbc-draining" }
        if total.wrappingAdd(1, ordering: .relaxed).newValue > maximumCalls {
            total.wrappingSubtract(1, ordering: .relaxed)
            return "sbc-full"
        }
        let limit = customer.maximumConcurrentCalls > 0 ? customer.maximumConcurrentCalls : maximumCallsPerCustomer
        if let counter = perCustomer[customer.id], counter.value.wrappingAdd(1, ordering: .relaxed).newValue > limit {
            counter.value.wrappingSubtract(1, ordering: .relaxed)
            total.wrappingSubtract(1, ordering: .relaxed)
            logger.info("call refused: customer at its concurrent call limit", metadata: ["customer": "\(customer.id)", "limit": "\(limit)"])
            return "customer-limit"
        }
        activeCalls.record(total.load(ordering: .relaxed))
        return nil
    }

    /// Counts a call out.
    func release(_ customer: String) {
        perCustomer[customer]?.value.wrappingSubtract(1, ordering: .relaxed)
        let now = total.wrappingSubtract(1, ordering: .relaxed).newValue
        activeCalls.record(now)
    }
}

/// The customers of `sbc.customers`, found by source address (the most specific network first).
public struct CustomerDirectory: Sendable {
    struct Entry: Sendable {
        let network: IPNetwork
        let customer: CustomerSettings
    }

    let entries: [Entry]

    public init(_ customers: [CustomerSettings]) {
        var entries: [Entry] = []
        for customer in customers {
            for address in customer.addresses {
                if let network = IPNetwork(address) { entries.append(Entry(network: network, customer: customer)) }
            }
        }
        self.entries = entries.sorted { $0.network.prefixLength > $1.network.prefixLength }
    }

    /// The length of the most specific network holding `address`, if any.
    public func bestPrefixLength(at address: String) -> Int? {
        entries.first { $0.network.contains(address) }?.network.prefixLength
    }

    /// The customer with this id (its concurrent-call limit applies to the PBX's outside calls charged to it too).
    public func customer(id: String) -> CustomerSettings? {
        entries.first { $0.customer.id == id }?.customer
    }

    /// Every customer whose trunk addresses hold `address`, the most specific first.
    public func customers(at address: String) -> [CustomerSettings] {
        var seen = Set<String>()
        return entries.filter { $0.network.contains(address) && seen.insert($0.customer.id).inserted }.map(\.customer)
    }
}
