public import ArgumentParser
internal import Foundation
internal import Logging
public import TroncalProtocol

/// The command line every service executable shares: `troncal-<role> --config FILE --instance NAME`.
public struct ServiceOptions: ParsableArguments {
    @Option(help: "The site configuration file.")
    public var config: String = "troncal-data/site.json"

    @Option(help: "This instance's name in the configuration's `instances` (default: <role>-1).")
    public var instance: String?

    @Flag(help: "Validate the configuration and exit.")
    public var checkConfig = false

    @Flag(help: "Print the version and exit.")
    public var version = false

    public init() {}
}

/// The whole `main` of a service executable: parse arguments, bootstrap logging and metrics, load the
/// configuration, run the service until SIGTERM/SIGINT. Exit codes: 0 after a clean stop, 64 for bad
/// arguments, 78 for a bad configuration (the message names the key), 1 for any other failure.
public enum ServiceMain {
    public static func run<S: TroncalService>(_ service: S.Type) async -> Never {
        let options = ServiceOptions.parseOrExit()
        if options.version {
            FileHandle.standardOutput.write(Data("\(S.role.executableName) \(TroncalVersion.current)\n".utf8))
            exit(0)
        }
        let registry = Observability.bootstrap()
        let logger = Logger(label: "troncal.\(S.role.rawValue)")
        let instanceName = options.instance ?? "\(S.role.rawValue)-1"
        do {
            let config = try ConfigLoader.load(path: options.config)
            let host = try ServiceHost<S>(config: config, configPath: options.config, instanceName: instanceName, registry: registry, logger: logger)
            if options.checkConfig {
                logger.info("configuration is valid", metadata: ["config": "\(options.config)"])
                exit(0)
            }
            try await host.run()
            exit(0)
        } catch let error as ConfigError {
            logger.critical("invalid configuration; not starting", metadata: ["key": "\(error.key)", "reason": "\(error)"])
            exit(78)
        } catch {
            logger.critical("service failed", metadata: ["reason": "\(error)"])
            exit(1)
        }
    }
}
