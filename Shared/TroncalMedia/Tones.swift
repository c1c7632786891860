internal import Foundation

/// Tone generation at 8 kHz: single tones (a test's 1 kHz, a beep before a voicemail recording), dual tones (DTMF)
/// and cadences (ring-back, busy) as 16-bit samples, phase-continuous from one call to the next.
public struct ToneGenerator: Sendable, Hashable {
    public var frequencies: [Double]
    /// Peak amplitude of each component, in 16-bit units (the sum must stay below 32767).
    public var amplitude: Double
    public var sampleRate: Double
    private var position = 0

    public init(frequencies: [Double], amplitude: Double = 8000, sampleRate: Double = 8000) {
        self.frequencies = frequencies
        self.amplitude = amplitude
        self.sampleRate = sampleRate
    }

    /// The DTMF pair of a digit (`0`-`9`, `*`, `#`, `A`-`D`), at -7 dBm0-ish per component by default.
    public static func dtmf(_ digit: Character, amplitude: Double = 6000) -> ToneGenerator? {
        guard let (low, high) = DTMF.frequencies(of: digit) else { return nil }
        return ToneGenerator(frequencies: [low, high], amplitude: amplitude)
    }

    /// The next `count` samples.
    public mutating func next(_ count: Int) -> [Int16] {
        var out = [Int16](repeating: 0, count: count)
        for index in 0..<count {
            let t = Double(position + index) / sampleRate
            var value = 0.0
            for frequency in frequencies { value += amplitude * sin(2 * .pi * frequency * t) }
            out[index] = Int16(clamping: Int(value.rounded()))
        }
        position += count
        return out
    }

    /// `milliseconds` of the tone.
    public mutating func next(milliseconds: Int) -> [Int16] { next(Int(sampleRate) * milliseconds / 1000) }
}

/// The DTMF keypad (ITU-T Q.23): a row frequency and a column frequency per key.
public enum DTMF {
    public static let rows: [Double] = [697, 770, 852, 941]
    public static let columns: [Double] = [1209, 1336, 1477, 1633]
    static let keys: [[Character]] = [["1", "2", "3", "A"], ["4", "5", "6", "B"], ["7", "8", "9", "C"], ["*", "0", "#", "D"]]

    public static func frequencies(of digit: Character) -> (Double, Double)? {
        for (row, keys) in keys.enumerated() {
            if let column = keys.firstIndex(of: Character(digit.uppercased())) { return (rows[row], columns[column]) }
        }
        return nil
    }

    static func key(row: Int, column: Int) -> Character { keys[row][column] }

    /// The RFC 4733 event code of a digit: 0-9, `*` 10, `#` 11, A-D 12-15.
    public static func event(of digit: Character) -> UInt8? {
        switch digit {
        case "0"..."9": return UInt8(digit.asciiValue! - 48)
        case "*": return 10
        case "#": return 11
        case "A", "a": return 12
        case "B", "b": return 13
        case "C", "c": return 14
        case "D", "d": return 15
        default: return nil
        }
    }

    /// The digit of an RFC 4733 event code (0-15), nil for other events.
    public static func digit(ofEvent event: UInt8) -> Character? {
        switch event {
        case 0...9: return Character(UnicodeScalar(48 + event))
        case 10: return "*"
        case 11: return "#"
        case 12...15: return Character(UnicodeScalar(65 + event - 12))
        default: return nil
        }
    }
}

/// In-band DTMF detection for phones that send no RFC 4733 events: the Goertzel algorithm over 8 kHz audio in blocks
/// of 102 samples (12.75 ms, the usual block for the keypad's frequency spacing), checked against the rules of
/// ITU-T Q.24 as receivers apply them: one row and one column tone clearly above the other six (each at least
/// 8 dB over the next strongest of its group), enough energy, a twist (row vs column level) within 8 dB normal and
/// 4 dB reverse, and most of the block's energy in the two tones (speech and music spread theirs). A digit is
/// reported once, when it has held for two consecutive blocks (≥ 25 ms), and again only after a gap.
public struct DTMFDetector: Sendable {
    public static let blockSize = 102
    static let frequencies = DTMF.rows + DTMF.columns
    /// Goertzel coefficients 2·cos(2πf/fs) for each frequency at 8 kHz.
    static let coefficients = frequencies.map { 2 * cos(2 * .pi * $0 / 8000) }

    private var block: [Double] = []
    private var candidate: Character?
    private var held = 0
    private var reported: Character?
    private var silentBlocks = 0

    public init() { block.reserveCapacity(Self.blockSize) }

    /// Feeds 8 kHz samples; returns the digits that began in them.
    public mutating func process(_ samples: some Sequence<Int16>) -> [Character] {
        var digits: [Character] = []
        for sample in samples {
            block.append(Double(sample))
            if block.count == Self.blockSize {
                if let digit = blockDone() { digits.append(digit) }
                block.removeAll(keepingCapacity: true)
            }
        }
        return digits
    }

    private mutating func blockDone() -> Character? {
        let found = Self.detect(block)
        if found != nil, found == candidate {
            held += 1
        } else {
            candidate = found
            held = found == nil ? 0 : 1
        }
        if found == nil {
            silentBlocks += 1
            // A gap of two blocks ends the digit: the same key pressed again is a new digit.
            if silentBlocks >= 2 { reported = nil }
            return nil
        }
        silentBlocks = 0
        guard held >= 2, reported != found else { return nil }
        reported = found
        return found
    }

    /// The key whose two tones dominate one block, if any.
    static func detect(_ block: [Double]) -> Character? {
        var powers = [Double](repeating: 0, count: frequencies.count)
        for (index, coefficient) in coefficients.enumerated() {
            var s1 = 0.0, s2 = 0.0
            for x in block {
                let s0 = x + coefficient * s1 - s2
                s2 = s1
                s1 = s0
            }
            powers[index] = s1 * s1 + s2 * s2 - coefficient * s1 * s2
        }
        let energy = block.reduce(0) { $0 + $1 * $1 }
        let rowPowers = Array(powers[0..<4]), columnPowers = Array(powers[4..<8])
        guard let row = rowPowers.indices.max(by: { rowPowers[$0] < rowPowers[$1] }),
            let column = columnPowers.indices.max(by: { columnPowers[$0] < columnPowers[$1] })
        else { return nil }
        let rowPower = rowPowers[row], columnPower = columnPowers[column]
        // Energy: a component of about -30 dBm0 or more (amplitude ~ 300 of 32767) over the block.
        let threshold = pow(300 * Double(blockSize) / 2, 2)
        guard rowPower > threshold, columnPower > threshold else { return nil }
        // Twist: the column (high) tone at most 4 dB above the row tone (reverse), and at most 8 dB below it (normal).
        guard columnPower <= rowPower * pow(10, 0.4), rowPower <= columnPower * pow(10, 0.8) else { return nil }
        // Each tone stands 8 dB above the others of its group.
        let margin = pow(10, 0.8)
        for (index, power) in rowPowers.enumerated() where index != row && power * margin > rowPower { return nil }
        for (index, power) in columnPowers.enumerated() where index != column && power * margin > columnPower { return nil }
        // Most of the signal is the two tones: Goertzel power p of a sine of amplitude a over N samples is (aN/2)², the
        // block energy of that sine a²N/2, so a pure tone pair has (rowPower + columnPower)·2/N ≈ energy.
        let tonal = (rowPower + columnPower) * 2 / Double(blockSize)
        guard tonal >= 0.6 * energy else { return nil }
        return DTMF.key(row: row, column: column)
    }
}
