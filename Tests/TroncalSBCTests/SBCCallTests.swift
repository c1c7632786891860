import Foundation
import Logging
import NIOCore
import TestSupport
import Testing
import TroncalProtocol
import TroncalRuntime
import TroncalSIP
import TroncalMedia
import Synchronization

/// Calls through the running SBC and routing core with real sipp on loopback: a customer sipp on
/// 127.0.0.2, the SBC on 127.0.0.1, carrier sipps on 127.0.0.3.
@Suite("SBC calls with sipp", .serialized, .startsProcesses)
struct SBCCallTests {
    static let callee = "34911234567"

    /// A site whose one customer (127.0.0.2) routes every number to a carrier at 127.0.0.3 on `carrierPort`.
    static func site(carrierPort: (Int) -> Int, monitor: Bool = false, adjust: @escaping (inout SiteConfig) -> Void = { _ in }) async throws -> CallSite {
        try await CallSite(monitor: monitor) { config, offset in
            config.sbc.customers = [CallSite.customer()]
            config.routing.routes = [
                RouteSettings(prefix: "34", targets: [RouteTargetSettings(carrier: "carrier-a", host: CallSite.carrierAddress, port: carrierPort(offset))])
            ]
            adjust(&config)
        }
    }

    static func caller(_ site: CallSite, _ name: String, scenario: String, slot: Int, calls: Int, rate: Int = 20, limit: Int = 20, extra: [String] = [])
        throws -> Sipp
    {
        try Sipp(
            name, scenario: scenario, in: site.directory, address: CallSite.customerAddress, port: site.port(slot), mediaPort: site.port(slot) + 2,
            arguments: ["-s", callee, "-m", "\(calls)", "-r", "\(rate)", "-l", "\(limit)", "\(CallSite.sbcAddress):\(site.sipPort)"] + extra)
    }

    static func carrier(_ site: CallSite, _ name: String, scenario: String, port: Int, calls: Int, extra: [String] = []) throws -> Sipp {
        try Sipp(
            name, scenario: scenario, in: site.directory, address: CallSite.carrierAddress, port: port, mediaPort: port + 2,
            arguments: ["-m", "\(calls)"] + extra)
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"), .startsProcessesAlone)
    func twoHundredCallsCompleteWithByeFromEitherSideAndNoAddressCrossesTheSBC() async throws {
        let site = try await Self.site(carrierPort: { 9000 + $0 })
        defer { site.remove() }
        var processes: [Sipp] = []
        do {
            let carrierPort = site.carrierPort(0)
            // 100 calls the caller ends, then 100 the callee ends.
            let carrier = try Self.carrier(site, "carrier", scenario: SippScenarios.carrier(holdMilliseconds: 0), port: carrierPort, calls: 100)
            processes.append(carrier)
            try await carrier.listening()
            let caller = try Self.caller(site, "caller", scenario: SippScenarios.caller(holdMilliseconds: 200), slot: 1, calls: 100)
            processes.append(caller)
            let callerStatus = await caller.finish()
            let carrierStatus = await carrier.finish(timeout: .seconds(20))
            #expect(callerStatus == 0, "\(caller.report)\n\(site.logs)")
            #expect(carrierStatus == 0, "\(carrier.report)")

            let carrier2 = try Self.carrier(
                site, "carrier-bye", scenario: SippScenarios.carrier(holdMilliseconds: 200, calleeHangsUp: true), port: carrierPort, calls: 100)
            processes.append(carrier2)
            try await carrier2.listening()
            let caller2 = try Self.caller(site, "caller-waits", scenario: SippScenarios.caller(callerHangsUp: false), slot: 2, calls: 100)
            processes.append(caller2)
            let caller2Status = await caller2.finish()
            let carrier2Status = await carrier2.finish(timeout: .seconds(20))
            #expect(caller2Status == 0, "\(caller2.report)\n\(site.logs)")
            #expect(carrier2Status == 0, "\(carrier2.report)")

            // Topology hiding, on the bytes each side received and sent.
            for sipp in [carrier, carrier2] {
                #expect(!sipp.messageText.contains(CallSite.customerAddress), "the carrier saw the customer's address")
                #expect(!sipp.messageText.contains("Customer-PBX"), "the carrier saw the customer's User-Agent")
            }
            for sipp in [caller, caller2] {
                #expect(!sipp.messageText.contains(CallSite.carrierAddress), "the customer saw the carrier's address")
                #expect(!sipp.messageText.contains("Carrier-Switch"), "the customer saw the carrier's Server header")
            }
            let summaries = await eventuallySummaries(site, count: 200)
            #expect(summaries.count == 200)
            #expect(summaries.allSatisfy { $0.answerAt != nil && $0.customer == "acme" && $0.callee == Self.callee })
            #expect(summaries.filter { $0.disconnect.by == .caller }.count == 100)
            #expect(summaries.filter { $0.disconnect.by == .callee }.count == 100)
            #expect(summaries.allSatisfy { $0.attempts.count == 1 && $0.attempts[0].carrier == "carrier-a" })
        } catch {
            Issue.record("\(error)\n\(site.logs)")
        }
        for process in processes { await process.stop() }
        await site.stop()
    }

    // Before the other tests of this serialized suite: it needs the whole machine (every process slot), which the
    // slots give first, at the start of the run (ProcessSlots).
    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"), .startsProcessesAlone)
    func aFloodFromOneSourceGetsItBannedWhileAnotherSourcesCallsComplete() async throws {
        // A roomy setup timeout: on a 2-core machine the flood's own sipp and the carrier's compete for CPU, and a
        // carrier that answers late is not what this test is about.
        // The monitor watches: any ban is a security alarm here (the shipped rule wants more than 10 a minute).
        let site = try await Self.site(carrierPort: { 9000 + $0 }, monitor: true) {
            $0.routing.setupTimeoutMilliseconds = 15000
            $0.monitor.scrapeIntervalSeconds = 1
            $0.monitor.scrapeTimeoutMilliseconds = 3000
            $0.monitor.rules = [
                AlarmRule(
                    name: "SBCBanStorm", category: .security, metric: "troncal_sbc_bans_total", function: .increasePerMinute, warning: 0.5,
                    clear: 0, summary: "{{instance}} banned {{value}} sources in a minute", action: "Check the sources.")
            ]
        }
        defer { site.remove() }
        let carrier = try Self.carrier(site, "carrier", scenario: SippScenarios.carrier(), port: site.carrierPort(0), calls: 100)
        try await carrier.listening()
        // 5,000 OPTIONS at up to 1,000 per second from 127.0.0.5, while the customer makes 100 calls.
        let flood = try Sipp(
            "flood", scenario: SippScenarios.optionsFlood, in: site.directory, address: "127.0.0.5", port: site.port(5), mediaPort: site.port(5) + 2,
            arguments: ["-s", "flood", "-m", "5000", "-r", "1000", "-l", "5000", "\(CallSite.sbcAddress):\(site.sipPort)"])
        let caller = try Self.caller(site, "caller", scenario: SippScenarios.caller(holdMilliseconds: 100), slot: 1, calls: 100, rate: 20, limit: 20)
        _ = await flood.finish(timeout: .seconds(60))
        _ = await caller.finish()
        _ = await carrier.finish(timeout: .seconds(20))
        let summaries = await eventuallySummaries(site, count: 100)
        // The customer's view: its calls were answered and completed (sipp's count), and the SBC answered them.
        // (Under the flood on a loaded 2-core machine a few callers' ACKs can be lost before the SBC reads them: the SBC
        // then ends that call itself when its 200 is never acknowledged; such a call still completed for the customer.)
        let completed = caller.successfulCalls ?? 0
        let answeredCalls = summaries.filter { $0.answerAt != nil }.count
        let others = summaries.filter { !($0.answerAt != nil && $0.disconnect.by == .caller) }
            .map { "\($0.callID): answered \($0.answerAt != nil), ended by \($0.disconnect.by), \($0.disconnect.status) \($0.disconnect.reason)" }
        #expect(
            completed >= 99 && answeredCalls >= 99,
            "only \(completed) of 100 calls completed, \(answeredCalls) answered, during the flood (\(summaries.count) summaries; others: \(others))\n\(caller.report)\n\(site.logs)")
        // The flood got a handful of answers before the ban, then silence.
        let answered = flood.messageText.components(separatedBy: "SIP/2.0 200 OK").count - 1
        #expect(answered < 200, "the flooding source got \(answered) answers")
        #expect(site.sbc.outputText.contains("SIP source blocked"))
        // The ban is a security alarm, at the SOC at once.
        var alarms = ""
        let atSOC = await eventually(timeout: .seconds(45), interval: .milliseconds(500)) {
            // Resolved ones too: the rule here clears as soon as a round sees no new ban (with scrapes every second,
            // the alarm may fire and resolve between two polls).
            guard let (status, output) = try? await site.troncal(["alarms", "list", "--category", "security", "--resolved-hours", "1", "--json"]),
                status == 0
            else { return false }
            alarms = output
            return output.contains("\"SBCBanStorm\"") && output.contains("\"soc\"")
        }
        #expect(atSOC, "no security alarm at the SOC: \(alarms)\n\(site.logs)")
        await flood.stop()
        await caller.stop()
        await carrier.stop()
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func cancelBeforeAnswerEndsBothLegs() async throws {
        let site = try await Self.site(carrierPort: { 9000 + $0 })
        defer { site.remove() }
        let carrier = try Self.carrier(site, "carrier", scenario: SippScenarios.ringingCarrier, port: site.carrierPort(0), calls: 5)
        try await carrier.listening()
        let caller = try Self.caller(site, "caller", scenario: SippScenarios.cancellingCaller, slot: 1, calls: 5, rate: 5, limit: 5)
        let callerStatus = await caller.finish()
        let carrierStatus = await carrier.finish(timeout: .seconds(20))
        #expect(callerStatus == 0, "\(caller.report)\n\(site.logs)")
        #expect(carrierStatus == 0, "\(carrier.report)")
        let summaries = await eventuallySummaries(site, count: 5)
        #expect(summaries.count == 5)
        #expect(summaries.allSatisfy { $0.answerAt == nil && $0.disconnect.status == 487 && $0.disconnect.by == .caller })
        await caller.stop()
        await carrier.stop()
        await site.stop()
    }

    @Test func anUnknownSourceGets403AndNoCallLegIsMade() async throws {
        let site = try await Self.site(carrierPort: { 9000 + $0 }) { $0.sip.refusedSources = "refuse" }
        defer { site.remove() }
        let carrier = try await SIPProbe(host: CallSite.carrierAddress, port: site.carrierPort(0))
        let stranger = try await SIPProbe(host: "127.0.0.4")
        let status = try await stranger.request(Self.invite(callID: "stranger-1", from: "127.0.0.4"), callID: "stranger-1", to: try site.sipAddress)
        #expect(status == 403, "\(site.logs)")
        try await Task.sleep(for: .milliseconds(500))
        #expect(carrier.received == 0, "a call leg reached the carrier")
        await stranger.close()
        await carrier.close()
        await site.stop()
    }

    /// An INVITE as a customer's phone sends it.
    static func invite(callID: String, from address: String, cseq: Int = 1, extraHeaders: String = "") -> [UInt8] {
        let sdp = "v=0\r\no=- 1 1 IN IP4 \(address)\r\ns=-\r\nc=IN IP4 \(address)\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
        let text = "INVITE sip:\(callee)@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP \(address):5060;branch=z9hG4bK\(callID)-\(cseq)\r\n"
            + "From: <sip:100@\(address)>;tag=\(callID)\r\nTo: <sip:\(callee)@127.0.0.1>\r\nCall-ID: \(callID)\r\nCSeq: \(cseq) INVITE\r\n"
            + "Contact: <sip:100@\(address):5060>\r\nMax-Forwards: 70\r\n\(extraHeaders)Content-Type: application/sdp\r\nContent-Length: \(sdp.utf8.count)\r\n\r\n\(sdp)"
        return Array(text.utf8)
    }

    @Test func digestCustomersAuthenticateWithSHA256OrMD5AndEveryFailureLooksTheSame() async throws {
        let site = try await CallSite { config, offset in
            config.sbc.customers = [CallSite.customer("phone", username: "alice", password: "s3cret")]
            config.routing.routes = [RouteSettings(prefix: "34", targets: [RouteTargetSettings(carrier: "c", host: CallSite.carrierAddress, port: 9000 + offset)])]
        }
        defer { site.remove() }
        let carrier = try await SIPProbe(host: CallSite.carrierAddress, port: site.carrierPort(0))
        let phone = try await SIPProbe(host: CallSite.customerAddress)
        let sbc = try site.sipAddress
        var legs = 0
        // Call legs, not INVITEs: the SBC retransmits an INVITE the carrier does not answer (every 500 ms on UDP).
        func legsAtCarrier() -> Int { Set(carrier.requests.filter { $0.method == .invite }.compactMap { try? $0.headers.callID() }).count }

        /// Sends an INVITE, takes the 407, answers it as `user` with `password` using `algorithm`; returns the final
        /// status of the authenticated INVITE (nil while the call is still being set up) and the header sent.
        func call(_ callID: String, user: String, password: String, algorithm: DigestAlgorithm) async throws -> (challenge: SIPResponse, header: String) {
            #expect(try await phone.request(Self.invite(callID: callID, from: CallSite.customerAddress), callID: callID, to: sbc) == 407)
            let challenge = try #require(phone.responses(callID).first { $0.statusCode == 407 })
            let offered = challenge.headers.filter { $0.name == .proxyAuthenticate }.compactMap { try? DigestChallenge(headerValue: $0.valueString) }
            var client = DigestClient(username: user, password: password)
            try client.receive(offered.filter { $0.algorithm == algorithm })
            let header = try client.credentials(method: "INVITE", uri: "sip:\(Self.callee)@127.0.0.1", cnonce: "c\(callID)").description
            try await phone.send(Self.invite(callID: callID, from: CallSite.customerAddress, cseq: 2, extraHeaders: "Proxy-Authorization: \(header)\r\n"), to: sbc)
            return (challenge, header)
        }

        // Right credentials, SHA-256 then MD5: each makes a call leg towards the carrier.
        let good = try await call("sha", user: "alice", password: "s3cret", algorithm: .sha256)
        legs += 1
        #expect(await eventually(timeout: .seconds(5)) { legsAtCarrier() >= legs }, "SHA-256 credentials did not make a call\n\(site.logs)")
        _ = try await call("md5", user: "alice", password: "s3cret", algorithm: .md5)
        legs += 1
        #expect(await eventually(timeout: .seconds(5)) { legsAtCarrier() >= legs }, "MD5 credentials did not make a call")

        // A wrong password, an unknown user and a replayed nonce count: 403 each, the same answer, and no call leg.
        _ = try await call("wrong", user: "alice", password: "guess", algorithm: .sha256)
        let unknown = try await call("unknown", user: "mallory", password: "s3cret", algorithm: .sha256)
        try await phone.send(
            Self.invite(callID: "replay", from: CallSite.customerAddress, cseq: 2, extraHeaders: "Proxy-Authorization: \(good.header)\r\n"), to: sbc)
        for callID in ["wrong", "unknown", "replay"] {
            #expect(await eventually(timeout: .seconds(5)) { phone.responses(callID).contains { $0.statusCode == 403 } }, "\(callID) was not refused")
        }
        // The challenge and the refusal do not tell a known user from an unknown one.
        #expect(good.challenge.headers.map(\.name) == unknown.challenge.headers.map(\.name))
        let refusals = ["wrong", "unknown"].compactMap { phone.responses($0).first { $0.statusCode == 403 } }
        #expect(refusals.count == 2 && refusals[0].reasonPhraseString == refusals[1].reasonPhraseString && refusals[0].headers.map(\.name) == refusals[1].headers.map(\.name))
        try await Task.sleep(for: .milliseconds(300))
        #expect(legsAtCarrier() == legs, "a refused call reached the carrier")
        await phone.close()
        await carrier.close()
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func sippAnswersTheChallengeWithMD5AndItsCallsComplete() async throws {
        // sipp answers only the first challenge, and only MD5: offer MD5 first, as for older phones.
        let site = try await Self.site(carrierPort: { 9000 + $0 }) {
            $0.sbc.customers = [CallSite.customer("phone", username: "alice", password: "s3cret")]
            $0.sbc.digestAlgorithms = ["MD5", "SHA-256"]
        }
        defer { site.remove() }
        let carrier = try Self.carrier(site, "carrier", scenario: SippScenarios.carrier(), port: site.carrierPort(0), calls: 10)
        try await carrier.listening()
        let caller = try Self.caller(site, "caller", scenario: SippScenarios.caller(credentials: ("alice", "s3cret"), holdMilliseconds: 100), slot: 1, calls: 10, rate: 10, limit: 10)
        let callerStatus = await caller.finish()
        #expect(callerStatus == 0, "\(caller.report)\n\(site.logs)")
        #expect(await carrier.finish(timeout: .seconds(20)) == 0, "\(carrier.report)")
        let summaries = await eventuallySummaries(site, count: 10)
        #expect(summaries.filter { $0.customer == "phone" && $0.answerAt != nil }.count == 10)
        await caller.stop()
        await carrier.stop()
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aCallFailsOverPastA503AndASilentCarrierToTheThird() async throws {
        let site = try await CallSite { config, offset in
            config.sbc.customers = [CallSite.customer()]
            config.routing.routes = [
                RouteSettings(prefix: "34", targets: [
                    RouteTargetSettings(carrier: "refuses", host: CallSite.carrierAddress, port: 9000 + offset),
                    RouteTargetSettings(carrier: "silent", host: CallSite.carrierAddress, port: 9100 + offset, setupTimeoutMilliseconds: 1000),
                    RouteTargetSettings(carrier: "answers", host: CallSite.carrierAddress, port: 9200 + offset),
                ])
            ]
        }
        defer { site.remove() }
        let refuses = try Self.carrier(site, "refuses", scenario: SippScenarios.refusingCarrier(status: 503, reason: "Service Unavailable"), port: site.carrierPort(0), calls: 1)
        let silent = try await SIPProbe(host: CallSite.carrierAddress, port: site.carrierPort(1))
        let answers = try Self.carrier(site, "answers", scenario: SippScenarios.carrier(), port: site.carrierPort(2), calls: 1)
        try await refuses.listening()
        try await answers.listening()
        let started = ContinuousClock.now
        let caller = try Self.caller(site, "caller", scenario: SippScenarios.caller(holdMilliseconds: 100), slot: 1, calls: 1, rate: 1, limit: 1)
        let callerStatus = await caller.finish()
        let elapsed = ContinuousClock.now - started
        #expect(callerStatus == 0, "\(caller.report)\n\(site.logs)")
        #expect(elapsed < .seconds(6), "failover took \(elapsed)")
        #expect(await refuses.finish(timeout: .seconds(10)) == 0, "\(refuses.report)")
        #expect(await answers.finish(timeout: .seconds(10)) == 0, "\(answers.report)")
        #expect(silent.requests.contains { $0.method == .invite })
        let summary = try #require(await eventuallySummaries(site, count: 1).first)
        #expect(summary.attempts.map(\.carrier) == ["refuses", "silent", "answers"])
        #expect(summary.attempts.map(\.result) == [.failed, .noAnswer, .answered])
        #expect(summary.attempts.first?.status == 503)
        await caller.stop()
        await refuses.stop()
        await answers.stop()
        await silent.close()
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aCarrierRefusingTheTCPConnectionIsPassedOverAtOnce() async throws {
        // Nothing listens on the first carrier's TCP port: the connection is refused, which counts at once, long before
        // the 3 s setup timeout.
        let site = try await CallSite { config, offset in
            config.sbc.customers = [CallSite.customer()]
            config.routing.routes = [
                RouteSettings(prefix: "34", targets: [
                    RouteTargetSettings(carrier: "closed", host: CallSite.carrierAddress, port: 9000 + offset, transport: "tcp"),
                    RouteTargetSettings(carrier: "answers", host: CallSite.carrierAddress, port: 9100 + offset),
                ])
            ]
        }
        defer { site.remove() }
        let answers = try Self.carrier(site, "answers", scenario: SippScenarios.carrier(), port: site.carrierPort(1), calls: 1)
        try await answers.listening()
        let started = ContinuousClock.now
        let caller = try Self.caller(site, "caller", scenario: SippScenarios.caller(holdMilliseconds: 100), slot: 1, calls: 1, rate: 1, limit: 1)
        #expect(await caller.finish() == 0, "\(caller.report)\n\(site.logs)")
        #expect(ContinuousClock.now - started < .seconds(2), "failover took \(ContinuousClock.now - started)")
        #expect(await answers.finish(timeout: .seconds(10)) == 0, "\(answers.report)")
        let summary = try #require(await eventuallySummaries(site, count: 1).first)
        #expect(summary.attempts.map(\.carrier) == ["closed", "answers"])
        #expect(summary.attempts.map(\.result) == [.transportError, .answered])
        await caller.stop()
        await answers.stop()
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func rtpFlowsThroughTheRelayAndTheSummaryCarriesPacketCountsAndMOS() async throws {
        let site = try await Self.site(carrierPort: { 9000 + $0 })
        defer { site.remove() }
        // Two seconds of µ-law audio for sipp's rtp_stream (160 bytes every 20 ms).
        let audio = site.directory.url.appendingPathComponent("audio.ulaw")
        try Data((0..<16000).map { UInt8(truncatingIfNeeded: 0x7F ^ ($0 % 64)) }).write(to: audio)
        let carrier = try Self.carrier(site, "carrier", scenario: SippScenarios.carrier(), port: site.carrierPort(0), calls: 1, extra: ["-rtp_echo"])
        try await carrier.listening()
        let caller = try Self.caller(
            site, "caller", scenario: SippScenarios.caller(holdMilliseconds: 2500, rtpFile: audio.path), slot: 1, calls: 1, rate: 1, limit: 1)
        #expect(await caller.finish() == 0, "\(caller.report)\n\(site.logs)")
        #expect(await carrier.finish(timeout: .seconds(10)) == 0, "\(carrier.report)")
        let summary = try #require(await eventuallySummaries(site, count: 1).first)
        let outbound = try #require(summary.streams.first { $0.direction == "caller-to-callee" }, "\(summary.streams)")
        let echoed = try #require(summary.streams.first { $0.direction == "callee-to-caller" })
        // What a loaded machine cannot change: the packets were counted, and each MOS is the E-model's verdict on what was
        // counted (loss and jitter), not a fixed "good enough" figure that a busy machine's jitter would miss.
        for stream in [outbound, echoed] {
            #expect(stream.packets >= 90, "\(stream)")
            #expect(stream.lost * 10 <= stream.packets, "more than 10 % lost on loopback: \(stream)")
            #expect(abs(stream.mos - Self.expectedMOS(stream)) < 0.01, "\(stream)")
            #expect((1.0...4.5).contains(stream.mos), "\(stream)")
        }
        await caller.stop()
        await carrier.stop()
        await site.stop()
    }

    /// The MOS the ITU-T G.107 E-model gives for a stream's counted loss and jitter, with the SBC's delay assumptions
    /// (half the RTCP round trip or 20 ms of network, a jitter buffer of twice the jitter, one 20 ms packet).
    static func expectedMOS(_ stream: CallSummary.StreamReport) -> Double {
        let expected = stream.packets + stream.lost
        let loss = expected > 0 ? Double(stream.lost) * 100 / Double(expected) : 0
        let delay = (stream.roundTripMilliseconds.map { $0 / 2 } ?? 20) + 2 * stream.jitterMilliseconds + 20
        return EModel(codec: CodecImpairment.forEncoding(stream.codec), oneWayDelayMilliseconds: delay, packetLossPercent: loss).rating().mos
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aCustomerCallsOverTLSAndTheCallCompletesOverTheSameConnection() async throws {
        let site = try await Self.site(carrierPort: { 9000 + $0 })
        defer { site.remove() }
        let carrier = try Self.carrier(site, "carrier", scenario: SippScenarios.carrier(), port: site.carrierPort(0), calls: 1)
        try await carrier.listening()
        let ca = site.directory.url.appendingPathComponent(site.config.pkiDirectory).appendingPathComponent("ca.crt").path
        let phone = try await TLSSIPClient(from: CallSite.customerAddress, to: CallSite.sbcAddress, port: site.config.sip.tlsPort, caCertificatePath: ca)
        let local = "\(CallSite.customerAddress):\(phone.localPort)"
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 41000 RTP/AVP 0\r\n"
        let common = "From: <sip:100@127.0.0.2>;tag=tls1\r\nCall-ID: tls-call-1\r\nMax-Forwards: 70\r\n"
        try await phone.send(
            "INVITE sip:\(Self.callee)@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS \(local);branch=z9hG4bKtls1\r\n\(common)To: <sip:\(Self.callee)@127.0.0.1>\r\n"
                + "CSeq: 1 INVITE\r\nContact: <sip:100@\(local);transport=tls>\r\nContent-Type: application/sdp\r\nContent-Length: \(sdp.utf8.count)\r\n\r\n\(sdp)")
        #expect(await eventually(timeout: .seconds(10)) { !phone.responses(status: 200).isEmpty }, "no 200 over TLS\n\(site.logs)")
        let answer = try #require(phone.responses(status: 200).first)
        let to = try #require(answer.headers.first(.to)).valueString
        let contact = try #require(try answer.headers.contacts())
        guard case .addresses(let addresses) = contact, let target = addresses.first?.uri else { Issue.record("no Contact"); return }
        #expect(target.parameters["transport"]?.lowercased() == "tls", "the SBC's Contact over TLS: \(target)")
        try await phone.send("ACK \(target) SIP/2.0\r\nVia: SIP/2.0/TLS \(local);branch=z9hG4bKtls2\r\n\(common)To: \(to)\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")
        // ACK and BYE share the TLS connection: the SBC reads them in order, no pause needed.
        try await phone.send("BYE \(target) SIP/2.0\r\nVia: SIP/2.0/TLS \(local);branch=z9hG4bKtls3\r\n\(common)To: \(to)\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
        #expect(await eventually(timeout: .seconds(5)) { phone.responses(status: 200).contains { ((try? $0.headers.cseq()) ?? nil)?.method == .bye } })
        #expect(await carrier.finish(timeout: .seconds(10)) == 0, "\(carrier.report)")
        let summary = try #require(await eventuallySummaries(site, count: 1).first)
        #expect(summary.answerAt != nil && summary.disconnect.by == .caller)
        await phone.close()
        await carrier.stop()
        await site.stop()
    }

    /// Hold and resume on a trunk call: each re-INVITE reaches the carrier with the direction the caller asked, in the
    /// carrier's dialog (its own CSeq: 2, 3), and the carrier's 200 is acknowledged with that CSeq (an ACK with the first
    /// INVITE's CSeq acknowledges nothing: the carrier would retransmit its 200 and hang up after 32 s).
    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aCallPutOnHoldAndResumedKeepsBothDialogsInStep() async throws {
        let site = try await Self.site(carrierPort: { 9000 + $0 })
        defer { site.remove() }
        let carrier = try Self.carrier(site, "carrier", scenario: SippScenarios.heldCarrier, port: site.carrierPort(0), calls: 1)
        try await carrier.listening()
        let caller = try Self.caller(site, "caller", scenario: SippScenarios.holdingCaller(), slot: 1, calls: 1, rate: 1, limit: 1)
        #expect(await caller.finish() == 0, "\(caller.report)\n\(site.logs)")
        #expect(await carrier.finish(timeout: .seconds(10)) == 0, "\(carrier.report)\n\(site.logs)")
        let atCarrier = carrier.messageText
        #expect(atCarrier.contains("a=sendonly"), "the hold did not reach the carrier: \(atCarrier.prefix(4000))")
        #expect(atCarrier.contains("CSeq: 2 ACK") && atCarrier.contains("CSeq: 3 ACK"), "\(atCarrier.prefix(6000))")
        #expect(atCarrier.components(separatedBy: "CSeq: 1 ACK").count - 1 == 1, "only the first answer is acknowledged with CSeq 1")
        #expect(caller.messageText.contains("a=recvonly"), "the carrier's answer to the hold did not reach the caller")
        // One call, answered, ended by the caller: the hold did not end it.
        let summary = try #require(await eventuallySummaries(site, count: 1).first)
        #expect(summary.answerAt != nil && summary.disconnect.by == .caller, "\(summary)")
        await caller.stop()
        await carrier.stop()
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func theSBCHangsUpBothLegsAtTheMaximumCallDuration() async throws {
        let site = try await Self.site(carrierPort: { 9000 + $0 }) { $0.sbc.maximumCallSeconds = 2 }
        defer { site.remove() }
        let carrier = try Self.carrier(site, "carrier", scenario: SippScenarios.carrier(), port: site.carrierPort(0), calls: 2)
        try await carrier.listening()
        let caller = try Self.caller(site, "caller", scenario: SippScenarios.caller(callerHangsUp: false), slot: 1, calls: 2, rate: 2, limit: 2)
        #expect(await caller.finish(timeout: .seconds(60)) == 0, "\(caller.report)\n\(site.logs)")
        #expect(await carrier.finish(timeout: .seconds(10)) == 0, "\(carrier.report)")
        let summaries = await eventuallySummaries(site, count: 2)
        #expect(summaries.count == 2)
        for summary in summaries {
            #expect(summary.disconnect.by == .sbc && summary.disconnect.reason == "maximum duration reached")
            #expect((1900...5000).contains(summary.durationMilliseconds), "\(summary.durationMilliseconds) ms")
        }
        await caller.stop()
        await carrier.stop()
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"), arguments: [1, 2])
    func aTrunkFailingFiveCallsInARowIsTakenOutAndComesBackWhenItsProbesSucceed(routingInstances: Int) async throws {
        // With two routing instances the SBC's route requests alternate between them, and its reports go to both: each
        // sees the five failures and takes the trunk out.
        let site = try await CallSite(routingInstances: routingInstances) { config, offset in
            config.sbc.customers = [CallSite.customer()]
            config.routing.failuresToTakeOut = 5
            config.routing.probeIntervalMilliseconds = 2000
            config.routing.probeTimeoutMilliseconds = 300
            config.routing.routes = [
                RouteSettings(prefix: "34", targets: [
                    RouteTargetSettings(carrier: "flaky", host: CallSite.carrierAddress, port: 9000 + offset),
                    {
                        // sipp cannot answer OPTIONS outside a call: this trunk is not probed.
                        var steady = RouteTargetSettings(carrier: "steady", host: CallSite.carrierAddress, port: 9200 + offset)
                        steady.probe = false
                        return steady
                    }(),
                ])
            ]
        }
        defer { site.remove() }
        // "flaky" refuses calls with 503 and ignores probes; "steady" is a sipp carrier.
        let flaky = try await SIPProbe(host: CallSite.carrierAddress, port: site.carrierPort(0))
        let probesAnswered = Mutex(false)
        flaky.answer { request in request.method == .invite ? 503 : (probesAnswered.withLock { $0 } ? 200 : nil) }
        let steady = try Self.carrier(site, "steady", scenario: SippScenarios.carrier(), port: site.carrierPort(2), calls: 7)
        try await steady.listening()
        func calls(_ count: Int, _ name: String) async throws {
            let caller = try Self.caller(site, name, scenario: SippScenarios.caller(), slot: 1, calls: count, rate: 5, limit: 1)
            #expect(await caller.finish() == 0, "\(caller.report)\n\(site.logs)")
        }
        try await calls(5, "first-five")
        let invitesBefore = flaky.requests.filter { $0.method == .invite }.count
        #expect(invitesBefore == 5)
        try await calls(1, "sixth")
        #expect(flaky.requests.filter { $0.method == .invite }.count == invitesBefore, "the trunk was tried after 5 failures in a row")
        let routers = (1...routingInstances).map { site.process("routing-\($0)") }
        #expect(routers.allSatisfy { $0.outputText.contains("trunk taken out of routes") }, "\(site.logs)")
        // The carrier answers probes again: it comes back, and the next call tries it first.
        probesAnswered.withLock { $0 = true }
        #expect(await eventually(timeout: .seconds(8)) { routers.allSatisfy { $0.outputText.contains("trunk back in routes") } }, "\(site.logs)")
        try await calls(1, "seventh")
        #expect(flaky.requests.filter { $0.method == .invite }.count == invitesBefore + 1)
        let summaries = await eventuallySummaries(site, count: 7).sorted { $0.setupAt < $1.setupAt }
        #expect(summaries.map(\.attempts.count) == [2, 2, 2, 2, 2, 1, 2])
        #expect(summaries.allSatisfy { $0.answerAt != nil })
        await steady.stop()
        await flaky.close()
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aCarrierCallToADIDReachesTheCustomerTrunkAndAnUnknownNumberGets404() async throws {
        let customerPort = 9300
        let site = try await CallSite { config, offset in
            config.sbc.carriers = [CarrierSourceSettings(id: "carrier-in", addresses: [CallSite.carrierAddress + "/32"])]
            config.routing.dids = [DIDSettings(number: "442079460018", customer: "acme", host: CallSite.customerAddress, port: customerPort + offset)]
        }
        defer { site.remove() }
        // The customer's PBX answers; the carrier calls the DID.
        let pbx = try Sipp(
            "pbx", scenario: SippScenarios.carrier(), in: site.directory, address: CallSite.customerAddress, port: customerPort + site.offset,
            mediaPort: customerPort + site.offset + 2, arguments: ["-m", "1"])
        try await pbx.listening()
        let carrier = try Sipp(
            "carrier-in", scenario: SippScenarios.caller(holdMilliseconds: 100), in: site.directory, address: CallSite.carrierAddress,
            port: site.carrierPort(0), mediaPort: site.carrierPort(0) + 2,
            arguments: ["-s", "+442079460018", "-m", "1", "-r", "1", "\(CallSite.sbcAddress):\(site.sipPort)"])
        #expect(await carrier.finish() == 0, "\(carrier.report)\n\(site.logs)")
        #expect(await pbx.finish(timeout: .seconds(10)) == 0, "\(pbx.report)")
        #expect(!pbx.messageText.contains(CallSite.carrierAddress), "the customer saw the carrier's address")
        let summary = try #require(await eventuallySummaries(site, count: 1).first)
        #expect(summary.customer == "carrier-in" && summary.callee == "442079460018" && summary.answerAt != nil)
        #expect(summary.attempts.map(\.trunk) == ["acme"])

        let probe = try await SIPProbe(host: CallSite.carrierAddress)
        #expect(try await probe.request(Self.invite(callID: "no-such-did", from: CallSite.carrierAddress), callID: "no-such-did", to: try site.sipAddress) == 404)
        await probe.close()
        await carrier.stop()
        await pbx.stop()
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aStoppedSBCDrainsRefusingNewCallsWith503ThenHangsUpTheCallsStillUpAtItsBound() async throws {
        let site = try await Self.site(carrierPort: { 9000 + $0 }) { $0.sbc.drainSeconds = 4 }
        defer { site.remove() }
        let longer = ["-timeout", "60s"]
        let carrier = try Self.carrier(site, "carrier", scenario: SippScenarios.carrier(), port: site.carrierPort(0), calls: 2, extra: longer)
        try await carrier.listening()
        // Two calls up, held by nobody: only the SBC's BYE ends them.
        let caller = try Self.caller(site, "caller", scenario: SippScenarios.caller(callerHangsUp: false), slot: 1, calls: 2, rate: 2, limit: 2, extra: longer)
        #expect(await eventually(timeout: .seconds(30), interval: .milliseconds(200)) {
            caller.messageText.components(separatedBy: "SIP/2.0 200 OK").count - 1 >= 2
        }, "\(caller.report)\n\(site.logs)")
        let sbc = site.sbc
        kill(sbc.pid, SIGTERM)
        let stopped = ContinuousClock.now
        // Draining: /health says so (a keepalived check moves the address away), and a new call gets 503.
        let adminPort = try #require(site.config.instance(named: "sbc-1")?.adminPort)
        #expect(await eventually(timeout: .seconds(10), interval: .milliseconds(100)) {
            ((try? await httpGet(port: adminPort, path: "/health")) ?? "").contains("shutting down")
        })
        let late = try Self.caller(site, "late", scenario: SippScenarios.caller(holdMilliseconds: 100), slot: 2, calls: 1, rate: 1, limit: 1)
        _ = await late.finish(timeout: .seconds(20))
        #expect(late.messageText.contains("SIP/2.0 503"), "a call during the drain: \(late.report)")
        // At the bound the two calls are hung up on both sides, then the process exits by itself.
        #expect(await caller.finish(timeout: .seconds(30)) == 0, "\(caller.report)\n\(site.logs)")
        #expect(await carrier.finish(timeout: .seconds(10)) == 0, "\(carrier.report)")
        #expect(await eventually(timeout: .seconds(30), interval: .milliseconds(100)) { !sbc.isRunning }, "\(site.logs)")
        let drained = ContinuousClock.now - stopped
        #expect(drained >= .seconds(4), "the calls were hung up before the bound: \(drained)")
        let summaries = ((try? site.summaries()) ?? []).filter { $0.answerAt != nil }
        #expect(summaries.count == 2 && summaries.allSatisfy { $0.disconnect.by == .sbc && $0.disconnect.reason == "SBC drained" }, "\(summaries)")
        #expect(sbc.outputText.contains("SBC draining: new calls refused with 503") && sbc.outputText.contains("SBC drained"))
        await late.stop()
        await caller.stop()
        await carrier.stop()
        await site.stop()
    }

    /// A call still ringing at the carrier when a draining SBC reaches its bound is cancelled at the carrier and
    /// refused to the caller with 503, not left to time out against a closed SBC; its attempt is cancelled, so routing
    /// counts nothing against the carrier (five failures would take it out of service).
    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aCallRingingWhenADrainingSBCReachesItsBoundIsCancelledAtTheCarrierAndNotCountedAgainstIt() async throws {
        let site = try await Self.site(carrierPort: { 9000 + $0 }) { $0.sbc.drainSeconds = 2 }
        defer { site.remove() }
        let longer = ["-timeout", "60s"]
        let carrier = try Self.carrier(site, "ringing", scenario: SippScenarios.ringingCarrier, port: site.carrierPort(0), calls: 1, extra: longer)
        try await carrier.listening()
        let caller = try Self.caller(site, "caller", scenario: SippScenarios.caller(holdMilliseconds: 100), slot: 1, calls: 1, rate: 1, limit: 1, extra: longer)
        #expect(await eventually(timeout: .seconds(30), interval: .milliseconds(100)) {
            caller.messageText.contains("SIP/2.0 180")
        }, "\(caller.report)\n\(site.logs)")
        let sbc = site.sbc
        kill(sbc.pid, SIGTERM)
        // At the bound: CANCEL to the carrier (which answers 200 and 487), 503 to the caller, and the SBC exits.
        #expect(await carrier.finish(timeout: .seconds(30)) == 0, "\(carrier.report)\n\(site.logs)")
        _ = await caller.finish(timeout: .seconds(30))
        #expect(caller.messageText.contains("SIP/2.0 503"), "\(caller.report)")
        #expect(await eventually(timeout: .seconds(30), interval: .milliseconds(100)) { !sbc.isRunning }, "\(site.logs)")
        let summaries = await eventuallySummaries(site, count: 1)
        #expect(summaries.count == 1 && summaries.allSatisfy {
            $0.answerAt == nil && $0.disconnect.by == .sbc && $0.disconnect.status == 503 && $0.attempts.map(\.result) == [.cancelled]
        }, "\(summaries)")
        // Routing heard of no failed attempt of the carrier.
        let routingAdmin = try #require(site.config.instance(named: "routing-1")?.adminPort)
        let metrics = (try? await httpGet(port: routingAdmin, path: "/metrics")) ?? ""
        #expect(!metrics.split(separator: "\n").contains { $0.hasPrefix("troncal_routing_attempts_total") && $0.contains("carrier-a") },
                "\(metrics.split(separator: "\n").filter { $0.contains("attempts") })")
        await caller.stop()
        await carrier.stop()
        await site.stop()
    }

    func eventuallySummaries(_ site: CallSite, count: Int) async -> [CallSummary] {
        _ = await eventually(timeout: .seconds(15), interval: .milliseconds(100)) { ((try? site.summaries()) ?? []).count >= count }
        return (try? site.summaries()) ?? []
    }
}

/// Two routing instances share the SBC's route requests; one paused (SIGSTOP) for 10 s is suspected, not declared
/// dead, and the calls go on through the other; one paused for 60 s is taken out (declared dead after its suspicion)
/// and back in service when resumed.
@Suite("SBC calls with a paused routing instance", .serialized, .startsProcesses)
struct PausedInstanceCallTests {
    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"), .startsProcessesAlone)
    func aRoutingInstancePausedForTenSecondsIsSuspectedNotDeclaredDeadAndNoCallIsLost() async throws {
        try await pause(seconds: 10, suspicionSeconds: 30, calls: 200, rate: 10) { site, sbcLog, endpoint, _, _ in
            #expect(!sbcLog.split(separator: "\n").contains { $0.contains("declared dead") && $0.contains(endpoint) },
                    "a 10 s pause declared routing-2 dead\n\(site.logs)")
        }
    }

    /// The suspicion is 15 s here (30 s by default) so that a loaded machine's local health multiplier (up to 3
    /// here) still ends it within the 60 s pause.
    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"), .startsProcessesAlone)
    func aRoutingInstancePausedForSixtySecondsIsTakenOutAndBackInServiceWhenResumed() async throws {
        try await pause(seconds: 60, suspicionSeconds: 15, calls: 400, rate: 5) { site, sbcLog, endpoint, paused, resumed in
            let lines = sbcLog.split(separator: "\n")
            let dead = lines.firstIndex { $0.contains("link instance declared dead") && $0.contains(endpoint) && $0.contains("suspected for") }
            #expect(dead != nil, "a 60 s pause did not take routing-2 out\n\(site.logs)")
            guard let dead else { return }
            let back = lines[dead...].first { $0.contains("link instance back in service") && $0.contains(endpoint) && $0.contains("was=dead") }
            #expect(back != nil, "routing-2 was not back in service after SIGCONT\n\(site.logs)")
            // The figures, to the second of the log's timestamps.
            func time(_ line: Substring?) -> Date? { line.flatMap { $0.split(separator: " ").first }.flatMap { try? Date.ISO8601FormatStyle().parse(String($0)) } }
            if let deadAt = time(lines[dead]), let backAt = time(back) {
                Logger(label: "test.paused").notice(
                    "routing-2 paused 60 s: declared dead \(Int(deadAt.timeIntervalSince(paused).rounded())) s after SIGSTOP, back in service \(Int(backAt.timeIntervalSince(resumed).rounded())) s after SIGCONT")
            }
        }
    }

    /// sipp places `calls` at `rate` a second; routing-2 is paused for `seconds` once 20 calls are done; every call
    /// must be answered and routing-2 suspected, then back in service; `check` adds what the pause's length implies.
    func pause(
        seconds: Int, suspicionSeconds: Int, calls: Int, rate: Int,
        check: (CallSite, String, String, Date, Date) -> Void
    ) async throws {
        let site = try await CallSite(routingInstances: 2) { config, offset in
            config.link.suspicionSeconds = suspicionSeconds
            config.sbc.customers = [CallSite.customer()]
            config.routing.routes = [
                RouteSettings(prefix: "34", targets: [RouteTargetSettings(carrier: "carrier-a", host: CallSite.carrierAddress, port: 9000 + offset)])
            ]
        }
        defer { site.remove() }
        var processes: [Sipp] = []
        do {
            let carrier = try SBCCallTests.carrier(site, "carrier", scenario: SippScenarios.carrier(holdMilliseconds: 0), port: site.carrierPort(0), calls: calls)
            processes.append(carrier)
            try await carrier.listening()
            let caller = try SBCCallTests.caller(
                site, "caller", scenario: SippScenarios.caller(holdMilliseconds: 200), slot: 1, calls: calls, rate: rate, limit: 60)
            processes.append(caller)
            let paused = site.process("routing-2")
            #expect(await eventually(timeout: .seconds(30)) { ((try? site.summaries())?.count ?? 0) >= 20 }, "\(site.logs)")
            kill(paused.pid, SIGSTOP)
            let pausedAt = Date()
            // The pause itself is the test's subject: a fixed length, not a wait for an event.
            try await Task.sleep(for: .seconds(seconds))
            kill(paused.pid, SIGCONT)
            let resumedAt = Date()
            let callerStatus = await caller.finish(timeout: .seconds(120))
            let carrierStatus = await carrier.finish(timeout: .seconds(20))
            #expect(callerStatus == 0, "\(caller.report)\n\(site.logs)")
            #expect(carrierStatus == 0, "\(carrier.report)")
            let summaries = await SBCCallTests().eventuallySummaries(site, count: calls)
            #expect(summaries.count == calls)
            #expect(summaries.allSatisfy { $0.answerAt != nil }, "calls lost while routing-2 was paused")
            let endpoint = "127.0.0.1:\(7108 + site.offset)"
            #expect(site.sbc.outputText.contains("link instance suspected") && site.sbc.outputText.contains(endpoint),
                    "routing-2 was never suspected\n\(site.logs)")
            #expect(await eventually(timeout: .seconds(20)) { site.sbc.outputText.contains("link instance back in service") }, "routing-2 did not come back")
            check(site, site.sbc.outputText, endpoint, pausedAt, resumedAt)
        } catch {
            Issue.record("\(error)\n\(site.logs)")
        }
        for process in processes { await process.stop() }
        await site.stop()
    }
}
