import Testing
import TroncalMedia

/// Phones' RTCP XR summary reports (RFC 6035): the local metrics read, the rest skipped, and what is not a report
/// refused with a reason.
@Suite struct VQReportTests {
    /// The shape of RFC 6035 §4.7's example, with CRLF line ends.
    static let example = [
        "VQSessionReport: CallTerm",
        "CallID: 6dwd4kf9dk3@example.org",
        "LocalID: <sip:jack@example.org>",
        "RemoteID: <sip:john@example.net>",
        "OrigID: <sip:jack@example.org>",
        "LocalGroup: example-phone-55671",
        "LocalAddr: IP=10.10.1.100 PORT=5000 SSRC=1a2b3c4d",
        "RemoteAddr: IP=11.1.1.150 PORT=5002 SSRC=2a2b3c4d",
        "LocalMetrics:",
        "Timestamps: START=2004-10-10T18:23:43Z STOP=2004-10-10T18:26:02Z",
        "SessionDesc: PT=18 PD=G729 SR=8000 FD=20 FO=20 FPP=2 PPS=50 FMTP=\"annexb=no\" PLC=3 SSUP=on",
        "JitterBuffer: JBA=3 JBR=2 JBN=40 JBM=80 JBX=120",
        "PacketLoss: NLR=5.0 JDR=2.0",
        "BurstGapLoss: BLD=0 BD=0 GLD=2.0 GD=500 GMIN=16",
        "Delay: RTD=200 ESD=140 SOWD=100 IAJ=2 MAJ=10",
        "Signal: SL=-21 NL=-50 RERL=55",
        "QualityEst: RLQ=90 RCQ=85 EXTRI=90 MOSLQ=4.2 MOSCQ=4.3 QoEEstAlg=P.564",
        "RemoteMetrics:",
        "Timestamps: START=2004-10-10T18:23:43Z STOP=2004-10-10T18:26:02Z",
        "SessionDesc: PT=18 PD=G729 SR=8000",
        "PacketLoss: NLR=9.0 JDR=9.0",
        "QualityEst: MOSLQ=1.1 MOSCQ=1.0",
        "DialogID: 1890463548@example.org;to-tag=8472761;from-tag=9123dh311",
    ].joined(separator: "\r\n") + "\r\n"

    @Test func theLocalMetricsOfTheRFCExampleAreRead() throws {
        let report = try VQReport.parse(Array(Self.example.utf8))
        #expect(report.kind == .callTerm)
        #expect(report.callID == "6dwd4kf9dk3@example.org")
        #expect(report.localID == "<sip:jack@example.org>")
        #expect(report.codec == "G729")
        #expect(report.networkLossPercent == 5)
        #expect(report.discardPercent == 2)
        #expect(report.jitterMilliseconds == 2)
        #expect(report.jitterBufferMilliseconds == 40)
        #expect(report.roundTripMilliseconds == 200)
        #expect(report.endSystemMilliseconds == 140)
        // The remote block's figures do not overwrite the local ones.
        #expect(report.conversationalMOS == 4.3)
        #expect(report.listeningMOS == 4.2)
        #expect(report.start == "2004-10-10T18:23:43Z")
        let heard = report.quality
        #expect(heard.mos == 4.3)
        #expect(heard.lossPercent == 7)
        #expect(heard.delayMilliseconds == 100 + 140)
    }

    @Test func withoutTheirOwnMOSThePhonesFiguresAreRatedByTheEModel() throws {
        let body = "VQSessionReport: CallTerm\nCallID: abc\nLocalMetrics:\nSessionDesc: PT=0 PD=PCMU\nPacketLoss: NLR=10.0\nDelay: RTD=40 IAJ=5\n"
        let report = try VQReport.parse(Array(body.utf8))
        let heard = report.quality
        let expected = EModel(codec: .g711WithPLC, oneWayDelayMilliseconds: 20 + 10 + 20, packetLossPercent: 10).rating().mos
        #expect(abs(heard.mos - expected) < 1e-9)
        #expect(heard.mos < 3.6)
    }

    @Test(arguments: [
        ("", "the body does not start with VQSessionReport"),
        ("hello world\r\n", "the body does not start with VQSessionReport"),
        ("VQSessionReport: CallTerm\r\nLocalMetrics:\r\nPacketLoss: NLR=1\r\n", "the report has no CallID"),
        ("VQSessionReport: CallTerm\r\nCallID: x\r\n", "the report has no LocalMetrics"),
        ("VQSessionReport: CallTerm\r\nCallID: x\r\nLocalMetrics:\r\nPacketLoss: NLR=400\r\n", "a loss rate outside 0 to 100 %"),
        ("VQSessionReport: CallTerm\r\nCallID: x\r\nLocalMetrics:\r\nDelay: RTD=-5\r\n", "a delay outside 0 to 60,000 ms"),
    ])
    func whatIsNotAReportIsRefusedWithAReason(body: String, reason: String) {
        #expect(throws: VQReport.ParseError(description: reason)) { try VQReport.parse(Array(body.utf8)) }
    }

    @Test func garbageBytesAndAHugeBodyAreRefusedNotTrapped() {
        #expect(throws: VQReport.ParseError.self) { try VQReport.parse([0xff, 0xfe, 0x00, 0x3a, 0x0a]) }
        #expect(throws: VQReport.ParseError.self) { try VQReport.parse(Array(repeating: 0x41, count: 20_000)) }
    }
}
