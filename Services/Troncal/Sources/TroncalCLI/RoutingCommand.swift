public import ArgumentParser
import Foundation
import Logging
import TroncalLink
public import TroncalProtocol
import TroncalRuntime
import TroncalCatalog

/// `troncal routing import|export|inspect`: the routing catalogs (carriers, plans, routes, rates, DIDs) as CSV,
/// over the mutual-TLS link with the operator certificate. An import goes to every routing instance of the site
/// (each keeps its own copy with SQLite) and takes effect at once, without a restart.
struct RoutingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routing", abstract: "Import, export and inspect the routing catalogs.",
        subcommands: [RoutingImportCommand.self, RoutingExportCommand.self, RoutingInspectCommand.self])
}

extension RoutingCatalogKind: ExpressibleByArgument {}

/// Options shared by the routing subcommands.
struct RoutingTargetOptions: ParsableArguments {
    @OptionGroup var site: SiteOptions
    @Option(help: "Only this routing instance (default: every routing instance of the site for import, the first for export).")
    var instance: String?
    @Option(help: "How long to wait for each reply, in milliseconds.")
    var timeout: Int = 60000

    func clients(all: Bool) throws -> [(String, LinkClient)] {
        let directory = SiteDirectory(path: site.dataDir)
        let config = try directory.loadConfig()
        var instances = config.instances(of: .routing)
        if let instance {
            instances = instances.filter { $0.name == instance }
            guard !instances.isEmpty else { throw ValidationError("no routing instance named '\(instance)' in \(directory.configPath)") }
        } else if !all {
            instances = Array(instances.prefix(1))
        }
        guard !instances.isEmpty else { throw ValidationError("the site has no routing instance") }
        return try instances.map { ($0.name, try directory.operatorClient(config, role: .routing, instances: [$0])) }
    }
}

struct RoutingImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Replace a routing catalog with a CSV file (carriers, plans, routes, rates or dids); see docs/routing.md for the columns.")
    @Argument(help: "carriers, plans, routes, rates or dids.")
    var kind: RoutingCatalogKind
    @Argument(help: "The CSV file ('-' for standard input).")
    var file: String
    @OptionGroup var target: RoutingTargetOptions

    func run() async throws {
        let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: file))
        guard let text = String(data: data, encoding: .utf8) else { throw ValidationError("\(file) is not UTF-8 text") }
        let parts = CSVParts.split(text)
        var failed = false
        for (name, client) in try target.clients(all: true) {
            defer { Task { await client.close() } }
            let upload = RandomID.uuidString()
            do {
                var result: RoutingImportResult?
                for (index, part) in parts.enumerated() {
                    result = try await client.request(
                        RoutingImport(kind: kind, upload: upload, part: index, final: index == parts.count - 1, csv: part),
                        timeout: .milliseconds(target.timeout))
                }
                if let result {
                    Output.line("\(name): \(kind.rawValue): \(result.rows) rows imported (generation \(result.generation), \(result.milliseconds) ms)")
                }
            } catch {
                failed = true
                FileHandle.standardError.write(Data("troncal: \(name): \(kind.rawValue) not imported: \(RoutingCommand.describe(error))\n".utf8))
            }
        }
        if failed { throw ExitCode(1) }
    }
}

struct RoutingExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Write a routing catalog as CSV.")
    @Argument(help: "carriers, plans, routes, rates or dids.")
    var kind: RoutingCatalogKind
    @Option(help: "Write to this file instead of standard output.")
    var output: String?
    @OptionGroup var target: RoutingTargetOptions

    func run() async throws {
        guard let (name, client) = try target.clients(all: false).first else { return }
        defer { Task { await client.close() } }
        var text = ""
        do {
            var part = 0
            var total = 1
            var generation: Int64?
            while part < total {
                let reply = try await client.request(RoutingExport(kind: kind, part: part), timeout: .milliseconds(target.timeout))
                if let generation, generation != reply.generation {
                    throw ValidationError("the \(kind.rawValue) catalog changed during the export; run it again")
                }
                generation = reply.generation
                total = reply.parts
                text += reply.csv
                part += 1
            }
        } catch {
            FileHandle.standardError.write(Data("troncal: \(name): \(kind.rawValue) not exported: \(RoutingCommand.describe(error))\n".utf8))
            throw ExitCode(1)
        }
        if let output {
            try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}

struct RoutingInspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Show the catalogs' sizes and every trunk's health and load on a routing instance.")
    @Flag(help: "Print JSON.")
    var json = false
    @OptionGroup var target: RoutingTargetOptions

    func run() async throws {
        guard let (name, client) = try target.clients(all: false).first else { return }
        defer { Task { await client.close() } }
        let reply: RoutingInspection
        do {
            reply = try await client.request(RoutingInspect(), timeout: .milliseconds(target.timeout))
        } catch {
            FileHandle.standardError.write(Data("troncal: \(name): \(RoutingCommand.describe(error))\n".utf8))
            throw ExitCode(1)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            Output.line(String(decoding: try encoder.encode(reply), as: UTF8.self))
            return
        }
        Output.line("\(name): \(reply.prefixes) prefixes")
        for catalog in reply.catalogs { Output.line("  \(catalog.kind.rawValue): \(catalog.rows) rows (generation \(catalog.generation))") }
        for trunk in reply.trunks {
            let state = trunk.inService ? "in service" : "OUT: \(trunk.reason ?? "")"
            let limit = trunk.maximumCalls > 0 ? "/\(trunk.maximumCalls)" : ""
            var quality = ""
            if let mos = trunk.mos {
                quality = "; MOS \((mos * 100).rounded() / 100) over \(trunk.qualityCalls ?? 0) calls"
                if trunk.demoted { quality += ", DEMOTED (tried last: below routing.minimumTrunkMOS)" }
            }
            Output.line(
                "  \(trunk.carrier)/\(trunk.trunk): \(state); calls \(trunk.callsInProgress)\(limit), \(trunk.callsLastSecond) in the last second\(quality)")
        }
    }
}

extension RoutingCommand {
    static func describe(_ error: any Error) -> String {
        if let error = error as? ProtocolError { return error.message }
        if let error = error as? LinkError, let remote = error.remote { return remote.message }
        return "\(error)"
    }
}
