import ArgumentParser
import Foundation
import Logging
import TroncalRuntime

/// `troncal status`: asks each service of the site over its mutual-TLS link and prints a table (or JSON).
/// Exits 0 when every instance is healthy, 1 otherwise.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the health of every service instance of the site.")
    @OptionGroup var site: SiteOptions
    @Flag(help: "Print JSON (an array of rows) instead of a table.")
    var json = false
    @Option(help: "How long to wait for each instance, in milliseconds.")
    var timeout: Int = 2000

    func run() async throws {
        let directory = SiteDirectory(path: site.dataDir)
        let config = try directory.loadConfig()
        let credentials = try directory.operatorCredentials(config)
        var logger = Logger(label: "troncal.status")
        logger.logLevel = .critical
        let rows = await SiteStatus.collect(config: config, credentials: credentials, timeout: .milliseconds(timeout), logger: logger)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            Output.line(String(decoding: try encoder.encode(rows), as: UTF8.self))
        } else {
            Output.line(SiteStatus.table(rows))
        }
        if rows.contains(where: { $0.health != "healthy" }) { throw ExitCode(1) }
    }
}
