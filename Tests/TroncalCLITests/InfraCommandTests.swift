import Foundation
import Testing
import TestSupport

/// `troncal infra check|render` on the sample two-site inventory: the rendered files are accepted by the tools that
/// will run them (systemd-analyze verify, wg-quick strip, keepalived -t); a bad inventory is refused with reasons.
@Suite(.startsProcesses) struct InfraCommandTests {
    let troncal = troncalBinaryDirectory().appendingPathComponent("troncal")
    static let sample = "infra/inventory.sample.json"

    /// The sample, with the executables where this build put them (systemd-analyze checks ExecStart exists).
    func sampleInventory(in directory: TemporaryDirectory) throws -> URL {
        var text = try String(contentsOfFile: Self.sample, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"binDirectory\": \"/usr/bin\"", with: "\"binDirectory\": \"\(troncalBinaryDirectory().path)\"")
        let url = directory.url.appendingPathComponent("inventory.json")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    static func tool(_ name: String) -> URL? {
        ["/usr/bin", "/usr/sbin", "/bin", "/sbin"].map { URL(fileURLWithPath: "\($0)/\(name)") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    @Test(.enabled(if: tool("systemd-analyze") != nil && tool("wg-quick") != nil && tool("keepalived") != nil,
                   "systemd-analyze, wg-quick (wireguard-tools) or keepalived is not installed"))
    func theSampleInventoryRendersFilesTheirToolsAccept() async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-infra")
        defer { directory.remove() }
        let inventory = try sampleInventory(in: directory)
        let (checked, checkOutput) = try await ChildProcess.run(troncal, ["infra", "check", "--inventory", inventory.path])
        #expect(checked == 0, "\(checkOutput)")
        let out = directory.url.appendingPathComponent("rendered")
        let (rendered, renderOutput) = try await ChildProcess.run(troncal, ["infra", "render", "--inventory", inventory.path, "--out", out.path])
        #expect(rendered == 0, "\(renderOutput)")

        // systemd: every unit to enable, as the instance of its template.
        let a1 = out.appendingPathComponent("site-a/a1")
        let enable = try String(contentsOf: a1.appendingPathComponent("systemd/enable.txt"), encoding: .utf8)
        #expect(enable.split(separator: "\n").sorted() == [
            "troncal-billing@billing-1.service", "troncal-monitor@monitor-1.service", "troncal-pbx@pbx-1.service",
            "troncal-routing@routing-1.service", "troncal-sbc@sbc-1.service",
        ])
        let a3 = out.appendingPathComponent("site-a/a3")
        #expect(try String(contentsOf: a3.appendingPathComponent("systemd/standby.txt"), encoding: .utf8)
            == "troncal-sbc@sbc-3.service\ntroncal-routing@routing-3.service\n")
        let units = directory.url.appendingPathComponent("units")
        try FileManager.default.createDirectory(at: units, withIntermediateDirectories: true)
        for name in enable.split(separator: "\n").map(String.init) {
            let template = name.replacingOccurrences(of: #"@[^.]+\."#, with: "@.", options: .regularExpression)
            try? FileManager.default.copyItem(at: a1.appendingPathComponent("systemd/\(template)"), to: units.appendingPathComponent(template))
            try FileManager.default.createSymbolicLink(at: units.appendingPathComponent(name), withDestinationURL: units.appendingPathComponent(template))
            let (status, output) = try await ChildProcess.run(Self.tool("systemd-analyze")!, ["verify", units.appendingPathComponent(name).path])
            #expect(status == 0 && !output.contains("Unknown"), "systemd-analyze verify \(name): \(output)")
        }

        // site.json: every instance of the site with its host's address, and the PostgreSQL hosts of both sites.
        let site = try JSONSerialization.jsonObject(with: Data(contentsOf: a1.appendingPathComponent("troncal/site.json"))) as? [String: Any]
        let instances = try #require(site?["instances"] as? [[String: Any]])
        #expect(instances.count == 13)
        #expect(instances.contains { $0["name"] as? String == "sbc-2" && $0["host"] as? String == "10.1.0.12" && $0["standby"] as? Bool == false })
        // The standby pool is in every host's site.json, marked: its peers know it, the capacity controller starts it.
        #expect(instances.filter { $0["standby"] as? Bool == true }.compactMap { $0["name"] as? String }.sorted() == ["routing-3", "sbc-3"])
        // A site with a floating address: a stopping SBC takes calls while keepalived moves the address.
        #expect((site?["sbc"] as? [String: Any])?["drainGraceSeconds"] as? Int == 4)
        let postgres = (site?["store"] as? [String: Any])?["postgres"] as? [String: Any]
        #expect(postgres?["hosts"] as? [String] == ["10.1.0.11:5432", "10.2.0.11:5432"])

        // WireGuard: wg-quick's own parser reads each gateway's file.
        for (path, peers) in [("site-a/a1", 2), ("site-b/b1", 2), ("site-c/c1", 2)] {
            let source = out.appendingPathComponent("\(path)/wireguard/wg-troncal.conf")
            let (status, stripped) = try await ChildProcess.run(Self.tool("wg-quick")!, ["strip", source.path])
            #expect(status == 0, "wg-quick strip \(path): \(stripped)")
            #expect(stripped.components(separatedBy: "[Peer]").count - 1 == peers, "\(stripped)")
            #expect(!stripped.contains("PrivateKey"), "a private key was rendered")
        }

        // keepalived: the configuration test of each SBC host; the first SBC has the higher priority.
        // a3 holds the standby sbc-3: its keepalived takes part (last by priority) once the controller starts it.
        for host in ["a1", "a2", "a3"] {
            let file = out.appendingPathComponent("site-a/\(host)/keepalived/keepalived.conf")
            let (status, output) = try await ChildProcess.run(Self.tool("keepalived")!, ["-t", "-f", file.path, "-l"])
            #expect(status == 0, "keepalived -t \(host): \(output)")
        }
        let a1Keepalived = try String(contentsOf: a1.appendingPathComponent("keepalived/keepalived.conf"), encoding: .utf8)
        #expect(a1Keepalived.contains("priority 200") && a1Keepalived.contains("unicast_peer {\n        10.1.0.12"))
        #expect(a1Keepalived.contains("198.51.100.10/24 dev eth0"))
        let a3Keepalived = try String(contentsOf: a3.appendingPathComponent("keepalived/keepalived.conf"), encoding: .utf8)
        #expect(a3Keepalived.contains("priority 180") && a3Keepalived.contains("unicast_peer {\n        10.1.0.11\n        10.1.0.12\n"), "\(a3Keepalived)")
        // The spread addresses: one VRRP instance each, at home (priority 250, preempting) on its own SBC.
        #expect(a3Keepalived.contains("virtual_router_id 63\n    priority 250\n    advert_int 1\n    unicast_src_ip"), "\(a3Keepalived)")
        #expect(a1Keepalived.contains("virtual_router_id 61\n    priority 250") && a1Keepalived.contains("virtual_router_id 63\n    priority 140"), "\(a1Keepalived)")
        #expect(a3Keepalived.components(separatedBy: "vrrp_instance").count - 1 == 4)

        // Patroni and etcd: three etcd members, one per site; synchronous replication.
        let patroni = try String(contentsOf: a1.appendingPathComponent("patroni/patroni.yml"), encoding: .utf8)
        #expect(patroni.contains("hosts: 10.1.0.11:2379,10.2.0.11:2379,10.3.0.11:2379"))
        #expect(patroni.contains("synchronous_mode: true"))
        let etcd = try String(contentsOf: out.appendingPathComponent("site-c/c1/etcd/etcd.env"), encoding: .utf8)
        #expect(etcd.contains("ETCD_INITIAL_CLUSTER=\"site-a-a1=http://10.1.0.11:2380,site-b-b1=http://10.2.0.11:2380,site-c-c1=http://10.3.0.11:2380\""))
        let targets = try String(contentsOf: a1.appendingPathComponent("prometheus/troncal-targets.json"), encoding: .utf8)
        #expect(targets.contains("10.1.0.12:8101"))
    }

    @Test func aWeakInventoryIsRefusedWithEveryReason() async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-infra-bad")
        defer { directory.remove() }
        var text = try String(contentsOf: try sampleInventory(in: directory), encoding: .utf8)
        // site-a: routing-2 moved onto a1 (two routing instances on one host), billing-2 gone; one etcd member less.
        text = text.replacingOccurrences(of: "\"sbc-1\", \"routing-1\", \"billing-1\", \"pbx-1\", \"monitor-1\"], \"postgres\": true, \"etcd\": true},\n        {\"name\": \"a2\", \"address\": \"10.1.0.12\", \"instances\": [\"sbc-2\", \"routing-2\", \"billing-2\", ",
            with: "\"sbc-1\", \"routing-1\", \"routing-2\", \"billing-1\", \"pbx-1\", \"monitor-1\"], \"postgres\": true, \"etcd\": true},\n        {\"name\": \"a2\", \"address\": \"10.1.0.12\", \"instances\": [\"sbc-2\", ")
        text = text.replacingOccurrences(of: "{\"name\": \"c1\", \"address\": \"10.3.0.11\", \"etcd\": true}", with: "{\"name\": \"c1\", \"address\": \"10.3.0.11\"}")
        // The spread addresses: their router ids over the main one's, and SBCs that advertise the moving addresses.
        text = text.replacingOccurrences(of: "\"spreadRouterID\": 61", with: "\"spreadRouterID\": 50")
        text = text.replacingOccurrences(of: "\"advertiseInstanceAddress\": true", with: "\"advertiseInstanceAddress\": false")
        let url = directory.url.appendingPathComponent("weak.json")
        try text.write(to: url, atomically: true, encoding: .utf8)
        let (status, output) = try await ChildProcess.run(troncal, ["infra", "check", "--inventory", url.path])
        #expect(status != 0)
        #expect(output.contains("site site-a: billing has 1 instance(s); every service needs at least 2"), "\(output)")
        #expect(output.contains("site site-a, host a1: two routing instances on one host"), "\(output)")
        #expect(output.contains("etcd: 2 members; Patroni needs an odd number, at least 3"), "\(output)")
        #expect(output.contains("site site-a: vrrpRouterID 51 is also a spread address's"), "\(output)")
        #expect(output.contains("site site-a: sbcSpreadAddresses move between SBCs with calls up"), "\(output)")
        let (rendered, renderOutput) = try await ChildProcess.run(
            troncal, ["infra", "render", "--inventory", url.path, "--out", directory.url.appendingPathComponent("out").path])
        #expect(rendered != 0 && renderOutput.contains("--force"), "\(renderOutput)")

        try "{\"sites\": [{\"hosts\": []}]}".write(to: url, atomically: true, encoding: .utf8)
        let (bad, badOutput) = try await ChildProcess.run(troncal, ["infra", "check", "--inventory", url.path])
        #expect(bad != 0 && badOutput.contains("name"), "\(badOutput)")
    }

    /// `infra/systemd/` holds the templates the renderer writes for the sample inventory: kept current by this test.
    @Test func theUnitTemplatesInInfraSystemdAreWhatTheRendererWrites() async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-infra-templates")
        defer { directory.remove() }
        let out = directory.url.appendingPathComponent("out")
        let (status, output) = try await ChildProcess.run(
            troncalBinaryDirectory().appendingPathComponent("troncal"), ["infra", "render", "--inventory", "infra/inventory.sample.json", "--out", out.path])
        #expect(status == 0, "\(output)")
        for role in ["sbc", "routing", "billing", "pbx", "monitor", "backup"] {
            let name = "troncal-\(role)@.service"
            let host = role == "backup" ? "site-a/a3" : "site-a/a1"
            let rendered = try String(contentsOf: out.appendingPathComponent("\(host)/systemd/\(name)"), encoding: .utf8)
            let kept = try String(contentsOf: URL(fileURLWithPath: "infra/systemd/\(name)"), encoding: .utf8)
            #expect(rendered == kept, "infra/systemd/\(name) differs from what troncal infra render writes: render the sample and copy it")
        }
    }
}
