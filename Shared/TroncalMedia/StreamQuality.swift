/// The quality summary of one media stream at call end: what was counted and the E-model's verdict.
public struct StreamQuality: Codable, Sendable, Hashable {
    public var codec: String
    public var packets: Int
    public var bytes: Int
    public var lost: Int
    public var lossPercent: Double
    public var jitterMilliseconds: Double
    /// Round-trip time from RTCP, when the endpoints sent reports.
    public var roundTripMilliseconds: Double?
    /// The one-way delay the rating assumed.
    public var oneWayDelayMilliseconds: Double
    public var rFactor: Double
    public var mos: Double

    /// Rates a stream: one-way delay is half the RTCP round trip when known (else `assumedNetworkDelay`),
    /// plus a jitter buffer of twice the jitter and one packetization interval.
    public static func rate(
        _ statistics: RTPStreamStatistics, codec: String, roundTripMilliseconds rtt: Double?,
        packetizationMilliseconds: Double = 20, assumedNetworkDelayMilliseconds: Double = 20
    ) -> StreamQuality {
        let network = rtt.map { $0 / 2 } ?? assumedNetworkDelayMilliseconds
        let delay = network + 2 * statistics.jitterMilliseconds + packetizationMilliseconds
        let model = EModel(
            codec: CodecImpairment.forEncoding(codec), oneWayDelayMilliseconds: delay, packetLossPercent: statistics.lossPercent)
        let rating = model.rating()
        return StreamQuality(
            codec: codec, packets: statistics.packets, bytes: statistics.bytes, lost: statistics.lost,
            lossPercent: statistics.lossPercent, jitterMilliseconds: statistics.jitterMilliseconds, roundTripMilliseconds: rtt,
            oneWayDelayMilliseconds: delay, rFactor: rating.r, mos: rating.mos)
    }
}
