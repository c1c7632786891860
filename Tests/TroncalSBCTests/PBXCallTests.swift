import Foundation
import Logging
import TestSupport
import Testing
import TroncalProtocol
import TroncalRuntime
import TroncalSIP

/// Calls between extensions of a tenant: phone → SBC → PBX → SBC → phone, with real sipp phones on loopback. The
/// called phone registers from a port (a sipp that then exits), and a sipp answering calls takes that port over; the
/// calling phone registers and calls from one scenario (its INVITE comes from its registered flow).
@Suite(.serialized, .startsProcesses) struct PBXCallTests {
    /// The steps of a scenario, without the XML header and the `<scenario>` element.
    static func steps(_ scenario: String) -> String {
        scenario.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("<?xml") && !$0.hasPrefix("<scenario") && !$0.hasPrefix("</scenario") }
            .joined(separator: "\n")
    }

    /// Registers (REGISTER, 401, REGISTER with digest, 200), then calls `[service]`; it hangs up after 300 ms, or waits
    /// for the BYE from its answer on (a pause would take an early BYE for an unexpected one).
    static func registerThenCall(callerHangsUp: Bool, holdMilliseconds: Int = 300, rtpFile: String? = nil) -> String {
        """
        <?xml version="1.0" encoding="ISO-8859-1" ?>
        <scenario name="register then call">
        \(steps(RegistrationTests.register(final: 200)))
        \(steps(SippScenarios.caller(holdMilliseconds: callerHangsUp ? holdMilliseconds : 0, rtpFile: rtpFile, callerHangsUp: callerHangsUp)))
        </scenario>
        """
    }

    /// Registers `number` from the site's port `slot`, then leaves a sipp answering one call on that port.
    static func answeringPhone(
        _ site: CallSite, _ number: String, password: String, slot: Int, scenario: String, extra: [String] = []
    ) async throws -> Sipp {
        let registration = try RegistrationTests().sipp(
            site, "register-\(number)", scenario: RegistrationTests.register(final: 200), users: [(number, password)], slot: slot)
        let status = await registration.finish()
        guard status == 0 else { throw CallSiteError("\(number) did not register: \(registration.report)\n\(site.logs)") }
        let phone = try Sipp(
            "phone-\(number)", scenario: scenario, in: site.directory, address: CallSite.customerAddress, port: site.port(slot),
            mediaPort: site.port(slot) + 2, arguments: ["-m", "1"] + extra)
        try await phone.listening()
        return phone
    }

    static func callingPhone(
        _ site: CallSite, _ number: String, password: String, calling callee: String, slot: Int, callerHangsUp: Bool, holdMilliseconds: Int = 300,
        rtpFile: String? = nil, extra: [String] = []
    ) throws -> Sipp {
        let file = site.directory.url.appendingPathComponent("caller-\(number).csv")
        try Data("SEQUENTIAL\n\(number);[authentication username=\(number) password=\(password)]\n".utf8).write(to: file)
        return try Sipp(
            "phone-\(number)", scenario: registerThenCall(callerHangsUp: callerHangsUp, holdMilliseconds: holdMilliseconds, rtpFile: rtpFile),
            in: site.directory, address: CallSite.customerAddress, port: site.port(slot), mediaPort: site.port(slot) + 2,
            arguments: ["\(CallSite.sbcAddress):\(site.sipPort)", "-inf", file.path, "-s", callee, "-m", "1", "-l", "1"] + extra)
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func anExtensionCallsAnotherThroughSBCAndPBXAndEitherSideHangsUp() async throws {
        let site = try await RegistrationTests.site()
        defer { site.remove() }
        // 101 calls 102 and hangs up.
        let bob = try await Self.answeringPhone(site, "102", password: "secret-102-pw", slot: 2, scenario: SippScenarios.carrier())
        let ana = try Self.callingPhone(site, "101", password: "secret-101-pw", calling: "102", slot: 1, callerHangsUp: true)
        #expect(await ana.finish() == 0, "\(ana.report)\n\(site.logs)")
        #expect(await bob.finish(timeout: .seconds(20)) == 0, "\(bob.report)\n\(site.logs)")
        // Bob saw the call come from extension 101, from the SBC: neither Ana's address nor the PBX's.
        let received = bob.messageText
        #expect(received.contains("INVITE sip:102@\(CallSite.customerAddress):\(site.port(2))"), "\(received.prefix(3000))")
        #expect(received.contains("From: <sip:101@"), "\(received.prefix(3000))")
        #expect(!received.contains("\(CallSite.customerAddress):\(site.port(1))"), "Bob saw Ana's address: \(received.prefix(3000))")
        #expect(!received.contains(":\(site.config.instance(named: "pbx-1")!.sipPort)"), "Bob saw the PBX's address: \(received.prefix(3000))")
        #expect(!received.contains("P-Asserted-Identity"), "the asserted identity left the platform")

        // 102 calls 101 and 101 hangs up... the callee ends this one.
        let ana2 = try await Self.answeringPhone(
            site, "101", password: "secret-101-pw", slot: 3, scenario: SippScenarios.carrier(holdMilliseconds: 300, calleeHangsUp: true))
        let bob2 = try Self.callingPhone(site, "102", password: "secret-102-pw", calling: "101", slot: 4, callerHangsUp: false)
        #expect(await bob2.finish() == 0, "\(bob2.report)\n\(site.logs)")
        #expect(await ana2.finish(timeout: .seconds(20)) == 0, "\(ana2.report)\n\(site.logs)")

        // Calls inside a tenant are not billed: the SBC spooled nothing for them.
        #expect(((try? site.summaries()) ?? []).isEmpty)
        #expect(site.process("pbx-1").outputText.contains("call ended"), "\(site.logs)")
        await ana.stop()
        await bob.stop()
        await ana2.stop()
        await bob2.stop()
        await site.stop()
    }

    /// The packets of every direction of every call the SBC's log says ended (`streams=caller-to-callee 120 packets …`).
    static func relayedPackets(in log: String) -> [Int] {
        log.split(separator: "\n").filter { $0.contains("call ended") }.flatMap { line -> [Int] in
            guard let streams = line.range(of: "streams=") else { return [] }
            let words = line[streams.upperBound...].split(whereSeparator: { $0 == " " || $0 == "," })
            return zip(words, words.dropFirst()).compactMap { $1 == "packets" ? Int($0) : nil }
        }
    }

    /// Registers, calls `[service]` and expects `status` (then ACKs it).
    static func registerThenRefused(_ status: Int) -> String {
        """
        <?xml version="1.0" encoding="ISO-8859-1" ?>
        <scenario name="refused call">
        \(Self.steps(RegistrationTests.register(final: 200)))
        \(SippScenarios.invite())
          <recv response="100" optional="true"/>
          <recv response="\(status)"/>
        \(SippScenarios.ackOfFailure)
        </scenario>
        """
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aPhoneOfThePickupGroupAnswersACallRingingAtAnotherWithThePickupCode() async throws {
        let extensions = "tenant,extension,name,password,pickup_group\nacme,101,Ana,secret-101-pw,\nacme,102,Bob,secret-102-pw,sales\n"
            + "acme,103,Carla,secret-103-pw,sales\n"
        let site = try await Self.site(billing: false, catalogs: [("extensions", extensions)])
        defer { site.remove() }
        // 101 calls 102, whose phone rings and never answers; 103, in 102's pickup group, dials *8 and takes the call.
        // Ana streams two seconds of audio once answered; Carla's phone echoes what it hears.
        let audio = site.directory.url.appendingPathComponent("audio.ulaw")
        try Data((0..<16000).map { UInt8(truncatingIfNeeded: 0x7F ^ ($0 % 64)) }).write(to: audio)
        let bob = try await Self.answeringPhone(site, "102", password: "secret-102-pw", slot: 2, scenario: SippScenarios.ringingCarrier)
        let ana = try Self.callingPhone(
            site, "101", password: "secret-101-pw", calling: "102", slot: 1, callerHangsUp: true, holdMilliseconds: 2500, rtpFile: audio.path)
        let ringing = await eventually(timeout: .seconds(30), interval: .milliseconds(50)) { bob.messageText.contains("INVITE sip:") }
        #expect(ringing, "102 never rang\n\(site.logs)")
        let carla = try Self.callingPhone(site, "103", password: "secret-103-pw", calling: "*8", slot: 3, callerHangsUp: false, extra: ["-rtp_echo"])
        // Ana's call is answered by Carla's phone; Ana hangs up and Carla gets the BYE; Bob's phone stops ringing.
        #expect(await ana.finish() == 0, "\(ana.report)\n\(site.logs)")
        #expect(await carla.finish(timeout: .seconds(20)) == 0, "\(carla.report)\n\(site.logs)")
        #expect(await bob.finish(timeout: .seconds(20)) == 0, "\(bob.report)\n\(site.logs)")
        #expect(bob.messageText.contains("CANCEL sip:"), "\(bob.messageText.prefix(2000))")
        // Each side's answer names the other's media: the SBC's relay ports of the other call, never a phone's port.
        func answer(in trace: String) -> String {
            trace.components(separatedBy: "-----").first { $0.contains("message received") && $0.contains("SIP/2.0 200 OK") && $0.contains("m=audio") } ?? ""
        }
        let answerToAna = answer(in: ana.messageText)
        let answerToCarla = answer(in: carla.messageText)
        #expect(answerToAna.contains("m=audio ") && answerToCarla.contains("m=audio "), "\(ana.messageText.prefix(3000))")
        for port in [site.port(1) + 2, site.port(3) + 2] {
            #expect(!answerToAna.contains("m=audio \(port) ") && !answerToCarla.contains("m=audio \(port) "))
        }
        #expect(site.process("pbx-1").outputText.contains("call picked up"), "\(site.logs)")
        // The audio crossed: at the SBC, Ana's call relayed her audio out and Carla's echo back, and Carla's call relayed
        // Ana's audio to her and her echo out (a relay sending to the wrong party would leave a direction near empty).
        let ended = await eventually(timeout: .seconds(10)) { site.process("sbc-1").outputText.components(separatedBy: "call ended").count - 1 >= 2 }
        #expect(ended, "\(site.logs)")
        let relayed = Self.relayedPackets(in: site.process("sbc-1").outputText)
        #expect(relayed.count == 4 && relayed.allSatisfy { $0 >= 50 }, "packets per direction of both calls: \(relayed)\n\(site.logs)")
        Logger(label: "test.pbx").notice("call pickup: packets relayed per direction of both calls \(relayed)")

        // Nothing rings now: *8 gets 480.
        let again = try Sipp(
            "pickup-nothing", scenario: Self.registerThenRefused(480), in: site.directory, address: CallSite.customerAddress, port: site.port(3),
            mediaPort: site.port(3) + 2,
            arguments: ["\(CallSite.sbcAddress):\(site.sipPort)", "-inf", site.directory.url.appendingPathComponent("caller-103.csv").path, "-s", "*8", "-m", "1"])
        #expect(await again.finish() == 0, "\(again.report)\n\(site.logs)")
        for sipp in [ana, bob, carla, again] { await sipp.stop() }
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aCallToAnUnregisteredExtensionGets480AndToAnUnknownOne404() async throws {
        let site = try await RegistrationTests.site()
        defer { site.remove() }
        // 102 exists but is not registered: 480; 109 does not exist: 404.
        for (callee, status) in [("102", 480), ("109", 404)] {
            let file = site.directory.url.appendingPathComponent("caller-\(callee).csv")
            try Data("SEQUENTIAL\n101;[authentication username=101 password=secret-101-pw]\n".utf8).write(to: file)
            let scenario = Self.registerThenRefused(status)
            let phone = try Sipp(
                "refused-\(callee)", scenario: scenario, in: site.directory, address: CallSite.customerAddress, port: site.port(1),
                mediaPort: site.port(1) + 2, arguments: ["\(CallSite.sbcAddress):\(site.sipPort)", "-inf", file.path, "-s", callee, "-m", "1"])
            #expect(await phone.finish() == 0, "\(callee): \(phone.report)\n\(site.logs)")
            await phone.stop()
        }
        await site.stop()
    }

    /// A site with the PBX (tenant acme, extensions 101 and 102), routing to a carrier sipp for `34…`, and billing when
    /// asked; `catalogs` more PBX catalogs (kind, CSV) imported after the tenants and extensions.
    static func site(billing: Bool, catalogs: [(String, String)] = [], adjust: @escaping (inout SiteConfig, Int) -> Void = { _, _ in }) async throws
        -> CallSite
    {
        let site = try await CallSite(billing: billing, pbx: true) { config, offset in
            config.pbx.digestAlgorithms = ["MD5", "SHA-256"]
            config.routing.routes = [
                RouteSettings(prefix: "34", targets: [RouteTargetSettings(carrier: "carrier-a", host: CallSite.carrierAddress, port: 9000 + offset)])
            ]
            adjust(&config, offset)
        }
        for (kind, text) in [("tenants", RegistrationTests.tenants), ("extensions", RegistrationTests.extensions)] + catalogs {
            let file = site.directory.url.appendingPathComponent("\(kind).csv")
            try Data(text.utf8).write(to: file)
            let (status, output) = try await site.troncal(["pbx", "import", kind, file.path])
            guard status == 0 else { throw CallSiteError("pbx import \(kind): \(output)") }
        }
        return site
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func anExtensionsOutsideCallIsRoutedWithTheTenantsCallerIDAndBilledToItsCustomer() async throws {
        let site = try await Self.site(billing: true)
        defer { site.remove() }
        try await BillingCallTests.prepare(site, topUp: "10")
        let carrier = try SBCCallTests.carrier(site, "carrier", scenario: SippScenarios.carrier(), port: site.carrierPort(0), calls: 1)
        try await carrier.listening()
        let ana = try Self.callingPhone(site, "101", password: "secret-101-pw", calling: SBCCallTests.callee, slot: 1, callerHangsUp: true)
        #expect(await ana.finish() == 0, "\(ana.report)\n\(site.logs)")
        #expect(await carrier.finish(timeout: .seconds(20)) == 0, "\(carrier.report)\n\(site.logs)")
        // The carrier sees the tenant's number, nothing of the phone, the PBX or the account charged.
        let received = carrier.messageText
        #expect(received.contains("From: <sip:+34911000100@"), "\(received.prefix(3000))")
        #expect(!received.contains("101@") && !received.contains(CallSite.customerAddress), "\(received.prefix(3000))")
        #expect(!received.contains("P-Charge-Info") && !received.contains("P-Asserted-Identity"), "\(received.prefix(3000))")
        // One CDR, the tenant's customer's, rated.
        #expect(await BillingCallTests.drained(site), "\(site.logs)")
        let cdrs = try await BillingCallTests.cdrs(site)
        #expect(cdrs.count == 1, "\(cdrs)")
        let cdr = try #require(cdrs.first)
        #expect(cdr.customer == "acme" && cdr.caller == "+34911000100" && cdr.answerAt != nil && cdr.sellMicros > 0, "\(cdr)")
        await ana.stop()
        await carrier.stop()
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aCarrierCallToATenantsDIDReachesTheExtensionItNames() async throws {
        let site = try await Self.site(billing: false, catalogs: [("dids", "number,tenant,destination\n+442079460018,acme,ext:102\n")]) { config, offset in
            config.sbc.carriers = [CarrierSourceSettings(id: "carrier-in", addresses: [CallSite.carrierAddress + "/32"])]
            // The number is the customer's; its calls go to the site's PBX.
            config.routing.dids = [DIDSettings(number: "442079460018", customer: "acme", host: "127.0.0.1", port: 5070 + offset)]
        }
        defer { site.remove() }
        #expect(site.config.instance(named: "pbx-1")?.sipPort == 5070 + site.offset)
        let bob = try await Self.answeringPhone(site, "102", password: "secret-102-pw", slot: 2, scenario: SippScenarios.carrier())
        // The carrier asserts the identity of extension 101: were the PBX to believe it, this would be 101 calling a
        // number outside (on the tenant's account), not a call to the DID.
        let forged = SippScenarios.caller(holdMilliseconds: 200)
            .replacingOccurrences(of: "Max-Forwards: 70", with: "P-Asserted-Identity: <sip:101@acme>\n      Max-Forwards: 70")
        #expect(forged.contains("P-Asserted-Identity"))
        let carrier = try Sipp(
            "carrier-in", scenario: forged, in: site.directory, address: CallSite.carrierAddress,
            port: site.carrierPort(0), mediaPort: site.carrierPort(0) + 2,
            arguments: ["-s", "+442079460018", "-m", "1", "-r", "1", "\(CallSite.sbcAddress):\(site.sipPort)"])
        #expect(await carrier.finish() == 0, "\(carrier.report)\n\(site.logs)")
        #expect(await bob.finish(timeout: .seconds(20)) == 0, "\(bob.report)\n\(site.logs)")
        // Bob sees the outside caller's number, and nothing of the carrier.
        #expect(bob.messageText.contains("From: <sip:441632960001@"), "\(bob.messageText.prefix(3000))")
        #expect(!bob.messageText.contains(CallSite.carrierAddress), "\(bob.messageText.prefix(3000))")
        // The call entered the platform: one summary, the origination leg's (from the carrier to the DID's customer).
        let summaries = await SBCCallTests().eventuallySummaries(site, count: 1)
        #expect(summaries.count == 1 && summaries.first?.customer == "carrier-in" && summaries.first?.answerAt != nil, "\(summaries)")
        await carrier.stop()
        await bob.stop()
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aSequentialRingGroupRingsEachMemberItsTimeThenTheFallbackAnswers() async throws {
        let extensions = RegistrationTests.extensions + "acme,103,Carla,secret-103-pw\nacme,104,Dan,secret-104-pw\n"
        let site = try await Self.site(
            billing: false,
            catalogs: [
                ("extensions", extensions),
                ("ring-groups", "tenant,group,number,strategy,members,member_seconds,fallback\nacme,sales,600,sequential,101 102 103,5,ext:104\n"),
                ("dids", "number,tenant,destination\n+442079460018,acme,group:sales\n"),
            ]
        ) { config, offset in
            config.sbc.carriers = [CarrierSourceSettings(id: "carrier-in", addresses: [CallSite.carrierAddress + "/32"])]
            config.routing.dids = [DIDSettings(number: "442079460018", customer: "acme", host: "127.0.0.1", port: 5070 + offset)]
        }
        defer { site.remove() }
        // 101, 102 and 103 ring and never answer; 104, the fallback, answers.
        var members: [Sipp] = []
        for (number, slot) in [("101", 2), ("102", 3), ("103", 4)] {
            members.append(try await Self.answeringPhone(site, number, password: "secret-\(number)-pw", slot: slot, scenario: SippScenarios.ringingCarrier))
        }
        let dan = try await Self.answeringPhone(site, "104", password: "secret-104-pw", slot: 5, scenario: SippScenarios.carrier())
        let carrier = try Sipp(
            "carrier-in", scenario: SippScenarios.caller(holdMilliseconds: 200), in: site.directory, address: CallSite.carrierAddress,
            port: site.carrierPort(0), mediaPort: site.carrierPort(0) + 2,
            arguments: ["-s", "+442079460018", "-m", "1", "-r", "1", "\(CallSite.sbcAddress):\(site.sipPort)"])
        let reached = await eventually(timeout: .seconds(60), interval: .milliseconds(50)) { dan.messageText.contains("INVITE sip:") }
        #expect(reached, "the fallback was never rung\n\(site.logs)")
        #expect(await carrier.finish() == 0, "\(carrier.report)\n\(site.logs)")
        #expect(await dan.finish(timeout: .seconds(20)) == 0, "\(dan.report)\n\(site.logs)")
        // Each member rang in turn, for its 5 s, and was cancelled.
        var rang: [Date] = []
        for member in members {
            #expect(await member.finish(timeout: .seconds(20)) == 0, "\(member.report)")
            #expect(member.messageText.contains("CANCEL sip:"))
            rang.append(try #require(Self.firstTime(of: "INVITE sip:", in: member.messageText)))
        }
        let fallback = try #require(Self.firstTime(of: "INVITE sip:", in: dan.messageText))
        // Three members of 5 s: the fallback rings 15 ± 1 s after the first member (sipp's own clock on each phone).
        let after = fallback.timeIntervalSince(rang[0])
        let steps = zip(rang.dropFirst() + [fallback], rang).map { $0.timeIntervalSince($1) }
        #expect(rang == rang.sorted(), "the members rang out of order: \(rang)")
        #expect(after >= 14 && after <= 16, "the fallback rang \(after) s after the first member (steps \(steps))")
        Logger(label: "test.pbx").notice("sequential ring group: fallback after \(after) s, steps \(steps)")
        for sipp in members + [dan, carrier] { await sipp.stop() }
        await site.stop()
    }

    /// The time sipp logged for the first message of `trace` that starts with `start` (its trace's header lines read
    /// `----- 2026-12-04 18:24:02.557154`).
    static func firstTime(of start: String, in trace: String) -> Date? {
        var last: String?
        for line in trace.split(separator: "\n") {
            if line.hasPrefix("-----") {
                last = line.split(separator: " ").suffix(2).joined(separator: " ")
            } else if line.hasPrefix(start), let last {
                let formatter = DateFormatter()
                formatter.locale = Locale(identifier: "en_US_POSIX")
                formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSSSSS"
                return formatter.date(from: last)
            }
        }
        return nil
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aSimultaneousRingGroupRingsAllMembersAndCancelsTheOthersWhenOneAnswers() async throws {
        let extensions = RegistrationTests.extensions + "acme,103,Carla,secret-103-pw\n"
        let site = try await Self.site(
            billing: false,
            catalogs: [
                ("extensions", extensions),
                ("ring-groups", "tenant,group,number,strategy,members,member_seconds,fallback\nacme,support,600,simultaneous,102 103,20,hangup\n"),
            ])
        defer { site.remove() }
        // 102 rings and is cancelled; 103 answers after a second. 101 calls the group.
        let bob = try await Self.answeringPhone(site, "102", password: "secret-102-pw", slot: 2, scenario: SippScenarios.ringingCarrier)
        let carla = try await Self.answeringPhone(site, "103", password: "secret-103-pw", slot: 3, scenario: SippScenarios.carrier(answerAfterMilliseconds: 1000))
        let ana = try Self.callingPhone(site, "101", password: "secret-101-pw", calling: "600", slot: 1, callerHangsUp: true)
        #expect(await ana.finish() == 0, "\(ana.report)\n\(site.logs)")
        #expect(await carla.finish(timeout: .seconds(20)) == 0, "\(carla.report)\n\(site.logs)")
        #expect(await bob.finish(timeout: .seconds(20)) == 0, "\(bob.report)\n\(site.logs)")
        #expect(bob.messageText.contains("CANCEL sip:"), "\(bob.messageText.prefix(2000))")
        // Both rang at once (the same PBX flush, relayed by the SBC as two calls).
        let rangBob = try #require(Self.firstTime(of: "INVITE sip:", in: bob.messageText))
        let rangCarla = try #require(Self.firstTime(of: "INVITE sip:", in: carla.messageText))
        let apart = abs(rangBob.timeIntervalSince(rangCarla))
        #expect(apart < 1, "the members rang \(apart) s apart")
        Logger(label: "test.pbx").notice("simultaneous ring group: members rang \(Int(apart * 1000)) ms apart")
        for sipp in [ana, bob, carla] { await sipp.stop() }
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aPhoneWithTwoLinesIsCalledOnTheLineDialled() async throws {
        let site = try await Self.site(billing: false, catalogs: [("extensions", RegistrationTests.extensions + "acme,103,Carla,secret-103-pw\n")])
        defer { site.remove() }
        // One phone (one flow) registers lines 101 and 102; 103 calls 102, then 101.
        let lines = try RegistrationTests().sipp(
            site, "two-lines", scenario: RegistrationTests.register(final: 200), users: [("101", "secret-101-pw"), ("102", "secret-102-pw")], slot: 2)
        #expect(await lines.finish() == 0, "\(lines.report)\n\(site.logs)")
        for (number, slot) in [("102", 4), ("101", 5)] {
            let phone = try Sipp(
                "line-\(number)", scenario: SippScenarios.carrier(), in: site.directory, address: CallSite.customerAddress, port: site.port(2),
                mediaPort: site.port(2) + 2, arguments: ["-m", "1"])
            try await phone.listening()
            let carla = try Self.callingPhone(site, "103", password: "secret-103-pw", calling: number, slot: slot, callerHangsUp: true)
            #expect(await carla.finish() == 0, "\(carla.report)\n\(site.logs)")
            #expect(await phone.finish(timeout: .seconds(20)) == 0, "\(phone.report)\n\(site.logs)")
            #expect(phone.messageText.contains("INVITE sip:\(number)@"), "line \(number): \(phone.messageText.prefix(2000))")
            await carla.stop()
            await phone.stop()
        }
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func forwardsDoNotDisturbAndTimeConditionsRouteAsConfigured() async throws {
        // Today in the tenant's time zone: a holiday of one condition (closed all day), not of the other (open all day).
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Europe/Madrid")!
        let today = calendar.dateComponents([.year, .month, .day], from: Date())
        let holiday = String(format: "%04d-%02d-%02d", today.year!, today.month!, today.day!)
        let extensions = """
            tenant,extension,name,password,forward_always,forward_busy,forward_no_answer,no_answer_seconds,dnd
            acme,101,Ana,secret-101-pw,,,,,
            acme,102,Bob,secret-102-pw,,,ext:103,5,
            acme,103,Carla,secret-103-pw,,,,,
            acme,104,Dan,secret-104-pw,,ext:103,,,yes
            acme,105,Eve,secret-105-pw,ext:103,,,,

            """
        let conditions = """
            tenant,condition,days,hours,holidays,open,closed
            acme,open-now,,,,ext:103,hangup
            acme,closed-today,,,\(holiday),hangup,ext:103

            """
        let site = try await Self.site(
            billing: false,
            catalogs: [
                ("extensions", extensions), ("time-conditions", conditions),
                ("dids", "number,tenant,destination\n+442079460021,acme,condition:open-now\n+442079460022,acme,condition:closed-today\n"),
            ]
        ) { config, offset in
            config.sbc.carriers = [CarrierSourceSettings(id: "carrier-in", addresses: [CallSite.carrierAddress + "/32"])]
            config.routing.dids = ["442079460021", "442079460022"].map {
                DIDSettings(number: $0, customer: "acme", host: "127.0.0.1", port: 5070 + offset)
            }
        }
        defer { site.remove() }
        // 102 rings and never answers; every call ends at 103, which answers five calls in turn.
        let bob = try await Self.answeringPhone(site, "102", password: "secret-102-pw", slot: 2, scenario: SippScenarios.ringingCarrier)
        let registration = try RegistrationTests().sipp(
            site, "register-103", scenario: RegistrationTests.register(final: 200), users: [("103", "secret-103-pw")], slot: 3)
        #expect(await registration.finish() == 0, "\(registration.report)\n\(site.logs)")
        let carla = try Sipp(
            "phone-103", scenario: SippScenarios.carrier(), in: site.directory, address: CallSite.customerAddress, port: site.port(3),
            mediaPort: site.port(3) + 2, arguments: ["-m", "5"])
        try await carla.listening()
        func answered() -> Int { carla.messageText.components(separatedBy: "INVITE sip:").count - 1 }
        // Unconditional (105), do-not-disturb with a busy forward (104), no answer within 5 s (102): each reaches 103.
        for (callee, slot) in [("105", 1), ("104", 4), ("102", 5)] {
            let before = answered()
            let ana = try Self.callingPhone(site, "101", password: "secret-101-pw", calling: callee, slot: slot, callerHangsUp: true)
            #expect(await ana.finish() == 0, "call to \(callee): \(ana.report)\n\(site.logs)")
            #expect(answered() == before + 1, "the call to \(callee) did not reach 103")
            await ana.stop()
        }
        #expect(await bob.finish(timeout: .seconds(20)) == 0, "\(bob.report)")
        #expect(bob.messageText.contains("CANCEL sip:"), "102 was not cancelled after its 5 s")
        // A DID whose condition is open now, and one whose condition is closed today (a holiday): both reach 103.
        for (did, slot) in [("+442079460021", 0), ("+442079460022", 1)] {
            let before = answered()
            let carrier = try Sipp(
                "carrier-\(did)", scenario: SippScenarios.caller(holdMilliseconds: 200), in: site.directory, address: CallSite.carrierAddress,
                port: site.carrierPort(slot), mediaPort: site.carrierPort(slot) + 2,
                arguments: ["-s", did, "-m", "1", "-r", "1", "\(CallSite.sbcAddress):\(site.sipPort)"])
            #expect(await carrier.finish() == 0, "call to \(did): \(carrier.report)\n\(site.logs)")
            #expect(answered() == before + 1, "the call to \(did) did not reach 103")
            await carrier.stop()
        }
        #expect(await carla.finish(timeout: .seconds(20)) == 0, "\(carla.report)\n\(site.logs)")
        let pbx = site.process("pbx-1").outputText
        #expect(pbx.contains("call moves on"), "the no-answer forward was not logged\n\(site.logs)")
        await bob.stop()
        await carla.stop()
        await site.stop()
    }

    enum StreamTransport: String, CaseIterable, CustomTestStringConvertible {
        case tcp, tls
        var testDescription: String { rawValue }
    }

    /// A phone behind a NAT that registered over TCP or TLS is reachable only over the connection it opened (RFC 5626):
    /// its call comes in over that connection, and the call completes on it.
    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"), arguments: StreamTransport.allCases)
    func aPhoneRegisteredOverAStreamGetsItsCallsOverItsOwnConnection(_ transport: StreamTransport) async throws {
        let site = try await Self.site(billing: false)
        defer { site.remove() }
        let ca = site.directory.url.appendingPathComponent(site.config.pkiDirectory).appendingPathComponent("ca.crt").path
        let port = transport == .tls ? site.config.sip.tlsPort : site.config.sip.tcpPort
        let bob = try await TLSSIPClient(from: CallSite.customerAddress, to: CallSite.sbcAddress, port: port, caCertificatePath: transport == .tls ? ca : nil)
        let local = "\(CallSite.customerAddress):\(bob.localPort)"
        let via = "SIP/2.0/\(transport.rawValue.uppercased()) \(local)"
        func register(_ cseq: Int, authorization: String) -> String {
            "REGISTER sip:acme SIP/2.0\r\nVia: \(via);branch=z9hG4bKreg\(cseq)\r\nMax-Forwards: 70\r\nFrom: <sip:102@acme>;tag=r1\r\n"
                + "To: <sip:102@acme>\r\nCall-ID: stream-reg-1\r\nCSeq: \(cseq) REGISTER\r\n"
                + "Contact: <sip:102@\(local);transport=\(transport.rawValue)>\r\nExpires: 300\r\n\(authorization)Content-Length: 0\r\n\r\n"
        }
        try await bob.send(register(1, authorization: ""))
        #expect(await eventually(timeout: .seconds(10)) { !bob.responses(status: 401).isEmpty }, "no challenge\n\(site.logs)")
        let challenges = try #require(bob.responses(status: 401).first).headers.filter { $0.name == .wwwAuthenticate }
            .compactMap { try? DigestChallenge(headerValue: $0.valueString) }
        let challenge = try #require(challenges.first { $0.algorithm == .md5 }, "\(challenges)")
        let response = DigestCalculator.response(
            algorithm: .md5, username: "102", realm: challenge.realm, password: "secret-102-pw", method: "REGISTER", uri: "sip:acme",
            nonce: challenge.nonce, nonceCount: "00000001", cnonce: "c0ffee", qop: "auth")
        let authorization = "Authorization: Digest username=\"102\", realm=\"\(challenge.realm)\", nonce=\"\(challenge.nonce)\", uri=\"sip:acme\", "
            + "response=\"\(response)\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c0ffee\"\r\n"
        try await bob.send(register(2, authorization: authorization))
        #expect(await eventually(timeout: .seconds(10)) { !bob.responses(status: 200).isEmpty }, "not registered\n\(site.logs)")

        // 101 calls 102: the INVITE reaches Bob over his own connection; he answers, and 101's BYE comes the same way.
        let ana = try Self.callingPhone(site, "101", password: "secret-101-pw", calling: "102", slot: 1, callerHangsUp: true)
        #expect(await eventually(timeout: .seconds(20)) { !bob.requests(.invite).isEmpty }, "no INVITE over \(transport)\n\(site.logs)")
        let invite = try #require(bob.requests(.invite).first)
        var answer = "SIP/2.0 200 OK\r\n"
        for field in invite.headers where [.via, .from, .callID, .cseq].contains(field.name) {
            answer += "\(String(decoding: field.rawName, as: UTF8.self)): \(field.valueString)\r\n"
        }
        let sdp = "v=0\r\no=- 2 2 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 41002 RTP/AVP 0\r\n"
        answer += "To: \(try #require(invite.headers.first(.to)).valueString);tag=bob1\r\nContact: <sip:102@\(local);transport=\(transport.rawValue)>\r\n"
            + "Content-Type: application/sdp\r\nContent-Length: \(sdp.utf8.count)\r\n\r\n\(sdp)"
        try await bob.send(answer)
        #expect(await eventually(timeout: .seconds(20)) { !bob.requests(.bye).isEmpty }, "no BYE over \(transport)\n\(site.logs)")
        let bye = try #require(bob.requests(.bye).first)
        var ok = "SIP/2.0 200 OK\r\n"
        for field in bye.headers where [.via, .from, .to, .callID, .cseq].contains(field.name) {
            ok += "\(String(decoding: field.rawName, as: UTF8.self)): \(field.valueString)\r\n"
        }
        try await bob.send(ok + "Content-Length: 0\r\n\r\n")
        #expect(await ana.finish() == 0, "\(ana.report)\n\(site.logs)")
        #expect(!bob.requests(.ack).isEmpty, "the 200 was not acknowledged over \(transport)")
        await bob.close()
        await ana.stop()
        await site.stop()
    }

    /// Hold with music: 101 puts 102 on hold (re-INVITE `sendonly`); the PBX answers 101 itself and sends 102 its own
    /// offer (`sendonly`, from the PBX's media address), then plays its hold tune to 102 until 101 resumes; the resume
    /// gives each phone the other's media again, and the call ends normally.
    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aPartyPutOnHoldHearsTheHoldMusicUntilTheCallIsResumed() async throws {
        let site = try await Self.site(billing: false)
        defer { site.remove() }
        // After the resume 101 streams audio and 102 echoes it: the two-way path is back.
        let audio = site.directory.url.appendingPathComponent("audio.ulaw")
        try Data((0..<16000).map { UInt8(truncatingIfNeeded: 0x7F ^ ($0 % 64)) }).write(to: audio)
        let bob = try await Self.answeringPhone(
            site, "102", password: "secret-102-pw", slot: 2, scenario: SippScenarios.heldCarrier, extra: ["-rtp_echo"])
        let file = site.directory.url.appendingPathComponent("caller-101.csv")
        try Data("SEQUENTIAL\n101;[authentication username=101 password=secret-101-pw]\n".utf8).write(to: file)
        let scenario = """
            <?xml version="1.0" encoding="ISO-8859-1" ?>
            <scenario name="register then hold">
            \(Self.steps(RegistrationTests.register(final: 200)))
            \(Self.steps(SippScenarios.holdingCaller(holdMilliseconds: 2000, afterResume: audio.path)))
            </scenario>
            """
        let ana = try Sipp(
            "phone-101", scenario: scenario, in: site.directory, address: CallSite.customerAddress, port: site.port(1), mediaPort: site.port(1) + 2,
            arguments: ["\(CallSite.sbcAddress):\(site.sipPort)", "-inf", file.path, "-s", "102", "-m", "1", "-l", "1"])
        #expect(await ana.finish() == 0, "\(ana.report)\n\(site.logs)")
        #expect(await bob.finish(timeout: .seconds(20)) == 0, "\(bob.report)\n\(site.logs)")
        // 101's hold was answered recvonly; 102 was offered the PBX's media, sendonly, then 101's again on resume.
        #expect(ana.messageText.contains("a=recvonly"), "\(ana.messageText.suffix(4000))")
        #expect(bob.messageText.contains("a=sendonly"), "\(bob.messageText.suffix(4000))")
        #expect(site.process("pbx-1").outputText.contains("call on hold: music to the other party"), "\(site.logs)")
        #expect(site.process("pbx-1").outputText.contains("call resumed"), "\(site.logs)")
        // The music played to 102 (the PBX had 102's answer to its hold offer and started the tune) ...
        let pbxAdmin = try #require(site.config.instance(named: "pbx-1")).adminPort
        let metrics = (try? await httpGet(port: pbxAdmin, path: "/metrics")) ?? ""
        #expect(metrics.contains("troncal_pbx_holds_total{result=\"playing\"} 1"), "\(metrics.split(separator: "\n").filter { $0.contains("holds") })")
        // ... and after the resume the two-way path is back: at the SBC, 101's audio went out and 102's echo came back on
        // both phones' calls (each direction's figures are of its last source: 101's audio, not the music before it).
        let ended = await eventually(timeout: .seconds(10)) { site.process("sbc-1").outputText.components(separatedBy: "call ended").count - 1 >= 2 }
        #expect(ended, "\(site.logs)")
        let relayed = Self.relayedPackets(in: site.process("sbc-1").outputText)
        #expect(relayed.count == 4 && relayed.allSatisfy { $0 >= 40 }, "packets relayed per direction: \(relayed)\n\(site.logs)")
        Logger(label: "test.pbx").notice("hold music: packets relayed per direction \(relayed)")
        await ana.stop()
        await bob.stop()
        await site.stop()
    }
}
