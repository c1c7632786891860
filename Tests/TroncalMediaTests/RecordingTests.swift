import Foundation
import Testing
import TroncalMedia

/// What recording and prompts need besides the codecs: a jitter buffer that puts frames back in order, and a
/// resampler that brings espeak-ng's 22,050 Hz speech to 8 kHz without folding high frequencies into the band.
@Suite struct RecordingTests {
    static func frame(_ value: Int16) -> [Int16] { [Int16](repeating: value, count: 160) }

    @Test func framesComeOutInSequenceOrderWithLostOnesAsSilenceAndLateOnesDropped() {
        var buffer = JitterBuffer(depth: 3)
        var out: [[Int16]] = []
        // 10, 12, 11 (reordered), 11 again (duplicate), then 14 (13 lost), 15, 16, 17 push 13 out as silence.
        for (sequence, value) in [(10, 1), (12, 3), (11, 2), (11, 2), (14, 5), (15, 6), (16, 7), (17, 8)] as [(UInt16, Int16)] {
            out += buffer.add(sequence: sequence, samples: Self.frame(value))
        }
        // 9 arrives after 10 went out: too late.
        out += buffer.add(sequence: 9, samples: Self.frame(9))
        out += buffer.drain()
        #expect(out.map { $0[0] } == [1, 2, 3, 0, 5, 6, 7, 8], "\(out.map { $0[0] })")
        #expect(out.allSatisfy { $0.count == 160 })
    }

    @Test func sequenceNumbersWrapAroundWithoutLosingFrames() {
        var buffer = JitterBuffer()
        var out: [[Int16]] = []
        for (index, sequence) in [UInt16(65534), 65535, 0, 1].enumerated() { out += buffer.add(sequence: sequence, samples: Self.frame(Int16(index + 1))) }
        #expect(out.map { $0[0] } == [1, 2, 3, 4])
    }

    /// The power of `frequency` in `samples` at 8 kHz (Goertzel), relative to the total.
    static func share(of frequency: Double, in samples: [Int16]) -> Double {
        let coefficient = 2 * cos(2 * Double.pi * frequency / 8000)
        var (s1, s2) = (0.0, 0.0)
        var total = 0.0
        for sample in samples {
            let x = Double(sample)
            let s0 = x + coefficient * s1 - s2
            s2 = s1
            s1 = s0
            total += x * x
        }
        let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2
        return power / (total * Double(samples.count) / 2)
    }

    @Test func a1kHzToneAt22050HzIsStill1kHzAt8kHzAndA6kHzToneIsFilteredOut() {
        var tone = ToneGenerator(frequencies: [1000], amplitude: 8000, sampleRate: 22050)
        let wide = tone.next(22050)
        let narrow = Resampler.resample(wide, from: 22050)
        #expect(abs(narrow.count - 8000) <= 1)
        #expect(Self.share(of: 1000, in: narrow) > 0.9, "\(Self.share(of: 1000, in: narrow))")
        // 6 kHz is above 4 kHz: without a filter it would fold to 2 kHz.
        var high = ToneGenerator(frequencies: [6000], amplitude: 8000, sampleRate: 22050)
        let folded = Resampler.resample(high.next(22050), from: 22050)
        let energy = folded.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(folded.count)
        #expect(energy.squareRoot() < 8000 * 0.707 * 0.05, "RMS \(energy.squareRoot())")
    }
}
