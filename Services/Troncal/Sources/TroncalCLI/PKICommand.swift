import ArgumentParser
import Foundation
import TroncalPKI
import TroncalProtocol
import TroncalRuntime

/// `troncal pki`: the site CA and the instance certificates.
struct PKICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki", abstract: "Manage the site CA and instance certificates.",
        subcommands: [Init.self, Issue.self])

    /// `troncal pki init`: a new site CA plus a certificate for every instance in site.json and the operator.
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the site CA and one certificate per configured instance (and the operator).")
        @OptionGroup var site: SiteOptions
        @Option(help: "The site name, when site.json does not exist yet (it is then created with defaults).")
        var siteName: String = "site-a"

        func run() async throws {
            let directory = SiteDirectory(path: site.dataDir)
            let config = try directory.ensureConfig(site: siteName, portOffset: 0)
            let pki = directory.pkiDirectory(config)
            if FileManager.default.fileExists(atPath: pki.appendingPathComponent(SiteCA.caCertificateFile).path) {
                throw ValidationError("a CA already exists in \(pki.path); use `troncal pki issue` to add instances")
            }
            let issued = try directory.ensurePKI(config)
            Output.line("site CA for \(config.site) created in \(pki.path)")
            Output.line("certificates issued: \(issued.joined(separator: ", "))")
        }
    }

    /// `troncal pki issue`: one more instance certificate from the existing CA.
    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue a certificate for one more instance.")
        @OptionGroup var site: SiteOptions
        @Option(help: "The instance's role: \(Role.allCases.map(\.rawValue).joined(separator: ", ")).")
        var role: String
        @Option(help: "The instance name (1-63 of a-z, 0-9, -), e.g. sbc-2.")
        var instance: String
        @Option(help: "Validity in days.")
        var days: Int = 825
        @Flag(help: "Replace an existing certificate of that name.")
        var replace = false

        func validate() throws {
            guard Role(rawValue: role) != nil else {
                throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard (1...3650).contains(days) else { throw ValidationError("--days must be from 1 to 3650") }
        }

        func run() async throws {
            let directory = SiteDirectory(path: site.dataDir)
            let config = try directory.loadConfig()
            let ca = try SiteCA.open(directory.pkiDirectory(config))
            let credentials = try ca.issue(role: Role(rawValue: role) ?? .operator, instance: instance, validityDays: days, replace: replace)
            Output.line("issued \(credentials.identity) (\(role)): \(credentials.certificatePath)")
        }
    }
}

/// `troncal config check`: validates a site.json the way the services will.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Check a site configuration.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate site.json; the error names the key at fault.")
        @OptionGroup var site: SiteOptions
        @Option(help: "The configuration file (default: <data-dir>/site.json).")
        var config: String?

        func run() async throws {
            let path = config ?? SiteDirectory(path: site.dataDir).configPath
            do {
                let parsed = try ConfigLoader.load(path: path)
                Output.line("\(path): valid (site \(parsed.site), \(parsed.instances.count) instances)")
            } catch {
                throw ValidationError(error.description)
            }
        }
    }
}
