import Foundation
import NIOCore
import TestSupport
import Testing
import TroncalProtocol
import TroncalRuntime
import TroncalSIP

/// Calls through the running SBC and routing core with real sipp on loopback: a customer sipp on
/// 127.0.0.2, the SBC on 127.0.0.1, carrier sipps on 127.0.0.3.
@Suite("SBC calls with sipp", .serialized)
struct SBCCallTests {
    static let callee = "34911234567"

    /// A site whose one customer (127.0.0.2) routes every number to a carrier at 127.0.0.3 on `carrierPort`.
    static func site(carrierPort: (Int) -> Int, adjust: @escaping (inout SiteConfig) -> Void = { _ in }) async throws -> CallSite {
        try await CallSite { config, offset in
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

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func twoHundredCallsCompleteWithByeFromEitherSideAndNoAddressCrossesTheSBC() async throws {
        let site = try await Self.site(carrierPort: { 11000 + $0 })
        defer { site.remove() }
        var processes: [Sipp] = []
        do {
            let carrierPort = 11000 + site.offset
            // 100 calls the caller ends, then 100 the callee ends.
            let carrier = try Self.carrier(site, "carrier", scenario: SippScenarios.carrier(holdMilliseconds: 0), port: carrierPort, calls: 100)
            processes.append(carrier)
            try await Task.sleep(for: .milliseconds(300))
            let caller = try Self.caller(site, "caller", scenario: SippScenarios.caller(holdMilliseconds: 200), slot: 1, calls: 100)
            processes.append(caller)
            let callerStatus = await caller.finish()
            let carrierStatus = await carrier.finish(timeout: .seconds(20))
            #expect(callerStatus == 0, "\(caller.report)\n\(site.logs)")
            #expect(carrierStatus == 0, "\(carrier.report)")

            let carrier2 = try Self.carrier(
                site, "carrier-bye", scenario: SippScenarios.carrier(holdMilliseconds: 200, calleeHangsUp: true), port: carrierPort, calls: 100)
            processes.append(carrier2)
            try await Task.sleep(for: .milliseconds(300))
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

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func cancelBeforeAnswerEndsBothLegs() async throws {
        let site = try await Self.site(carrierPort: { 11000 + $0 })
        defer { site.remove() }
        let carrier = try Self.carrier(site, "carrier", scenario: SippScenarios.ringingCarrier, port: 11000 + site.offset, calls: 5)
        try await Task.sleep(for: .milliseconds(300))
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
        let site = try await Self.site(carrierPort: { 11000 + $0 }) { $0.sip.refusedSources = "refuse" }
        defer { site.remove() }
        let carrier = try await SIPProbe(host: CallSite.carrierAddress, port: 11000 + site.offset)
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
    static func invite(callID: String, from address: String, extraHeaders: String = "") -> [UInt8] {
        let sdp = "v=0\r\no=- 1 1 IN IP4 \(address)\r\ns=-\r\nc=IN IP4 \(address)\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
        let text = "INVITE sip:\(callee)@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP \(address):5060;branch=z9hG4bK\(callID)\r\n"
            + "From: <sip:100@\(address)>;tag=\(callID)\r\nTo: <sip:\(callee)@127.0.0.1>\r\nCall-ID: \(callID)\r\nCSeq: 1 INVITE\r\n"
            + "Contact: <sip:100@\(address):5060>\r\nMax-Forwards: 70\r\n\(extraHeaders)Content-Type: application/sdp\r\nContent-Length: \(sdp.utf8.count)\r\n\r\n\(sdp)"
        return Array(text.utf8)
    }

    func eventuallySummaries(_ site: CallSite, count: Int) async -> [CallSummary] {
        _ = await eventually(timeout: .seconds(15), interval: .milliseconds(100)) { ((try? site.summaries()) ?? []).count >= count }
        return (try? site.summaries()) ?? []
    }
}
