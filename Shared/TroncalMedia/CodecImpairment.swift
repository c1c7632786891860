/// A codec's equipment impairment factor Ie and packet-loss robustness Bpl (ITU-T G.113 Appendix I), the
/// two codec inputs of the E-model.
public struct CodecImpairment: Sendable, Hashable {
    public var name: String
    public var equipmentImpairment: Double
    public var packetLossRobustness: Double

    public init(name: String, equipmentImpairment: Double, packetLossRobustness: Double) {
        self.name = name
        self.equipmentImpairment = equipmentImpairment
        self.packetLossRobustness = packetLossRobustness
    }

    /// G.711 with packet-loss concealment (G.711 Appendix I): Ie 0, Bpl 25.1.
    public static let g711WithPLC = CodecImpairment(name: "G.711", equipmentImpairment: 0, packetLossRobustness: 25.1)
    /// G.711 without concealment: Ie 0, Bpl 4.3.
    public static let g711 = CodecImpairment(name: "G.711 (no PLC)", equipmentImpairment: 0, packetLossRobustness: 4.3)
    /// G.729A with VAD off: Ie 11, Bpl 19.
    public static let g729a = CodecImpairment(name: "G.729A", equipmentImpairment: 11, packetLossRobustness: 19)
    /// G.723.1 at 6.3 kbit/s: Ie 15, Bpl 16.1.
    public static let g723 = CodecImpairment(name: "G.723.1", equipmentImpairment: 15, packetLossRobustness: 16.1)
    /// iLBC 15.2 kbit/s (G.113 Amd.): Ie 10, Bpl 32.
    public static let iLBC = CodecImpairment(name: "iLBC", equipmentImpairment: 10, packetLossRobustness: 32)
    /// GSM-EFR: Ie 5, Bpl 10.
    public static let gsmEFR = CodecImpairment(name: "GSM-EFR", equipmentImpairment: 5, packetLossRobustness: 10)

    /// The impairment of a codec by its SDP encoding name (`PCMU`, `PCMA`, `G729`, …); G.711 is assumed to
    /// have concealment, as every current endpoint does. Codecs without a narrowband G.113 value (wideband
    /// ones such as G.722 and Opus) are rated as G.711: the narrowband E-model cannot credit them more.
    public static func forEncoding(_ encoding: String) -> CodecImpairment {
        switch encoding.uppercased() {
        case "G729", "G729A", "G729AB": return .g729a
        case "G723", "G7231": return .g723
        case "ILBC": return .iLBC
        case "GSM-EFR": return .gsmEFR
        default: return .g711WithPLC
        }
    }
}
