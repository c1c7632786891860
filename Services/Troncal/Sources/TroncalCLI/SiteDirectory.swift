public import Foundation
public import TroncalPKI
public import TroncalProtocol
public import TroncalRuntime
internal import TroncalLink
internal import Logging
internal import ArgumentParser

/// A site's data directory as `troncal up` lays it out: `site.json`, `pki/`, `data/` and `logs/`.
public struct SiteDirectory: Sendable {
    public let root: URL

    public init(path: String) {
        root = URL(fileURLWithPath: path, isDirectory: true).standardizedFileURL
    }

    public var configPath: String { root.appendingPathComponent("site.json").path }
    public var logsDirectory: URL { root.appendingPathComponent("logs") }

    /// Reads `site.json`.
    public func loadConfig() throws(ConfigError) -> SiteConfig {
        try ConfigLoader.load(path: configPath)
    }

    /// Writes a default `site.json` (for `site`, with ports moved by `portOffset`) unless one exists;
    /// returns the configuration in force.
    @discardableResult
    public func ensureConfig(site: String, portOffset: Int) throws -> SiteConfig {
        if FileManager.default.fileExists(atPath: configPath) { return try loadConfig() }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        var config = SiteConfig()
        config.site = site
        config = config.shiftingPorts(by: portOffset)
        let data = ConfigLoader.encode(config)
        _ = try ConfigLoader.parse(data, file: configPath)
        // Written beside the target and renamed: atomic without Foundation's temporary-directory dance.
        let temporary = configPath + ".tmp"
        try data.write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, configPath) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: configPath])
        }
        return config
    }

    public func pkiDirectory(_ config: SiteConfig) -> URL { config.resolve(config.pkiDirectory, relativeTo: root) }

    /// Creates the site CA if missing and issues every missing certificate: one per configured instance,
    /// plus `operator` for the CLI. Returns the names issued.
    @discardableResult
    public func ensurePKI(_ config: SiteConfig) throws -> [String] {
        let directory = pkiDirectory(config)
        let ca: SiteCA
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent(SiteCA.caCertificateFile).path) {
            ca = try SiteCA.open(directory)
            guard ca.site == config.site else {
                throw PKIError(.invalidCertificate, "the CA in \(directory.path) is for site \(ca.site), but site.json says \(config.site)")
            }
        } else {
            ca = try SiteCA.create(in: directory, site: config.site)
        }
        var issued: [String] = []
        let wanted = config.instances.map { ($0.role, $0.name) } + [(Role.operator, "operator")]
        for (role, name) in wanted where !FileManager.default.fileExists(atPath: ca.credentials(role: role, instance: name).certificatePath) {
            try ca.issue(role: role, instance: name)
            issued.append(name)
        }
        return issued
    }

    /// The operator's credentials, for `troncal status` and other CLI calls over the links.
    public func operatorCredentials(_ config: SiteConfig) throws -> SiteCA.Credentials {
        let ca = try SiteCA.open(pkiDirectory(config))
        let credentials = ca.credentials(role: .operator, instance: "operator")
        guard FileManager.default.fileExists(atPath: credentials.certificatePath) else {
            throw PKIError(.missingCA, "no operator certificate at \(credentials.certificatePath); run `troncal pki issue --role operator --instance operator`")
        }
        return credentials
    }
}

extension SiteDirectory {
    /// A link client with the site's operator certificate to `instances` of `role` (failing over in that order), quiet
    /// in the log: the commands report what goes wrong themselves.
    func operatorClient(_ config: SiteConfig, role: Role, instances: [InstanceSettings]) throws -> LinkClient {
        var logger = Logger(label: "troncal.\(role)")
        logger.logLevel = .critical
        return try LinkClient(
            role: role, endpoints: instances.map { LinkEndpoint(host: $0.host, port: $0.linkPort) }, credentials: try operatorCredentials(config),
            logger: logger, maximumFrameLength: config.link.maximumFrameBytes)
    }

    /// Sends one request to the site's instances of `role` (the first reachable) with the operator certificate; a
    /// failure is printed with its reason and ends the command with exit status 1.
    func operatorRequest<R: LinkRequest>(_ request: R, role: Role, timeoutMilliseconds: Int) async throws -> R.Reply {
        let config = try loadConfig()
        let instances = config.instances(of: role)
        guard !instances.isEmpty else { throw ValidationError("the site has no \(role) instance") }
        let client = try operatorClient(config, role: role, instances: instances)
        defer { Task { await client.close() } }
        do {
            return try await client.request(request, timeout: .milliseconds(timeoutMilliseconds))
        } catch {
            FileHandle.standardError.write(Data("troncal: \(R.messageType) failed: \(RoutingCommand.describe(error))\n".utf8))
            throw ExitCode(1)
        }
    }
}
