import Foundation
import Testing
import TestSupport
import TroncalProtocol
import TroncalRuntime

/// The backup service backs up the site's configuration and PKI directory (CA key included) into the store at start:
/// encrypted (the CA key is nowhere in clear), verified by the CLI, restored only with the private restore key.
@Suite(.startsProcesses) struct ConfigBackupTests {
    let binaries = troncalBinaryDirectory()

    func troncal(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await ChildProcess.run(binaries.appendingPathComponent("troncal"), arguments)
    }

    @Test func theSiteConfigurationAndCAKeyAreBackedUpEncryptedAndRestoredWithThePrivateKey() async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-backup-site")
        defer { directory.remove() }
        let offset = await freePortOffset()
        defer { releasePortOffset(offset) }
        let dataDir = directory.url.path
        var config = SiteConfig().shiftingPorts(by: offset)
        config.site = "backup-test"
        try ConfigLoader.encode(config).write(to: directory.url.appendingPathComponent("site.json"))
        #expect(try await troncal(["pki", "init", "--data-dir", dataDir]).status == 0)
        let siteFile = directory.url.appendingPathComponent("site.json").path

        // Without keys the service stays up and says what to do.
        var service = try ChildProcess(
            binaries.appendingPathComponent("troncal-backup"), ["--config", siteFile, "--instance", "backup-1"],
            output: directory.url.appendingPathComponent("backup.log"))
        defer { service.terminateNow(within: 5) }
        let admin = try #require(config.instance(named: "backup-1")).adminPort
        #expect(await eventually(timeout: .seconds(30)) { service.outputText.contains("troncal backup keys init") }, "\(service.outputText.suffix(2000))")
        // It logs that line while starting: its admin port may open a moment later.
        #expect(await eventually(timeout: .seconds(30)) { (try? await httpGet(port: admin, path: "/health")) != nil }, "the service went down without keys")
        await service.stop()

        let privateKey = directory.url.appendingPathComponent("offline/restore-key.private")
        #expect(try await troncal(["backup", "keys", "init", "--data-dir", dataDir, "--private-key-out", privateKey.path]).status == 0)
        service = try ChildProcess(
            binaries.appendingPathComponent("troncal-backup"), ["--config", siteFile, "--instance", "backup-1"],
            output: directory.url.appendingPathComponent("backup-2.log"))
        var listed = ""
        let backedUp = await eventually(timeout: .seconds(30), interval: .milliseconds(200)) {
            listed = (try? await troncal(["backup", "list", "--data-dir", dataDir]))?.output ?? ""
            return listed.contains("site-config")
        }
        #expect(backedUp, "no site-config backup: \(listed)\n\(service.outputText.suffix(2000))")
        let verified = try await troncal(["backup", "verify", "--data-dir", dataDir])
        #expect(verified.status == 0 && verified.output.contains("ok  site-config-"), "\(verified.output)")

        // The CA key is in the backup, encrypted: its base64 body is nowhere in the store.
        let caKey = try String(contentsOf: directory.url.appendingPathComponent(config.pkiDirectory).appendingPathComponent("ca.key"), encoding: .utf8)
        let body = caKey.split(separator: "\n").first { !$0.hasPrefix("-----") }.map(String.init) ?? ""
        #expect(body.count > 20)
        let store = directory.url.appendingPathComponent("backup-store")
        for case let file as URL in FileManager.default.enumerator(at: store, includingPropertiesForKeys: nil)! {
            if let data = try? Data(contentsOf: file) { #expect(data.range(of: Data(body.utf8)) == nil, "\(file.lastPathComponent) holds the CA key in clear") }
        }

        let id = try #require(listed.split(separator: " ").first.map(String.init))
        let archive = directory.url.appendingPathComponent("restored.tar")
        let restore = try await troncal(["backup", "restore", id, "--private-key", privateKey.path, "--to", archive.path, "--data-dir", dataDir])
        #expect(restore.status == 0, "\(restore.output)")
        let (_, contents) = try await ChildProcess.run(URL(fileURLWithPath: "/usr/bin/tar"), ["-tf", archive.path])
        #expect(contents.contains("site.json") && contents.contains("\(config.pkiDirectory)/ca.key"), "\(contents)")
        await service.stop()
    }
}
