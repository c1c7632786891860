/// `sbc.probe` (routing → sbc): send a SIP OPTIONS to a carrier trunk and say how it answered. The routing
/// core uses it to take dead trunks out of routes and put them back once they answer again; probes go
/// through the SBC because it is the only part of the platform that talks to carriers.
public struct TrunkProbe: LinkRequest, Hashable {
    public typealias Reply = TrunkProbeResult
    public static let messageType = "sbc.probe"

    public var host: String
    public var port: Int
    /// `udp`, `tcp` or `tls`.
    public var transport: String
    /// How long to wait for an answer.
    public var timeoutMilliseconds: Int

    public init(host: String, port: Int, transport: String, timeoutMilliseconds: Int) {
        self.host = host
        self.port = port
        self.transport = transport
        self.timeoutMilliseconds = timeoutMilliseconds
    }
}

/// `sbc.probe.reply`: the status the trunk answered with and how long it took, or why there was no answer.
public struct TrunkProbeResult: LinkMessage, Hashable {
    public static let messageType = "sbc.probe.reply"

    public var status: Int?
    public var roundTripMilliseconds: Int?
    /// Why there is no status: `timeout`, or the transport error (connection refused…).
    public var failure: String?

    public init(status: Int?, roundTripMilliseconds: Int?, failure: String?) {
        self.status = status
        self.roundTripMilliseconds = roundTripMilliseconds
        self.failure = failure
    }

    /// Whether the trunk is alive: it answered, and not with a server error (501 Not Implemented is an answer).
    public var isAlive: Bool {
        guard let status else { return false }
        return status < 500 || status == 501
    }
}
