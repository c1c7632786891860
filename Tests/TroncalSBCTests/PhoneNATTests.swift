import Foundation
import Logging
import TestSupport
import Testing
import TroncalProtocol
import TroncalRuntime

/// A phone behind a NAT, built by the test in network namespaces: the site (SBC and PBX) in one, a router that
/// masquerades with a 30 s UDP conntrack timeout in another, the phones on a private network in a third. Nothing
/// touches the machine's own network; the namespaces are deleted at the end.
@Suite(.serialized, .startsProcesses) struct PhoneNATTests {
    static let ip = NetworkNamespaces.ip
    static var canMakeNATs: Bool {
        NetworkNamespaces.available && Sipp.executable != nil && FileManager.default.isExecutableFile(atPath: "/usr/sbin/iptables")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") && kernelHasNAT
    }

    /// Whether this kernel gives a namespace a NAT table and its own conntrack UDP timeouts (asked once, in a
    /// throwaway namespace): without them the test cannot build its NAT, and says so instead of failing.
    static let kernelHasNAT: Bool = {
        let probe = "tn-probe-\(getpid())"
        func run(_ arguments: [String]) -> Bool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: NetworkNamespaces.ip)
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return false }
            process.waitUntilExit()
            return process.terminationStatus == 0
        }
        guard run(["netns", "add", probe]) else { return false }
        defer { NetworkNamespaces.delete([probe]) }
        return run(["netns", "exec", probe, "/usr/sbin/iptables", "-t", "nat", "-L", "-n"])
            && run(["netns", "exec", probe, "/usr/sbin/sysctl", "-q", "-w", "net.netfilter.nf_conntrack_udp_timeout=30"])
    }()

    static func inNamespace(_ namespace: String, _ command: [String]) async throws -> (status: Int32, output: String) {
        try await NetworkNamespaces.run(in: namespace, command)
    }

    /// The phone's side of sipp's trace: the time of the first message starting with `start`.
    static func firstTime(of start: String, in trace: String) -> Date? { PBXCallTests.firstTime(of: start, in: trace) }

    /// The namespaces, the site in them (SBC and PBX with tenant acme's extensions 101 and 102), and cleaning up.
    final class Lab: @unchecked Sendable {
        // @unchecked: used by one test task at a time.
        let tag = String(UInt32.random(in: 0..<UInt32.max), radix: 16)
        let site: String, router: String, phones: String
        let directory: TemporaryDirectory
        var children: [ChildProcess] = []
        var sipps: [Sipp] = []
        var config: SiteConfig
        let offset: Int
        let binaries = troncalBinaryDirectory()

        var sbc: String { "10.252.1.1:\(config.sip.udpPort)" }
        var logs: String { children.map { $0.outputText.suffix(3000) }.joined(separator: "\n---\n") }

        init() async throws {
            site = "tn-\(tag)-s"
            router = "tn-\(tag)-r"
            phones = "tn-\(tag)-p"
            directory = try TemporaryDirectory(prefix: "troncal-nat")
            offset = await freePortOffset()
            config = SiteConfig().shiftingPorts(by: offset)
        }

        /// `digestAlgorithms`: what the PBX offers (sipp answers the first challenge; baresip 1.0 gives up on the
        /// registration when any challenge is not MD5).
        func build(digestAlgorithms: [String] = ["MD5", "SHA-256"]) async throws {
            try await NetworkNamespaces.make([site, router, phones])
            // Site 10.252.1.1 — 10.252.1.2 router 192.168.252.1 — 192.168.252.2 phones (behind the router's masquerade).
            try await NetworkNamespaces.ip(["link", "add", "tn\(tag)s", "netns", site, "type", "veth", "peer", "name", "tn\(tag)o", "netns", router])
            try await NetworkNamespaces.ip(["link", "add", "tn\(tag)p", "netns", phones, "type", "veth", "peer", "name", "tn\(tag)i", "netns", router])
            for (namespace, device, address) in [
                (site, "tn\(tag)s", "10.252.1.1/30"), (router, "tn\(tag)o", "10.252.1.2/30"), (router, "tn\(tag)i", "192.168.252.1/24"),
                (phones, "tn\(tag)p", "192.168.252.2/24"),
            ] {
                try await NetworkNamespaces.ip(["-n", namespace, "address", "add", address, "dev", device])
                try await NetworkNamespaces.ip(["-n", namespace, "link", "set", device, "up"])
            }
            try await NetworkNamespaces.ip(["-n", phones, "route", "add", "default", "via", "192.168.252.1"])
            for setting in ["net.ipv4.ip_forward=1", "net.netfilter.nf_conntrack_udp_timeout=30", "net.netfilter.nf_conntrack_udp_timeout_stream=30"] {
                let (status, output) = try await PhoneNATTests.inNamespace(router, ["/usr/sbin/sysctl", "-q", "-w", setting])
                guard status == 0 else { throw CallSiteError("\(setting): \(output)") }
            }
            let masquerade = try await PhoneNATTests.inNamespace(
                router, ["/usr/sbin/iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "tn\(tag)o", "-j", "MASQUERADE"])
            guard masquerade.status == 0 else { throw CallSiteError("iptables: \(masquerade.output)") }

            // The site: the SBC on the site's address, the PBX on the namespace's loopback (it hears the SBC's SIP from
            // the SBC's address: a trusted source).
            config.site = "nat"
            config.sip.listenAddress = "10.252.1.1"
            config.sbc.advertisedAddress = "10.252.1.1"
            config.pbx.trustedSources = ["10.252.1.1"]
            config.pbx.digestAlgorithms = digestAlgorithms
            let siteFile = directory.url.appendingPathComponent("site.json")
            try ConfigLoader.encode(config).write(to: siteFile)
            let pki = try await ChildProcess.run(binaries.appendingPathComponent("troncal"), ["pki", "init", "--data-dir", directory.url.path])
            guard pki.status == 0 else { throw CallSiteError("pki init: \(pki.output)") }
            for instance in ["pbx-1", "sbc-1"] {
                let role = String(instance.prefix { $0 != "-" })
                children.append(try ChildProcess(
                    URL(fileURLWithPath: PhoneNATTests.ip),
                    ["netns", "exec", site, binaries.appendingPathComponent("troncal-\(role)").path, "--config", siteFile.path, "--instance", instance],
                    output: directory.url.appendingPathComponent("\(role).log")))
            }
            for instance in ["pbx-1", "sbc-1"] {
                guard let admin = config.instance(named: instance)?.adminPort else { throw CallSiteError("no \(instance)") }
                let up = await eventually(timeout: .seconds(30), interval: .milliseconds(200)) { [site] in
                    ((try? await PhoneNATTests.inNamespace(site, ["/usr/bin/curl", "-sf", "http://127.0.0.1:\(admin)/health"]))?.status ?? 1) == 0
                }
                guard up else { throw CallSiteError("\(instance) did not come up\n\(logs)") }
            }
            for (kind, text) in [("tenants", RegistrationTests.tenants), ("extensions", RegistrationTests.extensions)] {
                let file = directory.url.appendingPathComponent("\(kind).csv")
                try Data(text.utf8).write(to: file)
                let imported = try await troncal(["pbx", "import", kind, file.path])
                guard imported.status == 0 else { throw CallSiteError("pbx import \(kind): \(imported.output)") }
            }
        }

        /// The CLI, in the site's namespace (the PBX's link port is on its loopback).
        func troncal(_ arguments: [String]) async throws -> (status: Int32, output: String) {
            try await PhoneNATTests.inNamespace(site, [binaries.appendingPathComponent("troncal").path] + arguments + ["--data-dir", directory.url.path])
        }

        func remove() {
            for child in children + sipps.map(\.child) where child.isRunning {
                kill(child.pid, SIGKILL)
                child.process.waitUntilExit()
            }
            NetworkNamespaces.delete([site, router, phones])
            releasePortOffset(offset)
            if let keep = ProcessInfo.processInfo.environment["TRONCAL_KEEP_TEST_FILES"], !keep.isEmpty {
                try? FileManager.default.copyItem(at: directory.url, to: URL(fileURLWithPath: keep).appendingPathComponent(directory.url.lastPathComponent))
            }
            directory.remove()
        }
    }

    @Test(.enabled(if: canMakeNATs, "needs root, ip, iptables, curl, sipp and a kernel with NAT in network namespaces"))
    func aPhoneBehindANATIdleForTwoMinutesStillReceivesACallWithinTwoSeconds() async throws {
        let lab = try await Lab()
        defer { lab.remove() }
        try await lab.build()
        let directory = lab.directory, phones = lab.phones, sbc = lab.sbc
        var logs: String { lab.logs }

        // 102 registers from behind the NAT, then a sipp answering calls (and the SBC's keep-alive OPTIONS) holds its port.
        let credentials = directory.url.appendingPathComponent("bob.csv")
        try Data("SEQUENTIAL\n102;[authentication username=102 password=secret-102-pw]\n".utf8).write(to: credentials)
        let registration = try Sipp(
            "register-102", scenario: RegistrationTests.register(final: 200), in: directory, address: "192.168.252.2", port: 5080, mediaPort: 5082,
            arguments: [sbc, "-inf", credentials.path, "-m", "1"], namespace: phones)
        lab.sipps.append(registration)
        #expect(await registration.finish() == 0, "\(registration.report)\n\(logs)")
        let bob = try Sipp(
            "phone-102", scenario: SippScenarios.carrier(), in: directory, address: "192.168.252.2", port: 5080, mediaPort: 5082,
            // No call limit: sipp counts each keep-alive it answers (-aa) as a call. It runs until the test stops it.
            arguments: ["-aa", "-timeout", "400s"], namespace: phones)
        lab.sipps.append(bob)
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
        lab.sipps.append(ana)
        // The caller's call completed: answered by 102, hung up, the BYE answered.
        #expect(await ana.finish() == 0, "\(ana.report)\n\(bob.messageText.suffix(3000))\n\(logs)")
        // The BYE reaches 102 through the PBX and the SBC after 101's was answered: waited for, not assumed.
        let byeReached = await eventually(timeout: .seconds(10)) { bob.messageText.contains("BYE sip:") }
        #expect(byeReached, "\(bob.messageText.suffix(3000))")
        // The INVITE reached the idle phone within 2 s of the caller sending its own.
        let sent = try #require(Self.firstTime(of: "INVITE sip:", in: ana.messageText), "\(ana.messageText.suffix(2000))")
        let received = try #require(Self.firstTime(of: "INVITE sip:", in: bob.messageText), "\(bob.messageText.suffix(2000))")
        #expect(received.timeIntervalSince(sent) < 2, "the call reached the phone \(received.timeIntervalSince(sent)) s after it was placed")
        // And it came through the NAT: the phone's registered contact is its private address, which the site cannot reach.
        let registrations = try await lab.troncal(["pbx", "registrations", "--json"])
        #expect(registrations.output.contains("192.168.252.2:5080"), "\(registrations.output)")
        for child in lab.children { await child.stop() }
    }

    static var canRunBaresip: Bool {
        canMakeNATs && FileManager.default.isExecutableFile(atPath: "/usr/bin/baresip") && FileManager.default.isExecutableFile(atPath: "/usr/bin/sox")
    }

    /// A baresip phone's configuration directory: SIP on `port` of the phones' address, `tone` (a WAV) as its
    /// microphone, what it hears (and sends) dumped as WAV files into `recordings`, calls answered at once.
    static func baresip(
        _ lab: Lab, number: String, password: String, port: Int, rtpPorts: ClosedRange<Int>, frequency: Int, register: Bool
    ) async throws -> (configuration: URL, recordings: URL) {
        let folder = lab.directory.url.appendingPathComponent("baresip-\(number)-\(register ? "r" : "c")")
        let recordings = lab.directory.url.appendingPathComponent("heard-\(number)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: recordings, withIntermediateDirectories: true)
        let tone = lab.directory.url.appendingPathComponent("tone-\(frequency).wav")
        if !FileManager.default.fileExists(atPath: tone.path) {
            let made = try await ChildProcess.run(
                URL(fileURLWithPath: "/usr/bin/sox"), ["-n", "-r", "8000", "-c", "1", "-b", "16", tone.path, "synth", "60", "sine", "\(frequency)"])
            guard made.status == 0 else { throw CallSiteError("sox: \(made.output)") }
        }
        let config = """
            sip_listen 192.168.252.2:\(port)
            module_path /usr/lib/baresip/modules
            module g711.so
            module aufile.so
            module alsa.so
            module sndfile.so
            module menu.so
            module account.so
            audio_source aufile,\(tone.path)
            audio_player alsa,null
            audio_alert alsa,null
            snd_path \(recordings.path)
            rtp_ports \(rtpPorts.lowerBound)-\(rtpPorts.upperBound)

            """
        try Data(config.utf8).write(to: folder.appendingPathComponent("config"))
        let account = "<sip:\(number)@acme>;auth_pass=\(password);outbound=\"sip:\(lab.sbc)\";regint=\(register ? 300 : 0);answermode=auto;audio_codecs=PCMU\n"
        try Data(account.utf8).write(to: folder.appendingPathComponent("accounts"))
        return (folder, recordings)
    }

    /// Rough frequency and RMS amplitude of a recording, its first second left out (the call's start).
    static func tone(of file: URL) async throws -> (frequency: Double, amplitude: Double) {
        let (_, output) = try await ChildProcess.run(URL(fileURLWithPath: "/usr/bin/sox"), [file.path, "-n", "trim", "1", "stat"])
        func value(_ label: String) -> Double? {
            output.split(separator: "\n").first { $0.hasPrefix(label) }.flatMap { $0.split(separator: ":").last }
                .flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        }
        guard let frequency = value("Rough   frequency"), let amplitude = value("RMS     amplitude") else {
            throw CallSiteError("sox stat of \(file.lastPathComponent): \(output)")
        }
        return (frequency, amplitude)
    }

    /// A real phone (baresip) on each side of a call between extensions, through the SBC's relay twice and the PBX:
    /// 101 sends a 1 kHz tone, 102 a 2 kHz one; each records what it hears, and `sox` finds the other's tone in each
    /// recording, so one-way audio (or audio sent back to its sender) is caught.
    @Test(.enabled(if: canRunBaresip, "needs root, ip, iptables, curl, sipp, baresip, sox and a kernel with NAT in network namespaces"))
    func twoBaresipPhonesHearEachOthersToneThroughTheSBCAndThePBX() async throws {
        let lab = try await Lab()
        defer { lab.remove() }
        // Debian's baresip (1.0) fails a registration challenged with SHA-256 beside MD5 ("Function not implemented").
        try await lab.build(digestAlgorithms: ["MD5"])
        let baresip = URL(fileURLWithPath: "/usr/bin/baresip")
        func registered(_ number: String) async -> Bool {
            await eventually(timeout: .seconds(30), interval: .milliseconds(250)) {
                ((try? await lab.troncal(["pbx", "registrations", "--extension", number, "--tenant", "acme", "--json"]))?.output ?? "")
                    .contains("192.168.252.2")
            }
        }
        // 102 answers every call.
        let bob = try await Self.baresip(lab, number: "102", password: "secret-102-pw", port: 5070, rtpPorts: 17200...17299, frequency: 2000, register: true)
        let bobPhone = try ChildProcess(
            URL(fileURLWithPath: Self.ip), ["netns", "exec", lab.phones, baresip.path, "-f", bob.configuration.path, "-t", "90"],
            output: lab.directory.url.appendingPathComponent("baresip-102.log"))
        lab.children.append(bobPhone)
        #expect(await registered("102"), "102 did not register\n\(bobPhone.outputText.suffix(3000))\n\(lab.logs)")
        // 101 registers (then is stopped without unregistering), and calls from the same port: its flow is registered.
        let anaRegistration = try await Self.baresip(lab, number: "101", password: "secret-101-pw", port: 5060, rtpPorts: 17000...17099, frequency: 1000, register: true)
        let registering = try ChildProcess(
            URL(fileURLWithPath: Self.ip), ["netns", "exec", lab.phones, baresip.path, "-f", anaRegistration.configuration.path, "-t", "60"],
            output: lab.directory.url.appendingPathComponent("baresip-101-register.log"))
        lab.children.append(registering)
        #expect(await registered("101"), "101 did not register\n\(registering.outputText.suffix(3000))\n\(lab.logs)")
        kill(registering.pid, SIGKILL)
        registering.process.waitUntilExit()
        let ana = try await Self.baresip(lab, number: "101", password: "secret-101-pw", port: 5060, rtpPorts: 17000...17099, frequency: 1000, register: false)
        let anaPhone = try ChildProcess(
            URL(fileURLWithPath: Self.ip), ["netns", "exec", lab.phones, baresip.path, "-f", ana.configuration.path, "-e", "/dial 102", "-t", "8"],
            output: lab.directory.url.appendingPathComponent("baresip-101.log"))
        lab.children.append(anaPhone)
        let hungUp = await eventually(timeout: .seconds(40), interval: .milliseconds(250)) { !anaPhone.isRunning }
        #expect(hungUp, "101's call did not end\n\(anaPhone.outputText.suffix(3000))")
        // The call ended at 102 too: its recording is closed.
        let bobDone = await eventually(timeout: .seconds(20), interval: .milliseconds(250)) { bobPhone.outputText.contains("terminated") }
        #expect(bobDone, "\(bobPhone.outputText.suffix(3000))\n\(lab.logs)")
        await bobPhone.stop()

        func heard(_ folder: URL) throws -> URL {
            let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix("-dec.wav") }
            return folder.appendingPathComponent(try #require(files.sorted().last, "nothing recorded in \(folder.lastPathComponent)"))
        }
        let anaHeard = try await Self.tone(of: try heard(ana.recordings))
        let bobHeard = try await Self.tone(of: try heard(bob.recordings))
        Logger(label: "test.phones").notice(
            "baresip through the SBC and PBX: 101 heard \(anaHeard.frequency) Hz (RMS \(anaHeard.amplitude)), 102 heard \(bobHeard.frequency) Hz (RMS \(bobHeard.amplitude))")
        #expect(bobHeard.amplitude > 0.05 && (850...1150).contains(bobHeard.frequency), "102 heard \(bobHeard)\n\(lab.logs)")
        #expect(anaHeard.amplitude > 0.05 && (1700...2300).contains(anaHeard.frequency), "101 heard \(anaHeard)\n\(lab.logs)")
    }
}
