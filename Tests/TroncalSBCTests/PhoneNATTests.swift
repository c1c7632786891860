import Foundation
import TestSupport
import Testing
import TroncalProtocol
import TroncalRuntime

/// A phone behind a NAT, built by the test in network namespaces: the site (SBC and PBX) in one, a router that
/// masquerades with a 30 s UDP conntrack timeout in another, the phones on a private network in a third. Nothing
/// touches the machine's own network; the namespaces are deleted at the end.
@Suite(.serialized, .startsProcesses) struct PhoneNATTests {
    static let ip = "/usr/sbin/ip"
    static var canMakeNATs: Bool {
        getuid() == 0 && Sipp.executable != nil && FileManager.default.isExecutableFile(atPath: ip)
            && FileManager.default.isExecutableFile(atPath: "/usr/sbin/iptables") && FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")
    }

    static func ip(_ arguments: [String]) async throws {
        let (status, output) = try await ChildProcess.run(URL(fileURLWithPath: ip), arguments)
        guard status == 0 else { throw CallSiteError("ip \(arguments.joined(separator: " ")): \(output)") }
    }

    static func inNamespace(_ namespace: String, _ command: [String]) async throws -> (status: Int32, output: String) {
        try await ChildProcess.run(URL(fileURLWithPath: ip), ["netns", "exec", namespace] + command)
    }

    /// The phone's side of sipp's trace: the time of the first message starting with `start`.
    static func firstTime(of start: String, in trace: String) -> Date? { PBXCallTests.firstTime(of: start, in: trace) }

    @Test(.enabled(if: canMakeNATs, "needs root, ip, iptables, curl and sipp"))
    func aPhoneBehindANATIdleForTwoMinutesStillReceivesACallWithinTwoSeconds() async throws {
        let tag = String(UInt32.random(in: 0..<UInt32.max), radix: 16)
        let site = "tn-\(tag)-s", router = "tn-\(tag)-r", phones = "tn-\(tag)-p"
        let directory = try TemporaryDirectory(prefix: "troncal-nat")
        var children: [ChildProcess] = []
        var sipps: [Sipp] = []
        defer {
            for child in children + sipps.map(\.child) where child.isRunning {
                kill(child.pid, SIGKILL)
                child.process.waitUntilExit()
            }
            for namespace in [site, router, phones] {
                let delete = Process()
                delete.executableURL = URL(fileURLWithPath: Self.ip)
                delete.arguments = ["netns", "delete", namespace]
                try? delete.run()
                delete.waitUntilExit()
            }
            if let keep = ProcessInfo.processInfo.environment["TRONCAL_KEEP_TEST_FILES"], !keep.isEmpty {
                try? FileManager.default.copyItem(at: directory.url, to: URL(fileURLWithPath: keep).appendingPathComponent(directory.url.lastPathComponent))
            }
            directory.remove()
        }
        for namespace in [site, router, phones] {
            try await Self.ip(["netns", "add", namespace])
            try await Self.ip(["-n", namespace, "link", "set", "lo", "up"])
        }
        // Site 10.252.1.1 — 10.252.1.2 router 192.168.252.1 — 192.168.252.2 phones (behind the router's masquerade).
        try await Self.ip(["link", "add", "tn\(tag)s", "netns", site, "type", "veth", "peer", "name", "tn\(tag)o", "netns", router])
        try await Self.ip(["link", "add", "tn\(tag)p", "netns", phones, "type", "veth", "peer", "name", "tn\(tag)i", "netns", router])
        for (namespace, device, address) in [
            (site, "tn\(tag)s", "10.252.1.1/30"), (router, "tn\(tag)o", "10.252.1.2/30"), (router, "tn\(tag)i", "192.168.252.1/24"),
            (phones, "tn\(tag)p", "192.168.252.2/24"),
        ] {
            try await Self.ip(["-n", namespace, "address", "add", address, "dev", device])
            try await Self.ip(["-n", namespace, "link", "set", device, "up"])
        }
        try await Self.ip(["-n", phones, "route", "add", "default", "via", "192.168.252.1"])
        for setting in ["net.ipv4.ip_forward=1", "net.netfilter.nf_conntrack_udp_timeout=30", "net.netfilter.nf_conntrack_udp_timeout_stream=30"] {
            let (status, output) = try await Self.inNamespace(router, ["/usr/sbin/sysctl", "-q", "-w", setting])
            #expect(status == 0, "\(setting): \(output)")
        }
        let masquerade = try await Self.inNamespace(router, ["/usr/sbin/iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "tn\(tag)o", "-j", "MASQUERADE"])
        #expect(masquerade.status == 0, "\(masquerade.output)")

        // The site: the SBC on the site's address, the PBX on the namespace's loopback (it hears the SBC's SIP from the
        // SBC's address: a trusted source).
        let offset = await freePortOffset()
        defer { releasePortOffset(offset) }
        var config = SiteConfig().shiftingPorts(by: offset)
        config.site = "nat"
        config.sip.listenAddress = "10.252.1.1"
        config.sbc.advertisedAddress = "10.252.1.1"
        config.pbx.trustedSources = ["10.252.1.1"]
        config.pbx.digestAlgorithms = ["MD5", "SHA-256"]
        let siteFile = directory.url.appendingPathComponent("site.json")
        try ConfigLoader.encode(config).write(to: siteFile)
        let binaries = troncalBinaryDirectory()
        let pki = try await ChildProcess.run(binaries.appendingPathComponent("troncal"), ["pki", "init", "--data-dir", directory.url.path])
        #expect(pki.status == 0, "\(pki.output)")
        for instance in ["pbx-1", "sbc-1"] {
            let role = String(instance.prefix { $0 != "-" })
            children.append(try ChildProcess(
                URL(fileURLWithPath: Self.ip),
                ["netns", "exec", site, binaries.appendingPathComponent("troncal-\(role)").path, "--config", siteFile.path, "--instance", instance],
                output: directory.url.appendingPathComponent("\(role).log")))
        }
        var logs: String { children.map { $0.outputText.suffix(3000) }.joined(separator: "\n---\n") }
        for instance in ["pbx-1", "sbc-1"] {
            let admin = try #require(config.instance(named: instance)).adminPort
            let up = await eventually(timeout: .seconds(30), interval: .milliseconds(200)) {
                ((try? await Self.inNamespace(site, ["/usr/bin/curl", "-sf", "http://127.0.0.1:\(admin)/health"]))?.status ?? 1) == 0
            }
            #expect(up, "\(instance) did not come up\n\(logs)")
        }
        for (kind, text) in [("tenants", RegistrationTests.tenants), ("extensions", RegistrationTests.extensions)] {
            let file = directory.url.appendingPathComponent("\(kind).csv")
            try Data(text.utf8).write(to: file)
            let imported = try await Self.inNamespace(
                site, [binaries.appendingPathComponent("troncal").path, "pbx", "import", kind, file.path, "--data-dir", directory.url.path])
            #expect(imported.status == 0, "\(imported.output)")
        }

        // 102 registers from behind the NAT, then a sipp answering calls (and the SBC's keep-alive OPTIONS) holds its port.
        let sbc = "10.252.1.1:\(config.sip.udpPort)"
        let credentials = directory.url.appendingPathComponent("bob.csv")
        try Data("SEQUENTIAL\n102;[authentication username=102 password=secret-102-pw]\n".utf8).write(to: credentials)
        let registration = try Sipp(
            "register-102", scenario: RegistrationTests.register(final: 200), in: directory, address: "192.168.252.2", port: 5080, mediaPort: 5082,
            arguments: [sbc, "-inf", credentials.path, "-m", "1"], namespace: phones)
        sipps.append(registration)
        #expect(await registration.finish() == 0, "\(registration.report)\n\(logs)")
        let bob = try Sipp(
            "phone-102", scenario: SippScenarios.carrier(), in: directory, address: "192.168.252.2", port: 5080, mediaPort: 5082,
            // No call limit: sipp counts each keep-alive it answers (-aa) as a call. It runs until the test stops it.
            arguments: ["-aa", "-timeout", "400s"], namespace: phones)
        sipps.append(bob)
        try await bob.listening()

        // Two minutes with nothing from the phone: four times the NAT's UDP timeout. (The idle time is what is tested,
        // not a wait for something to happen.)
        try await Task.sleep(for: .seconds(120))
        let keptAlive = bob.messageText.components(separatedBy: "OPTIONS sip:").count - 1
        #expect(keptAlive >= 4, "\(keptAlive) keep-alives in two minutes")

        // 101, behind the same NAT, registers and calls 102.
        let calling = directory.url.appendingPathComponent("ana.csv")
        try Data("SEQUENTIAL\n101;[authentication username=101 password=secret-101-pw]\n".utf8).write(to: calling)
        let ana = try Sipp(
            "phone-101", scenario: PBXCallTests.registerThenCall(callerHangsUp: true), in: directory, address: "192.168.252.2", port: 5090,
            mediaPort: 5092, arguments: [sbc, "-inf", calling.path, "-s", "102", "-m", "1", "-l", "1"], namespace: phones)
        sipps.append(ana)
        // The caller's call completed: answered by 102, hung up, the BYE answered.
        #expect(await ana.finish() == 0, "\(ana.report)\n\(bob.messageText.suffix(3000))\n\(logs)")
        #expect(bob.messageText.contains("BYE sip:"), "\(bob.messageText.suffix(3000))")
        // The INVITE reached the idle phone within 2 s of the caller sending its own.
        let sent = try #require(Self.firstTime(of: "INVITE sip:", in: ana.messageText), "\(ana.messageText.suffix(2000))")
        let received = try #require(Self.firstTime(of: "INVITE sip:", in: bob.messageText), "\(bob.messageText.suffix(2000))")
        #expect(received.timeIntervalSince(sent) < 2, "the call reached the phone \(received.timeIntervalSince(sent)) s after it was placed")
        // And it came through the NAT: the phone's registered contact is its private address, which the site cannot reach.
        let registrations = try await Self.inNamespace(
            site, [binaries.appendingPathComponent("troncal").path, "pbx", "registrations", "--json", "--data-dir", directory.url.path])
        #expect(registrations.output.contains("192.168.252.2:5080"), "\(registrations.output)")
        for child in children { await child.stop() }
    }
}
