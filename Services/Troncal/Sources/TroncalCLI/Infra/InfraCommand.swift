import ArgumentParser
import Foundation

/// `troncal infra render|check`: per-host deployment files from the site inventory, and its validation.
struct InfraCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infra", abstract: "Render and check the per-host deployment files of a site inventory.",
        subcommands: [Render.self, Check.self])

    struct Render: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write each host's files (systemd units, site.json, WireGuard, keepalived, Patroni, etcd, Prometheus targets).")
        @Option(help: "The inventory file.")
        var inventory = "infra/inventory.json"
        @Option(help: "Where to write <site>/<host>/… .")
        var out = "infra/rendered"
        @Flag(help: "Render even when the inventory check finds problems.")
        var force = false

        func run() async throws {
            let parsed = try loadInventory(inventory)
            let problems = InfraCheck(inventory: parsed).problems()
            if !problems.isEmpty, !force {
                for problem in problems { Output.line("problem: \(problem)") }
                throw ValidationError("the inventory has \(problems.count) problem(s); fix them or pass --force")
            }
            let count: Int
            do {
                count = try InfraRenderer(inventory: parsed).write(to: URL(fileURLWithPath: out))
            } catch {
                throw ValidationError("\(error)")
            }
            Output.line("wrote \(count) files under \(out) for \(parsed.sites.map(\.hosts.count).reduce(0, +)) hosts in \(parsed.sites.count) sites")
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the inventory: two instances per service on two hosts, ports, PostgreSQL/etcd, VPN, certificates.")
        @Option(help: "The inventory file.")
        var inventory = "infra/inventory.json"
        @Option(help: "A directory of per-site PKI directories (<dir>/<site>/<instance>.crt); checks the certificates exist.")
        var pkiRoot: String?

        func run() async throws {
            let parsed = try loadInventory(inventory)
            let problems = InfraCheck(inventory: parsed, pkiRoot: pkiRoot).problems()
            for problem in problems { Output.line("problem: \(problem)") }
            guard problems.isEmpty else { throw ExitCode(1) }
            Output.line("\(inventory): valid (\(parsed.sites.count) sites, \(parsed.sites.map(\.hosts.count).reduce(0, +)) hosts)")
        }
    }
}

private func loadInventory(_ path: String) throws -> Inventory {
    do {
        return try Inventory.load(path)
    } catch let error as InventoryError {
        throw ValidationError(error.description)
    }
}
