/// Counters of one received RTP stream, kept as RFC 3550 Appendix A.1/A.8 describes: extended sequence
/// numbers across wrap-around, expected versus received packets (loss), duplicates and reordering, and the
/// interarrival jitter estimate.
///
/// Feed it every packet with its arrival time; time is passed in, never read.
public struct RTPStreamStatistics: Sendable, Hashable {
    /// RTP clock rate of the stream's codec (8000 for G.711/G.729).
    public let clockRate: Int
    public private(set) var ssrc: UInt32?
    public private(set) var packets: Int = 0
    public private(set) var bytes: Int = 0
    public private(set) var duplicates: Int = 0
    public private(set) var outOfOrder: Int = 0
    /// Jitter in timestamp units, times 16 (RFC 3550 A.8 keeps it scaled).
    private var jitterScaled: Int64 = 0
    private var baseSequence: UInt32 = 0
    private var highestSequence: UInt16 = 0
    private var cycles: UInt32 = 0
    private var lastTransit: Int64?
    private var started = false
    private var recentSequences: [UInt16] = []

    public init(clockRate: Int = 8000) {
        self.clockRate = clockRate
    }

    /// Records one packet. `arrival` is the receive time in nanoseconds on any monotonic clock.
    public mutating func record(_ header: RTPHeader, size: Int, arrivalNanoseconds arrival: Int64) {
        if !started || header.ssrc != ssrc {
            // A new source (or a restarted sender): start over (RFC 3550 A.1 init_seq).
            self = RTPStreamStatistics(clockRate: clockRate)
            started = true
            ssrc = header.ssrc
            baseSequence = UInt32(header.sequenceNumber)
            highestSequence = header.sequenceNumber
        } else {
            if recentSequences.contains(header.sequenceNumber) {
                duplicates += 1
                return
            }
            let delta = header.sequenceNumber &- highestSequence
            if delta == 0 {
                duplicates += 1
                return
            } else if delta < 3000 {
                if header.sequenceNumber < highestSequence { cycles &+= 1 }
                highestSequence = header.sequenceNumber
            } else if delta <= 65535 - 100 {
                // A very large jump: treat as a sender restart of the sequence space.
                let saved = (packets, bytes)
                self = RTPStreamStatistics(clockRate: clockRate)
                started = true
                ssrc = header.ssrc
                baseSequence = UInt32(header.sequenceNumber)
                highestSequence = header.sequenceNumber
                (packets, bytes) = saved
            } else {
                outOfOrder += 1
            }
        }
        recentSequences.append(header.sequenceNumber)
        if recentSequences.count > 64 { recentSequences.removeFirst() }
        packets += 1
        bytes += size
        // Interarrival jitter (A.8), in timestamp units.
        let arrivalUnits = arrival * Int64(clockRate) / 1_000_000_000
        let transit = arrivalUnits - Int64(header.timestamp)
        if let lastTransit {
            var d = transit - lastTransit
            if d < 0 { d = -d }
            jitterScaled += d - ((jitterScaled + 8) >> 4)
        }
        lastTransit = transit
    }

    /// Packets the sequence numbers say should have arrived.
    public var expected: Int {
        guard started else { return 0 }
        let extendedHighest = Int64(cycles) << 16 | Int64(highestSequence)
        return Int(extendedHighest - Int64(baseSequence) + 1)
    }

    /// Packets lost (never negative: duplicates don't count as negative loss here).
    public var lost: Int { max(0, expected - packets) }

    /// Loss as a percentage of expected packets.
    public var lossPercent: Double { expected > 0 ? Double(lost) * 100 / Double(expected) : 0 }

    /// The interarrival jitter in milliseconds.
    public var jitterMilliseconds: Double { Double(jitterScaled >> 4) * 1000 / Double(clockRate) }
}
