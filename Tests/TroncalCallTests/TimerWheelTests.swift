import Testing
import TroncalCall

@Suite("Timer wheel")
struct TimerWheelTests {
    static let ms: Int64 = 1_000_000

    @Test func timersFireInDeadlineOrderNeverEarlyAndAtMostOneTickLate() {
        var wheel = TimerWheel<String>(resolution: .milliseconds(10), slotCount: 8, now: 0)
        wheel.schedule("c", at: 35 * Self.ms)
        wheel.schedule("a", at: 5 * Self.ms)
        wheel.schedule("b", at: 10 * Self.ms)
        var fired = [wheel.expire(upTo: 4 * Self.ms), wheel.expire(upTo: 10 * Self.ms)]
        fired += [wheel.expire(upTo: 34 * Self.ms), wheel.expire(upTo: 40 * Self.ms)]
        #expect(fired == [[], ["a", "b"], [], ["c"]])
        #expect(wheel.isEmpty)
    }

    @Test func aDeadlineBeyondOneTurnWaitsForItsTurn() {
        // 8 slots of 10 ms: one turn is 80 ms.
        var wheel = TimerWheel<Int>(resolution: .milliseconds(10), slotCount: 8, now: 0)
        wheel.schedule(1, at: 250 * Self.ms)
        var fired: [Int64] = []
        var time: Int64 = 0
        while time <= 400 * Self.ms {
            if !wheel.expire(upTo: time).isEmpty { fired.append(time / Self.ms) }
            time += 5 * Self.ms
        }
        #expect(fired == [250])
    }

    @Test func cancelledAndReplacedTimersDoNotFire() {
        var wheel = TimerWheel<Int>(resolution: .milliseconds(10), now: 0)
        for key in 0..<100 { wheel.schedule(key, at: Int64(key) * Self.ms) }
        for key in stride(from: 0, to: 100, by: 2) {
            let cancelled = wheel.cancel(key)
            #expect(cancelled)
        }
        let again = wheel.cancel(0)
        #expect(!again)
        wheel.schedule(1, at: 500 * Self.ms)
        #expect(wheel.count == 50)
        let fired = wheel.expire(upTo: 100 * Self.ms)
        #expect(fired == Array(stride(from: 3, to: 100, by: 2)))
        let later = wheel.expire(upTo: 500 * Self.ms)
        #expect(later == [1])
    }

    @Test func aWheelLeftAloneForLongerThanATurnFiresEverythingDue() {
        var wheel = TimerWheel<Int>(resolution: .milliseconds(10), slotCount: 4, now: 0)
        for key in 0..<20 { wheel.schedule(key, at: Int64(key) * 7 * Self.ms) }
        let fired = wheel.expire(upTo: 1_000 * Self.ms)
        #expect(fired == Array(0..<20))
    }

    @Test func aDeadlineInThePastFiresAtTheNextTick() {
        var wheel = TimerWheel<Int>(resolution: .milliseconds(10), now: 100 * Self.ms)
        _ = wheel.expire(upTo: 200 * Self.ms)
        wheel.schedule(9, at: 50 * Self.ms)
        let fired = [wheel.expire(upTo: 205 * Self.ms), wheel.expire(upTo: 210 * Self.ms)]
        #expect(fired == [[], [9]])
    }
}
