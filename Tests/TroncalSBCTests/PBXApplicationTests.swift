import Foundation
import Logging
import TestSupport
import Testing
import TroncalProtocol
import TroncalRuntime
import TroncalSIP

/// The PBX as a media endpoint, end to end with sipp phones through the SBC: IVR menus (RFC 4733 keys, in-band keys,
/// the timeout and fallback) and voicemail (recording on busy, the WAV checked with sox, message waiting, the owner's
/// retrieval menu, e-mail through a failing then working mail command).
@Suite(.serialized, .startsProcesses) struct PBXApplicationTests {
    static let menus = """
        tenant,menu,number,prompt,options,first_digit_seconds,inter_digit_seconds,retries,fallback
        acme,main,500,say:Welcome to Acme. Press 2 then 1 for Bob.,1=ext:101 21=ext:102 3=voicemail:102,5,2,1,ext:102
        acme,quiet,501,say:Nobody presses anything here.,1=ext:101,1,1,1,ext:102

        """

    static let extensions = """
        tenant,extension,name,password,voicemail,voicemail_pin,email
        acme,101,Ana,secret-101-pw,no,,
        acme,102,Bob,secret-102-pw,yes,1234,bob@example.com

        """

    /// The SDP of a phone that sends RFC 4733 events.
    static let sdpWithEvents = """
        v=0
        o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
        s=-
        c=IN IP[media_ip_type] [media_ip]
        t=0 0
        m=audio [media_port] RTP/AVP 0 101
        a=rtpmap:0 PCMU/8000
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-15
        """

    /// Registers, INVITEs `[service]` (answered by the PBX), ACKs, then runs `during` (keys, audio, pauses); then
    /// either answers the PBX's re-INVITE that connects it to the destination and hangs up, or just hangs up.
    static func caller(during: String, connected: Bool) -> String {
        let sdp = sdpWithEvents.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n")
        let invite = SippScenarios.invite().replacingOccurrences(of: SippScenarios.sdp.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"), with: sdp)
        var steps = PBXCallTests.steps(RegistrationTests.register(final: 200))
        steps += "\n" + invite + """

              <recv response="100" optional="true"/>
              <recv response="180" optional="true"/>
              <recv response="200" rtd="true" rrs="true"/>

            """
        steps += SippScenarios.request("ACK", cseq: 1) + "\n" + during + "\n"
        if connected {
            steps += """
                  <recv request="INVITE" crlf="true"/>
                  <send retrans="500">
                    <![CDATA[
                      SIP/2.0 200 OK
                      [last_Via:]
                      [last_From:]
                      [last_To:]
                      [last_Call-ID:]
                      [last_CSeq:]
                      Contact: <sip:441632960001@[local_ip]:[local_port]>
                      Content-Type: application/sdp
                      Content-Length: [len]

                \(sdp)
                    ]]>
                  </send>
                  <recv request="ACK"/>
                  <pause milliseconds="500"/>

                """
        }
        steps += SippScenarios.request("BYE", cseq: 2) + "\n  <recv response=\"200\" crlf=\"true\"/>\n"
        return "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<scenario name=\"application caller\">\n\(steps)\n</scenario>\n"
    }

    /// A site of `PBXCallTests.site`, without the SBC's keep-alive OPTIONS: the sipp phones here run one scenario for
    /// several messages, and an OPTIONS between them (every 25 s by default) would abort it on a slow machine.
    static func site(billing: Bool, catalogs: [(String, String)], adjust: @escaping (inout SiteConfig, Int) -> Void = { _, _ in }) async throws
        -> CallSite
    {
        try await PBXCallTests.site(billing: billing, catalogs: catalogs) { config, offset in
            config.sbc.keepAliveSeconds = 0
            adjust(&config, offset)
        }
    }

    static func keys(_ file: URL) -> String { "  <nop><action><exec play_pcap_audio=\"\(file.path)\"/></action></nop>" }
    static func audio(_ file: URL) -> String { "  <nop><action><exec rtp_stream=\"\(file.path),1,0\"/></action></nop>" }
    static func pause(_ milliseconds: Int) -> String { "  <pause milliseconds=\"\(milliseconds)\"/>" }

    /// A phone `number` (registered from port `slot`) running `scenario` against the SBC, dialling `dialled`.
    static func phone(_ site: CallSite, _ number: String, password: String, dialling dialled: String, slot: Int, scenario: String) throws -> Sipp {
        let file = site.directory.url.appendingPathComponent("caller-\(number)-\(slot).csv")
        try Data("SEQUENTIAL\n\(number);[authentication username=\(number) password=\(password)]\n".utf8).write(to: file)
        return try Sipp(
            "phone-\(number)-\(slot)", scenario: scenario, in: site.directory, address: CallSite.customerAddress, port: site.port(slot),
            mediaPort: site.port(slot) + 2, arguments: ["\(CallSite.sbcAddress):\(site.sipPort)", "-inf", file.path, "-s", dialled, "-m", "1", "-l", "1"])
    }

    static func write(_ data: Data, _ name: String, in site: CallSite) throws -> URL {
        let url = site.directory.url.appendingPathComponent(name)
        try data.write(to: url)
        return url
    }

    static func metric(_ site: CallSite, _ line: String) async -> String {
        let admin = site.config.instance(named: "pbx-1")?.adminPort ?? 0
        let text = (try? await httpGet(port: admin, path: "/metrics")) ?? ""
        return text.split(separator: "\n").filter { $0.hasPrefix(line) }.joined(separator: "\n")
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func anIVRMenuSendsCallersWhereTheirKeysSayAndItsFallbackWhenNothingIsPressed() async throws {
        let site = try await Self.site(billing: false, catalogs: [("extensions", Self.extensions), ("menus", Self.menus)])
        defer { site.remove() }
        // Bob (102) answers each call the menus send him.
        let registration = try RegistrationTests().sipp(
            site, "register-102", scenario: RegistrationTests.register(final: 200), users: [("102", "secret-102-pw")], slot: 2)
        #expect(await registration.finish() == 0, "\(registration.report)\n\(site.logs)")
        let bob = try Sipp(
            "phone-102", scenario: SippScenarios.carrier(), in: site.directory, address: CallSite.customerAddress, port: site.port(2),
            mediaPort: site.port(2) + 2, arguments: ["-m", "3"])
        try await bob.listening()

        // 1. RFC 4733 keys 2 then 1, pressed while the prompt plays: menu option 21, Bob.
        let events = try Self.write(DTMFMedia.pcap("21"), "keys-21.pcap", in: site)
        let ana = try Self.phone(
            site, "101", password: "secret-101-pw", dialling: "500", slot: 1,
            scenario: Self.caller(during: [Self.pause(1000), Self.keys(events)].joined(separator: "\n"), connected: true))
        #expect(await ana.finish(timeout: .seconds(60)) == 0, "\(ana.report)\n\(site.logs)")

        // 2. The same keys as in-band tones only (a phone that sends no events).
        let tones = try Self.write(DTMFMedia.inBand("21"), "keys-21.ulaw", in: site)
        let ana2 = try Self.phone(
            site, "101", password: "secret-101-pw", dialling: "500", slot: 3,
            scenario: Self.caller(during: [Self.pause(500), Self.audio(tones)].joined(separator: "\n"), connected: true))
        #expect(await ana2.finish(timeout: .seconds(60)) == 0, "\(ana2.report)\n\(site.logs)")

        // 3. Nothing pressed: the prompt plays again after the 1 s timeout, then the fallback (Bob) rings.
        let ana3 = try Self.phone(
            site, "101", password: "secret-101-pw", dialling: "501", slot: 4, scenario: Self.caller(during: "", connected: true))
        #expect(await ana3.finish(timeout: .seconds(60)) == 0, "\(ana3.report)\n\(site.logs)")
        #expect(await bob.finish(timeout: .seconds(30)) == 0, "\(bob.report)\n\(site.logs)")

        // Bob got the three calls, each from extension 101 through the SBC.
        #expect(bob.messageText.components(separatedBy: "INVITE sip:102@").count - 1 == 3, "\(bob.messageText.prefix(3000))")
        let prompts = await Self.metric(site, "troncal_pbx_menu_prompts_total")
        let outcomes = await Self.metric(site, "troncal_pbx_menu_outcomes_total")
        // One prompt each for the calls that pressed keys, two for the silent one.
        #expect(prompts.hasSuffix(" 4"), "\(prompts)\n\(site.logs)")
        #expect(outcomes.contains("result=\"chosen\"} 2") && outcomes.contains("result=\"fallback\"} 1"), "\(outcomes)")
        let log = site.process("pbx-1").outputText
        #expect(log.components(separatedBy: "menu destination answered: caller connected").count - 1 == 3, "\(site.logs)")
        await ana.stop()
        await ana2.stop()
        await ana3.stop()
        await bob.stop()
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aBusyExtensionsVoicemailRecordsTheCallerAndTheOwnerHearsAndDeletesIt() async throws {
        let mail = try TemporaryDirectory(prefix: "troncal-mail")
        defer { mail.remove() }
        // The mail command fails once (as an MTA that cannot reach its relay), then delivers to a file.
        let script = """
            if [ -e '\(mail.url.path)/failed-once' ]; then cat > '\(mail.url.path)/mail.eml'; else touch '\(mail.url.path)/failed-once'; cat > /dev/null; echo 'smtp: connection refused' >&2; exit 75; fi
            """
        let site = try await Self.site(billing: false, catalogs: [("extensions", Self.extensions)]) { config, _ in
            config.pbx.voicemailMailCommand = ["/bin/sh", "-c", script]
            config.pbx.voicemailRetrySeconds = 1
        }
        defer { site.remove() }
        // Bob (102) is busy.
        let registration = try RegistrationTests().sipp(
            site, "register-102", scenario: RegistrationTests.register(final: 200), users: [("102", "secret-102-pw")], slot: 2)
        #expect(await registration.finish() == 0, "\(registration.report)\n\(site.logs)")
        let busy = try Sipp(
            "phone-102", scenario: SippScenarios.refusingCarrier(status: 486, reason: "Busy Here"), in: site.directory,
            address: CallSite.customerAddress, port: site.port(2), mediaPort: site.port(2) + 2, arguments: ["-m", "1"])
        try await busy.listening()
        // Ana reaches his voicemail, skips the greeting with #, and leaves 2.5 s of a 1 kHz tone.
        let skip = try Self.write(DTMFMedia.pcap("#"), "key-pound.pcap", in: site)
        let tone = try Self.write(DTMFMedia.tone(milliseconds: 2500), "tone.ulaw", in: site)
        let ana = try Self.phone(
            site, "101", password: "secret-101-pw", dialling: "102", slot: 1,
            scenario: Self.caller(
                during: [Self.pause(800), Self.keys(skip), Self.pause(1500), Self.audio(tone), Self.pause(3000)].joined(separator: "\n"), connected: false))
        #expect(await busy.finish(timeout: .seconds(30)) == 0, "\(busy.report)\n\(site.logs)")
        // Bob's phone is now idle: it takes the message-waiting NOTIFYs (yes, then no).
        let notify = """
            <?xml version="1.0" encoding="ISO-8859-1" ?>
            <scenario name="message waiting">
              <recv request="OPTIONS" optional="true" next="answer"/>
              <recv request="NOTIFY"/>
              <label id="answer"/>
            \(SippScenarios.okToLastRequest)
            </scenario>
            """
        let lamp = try Sipp(
            "mwi-102", scenario: notify, in: site.directory, address: CallSite.customerAddress, port: site.port(2), mediaPort: site.port(2) + 2,
            arguments: ["-m", "1000"])
        try await lamp.listening()
        #expect(await ana.finish(timeout: .seconds(60)) == 0, "\(ana.report)\n\(site.logs)")

        // The message is stored, and its WAV holds the caller's 1 kHz tone (sox's own estimate).
        var list: [PBXVoicemailList.Message] = []
        let stored = await eventually(timeout: .seconds(20)) {
            list = (try? await Self.voicemail(site)) ?? []
            return list.count == 1
        }
        #expect(stored, "\(list)\n\(site.logs)")
        let message = try #require(list.first)
        #expect(message.extensionNumber == "102" && message.caller == "101" && message.folder == "new", "\(message)")
        #expect(message.durationMilliseconds >= 1000, "\(message)")
        let frequency = try await Self.roughFrequency(message.file)
        #expect(abs(frequency - 1000) < 50, "sox: \(frequency) Hz in \(message.file)")
        Logger(label: "test.pbx").notice("voicemail: \(message.durationMilliseconds) ms recorded, sox rough frequency \(frequency) Hz")

        // The e-mail: the first attempt failed (the reason kept), the retry delivered it with the recording attached.
        var delivery: PBXVoicemailList.Delivery?
        let delivered = await eventually(timeout: .seconds(30)) {
            delivery = ((try? await Self.voicemail(site)) ?? []).first?.deliveries.first { $0.channel == "email" }
            return delivery?.status == "delivered"
        }
        #expect(delivered && delivery?.attempts == 2 && delivery?.lastError.contains("connection refused") == true, "\(String(describing: delivery))\n\(site.logs)")
        #expect(site.process("pbx-1").outputText.contains("voicemail delivery failed: tried again later"), "\(site.logs)")
        let email = (try? String(contentsOf: mail.url.appendingPathComponent("mail.eml"), encoding: .utf8)) ?? ""
        #expect(email.contains("To: bob@example.com") && email.contains("Subject: New voicemail from 101") && email.contains("Content-Type: audio/wav"), "\(email.prefix(2000))")

        // Bob calls his box from another phone: PIN 1234, 1 (new messages), 7 (delete).
        let pin = try Self.write(DTMFMedia.pcap("1234", gapMilliseconds: 250), "pin.pcap", in: site)
        let listen = try Self.write(DTMFMedia.pcap("1"), "key-1.pcap", in: site)
        let delete = try Self.write(DTMFMedia.pcap("7"), "key-7.pcap", in: site)
        let owner = try Self.phone(
            site, "102", password: "secret-102-pw", dialling: "*97", slot: 3,
            scenario: Self.caller(
                during: [Self.pause(1000), Self.keys(pin), Self.pause(3000), Self.keys(listen), Self.pause(3000), Self.keys(delete), Self.pause(3000)]
                    .joined(separator: "\n"), connected: false))
        #expect(await owner.finish(timeout: .seconds(60)) == 0, "\(owner.report)\n\(site.logs)")
        let deleted = await eventually(timeout: .seconds(20)) { ((try? await Self.voicemail(site)) ?? []).first?.folder == "deleted" }
        #expect(deleted, "\(site.logs)")
        #expect(!FileManager.default.fileExists(atPath: message.file), "the deleted message's file is still there")

        // The lamp: Messages-Waiting yes after the recording, no after the deletion.
        let lampOff = await eventually(timeout: .seconds(20)) { lamp.messageText.contains("Messages-Waiting: no") }
        #expect(lampOff, "\(lamp.report)\n\(site.logs)")
        let notifies = lamp.messageText
        let yes = notifies.range(of: "Messages-Waiting: yes")
        let no = notifies.range(of: "Messages-Waiting: no")
        #expect(yes != nil && no != nil && yes!.lowerBound < no!.lowerBound, "\(notifies.suffix(3000))")
        #expect(notifies.contains("Event: message-summary") && notifies.contains("Voice-Message: 1/0"), "\(notifies.suffix(3000))")
        #expect(!notifies.contains(":\(site.config.instance(named: "pbx-1")!.sipPort)"), "the phone saw the PBX's address: \(notifies.suffix(3000))")
        await ana.stop()
        await busy.stop()
        await lamp.stop()
        await owner.stop()
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func theOwnerChangesThePINAndRecordsAGreetingFromTheBoxMenu() async throws {
        let site = try await Self.site(billing: false, catalogs: [("extensions", Self.extensions)])
        defer { site.remove() }
        let pin = try Self.write(DTMFMedia.pcap("1234", gapMilliseconds: 250), "pin.pcap", in: site)
        let newPIN = try Self.write(DTMFMedia.pcap("5678#", gapMilliseconds: 250), "new-pin.pcap", in: site)
        let four = try Self.write(DTMFMedia.pcap("4"), "key-4.pcap", in: site)
        let three = try Self.write(DTMFMedia.pcap("3"), "key-3.pcap", in: site)
        let pound = try Self.write(DTMFMedia.pcap("#"), "key-pound.pcap", in: site)
        let tone = try Self.write(DTMFMedia.tone(milliseconds: 1500), "tone.ulaw", in: site)
        // PIN 1234; 4: the new PIN 5678#; 3: a greeting of 1.5 s of 1 kHz, then #.
        let owner = try Self.phone(
            site, "102", password: "secret-102-pw", dialling: "*97", slot: 3,
            scenario: Self.caller(
                during: [
                    Self.pause(1000), Self.keys(pin), Self.pause(3000), Self.keys(four), Self.pause(2000), Self.keys(newPIN), Self.pause(4000),
                    Self.keys(three), Self.pause(5000), Self.audio(tone), Self.pause(2500), Self.keys(pound), Self.pause(2500),
                ].joined(separator: "\n"), connected: false))
        #expect(await owner.finish(timeout: .seconds(90)) == 0, "\(owner.report)\n\(site.logs)")
        let log = site.process("pbx-1").outputText
        #expect(log.contains("voicemail PIN changed") && log.contains("voicemail greeting changed"), "\(site.logs)")
        // The greeting is the owner's tone.
        let greeting = site.directory.url.appendingPathComponent("data/pbx-1/voicemail/acme/102/greeting.wav")
        let frequency = try await Self.roughFrequency(greeting.path)
        #expect(abs(frequency - 1000) < 50, "sox: \(frequency) Hz in \(greeting.path)")
        // The old PIN no longer opens the box; the new one does.
        let oldPIN = try Self.write(DTMFMedia.pcap("1234#", gapMilliseconds: 250), "old-pin.pcap", in: site)
        let again = try Self.phone(
            site, "102", password: "secret-102-pw", dialling: "*97", slot: 4,
            scenario: Self.caller(
                during: [Self.pause(1000), Self.keys(oldPIN), Self.pause(4000), Self.keys(newPIN), Self.pause(2500)].joined(separator: "\n"),
                connected: false))
        #expect(await again.finish(timeout: .seconds(60)) == 0, "\(again.report)\n\(site.logs)")
        let after = site.process("pbx-1").outputText
        #expect(after.contains("voicemail: wrong PIN"), "\(site.logs)")
        #expect(after.components(separatedBy: "voicemail box opened").count - 1 == 2, "\(site.logs)")
        await owner.stop()
        await again.stop()
        await site.stop()
    }

    /// 102 answers 101's call, then transfers it blind to 103 (REFER), takes the NOTIFYs (100 Trying, then 200 OK) and
    /// hangs up, as a phone does.
    static let transferor = """
        <?xml version="1.0" encoding="ISO-8859-1" ?>
        <scenario name="transferor">
          <recv request="INVITE" crlf="true" rrs="true"><action><ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/></action></recv>
        \(SippScenarios.answer())
          <recv request="ACK" crlf="true"/>
          <pause milliseconds="500"/>
          <send retrans="500">
            <![CDATA[
              REFER [next_url] SIP/2.0
              Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
              From: <sip:102@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
              To: [$caller]
              Call-ID: [call_id]
              CSeq: 1 REFER
              Contact: <sip:102@[local_ip]:[local_port]>
              Refer-To: <sip:103@acme>
              Referred-By: <sip:102@acme>
              Max-Forwards: 70
              Content-Length: 0
            ]]>
          </send>
          <recv response="202"/>
          <recv request="NOTIFY"/>
        \(SippScenarios.okToLastRequest)
          <recv request="NOTIFY"/>
        \(SippScenarios.okToLastRequest)
          <send retrans="500">
            <![CDATA[
              BYE [next_url] SIP/2.0
              Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
              From: <sip:102@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
              To: [$caller]
              Call-ID: [call_id]
              CSeq: 2 BYE
              Max-Forwards: 70
              Content-Length: 0
            ]]>
          </send>
          <recv response="200"/>
        </scenario>
        """

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aBlindTransferConnectsTheCallerToTheNewDestinationAndTellsTheTransferor() async throws {
        let extensions = Self.extensions + "acme,103,Carla,secret-103-pw,no,,\n"
        let site = try await Self.site(billing: false, catalogs: [("extensions", extensions)])
        defer { site.remove() }
        let bob = try await PBXCallTests.answeringPhone(site, "102", password: "secret-102-pw", slot: 2, scenario: Self.transferor)
        let carla = try await PBXCallTests.answeringPhone(
            site, "103", password: "secret-103-pw", slot: 3, scenario: SippScenarios.carrier(), extra: ["-rtp_echo"])
        // Ana calls Bob; after the transfer she is re-INVITEd to Carla, streams 1.5 s of audio that Carla echoes, and hangs up.
        let audio = try Self.write(DTMFMedia.tone(milliseconds: 1500), "tone.ulaw", in: site)
        let ana = try Self.phone(
            site, "101", password: "secret-101-pw", dialling: "102", slot: 1,
            scenario: Self.caller(during: "", connected: true).replacingOccurrences(
                of: "  <pause milliseconds=\"500\"/>", with: Self.audio(audio) + "\n" + Self.pause(2500)))
        #expect(await ana.finish(timeout: .seconds(60)) == 0, "\(ana.report)\n\(site.logs)")
        #expect(await bob.finish(timeout: .seconds(20)) == 0, "\(bob.report)\n\(site.logs)")
        #expect(await carla.finish(timeout: .seconds(20)) == 0, "\(carla.report)\n\(site.logs)")
        // Bob's NOTIFYs: 100 Trying, then 200 OK, as message/sipfrag of the refer event.
        let notifies = bob.messageText
        let trying = notifies.range(of: "SIP/2.0 100 Trying\r\n") ?? notifies.range(of: "SIP/2.0 100 Trying")
        let done = notifies.range(of: "\nSIP/2.0 200 OK", range: (trying?.upperBound ?? notifies.startIndex)..<notifies.endIndex)
        #expect(trying != nil && done != nil, "\(notifies.suffix(3000))")
        #expect(notifies.contains("Content-Type: message/sipfrag") && notifies.contains("Event: refer"), "\(notifies.suffix(3000))")
        // Carla was called by Ana (101), not by Bob.
        #expect(carla.messageText.contains("From: \"Ana\" <sip:101@") || carla.messageText.contains("From: <sip:101@"), "\(carla.messageText.prefix(2000))")
        #expect(site.process("pbx-1").outputText.contains("call transferred"), "\(site.logs)")
        let transfers = await Self.metric(site, "troncal_pbx_transfers_total")
        #expect(transfers.contains("result=\"transferred\"} 1"), "\(transfers)")
        // Ana and Carla talk: at the SBC, Ana's audio reached Carla and Carla's echo came back (both calls' legs).
        let ended = await eventually(timeout: .seconds(10)) { site.process("sbc-1").outputText.components(separatedBy: "call ended").count - 1 >= 3 }
        #expect(ended, "\(site.logs)")
        let relayed = PBXCallTests.relayedPackets(in: site.process("sbc-1").outputText)
        #expect(relayed.filter { $0 >= 40 }.count >= 4, "packets relayed per direction: \(relayed)\n\(site.logs)")
        Logger(label: "test.pbx").notice("blind transfer: packets relayed per direction \(relayed)")
        await ana.stop()
        await bob.stop()
        await carla.stop()
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aCallTransferredToAnOutsideNumberHasItsOwnCDROnTheTenantsAccount() async throws {
        let site = try await Self.site(billing: true, catalogs: [("extensions", Self.extensions)])
        defer { site.remove() }
        try await BillingCallTests.prepare(site, topUp: "10")
        let carrier = try SBCCallTests.carrier(site, "carrier", scenario: SippScenarios.carrier(), port: site.carrierPort(0), calls: 1)
        try await carrier.listening()
        let bob = try await PBXCallTests.answeringPhone(
            site, "102", password: "secret-102-pw", slot: 2,
            scenario: Self.transferor.replacingOccurrences(of: "Refer-To: <sip:103@acme>", with: "Refer-To: <sip:+\(SBCCallTests.callee)@acme>"))
        let ana = try Self.phone(
            site, "101", password: "secret-101-pw", dialling: "102", slot: 1,
            scenario: Self.caller(during: "", connected: true).replacingOccurrences(of: "  <pause milliseconds=\"500\"/>", with: Self.pause(1500)))
        #expect(await ana.finish(timeout: .seconds(60)) == 0, "\(ana.report)\n\(site.logs)")
        #expect(await bob.finish(timeout: .seconds(20)) == 0, "\(bob.report)\n\(site.logs)")
        #expect(await carrier.finish(timeout: .seconds(20)) == 0, "\(carrier.report)\n\(site.logs)")
        // The carrier sees the tenant's number, not the extension that was transferred.
        #expect(carrier.messageText.contains("From: <sip:+34911000100@"), "\(carrier.messageText.prefix(2000))")
        // The leg that left the platform has its CDR, on the tenant's customer; the legs between extensions have none.
        #expect(await BillingCallTests.drained(site), "\(site.logs)")
        let cdrs = try await BillingCallTests.cdrs(site)
        #expect(cdrs.count == 1 && cdrs.first?.customer == "acme" && cdrs.first?.answerAt != nil && (cdrs.first?.sellMicros ?? 0) > 0, "\(cdrs)")
        Logger(label: "test.pbx").notice("transfer outside: CDRs \(cdrs.map { "\($0.customer) \($0.caller)→\($0.callee) \($0.durationMilliseconds) ms" })")
        await ana.stop()
        await bob.stop()
        await carrier.stop()
        await site.stop()
    }

    /// A callee that answers, then answers one re-INVITE (the join of an attended transfer), then the BYE.
    static let joinedCallee = """
        <?xml version="1.0" encoding="ISO-8859-1" ?>
        <scenario name="joined callee">
          <recv request="INVITE" crlf="true" rrs="true"/>
        \(SippScenarios.answer())
          <recv request="ACK" crlf="true"/>
          <recv request="INVITE"/>
        \(SippScenarios.answer())
          <recv request="ACK"/>
          \(SippScenarios.answerBye)
        </scenario>
        """

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func anAttendedTransferJoinsTheCallerWithTheConsultedPartyAndReleasesTheTransferor() async throws {
        let extensions = Self.extensions + "acme,103,Carla,secret-103-pw,no,,\n"
        let site = try await Self.site(billing: false, catalogs: [("extensions", extensions)])
        defer { site.remove() }
        // Bob (102) answers Ana, and after his other phone has called Carla he transfers Ana to her (Replaces).
        let attended = Self.transferor
            .replacingOccurrences(of: "<pause milliseconds=\"500\"/>", with: "<pause milliseconds=\"5000\"/>")
            .replacingOccurrences(of: "Refer-To: <sip:103@acme>", with: "Refer-To: <sip:103@acme?Replaces=consult-call%3Bto-tag%3Dc1%3Bfrom-tag%3Db2>")
            .replacingOccurrences(of: "<recv request=\"NOTIFY\"/>\n\(SippScenarios.okToLastRequest)\n  <recv request=\"NOTIFY\"/>", with: "<recv request=\"NOTIFY\"/>")
        #expect(attended.contains("Replaces=") && attended.components(separatedBy: "request=\"NOTIFY\"").count - 1 == 1, "\(attended)")
        let bob = try await PBXCallTests.answeringPhone(site, "102", password: "secret-102-pw", slot: 2, scenario: attended)
        let carla = try await PBXCallTests.answeringPhone(
            site, "103", password: "secret-103-pw", slot: 3, scenario: Self.joinedCallee, extra: ["-rtp_echo"])
        let audio = try Self.write(DTMFMedia.tone(milliseconds: 1500), "tone.ulaw", in: site)
        let ana = try Self.phone(
            site, "101", password: "secret-101-pw", dialling: "102", slot: 1,
            scenario: Self.caller(during: "", connected: true).replacingOccurrences(
                of: "  <pause milliseconds=\"500\"/>", with: Self.audio(audio) + "\n" + Self.pause(2500)))
        // Once Bob has answered Ana, his desk phone's second line calls Carla and waits for the PBX's BYE.
        let answered = await eventually(timeout: .seconds(20)) { bob.messageText.contains("ACK sip:") }
        #expect(answered, "\(bob.messageText)\n\(site.logs)")
        let consult = try Self.phone(
            site, "102", password: "secret-102-pw", dialling: "103", slot: 4,
            scenario: PBXCallTests.registerThenCall(callerHangsUp: false))
        #expect(await ana.finish(timeout: .seconds(60)) == 0, "\(ana.report)\n\(site.logs)")
        #expect(await bob.finish(timeout: .seconds(20)) == 0, "\(bob.report)\n\(site.logs)")
        #expect(await consult.finish(timeout: .seconds(20)) == 0, "\(consult.report)\n\(site.logs)")
        #expect(await carla.finish(timeout: .seconds(20)) == 0, "\(carla.report)\n\(site.logs)")
        #expect(bob.messageText.contains("SIP/2.0 200 OK") && bob.messageText.contains("Event: refer"), "\(bob.messageText.suffix(3000))")
        #expect(site.process("pbx-1").outputText.contains("call transferred (attended)"), "\(site.logs)")
        // Ana and Carla talk: Ana's audio reached Carla and Carla's echo came back.
        let ended = await eventually(timeout: .seconds(10)) { site.process("sbc-1").outputText.components(separatedBy: "call ended").count - 1 >= 4 }
        #expect(ended, "\(site.logs)")
        let relayed = PBXCallTests.relayedPackets(in: site.process("sbc-1").outputText)
        #expect(relayed.filter { $0 >= 40 }.count >= 4, "packets relayed per direction: \(relayed)\n\(site.logs)")
        Logger(label: "test.pbx").notice("attended transfer: packets relayed per direction \(relayed)")
        await ana.stop()
        await bob.stop()
        await consult.stop()
        await carla.stop()
        await site.stop()
    }

    static func voicemail(_ site: CallSite) async throws -> [PBXVoicemailList.Message] {
        let (status, output) = try await site.troncal(["pbx", "voicemail", "list", "--json"])
        guard status == 0 else { throw CallSiteError("pbx voicemail list: \(output)") }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let start = output.firstIndex(of: "[") else { throw CallSiteError("pbx voicemail list: \(output)") }
        return try decoder.decode([PBXVoicemailList.Message].self, from: Data(output[start...].utf8))
    }

    /// sox's "Rough frequency" of a WAV file.
    static func roughFrequency(_ path: String) async throws -> Double {
        let (_, text) = try await ChildProcess.run(URL(fileURLWithPath: "/usr/bin/sox"), [path, "-n", "stat"])
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Rough") }), let value = line.split(separator: " ").last.flatMap({ Double($0) })
        else { throw CallSiteError("sox stat: \(text)") }
        return value
    }
}
