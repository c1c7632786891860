/// ITU-T G.711 companding: 16-bit linear PCM to and from µ-law (PCMU, payload type 0) and A-law (PCMA, payload
/// type 8), one byte per sample at 8 kHz. The encoders follow the reference algorithm of G.711 (and of sox and
/// Asterisk): µ-law with a bias of 0x84 and clipping at 32635, A-law with even bits inverted (XOR 0x55). Decoding
/// is by table (256 entries each).
public enum G711: String, Sendable, Hashable, CaseIterable {
    case muLaw = "PCMU"
    case aLaw = "PCMA"

    /// The static RTP payload type (RFC 3551).
    public var payloadType: UInt8 { self == .muLaw ? 0 : 8 }

    /// The codec of an SDP encoding name or a static payload type; nil for anything else.
    public init?(encoding: String) {
        switch encoding.uppercased() {
        case "PCMU", "0": self = .muLaw
        case "PCMA", "8": self = .aLaw
        default: return nil
        }
    }

    public func encode(_ sample: Int16) -> UInt8 {
        self == .muLaw ? Self.linearToMuLaw(sample) : Self.linearToALaw(sample)
    }

    public func decode(_ byte: UInt8) -> Int16 {
        self == .muLaw ? Self.muLawTable[Int(byte)] : Self.aLawTable[Int(byte)]
    }

    public func encode(_ samples: some Collection<Int16>) -> [UInt8] { samples.map(encode) }
    public func decode(_ bytes: some Collection<UInt8>) -> [Int16] { bytes.map(decode) }

    /// The byte a silent frame is made of.
    public var silence: UInt8 { encode(0) }

    // MARK: - µ-law

    static let muLawBias = 0x84
    static let muLawClip = 32635

    static func linearToMuLaw(_ sample: Int16) -> UInt8 {
        var value = Int(sample)
        let sign = value < 0 ? 0x80 : 0
        if value < 0 { value = -value }
        value = min(value, muLawClip) + muLawBias
        var exponent = 7
        var mask = 0x4000
        while exponent > 0, value & mask == 0 {
            exponent -= 1
            mask >>= 1
        }
        let mantissa = (value >> (exponent + 3)) & 0x0F
        return ~UInt8(sign | exponent << 4 | mantissa)
    }

    static func muLawToLinear(_ byte: UInt8) -> Int16 {
        let value = Int(~byte)
        let exponent = (value >> 4) & 0x07
        let mantissa = value & 0x0F
        let magnitude = ((mantissa << 3) + muLawBias) << exponent - muLawBias
        return Int16(value & 0x80 != 0 ? -magnitude : magnitude)
    }

    // MARK: - A-law

    static func linearToALaw(_ sample: Int16) -> UInt8 {
        var value = Int(sample)
        let sign = value >= 0 ? 0x80 : 0
        if value < 0 { value = -value - 1 }
        value = min(value, 32767) >> 3
        let encoded: Int
        if value < 32 {
            encoded = value >> 1
        } else {
            var exponent = 1
            var shifted = value >> 5
            while shifted > 1 {
                exponent += 1
                shifted >>= 1
            }
            encoded = exponent << 4 | (value >> exponent) & 0x0F
        }
        return UInt8((sign | encoded) ^ 0x55)
    }

    static func aLawToLinear(_ byte: UInt8) -> Int16 {
        let value = Int(byte ^ 0x55)
        let exponent = (value >> 4) & 0x07
        let mantissa = value & 0x0F
        var magnitude = mantissa << 4 + 8
        if exponent > 0 { magnitude = (magnitude + 0x100) << (exponent - 1) }
        return Int16(value & 0x80 != 0 ? magnitude : -magnitude)
    }

    static let muLawTable: [Int16] = (0...255).map { muLawToLinear(UInt8($0)) }
    static let aLawTable: [Int16] = (0...255).map { aLawToLinear(UInt8($0)) }
}
