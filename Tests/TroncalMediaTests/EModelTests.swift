import Foundation
import Testing
import TroncalMedia

@Suite("E-model (ITU-T G.107)")
struct EModelTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        var codec: String, plc: String
        var ie: Double, bpl: Double, burstR: Double, delay: Double, loss: Double
        var ro: Double, isValue: Double, idte: Double, idle: Double, idd: Double, ieEff: Double, r: Double, mos: Double
        var testDescription: String { "\(codec) \(plc) \(Int(delay)) ms \(loss)%" }
    }

    static func vectors() throws -> [Vector] {
        var root = URL(fileURLWithPath: #filePath)
        while !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) { root.deleteLastPathComponent() }
        let file = root.deletingLastPathComponent().appendingPathComponent("shared/testdata/emodel/vectors.csv")
        let lines = try String(contentsOf: file, encoding: .utf8).split(whereSeparator: \.isNewline).dropFirst()
        return lines.map { line in
            let f = line.split(separator: ",").map(String.init)
            let d = { (i: Int) in Double(f[i]) ?? .nan }
            return Vector(
                codec: f[0], plc: f[1], ie: d(2), bpl: d(3), burstR: d(4), delay: d(5), loss: d(6), ro: d(7), isValue: d(8),
                idte: d(9), idle: d(10), idd: d(11), ieEff: d(13), r: d(14), mos: d(15))
        }
    }

    @Test func referenceVectorsAreAllRead() throws {
        #expect(try Self.vectors().count == 60)
    }

    @Test(arguments: try vectors())
    func matchesTheReferenceVector(_ v: Vector) {
        let model = EModel(
            codec: CodecImpairment(name: v.codec, equipmentImpairment: v.ie, packetLossRobustness: v.bpl),
            oneWayDelayMilliseconds: v.delay, packetLossPercent: v.loss, burstRatio: v.burstR)
        let rating = model.rating()
        #expect(abs(rating.ro - v.ro) < 0.01)
        #expect(abs(rating.simultaneousImpairment - v.isValue) < 0.01)
        #expect(abs(rating.talkerEchoImpairment - v.idte) < 0.01)
        #expect(abs(rating.listenerEchoImpairment - v.idle) < 0.01)
        #expect(abs(rating.absoluteDelayImpairment - v.idd) < 0.01)
        #expect(abs(rating.effectiveEquipmentImpairment - v.ieEff) < 0.01)
        #expect(abs(rating.r - v.r) < 0.05)
        #expect(abs(rating.mos - v.mos) < 0.05)
    }

    @Test func mosIsBoundedAndMonotonic() {
        #expect(EModel.mos(fromR: -5) == 1)
        #expect(EModel.mos(fromR: 120) == 4.5)
        var previous = 0.0
        for r in stride(from: 0.0, through: 100, by: 0.5) {
            let mos = EModel.mos(fromR: r)
            #expect(mos >= previous)
            previous = mos
        }
    }
}
