import Foundation
import TestSupport
import Testing
import TroncalProtocol
import TroncalRuntime

/// Phones register through the SBC to the PBX's registrar: digest against the extension's password, the SBC's Path
/// with a flow token, bindings answered with their expiry; a wrong password and an unknown extension get the same 403.
@Suite(.serialized, .startsProcesses) struct RegistrationTests {
    static let tenants = "tenant,customer,time_zone,caller_id\nacme,acme,Europe/Madrid,+34911000100\n"
    static let extensions = "tenant,extension,name,password\nacme,101,Ana,secret-101-pw\nacme,102,Bob,secret-102-pw\n"

    /// REGISTER, 401, REGISTER with digest, then `final` (200, or 403 for bad credentials); `[field0]` the user and
    /// `[field1]` sipp's `[authentication …]` keyword, from the injection file.
    static func register(final: Int, expires: Int = 300) -> String {
        func request(_ cseq: Int, auth: Bool) -> String {
            """
              <send retrans="500">
                <![CDATA[
                  REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
                  Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
                  Max-Forwards: 70
                  From: <sip:[field0]@acme>;tag=[call_number]
                  To: <sip:[field0]@acme>
                  Call-ID: [call_id]
                  CSeq: \(cseq) REGISTER
                  Contact: <sip:[field0]@[local_ip]:[local_port]>
                  Expires: \(expires)
                  User-Agent: sipp-registration-test
                  \(auth ? "[field1]" : "")
                  Content-Length: 0

                ]]>
              </send>
            """
        }
        return """
            <?xml version="1.0" encoding="ISO-8859-1" ?>
            <scenario name="register">
            \(request(1, auth: false))
              <recv response="401" auth="true"/>
            \(request(2, auth: true))
              <recv response="\(final)"/>
            </scenario>
            """
    }

    static func site() async throws -> CallSite {
        let site = try await CallSite(pbx: true, routing: false) { config, offset in
            config.pbx.minimumExpires = 60
            // sipp answers only the first challenge, and only MD5: offered first, as for older phones.
            config.pbx.digestAlgorithms = ["MD5", "SHA-256"]
        }
        for (kind, text) in [("tenants", tenants), ("extensions", extensions)] {
            let file = site.directory.url.appendingPathComponent("\(kind).csv")
            try Data(text.utf8).write(to: file)
            let (status, output) = try await site.troncal(["pbx", "import", kind, file.path])
            guard status == 0 else { throw CallSiteError("pbx import \(kind): \(output)") }
        }
        return site
    }

    /// `users`: (extension, password) pairs, one registration each.
    func sipp(_ site: CallSite, _ name: String, scenario: String, users: [(String, String)], slot: Int) throws -> Sipp {
        let file = site.directory.url.appendingPathComponent("\(name).csv")
        let lines = users.map { "\($0.0);[authentication username=\($0.0) password=\($0.1)]\n" }.joined()
        try Data("SEQUENTIAL\n\(lines)".utf8).write(to: file)
        let count = users.count
        return try Sipp(
            name, scenario: scenario, in: site.directory, address: CallSite.customerAddress, port: site.port(slot), mediaPort: site.port(slot) + 2,
            arguments: ["\(CallSite.sbcAddress):\(site.sipPort)", "-inf", file.path, "-m", "\(count)", "-l", "1", "-r", "10"])
    }

    // Before the other tests of this serialized suite: it needs the whole machine (every process slot), which the
    // slots give first, at the start of the run (ProcessSlots).
    @Test(.enabled(if: burstSize > 0, "TRONCAL_REGISTRATION_BURST=0"), .startsProcessesAlone)
    func aBurstOfPhonesRegisteringRightAfterAPBXRestartAllEndRegisteredWithTheExcessRetried() async throws {
        let count = max(10, min(900, Self.burstSize))
        let users = (0..<count).map { (String(2000 + $0), "secret-\(2000 + $0)-pw") }
        let site = try await CallSite(pbx: true, routing: false) { config, _ in
            config.pbx.digestAlgorithms = ["MD5", "SHA-256"]
            // One loop and a few registrations waiting at the SBC at a time: a burst of phones in one second
            // overlaps, and the excess gets 503 and retries.
            config.sbc.eventLoops = 1
            config.sbc.maximumPendingRegistrations = count > 200 ? 8 : 2
            // 500 phones behind one address (a NAT): the per-address flood limit is raised as an operator would for it.
            config.sip.requestsPerWindowPerAddress = 100_000
        }
        defer { site.remove() }
        let extensions = "tenant,extension,password\n" + users.map { "acme,\($0.0),\($0.1)\n" }.joined()
        for (kind, text) in [("tenants", Self.tenants), ("extensions", extensions)] {
            let file = site.directory.url.appendingPathComponent("\(kind).csv")
            try Data(text.utf8).write(to: file)
            let (status, output) = try await site.troncal(["pbx", "import", kind, file.path])
            #expect(status == 0, "\(output)")
        }
        try await site.restart("pbx-1")

        let file = site.directory.url.appendingPathComponent("burst.csv")
        try Data(("SEQUENTIAL\n" + users.map { "\($0.0);[authentication username=\($0.0) password=\($0.1)]\n" }.joined()).utf8).write(to: file)
        let phones = try Sipp(
            "burst", scenario: Self.burst, in: site.directory, address: CallSite.customerAddress, port: site.port(3), mediaPort: site.port(3) + 2,
            arguments: ["\(CallSite.sbcAddress):\(site.sipPort)", "-inf", file.path, "-m", "\(count)", "-l", "\(count)", "-r", "\(count)", "-t", "un", "-max_socket", "1024", "-timeout", "140s"])
        let status = await phones.finish(timeout: .seconds(150))
        #expect(status == 0, "\(phones.report)\n\(site.logs)")
        #expect(phones.successfulCalls == count, "\(phones.report)")
        let trace = phones.messageText
        let busy = trace.components(separatedBy: "SIP/2.0 503 Service Unavailable").count - 1
        #expect(busy > 0, "no REGISTER was turned away: the test did not exercise the retry")
        #expect(trace.contains("Retry-After: "))

        // Every phone is registered: none lost, none twice.
        let (code, listed) = try await site.troncal(["pbx", "registrations", "--tenant", "acme", "--json"])
        #expect(code == 0, "\(listed)")
        let registrations = try JSONDecoder().decode([Registration].self, from: Data(listed.utf8))
        #expect(registrations.count == count, "\(registrations.count) registered")
        #expect(Set(registrations.map(\.extensionNumber)) == Set(users.map(\.0)))
        await site.stop()
    }

    @Test func twoExtensionsRegisterWithDigestThroughTheSBCAndGetTheirBindingsWithThePath() async throws {
        let site = try await Self.site()
        defer { site.remove() }
        let phones = try sipp(site, "phones", scenario: Self.register(final: 200), users: [("101", "secret-101-pw"), ("102", "secret-102-pw")], slot: 0)
        let status = await phones.finish()
        #expect(status == 0, "\(phones.report)\n\(site.logs)")
        let trace = phones.messageText
        // The 200 carries the contact with its granted expiry, and the Path the SBC added (a flow token, lr, ob).
        #expect(trace.contains("Contact: <sip:101@\(CallSite.customerAddress):\(site.port(0))>;expires=300"), "\(trace.suffix(3000))")
        #expect(trace.contains("Contact: <sip:102@\(CallSite.customerAddress):\(site.port(0))>;expires=300"), "\(trace.suffix(3000))")
        #expect(trace.contains(";lr;ob>"), "no Path in the answer: \(trace.suffix(3000))")
        #expect(trace.contains("WWW-Authenticate: Digest realm=\"acme\""), "\(trace.suffix(3000))")
        #expect(trace.contains("algorithm=SHA-256"), "both algorithms offered")
        await site.stop()
    }

    @Test func aWrongPasswordAndAnUnknownExtensionGetTheSame403() async throws {
        let site = try await Self.site()
        defer { site.remove() }
        let wrong = try sipp(site, "wrong", scenario: Self.register(final: 403), users: [("101", "not-the-password"), ("109", "secret-101-pw")], slot: 1)
        let status = await wrong.finish()
        #expect(status == 0, "\(wrong.report)\n\(site.logs)")
        #expect(!wrong.messageText.contains("SIP/2.0 200"), "\(wrong.messageText.suffix(2000))")
        // Too short an interval: 423 with Min-Expires.
        let brief = try sipp(site, "brief", scenario: Self.register(final: 423, expires: 10), users: [("102", "secret-102-pw")], slot: 2)
        #expect(await brief.finish() == 0, "\(brief.report)\n\(site.logs)")
        #expect(brief.messageText.contains("Min-Expires: 60"), "\(brief.messageText.suffix(2000))")
        await site.stop()
    }

    /// Two registrations per user (the second a refresh on the same Call-ID), each REGISTER, 401, REGISTER with
    /// digest, 200; a 503 at any step makes the user wait as the Retry-After says (2-6 s, at random) and start that
    /// registration again with a new challenge. `[field0]` the user, `[field1]` sipp's `[authentication …]`.
    static let burst: String = {
        func request(auth: Bool) -> String {
            """
              <send retrans="500">
                <![CDATA[
                  REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
                  Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
                  Max-Forwards: 70
                  From: <sip:[field0]@acme>;tag=[call_number]
                  To: <sip:[field0]@acme>
                  Call-ID: [call_id]
                  CSeq: [cseq] REGISTER
                  Contact: <sip:[field0]@[local_ip]:[local_port]>
                  Expires: 600
                  \(auth ? "[field1]" : "")
                  Content-Length: 0

                ]]>
              </send>
            """
        }
        // Each try is its own pair of send elements, so each REGISTER has a branch of its own (`[branch]` follows the
        // element; a jump back to the same element would repeat it, and a repeated branch is a retransmission).
        func register(_ round: Int, tries: Int) -> String {
            (1...tries).map { attempt in
                let last = attempt == tries
                let busy = last ? "" : "  <recv response=\"503\" optional=\"true\" next=\"w\(round)-\(attempt)\"/>\n"
                return request(auth: false) + "\n" + busy + "  <recv response=\"401\" auth=\"true\"/>\n" + request(auth: true) + "\n" + busy
                    + "  <recv response=\"200\" next=\"d\(round)\"/>\n"
                    + (last ? "" : "  <label id=\"w\(round)-\(attempt)\"/>\n  <pause distribution=\"uniform\" min=\"2000\" max=\"6000\"/>\n")
            }.joined() + "  <label id=\"d\(round)\"/>\n"
        }
        return """
            <?xml version="1.0" encoding="ISO-8859-1" ?>
            <scenario name="register-burst">
            \(register(1, tries: 16))
            \(register(2, tries: 16))
            </scenario>
            """
    }()

    /// The issue's size by default: 500 phones, 2,000 REGISTERs without the retries (the test runs with no other
    /// process-starting test beside it); `TRONCAL_REGISTRATION_BURST=N` another size, 0 to skip.
    static var burstSize: Int { Int(ProcessInfo.processInfo.environment["TRONCAL_REGISTRATION_BURST"] ?? "") ?? 500 }

    struct Registration: Decodable {
        var extensionNumber: String
        var instance: String
        var contact: String
        var expiresInSeconds: Int
    }

    @Test func anIdlePhoneRegisteredOverUDPGetsKeepAliveOptionsFromTheSBCPort() async throws {
        let site = try await CallSite(pbx: true, routing: false) { config, _ in
            config.pbx.digestAlgorithms = ["MD5", "SHA-256"]
            config.sbc.keepAliveSeconds = 1
        }
        defer { site.remove() }
        for (kind, text) in [("tenants", Self.tenants), ("extensions", Self.extensions)] {
            let file = site.directory.url.appendingPathComponent("\(kind).csv")
            try Data(text.utf8).write(to: file)
            #expect(try await site.troncal(["pbx", "import", kind, file.path]).status == 0)
        }
        // Register, then stay idle for 4 s: the SBC's OPTIONS come to the phone's port (sipp, which maps requests to
        // its calls by Call-ID, notes each as a message outside any call in its error file).
        let scenario = Self.register(final: 200).replacingOccurrences(of: "</scenario>", with: """
              <pause milliseconds="4000"/>
            </scenario>
            """)
        let phone = try sipp(site, "idle", scenario: scenario, users: [("101", "secret-101-pw")], slot: 4)
        #expect(await phone.finish() == 0, "\(phone.report)\n\(site.logs)")
        // From the SBC's SIP address and port (the one the phone's NAT has mapped), to the phone's.
        let trace = String(decoding: (try? Data(contentsOf: phone.errors)) ?? Data(), as: UTF8.self)
        #expect(trace.contains("OPTIONS sip:\(CallSite.customerAddress):\(site.port(4)) SIP/2.0"), "\(trace.suffix(2000))")
        #expect(trace.contains("Via: SIP/2.0/UDP \(CallSite.sbcAddress):\(site.sipPort);branch=z9hG4bK"), "\(trace.suffix(2000))")
        await site.stop()
    }

    @Test func withOnePBXInstanceKilledRegistrationsAndCallsAreServedByTheOtherAndNoBindingIsLost() async throws {
        guard let database = try await TestPostgresDatabase.create(prefix: "pbx_failover") else { return }
        let url = try #require(database.components)
        let site: CallSite
        do {
            site = try await CallSite(pbx: true, pbxInstances: 2, routing: false) { config, offset in
                config.pbx.digestAlgorithms = ["MD5", "SHA-256"]
                config.sbc.registrationAttemptMilliseconds = 1000
                config.store.backend = "postgres"
                config.store.postgres.host = url.host ?? "127.0.0.1"
                config.store.postgres.port = url.port ?? 5432
                config.store.postgres.user = url.user ?? "postgres"
                config.store.postgres.password = url.password ?? ""
                config.store.postgres.database = database.name
                config.instances.append(InstanceSettings(role: .pbx, name: "pbx-2", linkPort: 7109 + offset, adminPort: 8109 + offset, sipPort: 5071 + offset))
            }
        } catch {
            await database.drop()
            throw error
        }
        defer {
            site.remove()
            Task { await database.drop() }
        }
        for (kind, text) in [("tenants", Self.tenants), ("extensions", Self.extensions)] {
            let file = site.directory.url.appendingPathComponent("\(kind).csv")
            try Data(text.utf8).write(to: file)
            #expect(try await site.troncal(["pbx", "import", kind, file.path]).status == 0)
        }
        let first = try sipp(site, "before", scenario: Self.register(final: 200), users: [("101", "secret-101-pw")], slot: 5)
        #expect(await first.finish() == 0, "\(first.report)\n\(site.logs)")

        // The instance that took 101's registration dies (SIGKILL): 101's next REGISTER (the SBC sends an address of
        // record to the same instance while it answers) and 102's are served by the other within the SBC's attempt
        // timeout, and the binding the dead instance wrote is still there for the survivor.
        let (_, before) = try await site.troncal(["pbx", "registrations", "--json"])
        let holder = try #require(try JSONDecoder().decode([Registration].self, from: Data(before.utf8)).first?.instance, "\(before)")
        let survivor = holder == "pbx-1" ? "pbx-2" : "pbx-1"
        let killed = site.process(holder)
        kill(killed.pid, SIGKILL)
        killed.process.waitUntilExit()
        let second = try sipp(
            site, "after", scenario: Self.register(final: 200), users: [("101", "secret-101-pw"), ("102", "secret-102-pw")], slot: 6)
        #expect(await second.finish() == 0, "\(second.report)\n\(site.logs)")
        let (code, listed) = try await site.troncal(["pbx", "registrations", "--instance", survivor, "--json"])
        #expect(code == 0, "\(listed)")
        let registrations = try JSONDecoder().decode([Registration].self, from: Data(listed.utf8))
        // 101 twice (its first contact and the new one: another sipp port), 102 once; the new ones by the survivor.
        #expect(registrations.map(\.extensionNumber).sorted() == ["101", "101", "102"], "\(listed)")
        #expect(registrations.filter { $0.contact.contains(":\(site.port(6))") }.allSatisfy { $0.instance == survivor }, "\(listed)")

        // New calls are served by the survivor too: the SBC passes over the dead instance (after its setup time, 2 s
        // here) when the call's Call-ID picks it first.
        let bob = try await PBXCallTests.answeringPhone(site, "102", password: "secret-102-pw", slot: 7, scenario: SippScenarios.carrier())
        let ana = try PBXCallTests.callingPhone(site, "101", password: "secret-101-pw", calling: "102", slot: 8, callerHangsUp: true)
        #expect(await ana.finish() == 0, "\(ana.report)\n\(site.logs)")
        #expect(await bob.finish(timeout: .seconds(20)) == 0, "\(bob.report)\n\(site.logs)")
        #expect(site.process(survivor).outputText.contains("call ended"), "\(site.logs)")
        await ana.stop()
        await bob.stop()
        await site.stop()
    }
}
