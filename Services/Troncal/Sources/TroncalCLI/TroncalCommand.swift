public import ArgumentParser
import TroncalProtocol

/// `troncal`: the operator's command line.
public struct TroncalCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "troncal",
        abstract: "Operate a Troncal site: certificates, running a site on one machine, status.",
        version: TroncalVersion.current,
        subcommands: [
            PKICommand.self, UpCommand.self, StatusCommand.self, ConfigCommand.self, RoutingCommand.self, PBXCommand.self, BillingCommand.self, CDRCommand.self, AlarmsCommand.self, MonitorCommand.self, BackupCommand.self, InfraCommand.self, CapacityCommand.self,
        ])

    public init() {}
}

/// Options shared by the commands that work on a site's data directory.
struct SiteOptions: ParsableArguments {
    @Option(help: "The site's data directory (site.json, pki/, data/, logs/).")
    var dataDir: String = "./troncal-data"
}
