import Foundation
import TestSupport
import Testing
import TroncalProtocol
import TroncalRuntime
import TroncalSIP

/// Voice quality end to end: sipp calls through the SBC whose RTP (played by sipp from a capture the test writes)
/// loses 5 % in one direction; the SBC measures it, the monitor raises one notice for the customer naming the
/// direction and loss and clears it after clean windows; a carrier whose audio arrives lossy is demoted by routing
/// and the next call goes to the other carrier first.
///
/// The calls use G.729 (Ie 11, Bpl 19): 5 % random loss rates it about 3.3, under the 3.6 threshold. (G.711 with
/// concealment still rates 3.9 at 5 %, as the E-model says such calls still sound fair.) sipp plays captures through
/// a raw socket, so these tests need root, as CI has.
@Suite("Voice quality through the SBC", .serialized, .startsProcesses)
struct VoiceQualityCallTests {
    static let canPlayCaptures = Sipp.executable != nil && getuid() == 0
    /// The customer of the lossy calls: its name carries markup that the dashboard must show as text.
    static let customer = "acme <script>alert(1)</script>"

    /// A site with a monitor judging over short windows: a notice after 10 calls in 6 s, trunk MOS after 5 calls in 20 s.
    static func site(carriers: Int) async throws -> CallSite {
        try await CallSite(monitor: true) { config, offset in
            config.sbc.customers = [CallSite.customer(customer)]
            config.routing.routes = [
                RouteSettings(
                    prefix: "34",
                    targets: (0..<carriers).map { index in
                        RouteTargetSettings(carrier: "carrier-\(["a", "b"][index])", host: CallSite.carrierAddress, port: 9000 + offset + index * 100)
                    })
            ]
            config.routing.minimumTrunkMOS = 3.6
            config.monitor.scrapeIntervalSeconds = 1
            config.monitor.scrapeTimeoutMilliseconds = 2000
            config.monitor.voice.windowSeconds = 6
            config.monitor.voice.minimumCalls = 10
            config.monitor.voice.carrierWindowSeconds = 20
            config.monitor.voice.carrierMinimumCalls = 5
        }
    }

    @Test(.enabled(if: canPlayCaptures, "needs sipp and root (sipp plays captures through a raw socket)"))
    func lossFromTheCustomerRaisesOneNoticeNamingTheDirectionAndLossAndCleanCallsClearIt() async throws {
        let site = try await Self.site(carriers: 1)
        defer { site.remove() }
        let lossy = try Self.capture(site, "lossy.pcap", packets: 150, dropEvery: 20)
        let clean = try Self.capture(site, "clean.pcap", packets: 50, dropEvery: nil)

        // Calls whose customer → SBC audio loses one packet in 20, five a second until the dashboard has been read (so
        // the window is never empty while the test looks); the carrier sends clean audio back.
        let carrier = try SBCCallTests.carrier(
            site, "carrier", scenario: SippScenarios.g729(SippScenarios.playing(clean, in: SippScenarios.carrier())), port: site.carrierPort(0),
            calls: 5000)
        defer { Task { await carrier.stop() } }
        try await carrier.listening()
        let caller = try SBCCallTests.caller(
            site, "lossy-caller", scenario: SippScenarios.g729(SippScenarios.caller(holdMilliseconds: 3300, rtpFile: lossy)), slot: 1,
            calls: 2000, rate: 5, limit: 30, extra: [])
        defer { Task { await caller.stop() } }

        let raised = await eventually(timeout: .seconds(45), interval: .milliseconds(500)) {
            (try? await Self.notices(site))?.contains { $0.customer == Self.customer && $0.firing } ?? false
        }
        let notices = try await Self.notices(site)
        #expect(raised, "no notice for the customer: \(notices)\n\(site.logs)")
        #expect(notices.count == 1, "\(notices)")
        let notice = try #require(notices.first)
        #expect(notice.text.contains("customer → SBC"), "\(notice.text)")
        #expect(notice.text.contains("loss"), "\(notice.text)")
        #expect(notice.text.contains("carrier-a"), "\(notice.text)")

        // The dashboard, in headless Chromium: the customer's MOS (low), its name as text, the carrier's MOS, the calls.
        if Chromium.isInstalled {
            let customers = try await Self.dashboard(site, page: "/customers")
            #expect(customers.contains("acme &lt;script&gt;alert(1)&lt;/script&gt;"), "\(customers.suffix(3000))")
            #expect(!customers.contains("<script>alert(1)"), "markup from a customer's name reached the page")
            #expect(customers.contains("class=\"mos low\""), "no low MOS on the customers page:\n\(customers.suffix(3000))")
            let calls = try await Self.dashboard(site, page: "/calls?q=441632960001")
            #expect(calls.contains("customer-to-sbc") && calls.contains("carrier-to-sbc"), "\(calls.suffix(3000))")
            #expect(calls.contains("G729"), "\(calls.suffix(2000))")
        }
        #expect(await caller.stopPlacingCalls() == 0, "\(caller.report)\n\(site.logs)")

        // Clean calls, four a second, until the notice clears: two whole windows (12 s) of good figures after the lossy
        // calls left the window.
        let cleanCaller = try SBCCallTests.caller(
            site, "clean-caller", scenario: SippScenarios.g729(SippScenarios.caller(holdMilliseconds: 1100, rtpFile: clean)), slot: 2,
            calls: 400, rate: 4, limit: 10, extra: [])
        defer { Task { await cleanCaller.stop() } }
        let cleared = await eventually(timeout: .seconds(90), interval: .milliseconds(500)) {
            (try? await Self.notices(site, resolvedHours: 1))?.contains { $0.customer == Self.customer && !$0.firing } ?? false
        }
        let after = (try? await Self.notices(site, resolvedHours: 1)) ?? []
        #expect(cleared, "the notice did not clear: \(after)\n\(site.logs)")
        await cleanCaller.stop()
        await carrier.stop()
        await site.stop()
    }

    @Test(.enabled(if: canPlayCaptures, "needs sipp and root (sipp plays captures through a raw socket)"))
    func aCarrierWhoseAudioArrivesLossyIsDemotedAndTheNextCallGoesToTheOtherCarrierFirst() async throws {
        let site = try await Self.site(carriers: 2)
        defer { site.remove() }
        let lossy = try Self.capture(site, "lossy.pcap", packets: 100, dropEvery: 20)
        let clean = try Self.capture(site, "clean.pcap", packets: 50, dropEvery: nil)

        // carrier-a, first in the route, sends audio that loses one packet in 20.
        let carrierA = try SBCCallTests.carrier(
            site, "carrier-a", scenario: SippScenarios.g729(SippScenarios.playing(lossy, in: SippScenarios.carrier())), port: site.carrierPort(0),
            calls: 1000)
        defer { Task { await carrierA.stop() } }
        let carrierB = try SBCCallTests.carrier(
            site, "carrier-b", scenario: SippScenarios.g729(SippScenarios.carrier()), port: site.carrierPort(1), calls: 1)
        defer { Task { await carrierB.stop() } }
        try await carrierA.listening()
        try await carrierB.listening()
        let caller = try SBCCallTests.caller(
            site, "caller", scenario: SippScenarios.g729(SippScenarios.caller(holdMilliseconds: 2300, rtpFile: clean)), slot: 1, calls: 8,
            rate: 10, limit: 8, extra: [])
        #expect(await caller.finish() == 0, "\(caller.report)\n\(site.logs)")
        #expect(try site.summaries().allSatisfy { $0.attempts.first?.carrier == "carrier-a" })

        var inspection = ""
        let demoted = await eventually(timeout: .seconds(45), interval: .milliseconds(500)) {
            guard let (status, output) = try? await site.troncal(["routing", "inspect"]), status == 0 else { return false }
            inspection = output
            return output.split(separator: "\n").contains { $0.contains("carrier-a/") && $0.contains("DEMOTED") }
        }
        #expect(demoted, "carrier-a not demoted:\n\(inspection)\n\(site.logs)")
        #expect(inspection.split(separator: "\n").contains { $0.contains("carrier-b/") && !$0.contains("DEMOTED") }, "\(inspection)")
        if Chromium.isInstalled {
            let carriers = try await Self.dashboard(site, page: "/carriers")
            #expect(carriers.contains("data-carrier=\"carrier-a\"") && carriers.contains(">demoted<"), "\(carriers.suffix(3000))")
            #expect(carriers.contains("class=\"mos low\""), "\(carriers.suffix(3000))")
        }

        // The next call: carrier-b first (carrier-a is still in the route, tried after it).
        let before = Set(try site.summaries().map(\.id))
        let next = try SBCCallTests.caller(site, "next", scenario: SippScenarios.g729(SippScenarios.caller(holdMilliseconds: 100)), slot: 2, calls: 1, rate: 1, limit: 1)
        #expect(await next.finish() == 0, "\(next.report)\n\(site.logs)")
        let found = await eventually(timeout: .seconds(20)) { ((try? site.summaries()) ?? []).contains { !before.contains($0.id) } }
        let summary = try #require(try site.summaries().first { !before.contains($0.id) }, "no summary for the next call (\(found))")
        #expect(summary.attempts.map(\.carrier) == ["carrier-b"], "\(summary.attempts)")
        await carrierA.stop()
        await carrierB.stop()
        await site.stop()
    }

    @Test
    func aPhonesQualityReportIsTakenWith200AndReachesTheMonitorAndWhatIsNotOneIsRefusedWithTheReason() async throws {
        let site = try await Self.site(carriers: 1)
        defer { site.remove() }
        let phone = try await SIPProbe(host: CallSite.customerAddress)
        let stranger = try await SIPProbe(host: "127.0.0.4")
        let sbc = try site.sipAddress
        let report = "VQSessionReport: CallTerm\r\nCallID: phone-call-1\r\nLocalID: <sip:441632960001@127.0.0.2>\r\n"
            + "RemoteID: <sip:34910000001@127.0.0.1>\r\nLocalMetrics:\r\nSessionDesc: PT=0 PD=PCMU SR=8000\r\n"
            + "PacketLoss: NLR=12.0 JDR=0.0\r\nDelay: RTD=80 IAJ=4\r\nQualityEst: MOSCQ=3.1\r\n"
        func publish(_ callID: String, event: String = "vq-rtcpxr", type: String = "application/vq-rtcpxr", body: String) -> [UInt8] {
            let text = "PUBLISH sip:collector@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK\(callID)\r\n"
                + "From: <sip:441632960001@127.0.0.2>;tag=\(callID)\r\nTo: <sip:collector@127.0.0.1>\r\nCall-ID: \(callID)\r\n"
                + "CSeq: 1 PUBLISH\r\nMax-Forwards: 70\r\nEvent: \(event)\r\nExpires: 0\r\nContent-Type: \(type)\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
            return Array(text.utf8)
        }
        #expect(try await phone.request(publish("vq-1", body: report), callID: "vq-1", to: sbc) == 200, "\(site.logs)")
        let ok = try #require(phone.responses("vq-1").first { $0.statusCode == 200 })
        #expect(ok.headers.first(named: "SIP-ETag")?.valueString.isEmpty == false, "\(ok)")
        #expect(try await phone.request(publish("vq-2", event: "presence", body: report), callID: "vq-2", to: sbc) == 489)
        #expect(try await phone.request(publish("vq-3", type: "text/plain", body: report), callID: "vq-3", to: sbc) == 415)
        #expect(try await phone.request(publish("vq-4", body: "VQSessionReport: CallTerm\r\nno metrics here\r\n"), callID: "vq-4", to: sbc) == 400)
        #expect(try await stranger.request(publish("vq-5", body: report), callID: "vq-5", to: sbc) == 403)

        // The accepted report reaches the monitor (within the SBC's one-second batch) and is stored.
        let monitor = try #require(site.config.instance(named: "monitor-1"))
        var metrics = ""
        let stored = await eventually(timeout: .seconds(20), interval: .milliseconds(200)) {
            metrics = (try? await httpGet(port: monitor.adminPort, path: "/metrics")) ?? ""
            return metrics.split(separator: "\n").contains { $0.hasPrefix("troncal_monitor_call_quality_total ") && !$0.hasSuffix(" 0") }
        }
        #expect(stored, "the monitor did not store the report:\n\(metrics.suffix(2000))\n\(site.logs)")
        let sbcMetrics = try await httpGet(port: try #require(site.config.instance(named: "sbc-1")).adminPort, path: "/metrics")
        #expect(sbcMetrics.contains("troncal_sbc_quality_reports_total{result=\"accepted\"} 1"), "\(sbcMetrics)")
        #expect(sbcMetrics.contains("troncal_sbc_quality_reports_total{result=\"malformed\"} 1"))
        #expect(sbcMetrics.contains("troncal_sbc_quality_reports_total{result=\"refused\"} 3"))
        await phone.close()
        await stranger.close()
        await site.stop()
    }

    // MARK: - Helpers

    /// The DOM of a dashboard page in headless Chromium, logged in through a one-time link (`troncal monitor
    /// login-link`).
    static func dashboard(_ site: CallSite, page: String) async throws -> String {
        let (status, output) = try await site.troncal(["monitor", "login-link"])
        guard status == 0, let link = output.split(separator: "\n").first(where: { $0.hasPrefix("http") }) else {
            throw CallSiteError("troncal monitor login-link: \(output)")
        }
        let target = page.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? page
        return try await Chromium.dom(link + "?to=" + target, in: site.directory)
    }

    struct Notice: CustomStringConvertible {
        var customer: String
        var firing: Bool
        var text: String
        var description: String { "\(customer) firing=\(firing): \(text)" }
    }

    /// The CustomerMOSLow alarms `troncal alarms list --category voice --json` shows.
    static func notices(_ site: CallSite, resolvedHours: Double = 0) async throws -> [Notice] {
        var arguments = ["alarms", "list", "--category", "voice", "--json"]
        if resolvedHours > 0 { arguments += ["--resolved-hours", "\(resolvedHours)"] }
        let (status, output) = try await site.troncal(arguments)
        guard status == 0, let start = output.firstIndex(of: "[") else { throw CallSiteError("troncal alarms list: \(output)") }
        let alarms = try JSONSerialization.jsonObject(with: Data(output[start...].utf8)) as? [[String: Any]] ?? []
        return alarms.filter { ($0["rule"] as? String) == "CustomerMOSLow" }.map { alarm in
            let labels = alarm["labels"] as? [String: String] ?? [:]
            return Notice(
                customer: labels["customer"] ?? "", firing: alarm["endsAt"] == nil || alarm["endsAt"] is NSNull,
                text: "\(alarm["summary"] as? String ?? "") \(alarm["action"] as? String ?? "")")
        }
    }

    /// A capture of `packets` G.729 RTP packets, 20 ms apart, from 127.0.0.2 port 6000 to port 6000 (sipp keeps the
    /// payload and replaces the addresses and ports with the call's); `dropEvery`: every that-many-th sequence number
    /// is left out, as if lost on the way.
    static func capture(_ site: CallSite, _ name: String, packets: Int, dropEvery: Int?) throws -> String {
        var file = Data()
        func le32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { file.append(contentsOf: $0) } }
        func le16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { file.append(contentsOf: $0) } }
        le32(0xa1b2_c3d4)
        le16(2)
        le16(4)
        le32(0)
        le32(0)
        le32(65535)
        le32(1)  // Ethernet
        var sequence: UInt16 = 1000
        var slot = 0
        var sent = 0
        while sent < packets {
            defer {
                sequence &+= 1
                slot += 1
            }
            if let dropEvery, Int(sequence) % dropEvery == 0 { continue }
            sent += 1
            var rtp: [UInt8] = [0x80, 18]
            rtp += [UInt8(sequence >> 8), UInt8(sequence & 0xff)]
            let timestamp = UInt32(slot * 160)
            rtp += [UInt8(timestamp >> 24), UInt8((timestamp >> 16) & 0xff), UInt8((timestamp >> 8) & 0xff), UInt8(timestamp & 0xff)]
            rtp += [0x12, 0x34, 0x56, 0x78]
            rtp += (0..<20).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ slot) }
            let udpLength = 8 + rtp.count
            var udp: [UInt8] = [0x17, 0x70, 0x17, 0x70, UInt8(udpLength >> 8), UInt8(udpLength & 0xff), 0, 0]
            udp += rtp
            let ipLength = 20 + udp.count
            var ip: [UInt8] = [0x45, 0, UInt8(ipLength >> 8), UInt8(ipLength & 0xff), 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 2, 127, 0, 0, 1]
            var sum: UInt32 = 0
            for index in stride(from: 0, to: 20, by: 2) { sum += UInt32(ip[index]) << 8 | UInt32(ip[index + 1]) }
            while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
            let checksum = ~UInt16(sum)
            ip[10] = UInt8(checksum >> 8)
            ip[11] = UInt8(checksum & 0xff)
            let frame: [UInt8] = [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0x08, 0x00] + ip + udp
            let microseconds = slot * 20_000
            le32(UInt32(microseconds / 1_000_000))
            le32(UInt32(microseconds % 1_000_000))
            le32(UInt32(frame.count))
            le32(UInt32(frame.count))
            file.append(contentsOf: frame)
        }
        let url = site.directory.url.appendingPathComponent(name)
        try file.write(to: url)
        return url.path
    }
}

extension SippScenarios {
    /// The scenario with G.729 (payload type 18) offered and answered instead of PCMU, and a caller's audio file
    /// played as a capture (`play_pcap_audio`, packets as captured) instead of streamed (`rtp_stream`).
    static func g729(_ scenario: String) -> String {
        scenario.replacingOccurrences(of: "RTP/AVP 0", with: "RTP/AVP 18").replacingOccurrences(of: "a=rtpmap:0 PCMU/8000", with: "a=rtpmap:18 G729/8000")
            .replacingOccurrences(of: ",1,0\"/>", with: "\"/>").replacingOccurrences(of: "exec rtp_stream=", with: "exec play_pcap_audio=")
    }

    /// A carrier scenario that plays `capture` to the SBC once the call is answered (after the ACK).
    static func playing(_ capture: String, in scenario: String) -> String {
        scenario.replacingOccurrences(
            of: "<recv request=\"ACK\" crlf=\"true\"/>",
            with: "<recv request=\"ACK\" crlf=\"true\"/>\n  <nop><action><exec play_pcap_audio=\"\(capture)\"/></action></nop>")
    }
}
