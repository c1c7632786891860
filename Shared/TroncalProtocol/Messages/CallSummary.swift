public import Foundation

/// The summary of one call the SBC handled: the raw material of a CDR. The SBC spools it durably before
/// sending it to billing (`billing.cdr`), and billing stores it idempotently by `id`.
public struct CallSummary: Codable, Sendable, Hashable {
    /// Unique per call, chosen by the SBC (a UUID): the CDR's idempotency key.
    public var id: String
    /// Call-ID of the customer's leg.
    public var callID: String
    public var customer: String
    public var caller: String
    public var callee: String
    public var site: String
    /// The SBC instance that handled the call.
    public var instance: String
    public var attempts: [Attempt]
    public var setupAt: Date
    public var answerAt: Date?
    public var endAt: Date
    /// Billable duration in milliseconds (answer to end; 0 when not answered).
    public var durationMilliseconds: Int
    public var disconnect: Disconnect
    public var streams: [StreamReport]

    /// One carrier attempt, in the order tried.
    public struct Attempt: Codable, Sendable, Hashable {
        public var carrier: String
        public var trunk: String
        public var result: CallAttemptReport.Result
        public var status: Int?
        public var startedAt: Date
        public var postDialDelayMilliseconds: Int?

        public init(carrier: String, trunk: String, result: CallAttemptReport.Result, status: Int?, startedAt: Date, postDialDelayMilliseconds: Int?) {
            self.carrier = carrier
            self.trunk = trunk
            self.result = result
            self.status = status
            self.startedAt = startedAt
            self.postDialDelayMilliseconds = postDialDelayMilliseconds
        }
    }

    /// Why and by whom the call ended.
    public struct Disconnect: Codable, Sendable, Hashable {
        public enum Party: String, Codable, Sendable, Hashable { case caller, callee, sbc }
        public var by: Party
        /// The final SIP status of the setup (200 when answered), or the BYE's cause.
        public var status: Int
        public var reason: String

        public init(by: Party, status: Int, reason: String) {
            self.by = by
            self.status = status
            self.reason = reason
        }
    }

    /// Quality of one relayed RTP stream, measured at the SBC.
    public struct StreamReport: Codable, Sendable, Hashable {
        /// `caller-to-callee` or `callee-to-caller`.
        public var direction: String
        public var codec: String
        public var packets: Int
        public var bytes: Int
        public var lost: Int
        public var jitterMilliseconds: Double
        public var roundTripMilliseconds: Double?
        public var rFactor: Double
        public var mos: Double

        public init(
            direction: String, codec: String, packets: Int, bytes: Int, lost: Int, jitterMilliseconds: Double,
            roundTripMilliseconds: Double?, rFactor: Double, mos: Double
        ) {
            self.direction = direction
            self.codec = codec
            self.packets = packets
            self.bytes = bytes
            self.lost = lost
            self.jitterMilliseconds = jitterMilliseconds
            self.roundTripMilliseconds = roundTripMilliseconds
            self.rFactor = rFactor
            self.mos = mos
        }
    }

    public init(
        id: String, callID: String, customer: String, caller: String, callee: String, site: String, instance: String,
        attempts: [Attempt], setupAt: Date, answerAt: Date?, endAt: Date, durationMilliseconds: Int,
        disconnect: Disconnect, streams: [StreamReport]
    ) {
        self.id = id
        self.callID = callID
        self.customer = customer
        self.caller = caller
        self.callee = callee
        self.site = site
        self.instance = instance
        self.attempts = attempts
        self.setupAt = setupAt
        self.answerAt = answerAt
        self.endAt = endAt
        self.durationMilliseconds = durationMilliseconds
        self.disconnect = disconnect
        self.streams = streams
    }
}
