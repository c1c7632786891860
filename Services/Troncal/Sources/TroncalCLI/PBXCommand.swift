public import ArgumentParser
import Foundation
import Logging
import TroncalLink
public import TroncalProtocol
import TroncalRuntime
import TroncalCatalog

/// `troncal pbx import|export|inspect`: the PBX's tenant catalogs (tenants, extensions, ring-groups, time-conditions,
/// dids) as CSV over the mutual-TLS link with the operator certificate. An import goes to every PBX instance of the site
/// and takes effect at once; a bad file is refused with its line and column and changes nothing.
struct PBXCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pbx", abstract: "Import, export and inspect the PBX's tenant catalogs; list registered phones and voicemail.",
        subcommands: [PBXImportCommand.self, PBXExportCommand.self, PBXInspectCommand.self, PBXRegistrationsCommand.self, PBXVoicemailCommand.self])
}

extension PBXCatalogKind: ExpressibleByArgument {}

struct PBXTargetOptions: ParsableArguments {
    @OptionGroup var site: SiteOptions
    @Option(help: "Only this PBX instance (default: every PBX instance of the site for import, the first for export and inspect).")
    var instance: String?
    @Option(help: "How long to wait for each reply, in milliseconds.")
    var timeout: Int = 60000

    func clients(all: Bool) throws -> [(String, LinkClient)] {
        let directory = SiteDirectory(path: site.dataDir)
        let config = try directory.loadConfig()
        var instances = config.instances(of: .pbx)
        if let instance {
            instances = instances.filter { $0.name == instance }
            guard !instances.isEmpty else { throw ValidationError("no pbx instance named '\(instance)' in \(directory.configPath)") }
        } else if !all {
            instances = Array(instances.prefix(1))
        }
        guard !instances.isEmpty else { throw ValidationError("the site has no pbx instance") }
        return try instances.map { ($0.name, try directory.operatorClient(config, role: .pbx, instances: [$0])) }
    }
}

struct PBXImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Replace a PBX catalog with a CSV file (tenants, extensions, ring-groups, time-conditions or dids); see docs/pbx.md.")
    @Argument(help: "tenants, extensions, ring-groups, time-conditions or dids.")
    var kind: PBXCatalogKind
    @Argument(help: "The CSV file ('-' for standard input).")
    var file: String
    @OptionGroup var target: PBXTargetOptions

    func run() async throws {
        let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: file))
        guard let text = String(data: data, encoding: .utf8) else { throw ValidationError("\(file) is not UTF-8 text") }
        let parts = CSVParts.split(text)
        var failed = false
        for (name, client) in try target.clients(all: true) {
            let upload = RandomID.uuidString()
            do {
                var result: PBXImportResult?
                for (index, part) in parts.enumerated() {
                    result = try await client.request(
                        PBXImport(kind: kind, upload: upload, part: index, final: index == parts.count - 1, csv: part),
                        timeout: .milliseconds(target.timeout))
                }
                if let result {
                    Output.line("\(name): \(kind.rawValue): \(result.rows) rows imported (generation \(result.generation), \(result.milliseconds) ms)")
                }
            } catch {
                failed = true
                FileHandle.standardError.write(Data("troncal: \(name): \(kind.rawValue) not imported: \(RoutingCommand.describe(error))\n".utf8))
            }
            await client.close()
        }
        if failed { throw ExitCode(1) }
    }
}

struct PBXExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Write a PBX catalog as CSV (it imports back as it is).")
    @Argument(help: "tenants, extensions, ring-groups, time-conditions or dids.")
    var kind: PBXCatalogKind
    @Option(help: "Write to this file instead of standard output.")
    var output: String?
    @OptionGroup var target: PBXTargetOptions

    func run() async throws {
        guard let (name, client) = try target.clients(all: false).first else { return }
        var text = ""
        do {
            var part = 0
            var total = 1
            var generation: Int64?
            while part < total {
                let reply = try await client.request(PBXExport(kind: kind, part: part), timeout: .milliseconds(target.timeout))
                if let generation, generation != reply.generation {
                    throw ValidationError("the \(kind.rawValue) catalog changed during the export; run it again")
                }
                generation = reply.generation
                total = reply.parts
                text += reply.csv
                part += 1
            }
        } catch {
            await client.close()
            FileHandle.standardError.write(Data("troncal: \(name): \(kind.rawValue) not exported: \(RoutingCommand.describe(error))\n".utf8))
            throw ExitCode(1)
        }
        await client.close()
        if let output {
            try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}

struct PBXInspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show the PBX catalogs' sizes and each tenant's counts.")
    @Option(help: "Only this tenant.")
    var tenant: String?
    @Flag(help: "Print JSON.")
    var json = false
    @OptionGroup var target: PBXTargetOptions

    func run() async throws {
        guard let (name, client) = try target.clients(all: false).first else { return }
        let reply: PBXInspection
        do {
            reply = try await client.request(PBXInspect(tenant: tenant), timeout: .milliseconds(target.timeout))
        } catch {
            await client.close()
            FileHandle.standardError.write(Data("troncal: \(name): \(RoutingCommand.describe(error))\n".utf8))
            throw ExitCode(1)
        }
        await client.close()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            Output.line(String(decoding: try encoder.encode(reply), as: UTF8.self))
            return
        }
        Output.line("\(name):")
        for catalog in reply.catalogs { Output.line("  \(catalog.kind.rawValue): \(catalog.rows) rows (generation \(catalog.generation))") }
        for tenant in reply.tenants {
            Output.line(
                "  tenant \(tenant.name) (customer \(tenant.customer), \(tenant.timeZone)): \(tenant.extensions) extensions, \(tenant.ringGroups) ring groups, \(tenant.timeConditions) time conditions, \(tenant.dids) DIDs")
        }
    }
}

struct PBXRegistrationsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registrations",
        abstract: "List the phones registered now: tenant, extension, contact, expiry, the SBC flow calls to it take, the PBX instance.")
    @Option(help: "Only this tenant.")
    var tenant: String?
    @Option(name: .customLong("extension"), help: "Only this extension (with --tenant).")
    var extensionNumber: String?
    @Flag(help: "Print JSON.")
    var json = false
    @OptionGroup var target: PBXTargetOptions

    func run() async throws {
        // Every instance: with SQLite each knows the registrations it took; on PostgreSQL they share them (merged).
        var seen = Set<String>()
        var registrations: [PBXRegistrations.Registration] = []
        var failed = false
        for (name, client) in try target.clients(all: true) {
            do {
                let reply = try await client.request(
                    PBXRegistrationsRequest(tenant: tenant, extensionNumber: extensionNumber), timeout: .milliseconds(target.timeout))
                for entry in reply.registrations where seen.insert("\(entry.tenant)/\(entry.extensionNumber)/\(entry.contact)").inserted {
                    registrations.append(entry)
                }
            } catch {
                FileHandle.standardError.write(Data("troncal: \(name): \(RoutingCommand.describe(error))\n".utf8))
                failed = true
            }
            await client.close()
        }
        registrations.sort { ($0.tenant, $0.extensionNumber, $0.contact) < ($1.tenant, $1.extensionNumber, $1.contact) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            encoder.dateEncodingStrategy = .iso8601
            Output.line(String(decoding: try encoder.encode(registrations), as: UTF8.self))
        } else {
            for entry in registrations {
                Output.line(
                    "\(entry.tenant) \(entry.extensionNumber)  \(entry.contact)  expires in \(entry.expiresInSeconds) s  \(entry.userAgent.isEmpty ? "" : "(\(entry.userAgent)) ")[\(entry.instance)]")
            }
            Output.line("\(registrations.count) registered")
        }
        if failed { throw ExitCode(1) }
    }
}

/// `troncal pbx voicemail list`: every voicemail message and how its deliveries went.
struct PBXVoicemailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "voicemail", abstract: "Voicemail messages and their deliveries.", subcommands: [PBXVoicemailListCommand.self])
}

struct PBXVoicemailListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List voicemail messages (new, saved, deleted) with each delivery's status: pending, retrying (with the last error), delivered, failed.")
    @Option(help: "Only this tenant.")
    var tenant: String?
    @Option(name: .customLong("extension"), help: "Only this extension (with --tenant).")
    var extensionNumber: String?
    @Flag(help: "Print JSON.")
    var json = false
    @OptionGroup var target: PBXTargetOptions

    func run() async throws {
        // Every instance: each delivers the messages it recorded; on PostgreSQL they share the list (merged).
        var seen = Set<String>()
        var messages: [PBXVoicemailList.Message] = []
        var failed = false
        for (name, client) in try target.clients(all: true) {
            do {
                let reply = try await client.request(
                    PBXVoicemailListRequest(tenant: tenant, extensionNumber: extensionNumber), timeout: .milliseconds(target.timeout))
                for message in reply.messages where seen.insert(message.id).inserted { messages.append(message) }
            } catch {
                FileHandle.standardError.write(Data("troncal: \(name): \(RoutingCommand.describe(error))\n".utf8))
                failed = true
            }
            await client.close()
        }
        messages.sort { ($0.receivedAt, $0.id) < ($1.receivedAt, $1.id) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            encoder.dateEncodingStrategy = .iso8601
            Output.line(String(decoding: try encoder.encode(messages), as: UTF8.self))
        } else {
            for message in messages {
                Output.line(
                    "\(message.tenant) \(message.extensionNumber)  \(message.id)  \(message.folder)  from \(message.caller.isEmpty ? "unknown" : message.caller)  \(message.durationMilliseconds / 1000) s  \(message.receivedAt.formatted(.iso8601))  [\(message.instance)]")
                for delivery in message.deliveries {
                    var line = "    \(delivery.channel) \(delivery.target): \(delivery.status) after \(delivery.attempts) attempt\(delivery.attempts == 1 ? "" : "s")"
                    if !delivery.lastError.isEmpty { line += " (last error: \(delivery.lastError))" }
                    if let next = delivery.nextAttemptAt { line += ", next attempt \(next.formatted(.iso8601))" }
                    Output.line(line)
                }
            }
            Output.line("\(messages.count) messages")
        }
        if failed { throw ExitCode(1) }
    }
}
