import Foundation

/// The ITU-T G.107 E-model (06/2015, narrowband): the transmission rating R from the parameters of a
/// connection, and the MOS estimate it implies (Annex B). Every input has the Recommendation's default.
///
/// Delay mapping used by Troncal for a measured call: `T` (mean one-way delay of the echo path) and `Ta`
/// (absolute one-way delay) are the one-way mouth-to-ear delay; `Tr` (round-trip delay of the four-wire
/// loop) is twice it.
public struct EModel: Sendable, Hashable {
    // Loudness and noise (G.107 Table 1 defaults).
    public var sendLoudnessRating = 8.0  // SLR
    public var receiveLoudnessRating = 2.0  // RLR
    public var sidetoneMaskingRating = 15.0  // STMR
    public var listenerSidetoneRating = 18.0  // LSTR
    public var sendDFactor = 3.0  // Ds
    public var receiveDFactor = 3.0  // Dr
    public var talkerEchoLoudnessRating = 65.0  // TELR
    public var weightedEchoPathLoss = 110.0  // WEPL
    public var circuitNoise = -70.0  // Nc, dBm0p
    public var noiseFloor = -64.0  // Nfor, dBmp
    public var sendRoomNoise = 35.0  // Ps, dB(A)
    public var receiveRoomNoise = 35.0  // Pr, dB(A)
    public var quantizingDistortionUnits = 1.0  // qdu
    public var advantageFactor = 0.0  // A

    // Delay, in milliseconds.
    public var meanOneWayDelay = 0.0  // T
    public var roundTripDelay = 0.0  // Tr
    public var absoluteDelay = 0.0  // Ta

    // Equipment impairment and packet loss.
    public var equipmentImpairment = 0.0  // Ie
    public var packetLossRobustness = 4.3  // Bpl
    public var packetLossPercent = 0.0  // Ppl
    public var burstRatio = 1.0  // BurstR

    public init() {}

    /// A connection with the default parameters, a codec's Ie and Bpl, a one-way delay and random loss.
    public init(codec: CodecImpairment, oneWayDelayMilliseconds delay: Double, packetLossPercent loss: Double, burstRatio: Double = 1) {
        self.init()
        equipmentImpairment = codec.equipmentImpairment
        packetLossRobustness = codec.packetLossRobustness
        meanOneWayDelay = delay
        absoluteDelay = delay
        roundTripDelay = 2 * delay
        packetLossPercent = loss
        self.burstRatio = burstRatio
    }

    /// The terms of the rating: R = Ro − Is − Id − Ie,eff + A.
    public struct Rating: Sendable, Hashable {
        public var ro: Double
        public var simultaneousImpairment: Double  // Is
        public var talkerEchoImpairment: Double  // Idte
        public var listenerEchoImpairment: Double  // Idle
        public var absoluteDelayImpairment: Double  // Idd
        public var effectiveEquipmentImpairment: Double  // Ie,eff
        public var r: Double

        public var delayImpairment: Double { talkerEchoImpairment + listenerEchoImpairment + absoluteDelayImpairment }
        /// The MOS (conversational quality estimate) for this R.
        public var mos: Double { EModel.mos(fromR: r) }
    }

    public func rating() -> Rating {
        let slr = sendLoudnessRating, rlr = receiveLoudnessRating
        let olr = slr + rlr
        // Basic signal-to-noise ratio Ro (§7.2).
        let nfo = noiseFloor + rlr
        let pre = receiveRoomNoise + 10 * log10(1 + pow(10, (10 - listenerSidetoneRating) / 10))
        let nor = rlr - 121 + pre + 0.008 * pow(pre - 35, 2)
        let nos = sendRoomNoise - slr - sendDFactor - 100 + 0.004 * pow(sendRoomNoise - olr - sendDFactor - 14, 2)
        let no = 10 * log10(pow(10, circuitNoise / 10) + pow(10, nos / 10) + pow(10, nor / 10) + pow(10, nfo / 10))
        let ro = 15 - 1.5 * (slr + no)

        // Simultaneous impairment Is = Iolr + Ist + Iq (§7.3).
        let xolr = olr + 0.2 * (64 + no - rlr)
        let iolr = 20 * (pow(1 + pow(xolr / 8, 8), 1.0 / 8) - xolr / 8)
        let t = meanOneWayDelay
        let stmro = -10 * log10(pow(10, -sidetoneMaskingRating / 10) + exp(-t / 4) * pow(10, -talkerEchoLoudnessRating / 10))
        let ist = 12 * pow(1 + pow((stmro - 13) / 6, 8), 1.0 / 8)
            - 28 * pow(1 + pow((stmro + 1) / 19.4, 35), 1.0 / 35)
            - 13 * pow(1 + pow((stmro - 3) / 33, 13), 1.0 / 13) + 29
        let q = 37 - 15 * log10(quantizingDistortionUnits)
        let g = 1.07 + 0.258 * q + 0.0602 * q * q
        let y = (ro - 100) / 15 + 46 / 8.4 - g / 9
        let z = 46.0 / 30 - g / 40
        let iq = 15 * log10(1 + pow(10, y) + pow(10, z))
        let simultaneous = iolr + ist + iq

        // Delay impairment Id = Idte + Idle + Idd (§7.4).
        let roe = -1.5 * (no - rlr)
        var terv = talkerEchoLoudnessRating - 40 * log10((1 + t / 10) / (1 + t / 150)) + 6 * exp(-0.3 * t * t)
        if sidetoneMaskingRating < 9 { terv += 0.5 * ist }
        let re = 80 + 2.5 * (terv - 14)
        var idte = ((roe - re) / 2 + ((roe - re) * (roe - re) / 4 + 100).squareRoot() - 1) * (1 - exp(-t))
        if sidetoneMaskingRating > 20 {
            let idtes = idte
            idte = (idtes * idtes + ist * ist).squareRoot()
        }
        let rle = 10.5 * (weightedEchoPathLoss + 7) * pow(roundTripDelay + 1, -0.25)
        let idle = (ro - rle) / 2 + ((ro - rle) * (ro - rle) / 4 + 169).squareRoot()
        var idd = 0.0
        let mT = 100.0, sT = 1.0
        if absoluteDelay > mT {
            let x = log10(absoluteDelay / mT) / log10(2)
            idd = 25 * (pow(1 + pow(x, 6 * sT), 1 / (6 * sT)) - 3 * pow(1 + pow(x / 3, 6 * sT), 1 / (6 * sT)) + 2)
        }

        // Effective equipment impairment (§7.5).
        let ppl = packetLossPercent
        let ieEff = equipmentImpairment + (95 - equipmentImpairment) * ppl / (ppl / burstRatio + packetLossRobustness)

        let r = ro - simultaneous - (idte + idle + idd) - ieEff + advantageFactor
        return Rating(
            ro: ro, simultaneousImpairment: simultaneous, talkerEchoImpairment: idte, listenerEchoImpairment: idle,
            absoluteDelayImpairment: idd, effectiveEquipmentImpairment: ieEff, r: r)
    }

    /// G.107 Annex B: MOS_CQE from R (1 below R = 0, 4.5 above R = 100). The cubic dips just under 1 for
    /// R below about 6.5; MOS is never below 1, so it is clamped there.
    public static func mos(fromR r: Double) -> Double {
        if r <= 0 { return 1 }
        if r >= 100 { return 4.5 }
        return max(1, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6)
    }
}
