internal import Foundation

/// Sample-rate conversion for prompts made at another rate (espeak-ng speaks at 22,050 Hz): a windowed-sinc
/// interpolator whose cut-off is just under the lower Nyquist frequency, so that nothing above 4 kHz folds back into
/// the telephone band.
public enum Resampler {
    /// `samples` at `rate` converted to `target` Hz.
    public static func resample(_ samples: [Int16], from rate: Int, to target: Int = 8000) -> [Int16] {
        guard rate != target, rate > 0, target > 0, !samples.isEmpty else { return samples }
        let ratio = Double(rate) / Double(target)
        // Cut-off at 90 % of the lower Nyquist frequency, in cycles per input sample.
        let cutoff = 0.45 * Double(min(rate, target)) / Double(rate)
        let halfWidth = Int((8.0 / cutoff / 2).rounded(.up))
        let count = Int(Double(samples.count) / ratio)
        var out = [Int16](repeating: 0, count: count)
        for index in 0..<count {
            let center = Double(index) * ratio
            let first = max(0, Int(center) - halfWidth)
            let last = min(samples.count - 1, Int(center) + halfWidth)
            var sum = 0.0
            var weights = 0.0
            if first <= last {
                for k in first...last {
                    let x = Double(k) - center
                    let argument = 2 * cutoff * x
                    let sinc = abs(argument) < 1e-9 ? 1.0 : sin(Double.pi * argument) / (Double.pi * argument)
                    // Blackman window over the kernel's width.
                    let position = (x + Double(halfWidth)) / Double(2 * halfWidth)
                    let window = 0.42 - 0.5 * cos(2 * Double.pi * position) + 0.08 * cos(4 * Double.pi * position)
                    let weight = sinc * max(0, window)
                    sum += weight * Double(samples[k])
                    weights += weight
                }
            }
            let value = weights > 0 ? sum / weights : 0
            out[index] = Int16(max(-32768, min(32767, value.rounded())))
        }
        return out
    }
}

/// A jitter buffer for recording: RTP audio frames put back in sequence order (a few frames of reordering absorbed),
/// a lost frame replaced by silence so that the recording keeps its length, duplicates and late frames dropped.
public struct JitterBuffer: Sendable {
    /// Frames held before the oldest is released even with a gap before it.
    public let depth: Int
    public let frameSamples: Int
    private var held: [UInt16: [Int16]] = [:]
    private var next: UInt16?

    public init(depth: Int = 4, frameSamples: Int = 160) {
        self.depth = depth
        self.frameSamples = frameSamples
    }

    /// Takes a frame with its RTP sequence number; returns the frames now in order (silence for those lost).
    public mutating func add(sequence: UInt16, samples: [Int16]) -> [[Int16]] {
        if let next {
            // Behind what was released already (a duplicate or too late): dropped.
            let behind = Int16(bitPattern: sequence &- next) < 0
            if behind { return [] }
        } else {
            next = sequence
        }
        held[sequence] = samples
        var out: [[Int16]] = []
        while let expected = next {
            if let frame = held.removeValue(forKey: expected) {
                out.append(frame)
                next = expected &+ 1
            } else if held.count >= depth {
                // Waited long enough: the missing frame is lost.
                out.append([Int16](repeating: 0, count: frameSamples))
                next = expected &+ 1
            } else {
                break
            }
        }
        return out
    }

    /// The frames still held, in order, gaps as silence (the end of a recording).
    public mutating func drain() -> [[Int16]] {
        guard var expected = next, !held.isEmpty else { return [] }
        var out: [[Int16]] = []
        while !held.isEmpty {
            out.append(held.removeValue(forKey: expected) ?? [Int16](repeating: 0, count: frameSamples))
            expected = expected &+ 1
        }
        next = expected
        return out
    }
}
