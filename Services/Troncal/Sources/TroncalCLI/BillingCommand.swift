public import ArgumentParser
import Foundation
import Logging
import TroncalCatalog
import TroncalLink
public import TroncalProtocol
import TroncalRuntime

/// `troncal billing import|export|topup|adjust|account`: billing's catalogs as CSV and customers' balances, over
/// the mutual-TLS link with the operator certificate.
struct BillingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "billing", abstract: "Import and export billing catalogs, top up and adjust balances, show an account.",
        subcommands: [BillingImportCommand.self, BillingExportCommand.self, TopUpCommand.self, AdjustCommand.self, AccountCommand.self])
}

extension BillingCatalogKind: ExpressibleByArgument {}

/// Options of the commands that talk to a billing instance (the first one of the site, failing over to the next).
struct BillingTargetOptions: ParsableArguments {
    @OptionGroup var site: SiteOptions
    @Option(help: "How long to wait for each reply, in milliseconds.")
    var timeout: Int = 60000

    func request<R: LinkRequest>(_ request: R) async throws -> R.Reply {
        try await SiteDirectory(path: site.dataDir).operatorRequest(request, role: .billing, timeoutMilliseconds: timeout)
    }
}

struct BillingImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Import customers (added or updated), rates or carrier-rates (replaced) from CSV; see docs/billing.md.")
    @Argument(help: "customers, rates or carrier-rates.")
    var kind: BillingCatalogKind
    @Argument(help: "The CSV file ('-' for standard input).")
    var file: String
    @OptionGroup var target: BillingTargetOptions

    func run() async throws {
        let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: file))
        guard let text = String(data: data, encoding: .utf8) else { throw ValidationError("\(file) is not UTF-8 text") }
        let parts = CSVParts.split(text)
        let upload = RandomID.uuidString()
        var result: BillingImportResult?
        for (index, part) in parts.enumerated() {
            result = try await target.request(BillingImport(kind: kind, upload: upload, part: index, final: index == parts.count - 1, csv: part))
        }
        if let result { Output.line("\(kind.rawValue): \(result.rows) rows imported (\(result.milliseconds) ms)") }
    }
}

struct BillingExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Write customers (with balances), rates or carrier-rates as CSV.")
    @Argument(help: "customers, rates or carrier-rates.")
    var kind: BillingCatalogKind
    @Option(help: "Write to this file instead of standard output.")
    var output: String?
    @OptionGroup var target: BillingTargetOptions

    func run() async throws {
        var text = ""
        var part = 0
        var total = 1
        while part < total {
            let reply = try await target.request(BillingExport(kind: kind, part: part))
            total = reply.parts
            text += reply.csv
            part += 1
        }
        if let output { try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic) } else { FileHandle.standardOutput.write(Data(text.utf8)) }
    }
}

/// Prints an account.
func printAccount(_ state: AccountState) {
    Output.line("\(state.customer): \(state.type), \(state.status)\(state.statusReason.map { " (\($0))" } ?? "")")
    Output.line("  balance \(SignedAmount.format(state.balanceMicros)) \(state.currency), credit limit \(SignedAmount.format(state.creditLimitMicros)), reserved \(SignedAmount.format(state.reservedMicros)), available \(SignedAmount.format(state.availableMicros)); \(state.callsInProgress) calls in progress")
    for entry in state.ledger {
        Output.line("  \(entry.at)  \(entry.kind)  \(SignedAmount.format(entry.amountMicros))  → \(SignedAmount.format(entry.balanceMicros))  \(entry.reference)  by \(entry.by)")
    }
}

struct TopUpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "topup", abstract: "Add money to a customer's balance (kept in the ledger).")
    @Argument(help: "The customer id.")
    var customer: String
    @Argument(help: "The amount in the account's currency, up to 6 decimals (25, 12.50).")
    var amount: String
    @Option(help: "Why (kept in the ledger).")
    var reason: String
    @Option(help: "Who does it (kept in the ledger).")
    var by: String = ProcessInfo.processInfo.environment["USER"] ?? "operator"
    @OptionGroup var target: BillingTargetOptions

    func run() async throws {
        guard let micros = MicroAmount.parse(amount), micros > 0 else { throw ValidationError("'\(amount)' is not a positive amount with up to 6 decimals") }
        printAccount(try await target.request(BalanceAdjustment(customer: customer, kind: .topup, amountMicros: micros, reason: reason, by: by)))
    }
}

struct AdjustCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "adjust", abstract: "Correct a customer's balance up or down (kept in the ledger).")
    @Argument(help: "The customer id.")
    var customer: String
    @Argument(help: "The signed amount (-3.20, 5).")
    var amount: String
    @Option(help: "Why (kept in the ledger).")
    var reason: String
    @Option(help: "Who does it (kept in the ledger).")
    var by: String = ProcessInfo.processInfo.environment["USER"] ?? "operator"
    @OptionGroup var target: BillingTargetOptions

    func run() async throws {
        guard let micros = SignedAmount.parse(amount), micros != 0 else { throw ValidationError("'\(amount)' is not a non-zero amount with up to 6 decimals") }
        printAccount(try await target.request(BalanceAdjustment(customer: customer, kind: .adjustment, amountMicros: micros, reason: reason, by: by)))
    }
}

struct AccountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "account", abstract: "Show a customer's balance, reservations and latest ledger entries.")
    @Argument(help: "The customer id.")
    var customer: String
    @Flag(help: "Print JSON.")
    var json = false
    @OptionGroup var target: BillingTargetOptions

    func run() async throws {
        let state = try await target.request(AccountQuery(customer: customer))
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            Output.line(String(decoding: try encoder.encode(state), as: UTF8.self))
        } else {
            printAccount(state)
        }
    }
}

/// `troncal cdr export --from --to [--customer] [--format csv|json]`.
struct CDRCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cdr", abstract: "Call detail records.", subcommands: [CDRExportCommand.self])
}

struct CDRExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Write the CDRs of calls set up in [from, to) as CSV or JSON.")
    enum Format: String, ExpressibleByArgument { case csv, json }
    @Option(help: "From this time (inclusive): 2026-12-01 or 2026-12-01T08:00:00Z.")
    var from: String
    @Option(help: "Until this time (exclusive).")
    var to: String
    @Option(help: "Only this customer.")
    var customer: String?
    @Option(help: "csv or json.")
    var format: Format = .csv
    @Option(help: "Write to this file instead of standard output.")
    var output: String?
    @OptionGroup var target: BillingTargetOptions

    static func instant(_ text: String) throws -> String {
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        if let date = try? Date(text, strategy: .iso8601) { return date.formatted(style) }
        if let date = try? Date(text + "T00:00:00Z", strategy: .iso8601) { return date.formatted(style) }
        throw ValidationError("'\(text)' is not a date (2026-12-01) or an ISO 8601 time (2026-12-01T08:00:00Z)")
    }

    func run() async throws {
        let from = try Self.instant(self.from)
        let to = try Self.instant(self.to)
        var cdrs: [RatedCDR] = []
        var after: String?
        repeat {
            let page = try await target.request(CDRQuery(from: from, to: to, customer: customer, after: after, limit: 2000))
            cdrs += page.cdrs
            after = page.next
        } while after != nil
        let text: String
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            text = String(decoding: try encoder.encode(cdrs), as: UTF8.self) + "\n"
        case .csv:
            let header = [
                "id", "call_id", "customer", "caller", "callee", "carrier", "trunk", "setup_at", "answer_at", "end_at", "duration_ms", "billed_seconds",
                "disconnect_status", "disconnect_by", "currency", "sell", "buy", "margin", "rated", "rate_prefix", "note", "mos",
            ]
            let rows = cdrs.enumerated().map { offset, c in
                (
                    offset + 2,
                    [
                        c.id, c.callID, c.customer, c.caller, c.callee, c.carrier, c.trunk, c.setupAt, c.answerAt ?? "", c.endAt, "\(c.durationMilliseconds)",
                        "\(c.billedSeconds)", "\(c.disconnectStatus)", c.disconnectBy, c.currency, SignedAmount.format(c.sellMicros),
                        SignedAmount.format(c.buyMicros), SignedAmount.format(c.marginMicros), c.rated ? "true" : "false", c.ratePrefix, c.note,
                        c.mos.map { String(format: "%.2f", $0) } ?? "",
                    ]
                )
            }
            text = CSVTable(header: header, rows: rows).render()
        }
        if let output { try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic) } else { FileHandle.standardOutput.write(Data(text.utf8)) }
    }
}
