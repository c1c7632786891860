import Foundation
import Testing
import TestSupport
import TroncalProtocol
import TroncalRuntime

/// `troncal pbx import|export|inspect` against two running PBX instances: every catalog reaches both, a bad file is
/// refused with its line and column and changes nothing, and the catalogs survive a restart.
@Suite(.startsProcesses) struct PBXCatalogCommandTests {
    let binaries = troncalBinaryDirectory()

    func troncal(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await ChildProcess.run(binaries.appendingPathComponent("troncal"), arguments)
    }

    @Test func catalogsImportedThroughTheCLIReachBothInstancesExportAsImportedAndSurviveARestart() async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-pbx-catalogs")
        defer { directory.remove() }
        let offset = await freePortOffset()
        defer { releasePortOffset(offset) }
        var config = SiteConfig().shiftingPorts(by: offset)
        config.site = "pbx-test"
        config.instances.append(InstanceSettings(role: .pbx, name: "pbx-2", linkPort: 7109 + offset, adminPort: 8109 + offset, sipPort: 5071 + offset))
        try ConfigLoader.encode(config).write(to: directory.url.appendingPathComponent("site.json"))
        let dataDir = directory.url.path
        #expect(try await troncal(["pki", "init", "--data-dir", dataDir]).status == 0)
        let siteFile = directory.url.appendingPathComponent("site.json").path
        var processes: [String: ChildProcess] = [:]
        defer { for process in processes.values { process.terminateNow(within: 5) } }
        func start(_ name: String) async throws {
            let instance = try #require(config.instance(named: name))
            processes[name] = try ChildProcess(
                binaries.appendingPathComponent("troncal-pbx"), ["--config", siteFile, "--instance", name],
                output: directory.url.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(4)).log"))
            #expect(await eventually(timeout: .seconds(30)) { (try? await httpGet(port: instance.adminPort, path: "/health")) != nil })
        }
        try await start("pbx-1")
        try await start("pbx-2")

        let files: [(String, String)] = [
            ("tenants", PBXCatalogTests.tenants), ("extensions", PBXCatalogTests.extensions), ("ring-groups", PBXCatalogTests.groups),
            ("time-conditions", PBXCatalogTests.conditions), ("dids", PBXCatalogTests.dids),
        ]
        for (kind, text) in files {
            let file = directory.url.appendingPathComponent("\(kind).csv")
            try Data((text + "\n").utf8).write(to: file)
            let (status, output) = try await troncal(["pbx", "import", kind, file.path, "--data-dir", dataDir])
            #expect(status == 0, "\(kind): \(output)")
            #expect(output.contains("pbx-1: \(kind):") && output.contains("pbx-2: \(kind):"), "\(output)")
        }

        // Both instances hold the same catalogs, exported as imported (canonical form: flags as yes/no, defaults filled).
        let exported = try await troncal(["pbx", "export", "extensions", "--instance", "pbx-2", "--data-dir", dataDir])
        #expect(exported.status == 0)
        #expect(exported.output.contains("acme,101,Ana Front Desk,secret-101-pw,yes,,ext:102,number:+34600111222,15,no,no,front"), "\(exported.output)")
        let inspect = try await troncal(["pbx", "inspect", "--tenant", "acme", "--json", "--data-dir", dataDir])
        let inspection = try JSONDecoder().decode(PBXInspection.self, from: Data(inspect.output.utf8))
        #expect(inspection.tenants.map(\.name) == ["acme"])
        #expect(inspection.tenants.first.map { ($0.extensions, $0.ringGroups, $0.timeConditions, $0.dids) } ?? (0, 0, 0, 0) == (3, 2, 1, 1))

        // Removing an extension a ring group needs: refused with the row that breaks, nothing changed on either instance.
        let bad = directory.url.appendingPathComponent("bad.csv")
        try Data("tenant,extension,password\nacme,101,secret-101-pw\nacme,103,secret-103-pw\nglobex,101,secret-g101-pw\n".utf8).write(to: bad)
        let refused = try await troncal(["pbx", "import", "extensions", bad.path, "--data-dir", dataDir])
        #expect(refused.status != 0)
        #expect(refused.output.contains("ring-groups line 2, column 'members': no extension 102 in tenant acme"), "\(refused.output)")
        let after = try await troncal(["pbx", "export", "extensions", "--instance", "pbx-1", "--data-dir", dataDir])
        #expect(after.output == exported.output)

        // A restart loads the catalogs from the database.
        await processes["pbx-1"]?.stop()
        try await start("pbx-1")
        let reloaded = try await troncal(["pbx", "export", "dids", "--instance", "pbx-1", "--data-dir", dataDir])
        #expect(reloaded.output.contains("+34911000100,acme,condition:office"), "\(reloaded.output)")
        let text = try await troncal(["pbx", "inspect", "--data-dir", dataDir])
        #expect(text.output.contains("tenant globex (customer globex, America/New_York): 1 extensions"), "\(text.output)")
        for process in processes.values { await process.stop() }
    }
}
