import Foundation
import TestSupport
import Testing
import TroncalRuntime

/// Phones register through the SBC to the PBX's registrar: digest against the extension's password, the SBC's Path
/// with a flow token, bindings answered with their expiry; a wrong password and an unknown extension get the same 403.
@Suite(.serialized) struct RegistrationTests {
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
        let site = try await CallSite(pbx: true) { config, offset in
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
}
