/// `routing.route` (sbc → routing): where should this call go? Sent once per call setup.
public struct RouteRequest: LinkRequest, Hashable {
    /// Retryable: a lookup, and its billing authorization is keyed by call id.
    public static var retryable: Bool { true }
    public typealias Reply = RouteDecision
    public static let messageType = "routing.route"

    /// The customer (account) the call is from, as the SBC identified it (trunk IP or digest user).
    public var customer: String
    /// The calling number or user as received (From / P-Asserted-Identity user part).
    public var caller: String
    /// The called number as dialled (Request-URI user part, or a `tel:`/`sip:` URI).
    public var callee: String
    /// The SBC's site, to prefer trunks near it.
    public var site: String
    /// The SIP Call-ID of the customer's leg, for logs and correlation only.
    public var callID: String
    /// Whether the call came from a carrier (origination, to a DID) rather than a customer.
    public var fromCarrier: Bool
    /// The SBC run the call is on (`instance` and `boot` as in its `billing.calls` heartbeats), passed on to
    /// `billing.authorize` so that billing can release the reservation at once if that run is lost before the call
    /// is answered. Absent from SBCs without heartbeats and from older ones.
    public var sbc: String?
    public var sbcBoot: String?

    public init(
        customer: String, caller: String, callee: String, site: String, callID: String, fromCarrier: Bool = false, sbc: String? = nil,
        sbcBoot: String? = nil
    ) {
        self.customer = customer
        self.caller = caller
        self.callee = callee
        self.site = site
        self.callID = callID
        self.fromCarrier = fromCarrier
        self.sbc = sbc
        self.sbcBoot = sbcBoot
    }
}

/// One place to send the call: a carrier trunk, with the number as that carrier wants it.
public struct RouteTarget: Codable, Sendable, Hashable {
    public var carrier: String
    public var trunk: String
    public var host: String
    public var port: Int
    /// `udp`, `tcp` or `tls`.
    public var transport: String
    /// The Request-URI user part to send (after the trunk's strip/add/tech-prefix rules).
    public var number: String
    /// How long to wait for a final answer (or an 18x) before trying the next target, in milliseconds.
    public var setupTimeoutMilliseconds: Int
    /// How long the target may ring (after its first 18x) before the next one is tried; nil: the caller's ring limit
    /// (the PBX's ring groups and no-answer forwarding set it).
    public var ringTimeoutMilliseconds: Int?
    /// Final statuses after which the next target is tried, besides 408 and 5xx (a ring group's busy member: 486).
    public var huntOn: [Int]?

    public init(
        carrier: String, trunk: String, host: String, port: Int, transport: String, number: String, setupTimeoutMilliseconds: Int,
        ringTimeoutMilliseconds: Int? = nil, huntOn: [Int]? = nil
    ) {
        self.carrier = carrier
        self.trunk = trunk
        self.host = host
        self.port = port
        self.transport = transport
        self.number = number
        self.setupTimeoutMilliseconds = setupTimeoutMilliseconds
        self.ringTimeoutMilliseconds = ringTimeoutMilliseconds
        self.huntOn = huntOn
    }
}

/// `routing.route.reply`: the ordered targets (try each in turn on no answer, 408, 5xx), an on-net
/// destination, or a refusal with the SIP status to answer.
public struct RouteDecision: LinkMessage, Hashable {
    public static let messageType = "routing.route.reply"

    public enum Outcome: String, Codable, Sendable, Hashable {
        case route
        case onNet
        case reject
    }

    public var outcome: Outcome
    /// The callee in E.164 (digits, no `+`) when it could be normalised.
    public var callee: String?
    public var targets: [RouteTarget]
    /// For `onNet`: the customer trunk or PBX tenant that owns the DID, as a target.
    public var onNet: RouteTarget?
    /// The longest authorised duration (from billing), in seconds; nil means no limit.
    public var maximumDurationSeconds: Int?
    /// Whether billing will extend `maximumDurationSeconds` when asked (`billing.renew`) before it runs out.
    public var renewable: Bool?
    /// For `reject`: the SIP status (404 unknown number, 403 blocked destination, 402/403 no credit,
    /// 503 no carrier available) and a reason for logs (never shown to the customer beyond the status).
    public var rejectStatus: Int?
    public var reason: String?

    public init(
        outcome: Outcome, callee: String? = nil, targets: [RouteTarget] = [], onNet: RouteTarget? = nil,
        maximumDurationSeconds: Int? = nil, rejectStatus: Int? = nil, reason: String? = nil
    ) {
        self.outcome = outcome
        self.callee = callee
        self.targets = targets
        self.onNet = onNet
        self.maximumDurationSeconds = maximumDurationSeconds
        self.rejectStatus = rejectStatus
        self.reason = reason
    }

    public static func reject(_ status: Int, _ reason: String) -> RouteDecision {
        RouteDecision(outcome: .reject, rejectStatus: status, reason: reason)
    }
}
