import Testing
import TroncalMedia

@Suite("RTP/RTCP parsing and stream statistics")
struct RTPStatisticsTests {
    func packet(sequence: UInt16, timestamp: UInt32, ssrc: UInt32 = 0x1234_5678, payload: Int = 160) -> [UInt8] {
        [0x80, 0x00, UInt8(sequence >> 8), UInt8(sequence & 0xff),
         UInt8(timestamp >> 24), UInt8(timestamp >> 16 & 0xff), UInt8(timestamp >> 8 & 0xff), UInt8(timestamp & 0xff),
         UInt8(ssrc >> 24), UInt8(ssrc >> 16 & 0xff), UInt8(ssrc >> 8 & 0xff), UInt8(ssrc & 0xff)] + [UInt8](repeating: 0xff, count: payload)
    }

    @Test func parsesTheFixedHeaderAndRefusesNonRTP() throws {
        let header = try #require(RTPHeader(packet(sequence: 7, timestamp: 160)))
        #expect(header.sequenceNumber == 7)
        #expect(header.timestamp == 160)
        #expect(header.ssrc == 0x1234_5678)
        #expect(header.payloadOffset == 12)
        #expect(header.payloadLength == 160)
        #expect(RTPHeader([0x40, 0, 0, 1]) == nil)
        #expect(RTPHeader([UInt8](repeating: 0x40, count: 40)) == nil)
        // CSRC count claims more than the packet holds.
        #expect(RTPHeader([0x8f] + [UInt8](repeating: 0, count: 20)) == nil)
    }

    @Test func perfectStreamHasNoLossAndNoJitter() throws {
        var stats = RTPStreamStatistics()
        for n in 0..<500 {
            let header = try #require(RTPHeader(packet(sequence: UInt16(n), timestamp: UInt32(n * 160))))
            stats.record(header, size: 172, arrivalNanoseconds: Int64(n) * 20_000_000)
        }
        #expect(stats.packets == 500)
        #expect(stats.expected == 500)
        #expect(stats.lost == 0)
        #expect(stats.jitterMilliseconds < 0.2)
    }

    @Test func lossIsCountedAcrossSequenceWrapAround() throws {
        var stats = RTPStreamStatistics()
        var sequence: UInt16 = 65_000
        for n in 0..<1000 {
            defer { sequence &+= 1 }
            if n % 10 == 3 { continue }  // every tenth packet lost
            let header = try #require(RTPHeader(packet(sequence: sequence, timestamp: UInt32(n * 160))))
            stats.record(header, size: 172, arrivalNanoseconds: Int64(n) * 20_000_000)
        }
        #expect(stats.expected == 1000)
        #expect(stats.lost == 100)
        #expect(abs(stats.lossPercent - 10) < 0.001)
    }

    @Test func duplicatesAreNotCountedTwice() throws {
        var stats = RTPStreamStatistics()
        for n in [0, 1, 1, 2, 2, 3] {
            let header = try #require(RTPHeader(packet(sequence: UInt16(n), timestamp: UInt32(n * 160))))
            stats.record(header, size: 172, arrivalNanoseconds: Int64(n) * 20_000_000)
        }
        #expect(stats.packets == 4)
        #expect(stats.duplicates == 2)
        #expect(stats.lost == 0)
    }

    @Test func jitterFollowsRFC3550ForAlternatingDelay() throws {
        // Arrivals alternate 0 and 10 ms late: |D| = 10 ms every packet, so J converges towards 10 ms.
        var stats = RTPStreamStatistics()
        for n in 0..<2000 {
            let late: Int64 = n % 2 == 0 ? 0 : 10_000_000
            let header = try #require(RTPHeader(packet(sequence: UInt16(n), timestamp: UInt32(n * 160))))
            stats.record(header, size: 172, arrivalNanoseconds: Int64(n) * 20_000_000 + late)
        }
        #expect(abs(stats.jitterMilliseconds - 10) < 0.5)
    }

    @Test func roundTripTimeComesFromLSRAndDLSR() throws {
        // RR with one block: LSR = 0x0001_0000 (1 s), DLSR = 0x0000_8000 (0.5 s); arrival 1.6 s → RTT 100 ms.
        let rr: [UInt8] = [0x81, 201, 0, 7, 0, 0, 0, 1,
                           0x12, 0x34, 0x56, 0x78, 0x05, 0, 0, 3, 0, 0, 1, 0, 0, 0, 0, 40,
                           0, 1, 0, 0, 0, 0, 0x80, 0]
        let report = try #require(rr.withUnsafeBytes { RTCPReport($0) })
        #expect(report.blocks.count == 1)
        #expect(report.blocks[0].cumulativeLost == 3)
        #expect(report.blocks[0].fractionLost == 5)
        let rtt = try #require(RTCPReport.roundTripMilliseconds(block: report.blocks[0], arrivalNTPMiddle: 0x0001_0000 + 0x0000_8000 + 6554))
        #expect(abs(rtt - 100) < 0.1)
        #expect(rr.withUnsafeBytes { RTPHeader.isRTCP($0) })
    }

    @Test func qualityOfACleanG711CallIsHigh() throws {
        var stats = RTPStreamStatistics()
        for n in 0..<250 {
            let header = try #require(RTPHeader(packet(sequence: UInt16(n), timestamp: UInt32(n * 160))))
            stats.record(header, size: 172, arrivalNanoseconds: Int64(n) * 20_000_000)
        }
        let quality = StreamQuality.rate(stats, codec: "PCMU", roundTripMilliseconds: 40)
        #expect(quality.mos > 4.3)
        let lossy = StreamQuality.rate(stats, codec: "G729", roundTripMilliseconds: 400)
        #expect(lossy.mos < quality.mos)
    }
}
