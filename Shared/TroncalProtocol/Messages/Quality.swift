public import Foundation

/// The media quality of one call as measured at the SBC (or reported by a customer's phone with SIP `PUBLISH`
/// `application/vq-rtcpxr`, RFC 6035): who, through which carrier trunk, and each direction's counts and MOS.
public struct CallQuality: Codable, Sendable, Hashable {
    public enum Source: String, Codable, Sendable, Hashable {
        /// Counted by the SBC's relay.
        case sbc
        /// Reported by the customer's phone (RTCP XR summary by SIP PUBLISH).
        case phone
    }

    /// Which way the measured audio travelled. The SBC measures what it receives: from the customer (the customer's
    /// access network) and from the carrier (the carrier's network); a phone reports what it received.
    public enum Direction: String, Codable, Sendable, Hashable, CaseIterable {
        case customerToSBC = "customer-to-sbc"
        case carrierToSBC = "carrier-to-sbc"
        case sbcToCustomer = "sbc-to-customer"

        /// Words for a notice: whose network the loss is on.
        public var meaning: String {
            switch self {
            case .customerToSBC: "customer → SBC (the customer's access)"
            case .carrierToSBC: "carrier → SBC (the carrier)"
            case .sbcToCustomer: "SBC → customer (as the phone heard it)"
            }
        }
    }

    public struct Stream: Codable, Sendable, Hashable {
        public var direction: Direction
        public var codec: String
        public var packets: Int
        public var lost: Int
        public var lossPercent: Double
        public var jitterMilliseconds: Double
        public var roundTripMilliseconds: Double?
        /// The one-way mouth-to-ear delay the rating assumed (network, jitter buffer, packetization).
        public var delayMilliseconds: Double
        public var mos: Double

        public init(
            direction: Direction, codec: String, packets: Int, lost: Int, lossPercent: Double, jitterMilliseconds: Double,
            roundTripMilliseconds: Double?, delayMilliseconds: Double, mos: Double
        ) {
            self.direction = direction
            self.codec = codec
            self.packets = packets
            self.lost = lost
            self.lossPercent = lossPercent
            self.jitterMilliseconds = jitterMilliseconds
            self.roundTripMilliseconds = roundTripMilliseconds
            self.delayMilliseconds = delayMilliseconds
            self.mos = mos
        }
    }

    public var callID: String
    public var source: Source
    public var customer: String
    /// The carrier and trunk of the answered attempt; `on-net` for a call from a carrier to one of our numbers.
    public var carrier: String
    public var trunk: String
    public var caller: String
    public var callee: String
    public var site: String
    public var instance: String
    public var endAt: Date
    public var durationMilliseconds: Int
    public var streams: [Stream]

    public init(
        callID: String, source: Source, customer: String, carrier: String, trunk: String, caller: String, callee: String, site: String,
        instance: String, endAt: Date, durationMilliseconds: Int, streams: [Stream]
    ) {
        self.callID = callID
        self.source = source
        self.customer = customer
        self.carrier = carrier
        self.trunk = trunk
        self.caller = caller
        self.callee = callee
        self.site = site
        self.instance = instance
        self.endAt = endAt
        self.durationMilliseconds = durationMilliseconds
        self.streams = streams
    }

    /// The call's MOS: that of its worse direction (what one of the two parties heard). Nil without streams.
    public var mos: Double? { streams.map(\.mos).min() }

    public func stream(_ direction: Direction) -> Stream? { streams.first { $0.direction == direction } }
}

/// `monitor.qos` (SBC → monitor, one-way): the quality of calls that ended, batched per SBC event loop. A lost batch
/// costs the monitor statistics, never a call.
public struct QualityReports: LinkMessage, Hashable {
    public static let messageType = "monitor.qos"
    public var calls: [CallQuality]
    public init(calls: [CallQuality]) { self.calls = calls }
}

/// `routing.trunkQuality` (monitor → routing, one-way): each carrier trunk's MOS over the monitor's window, for
/// routing to move trunks below `routing.minimumTrunkMOS` to the end of their routes until they recover.
public struct TrunkQualityReport: LinkMessage, Hashable {
    public static let messageType = "routing.trunkQuality"

    public struct Trunk: Codable, Sendable, Hashable {
        public var carrier: String
        public var trunk: String
        /// Mean MOS of the carrier → SBC direction of the window's calls.
        public var mos: Double
        public var calls: Int
        public var lossPercent: Double
        public init(carrier: String, trunk: String, mos: Double, calls: Int, lossPercent: Double) {
            self.carrier = carrier
            self.trunk = trunk
            self.mos = mos
            self.calls = calls
            self.lossPercent = lossPercent
        }
    }

    public var windowSeconds: Int
    /// Every trunk with enough calls in the window; a trunk not listed has no quality verdict (too few calls).
    public var trunks: [Trunk]
    public var at: Date
    /// How long routing may act on this report: a monitor that stops reporting demotes nothing.
    public var validSeconds: Int
    public init(windowSeconds: Int, trunks: [Trunk], at: Date, validSeconds: Int) {
        self.windowSeconds = windowSeconds
        self.trunks = trunks
        self.at = at
        self.validSeconds = validSeconds
    }
}
