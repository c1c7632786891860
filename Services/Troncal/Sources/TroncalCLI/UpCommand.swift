import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals
import TroncalProtocol
import TroncalRuntime
import TroncalControl

/// `troncal up`: runs the six services of one site on this machine as child processes. On first run it
/// writes `site.json` with defaults, creates the site CA and certificates, then supervises the services
/// until Ctrl-C (SIGINT) or SIGTERM.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up", abstract: "Run every service of a site on this machine until Ctrl-C.")
    @OptionGroup var site: SiteOptions
    @Option(help: "The site name used when site.json is first created.")
    var siteName: String = "site-a"
    @Option(help: "Added to every default port when site.json is first created (run several sites side by side).")
    var portOffset: Int = 0
    @Option(help: "Where the troncal-* executables are (default: beside this one).")
    var binDir: String?

    func validate() throws {
        guard (0...50000).contains(portOffset) else { throw ValidationError("--port-offset must be from 0 to 50000") }
    }

    func run() async throws {
        var logger = Logger(label: "troncal.up")
        logger.logLevel = .info
        let directory = SiteDirectory(path: site.dataDir)
        let config = try directory.ensureConfig(site: siteName, portOffset: portOffset)
        let issued = try directory.ensurePKI(config)
        if !issued.isEmpty { logger.info("certificates issued", metadata: ["instances": "\(issued.joined(separator: ","))"]) }
        let binaries = URL(fileURLWithPath: binDir ?? Self.executableDirectory())
        var children: [Supervisor.Child] = []
        for instance in config.instances {
            let executable = binaries.appendingPathComponent(instance.role.executableName)
            guard FileManager.default.isExecutableFile(atPath: executable.path) else {
                throw ValidationError("\(executable.path) is missing; build first (swift build) or pass --bin-dir")
            }
            children.append(Supervisor.Child(
                instance: instance, executable: executable,
                arguments: ["--config", directory.configPath, "--instance", instance.name],
                logFile: directory.logsDirectory.appendingPathComponent("\(instance.name).log")))
        }
        // The SBC drains its calls for up to sbc.drainSeconds at a stop: wait that long (and 10 s more) before SIGKILL.
        // The capacity controller's local executor (monitor.capacity.mode act) asks through this file.
        let desired = DesiredStateFile(dataDirectory: config.resolve(config.dataDirectory, relativeTo: directory.root))
        let supervisor = Supervisor(
            children: children, logger: logger, stopTimeout: .seconds(max(10, config.sbc.drainSeconds + 10)), desired: desired)
        let announcer = Announcer(directory: directory, config: config, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: supervisor), .init(service: announcer, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore)],
            gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger))
        try await group.run()
    }

    static func executableDirectory() -> String {
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: path).deletingLastPathComponent().path
    }
}

/// Waits until every instance reports healthy, then prints where to point a SIP phone and a browser.
struct Announcer: Service {
    let directory: SiteDirectory
    let config: SiteConfig
    let logger: Logger

    func run() async throws {
        guard let credentials = try? directory.operatorCredentials(config) else { return }
        var quiet = logger
        quiet.logLevel = .critical
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(120)
        var rows: [InstanceStatusRow] = []
        while clock.now < deadline, !Task.isShuttingDownGracefully {
            rows = await SiteStatus.collect(config: config, credentials: credentials, timeout: .seconds(1), logger: quiet)
            if rows.allSatisfy({ $0.health == "healthy" || $0.health == "standby" }) { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        guard !Task.isShuttingDownGracefully else { return }
        Output.line(SiteStatus.table(rows))
        let sipHost = config.sip.listenAddress == "0.0.0.0" ? "127.0.0.1" : config.sip.listenAddress
        let monitor = config.instances(of: .monitor).first
        Output.line("")
        Output.line("Troncal site \(config.site) is up (data: \(directory.root.path)).")
        Output.line("  SIP phone or PBX: sip:\(sipHost):\(config.sip.udpPort) (UDP/TCP), sips:\(sipHost):\(config.sip.tlsPort) (TLS)")
        if let monitor {
            let host = config.monitor.webHost == "0.0.0.0" ? "127.0.0.1" : config.monitor.webHost
            Output.line("  NOC dashboard: http://\(host):\(config.monitor.webPort)/")
            let firstLogin = config.resolve(config.dataDirectory, relativeTo: directory.root)
                .appendingPathComponent(monitor.name).appendingPathComponent("first-login.txt")
            if let login = try? String(contentsOf: firstLogin, encoding: .utf8), let space = login.firstIndex(of: " ") {
                let password = login[login.index(after: space)...].trimmingCharacters(in: .whitespacesAndNewlines)
                Output.line("    first login: \(login[..<space]) / \(password)   (from \(firstLogin.path); or: troncal monitor login-link --data-dir \(directory.root.path))")
            }
            Output.line("  Alarms: troncal alarms list --data-dir \(directory.root.path)   health of each instance: http://\(monitor.adminHost):<adminPort>/health")
        }
        Output.line(
            "  Hosted PBX phones: register to that SIP address as EXT@TENANT (troncal pbx import tenants|extensions; troncal pbx registrations) — docs/pbx.md")
        Output.line("  Customers: sbc.customers in site.json; routes: troncal routing import; accounts, rates, credit: troncal billing import|topup")
        if !config.instances(of: .backup).isEmpty {
            let keys = config.resolve(config.backup.keysDirectory, relativeTo: directory.root).appendingPathComponent("restore.pub")
            if FileManager.default.fileExists(atPath: keys.path) {
                Output.line("  Backups: troncal backup list|verify|drill --data-dir \(directory.root.path)")
            } else {
                Output.line("  Backups: off until keys exist: troncal backup keys init --data-dir \(directory.root.path) (then keep the private key offline)")
            }
        }
        Output.line("  Status: troncal status --data-dir \(directory.root.path)")
        Output.line("  Logs: \(directory.logsDirectory.path)/<instance>.log   Stop: Ctrl-C")
    }
}
