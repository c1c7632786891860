import Testing
import TroncalRuntime

@Suite("Runtime: link probe window")
struct ProbeWindowTests {
    @Test func latencyJitterAndLossComeFromTheLastProbesOnly() {
        var window = ProbeWindow(size: 4)
        #expect(window.lossPercent == nil && window.latencyMilliseconds == nil && window.jitterMilliseconds == nil)
        window.record(10)
        #expect(window.latencyMilliseconds == 10)
        #expect(window.jitterMilliseconds == nil, "one probe has no jitter")
        window.record(14)
        window.record(nil)
        window.record(12)
        #expect(window.lossPercent == 25)
        #expect(window.latencyMilliseconds == 12)
        // |14 − 10| and |12 − 14| over the answered ones.
        #expect(window.jitterMilliseconds == 3)
        // Older probes leave the window.
        window.record(12)
        window.record(12)
        window.record(12)
        #expect(window.probes == [12, 12, 12, 12])
        window.record(12)
        #expect(window.lossPercent == 0)
        #expect(window.jitterMilliseconds == 0)
        window.record(nil)
        window.record(nil)
        window.record(nil)
        window.record(nil)
        #expect(window.lossPercent == 100)
        #expect(window.latencyMilliseconds == nil)
    }

    @Test func oneLateProbeDoesNotMoveTheLatencyAndAWindowOfSlowOnesDoes() {
        var window = ProbeWindow(size: 5)
        for roundTrip in [50.0, 51, 49, 50, 150] { window.record(roundTrip) }
        #expect(window.latencyMilliseconds == 50)
        for roundTrip in [150.0, 150, 150] { window.record(roundTrip) }
        #expect(window.latencyMilliseconds == 150)
        window.record(nil)
        // An even count of answers: the mean of the two middle ones.
        #expect(window.latencyMilliseconds == 150)
    }
}
