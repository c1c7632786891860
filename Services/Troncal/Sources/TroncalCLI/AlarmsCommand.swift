public import ArgumentParser
import Foundation
import TroncalLink
public import TroncalProtocol
import TroncalRuntime

/// `troncal alarms list|ack|silence|history [--json]`: the monitor's alarms, over the link with the operator certificate.
struct AlarmsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alarms", abstract: "List, acknowledge and silence the monitor's alarms, and show their history.",
        subcommands: [AlarmsListCommand.self, AlarmsAckCommand.self, AlarmsSilenceCommand.self, AlarmsHistoryCommand.self])
}

extension AlarmCategory: ExpressibleByArgument {}

/// Options of the commands that talk to a monitor instance (the first of the site, failing over to the next).
struct MonitorTargetOptions: ParsableArguments {
    @OptionGroup var site: SiteOptions
    @Option(help: "How long to wait for each reply, in milliseconds.")
    var timeout: Int = 10000
    @Flag(help: "Print JSON.")
    var json = false

    func request<R: LinkRequest>(_ request: R) async throws -> R.Reply {
        try await SiteDirectory(path: site.dataDir).operatorRequest(request, role: .monitor, timeoutMilliseconds: timeout)
    }

    func print<T: Encodable>(json value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        Output.line(String(decoding: try encoder.encode(value), as: UTF8.self))
    }
}

enum AlarmText {
    static func time(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    static func line(_ alarm: Alarm) -> String {
        var text = "\(alarm.fingerprint)  \(alarm.severity.rawValue)  \(alarm.category.rawValue)  \(alarm.level.rawValue)  \(alarm.rule)  since \(time(alarm.startsAt))"
        if let ended = alarm.endsAt { text += "  resolved \(time(ended))" }
        if let by = alarm.acknowledgedBy { text += "  acked by \(by)" }
        if let until = alarm.silencedUntil { text += "  silenced until \(time(until))" }
        return text + "\n    " + alarm.summary
    }
}

struct AlarmsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "The firing alarms (and, with --resolved-hours, the recently resolved).")
    @Option(help: "Only this category: service, server, link, voice, security, capacity.")
    var category: AlarmCategory?
    @Option(help: "Also the alarms resolved in the last this many hours.")
    var resolvedHours: Double = 0
    @OptionGroup var target: MonitorTargetOptions

    func run() async throws {
        let list = try await target.request(AlarmListRequest(category: category, resolvedHours: resolvedHours))
        if target.json { return try target.print(json: list.alarms) }
        if list.alarms.isEmpty { Output.line("no alarms") }
        for alarm in list.alarms { Output.line(AlarmText.line(alarm)) }
    }
}

struct AlarmsAckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ack", abstract: "Acknowledge a firing alarm: it stops escalating.")
    @Argument(help: "The alarm's fingerprint (its first characters are enough when unique).")
    var fingerprint: String
    @Option(help: "Who acknowledges (default: the operator certificate's name).")
    var by: String = ""
    @Option(help: "A comment kept in the alarm's history.")
    var comment: String = ""
    @OptionGroup var target: MonitorTargetOptions

    func run() async throws {
        let result = try await target.request(AlarmAcknowledge(fingerprint: fingerprint, by: by, comment: comment))
        if target.json { return try target.print(json: result.alarm) }
        Output.line("acknowledged: " + AlarmText.line(result.alarm))
    }
}

struct AlarmsSilenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "silence", abstract: "No notifications of a firing alarm for a while, with a reason.")
    @Argument(help: "The alarm's fingerprint (its first characters are enough when unique).")
    var fingerprint: String
    @Option(help: "For how many minutes.")
    var minutes: Int
    @Option(help: "Why (kept in the alarm's history).")
    var reason: String
    @Option(help: "Who silences (default: the operator certificate's name).")
    var by: String = ""
    @OptionGroup var target: MonitorTargetOptions

    func validate() throws {
        guard minutes > 0 else { throw ValidationError("--minutes must be positive") }
        guard !reason.isEmpty else { throw ValidationError("--reason must not be empty") }
    }

    func run() async throws {
        let until = Date().addingTimeInterval(Double(minutes) * 60)
        let result = try await target.request(AlarmSilence(fingerprint: fingerprint, until: until, reason: reason, by: by))
        if target.json { return try target.print(json: result.alarm) }
        Output.line("silenced: " + AlarmText.line(result.alarm))
    }
}

struct AlarmsHistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "The events of one alarm, or the latest of all.")
    @Argument(help: "An alarm's fingerprint (or its first characters); all alarms when left out.")
    var fingerprint: String?
    @Option(help: "At most this many events.")
    var limit: Int = 200
    @OptionGroup var target: MonitorTargetOptions

    func run() async throws {
        let history = try await target.request(AlarmHistoryRequest(fingerprint: fingerprint, limit: limit))
        if target.json { return try target.print(json: history.events) }
        for event in history.events {
            Output.line("\(AlarmText.time(event.at))  \(event.fingerprint)  \(event.event)  by \(event.actor)  \(event.detail)")
        }
    }
}

/// `troncal monitor login-link [--operator admin] [--minutes 10]`: a one-time login link to the NOC dashboard;
/// `troncal monitor operators list|set|remove`: the dashboard's operator accounts.
struct MonitorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor", abstract: "The NOC dashboard: one-time login links and operator accounts.",
        subcommands: [LoginLinkCommand.self, OperatorsCommand.self])
}

struct OperatorsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "operators", abstract: "The dashboard's operator accounts.",
        subcommands: [OperatorsListCommand.self, OperatorsSetCommand.self, OperatorsRemoveCommand.self])

    static func show(_ list: OperatorList, target: MonitorTargetOptions) throws {
        if target.json { return try target.print(json: list.operators) }
        for account in list.operators { Output.line("\(account.name)  since \(AlarmText.time(account.createdAt))") }
    }
}

struct OperatorsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "The operator accounts.")
    @OptionGroup var target: MonitorTargetOptions
    func run() async throws { try OperatorsCommand.show(try await target.request(OperatorRequest(action: .list)), target: target) }
}

struct OperatorsSetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Add an operator or give it a new password: read from standard input with --password-stdin, else made up and printed once.")
    @Argument(help: "The operator's name: letters, digits, '.', '_', '-' or '@'.")
    var name: String
    @Flag(help: "Read the password (one line, at least 10 characters) from standard input.")
    var passwordStdin = false
    @OptionGroup var target: MonitorTargetOptions

    func run() async throws {
        var password: String
        if passwordStdin {
            password = readLine(strippingNewline: true) ?? ""
        } else {
            let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
            password = String((0..<20).map { _ in alphabet.randomElement()! })
        }
        let list = try await target.request(OperatorRequest(action: .set, operatorName: name, password: password))
        if !passwordStdin { Output.line("\(name) \(password)") }
        password = ""
        if target.json { try OperatorsCommand.show(list, target: target) }
    }
}

struct OperatorsRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove an operator account (its logins end at once).")
    @Argument(help: "The operator's name.")
    var name: String
    @OptionGroup var target: MonitorTargetOptions
    func run() async throws { try OperatorsCommand.show(try await target.request(OperatorRequest(action: .remove, operatorName: name)), target: target) }
}

struct LoginLinkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "login-link", abstract: "Print a dashboard link that logs an operator in once.")
    @Option(help: "The operator account.")
    var `operator`: String = "admin"
    @Option(help: "How long the link is good for, in minutes.")
    var minutes: Int = 10
    @OptionGroup var target: MonitorTargetOptions

    func run() async throws {
        let link = try await target.request(LoginLinkRequest(operatorName: `operator`, minutes: minutes))
        if target.json { return try target.print(json: link) }
        Output.line(link.dashboard + link.path)
    }
}
