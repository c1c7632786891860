import ArgumentParser
import Foundation
import Logging
import TroncalRuntime

/// `troncal status`: asks each service of the site over its mutual-TLS link and prints a table (or JSON).
/// Exits 0 when every instance is healthy (or a standby not running), 1 otherwise.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the health of every service instance of the site.")
    @OptionGroup var site: SiteOptions
    @Flag(help: "Print JSON (an array of rows) instead of a table.")
    var json = false
    @Option(help: "How long to wait for each instance, in milliseconds.")
    var timeout: Int = 2000
    @Option(name: .customLong("site-dir"), help: "Another site's data directory, with its own operator certificate (repeat for each site): its instances are shown too.")
    var otherSites: [String] = []

    func run() async throws {
        var logger = Logger(label: "troncal.status")
        logger.logLevel = .critical
        var sites: [(name: String, rows: [InstanceStatusRow])] = []
        for path in [site.dataDir] + otherSites {
            let directory = SiteDirectory(path: path)
            let config = try directory.loadConfig()
            let credentials = try directory.operatorCredentials(config)
            var rows = await SiteStatus.collect(config: config, credentials: credentials, timeout: .milliseconds(timeout), logger: logger)
            if !otherSites.isEmpty {
                for index in rows.indices { rows[index].site = config.site }
            }
            sites.append((config.site, rows))
        }
        let rows = sites.flatMap(\.rows)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            Output.line(String(decoding: try encoder.encode(rows), as: UTF8.self))
        } else if sites.count == 1 {
            Output.line(SiteStatus.table(rows))
        } else {
            for (name, siteRows) in sites {
                Output.line("site \(name):")
                Output.line(SiteStatus.table(siteRows))
                Output.line("")
            }
            Output.line(SiteStatus.primarySummary(rows))
        }
        if rows.contains(where: { $0.health != "healthy" && $0.health != "standby" }) { throw ExitCode(1) }
    }
}

extension SiteStatus {
    /// Which PostgreSQL server the instances write to: one line, and a warning when they do not agree (a failover
    /// they have not all followed yet, or a split they must not make).
    static func primarySummary(_ rows: [InstanceStatusRow]) -> String {
        var seen: [String: [String]] = [:]
        for row in rows {
            guard let database = row.database, database.hasPrefix("postgres primary ") else { continue }
            let server = String(database.dropFirst("postgres primary ".count))
            seen[server, default: []].append([row.site, row.instance].compactMap { $0 }.joined(separator: "/"))
        }
        switch seen.count {
        case 0: return "PostgreSQL primary: none reported (SQLite, or no instance writing to PostgreSQL reachable)"
        case 1: return "PostgreSQL primary: \(seen.keys.first!) (used by all \(seen.values.first!.count) instances that write to PostgreSQL)"
        default:
            let parts = seen.sorted { $0.key < $1.key }.map { "\($0.key) by \($0.value.joined(separator: ", "))" }
            return "PostgreSQL primary: the instances do not agree: \(parts.joined(separator: "; "))"
        }
    }
}
