import ArgumentParser
import Foundation
import TroncalProtocol
import TroncalControl

/// `troncal capacity plan`: the sizing rules applied to load figures, advice only (nothing is started or stopped).
struct CapacityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capacity", abstract: "Size each service by the operator's rules (40 % at peak, add at 60 %, never fewer than 2).",
        subcommands: [Plan.self, History.self, Withdraw.self, Return.self])

    /// `troncal capacity withdraw INSTANCE --reason TEXT [--compromised]`: out of service for good, replaced by a standby.
    struct Withdraw: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Withdraw an instance for good (compromised, or to rebuild): stopped (an SBC drains), a standby started in its place.")
        @Argument(help: "The instance, e.g. sbc-1.")
        var instance: String
        @Option(help: "Why, for the history.")
        var reason: String
        @Flag(help: "The server is compromised: rebuild it from a clean configuration, never restart it in place.")
        var compromised = false
        @OptionGroup var target: MonitorTargetOptions

        func run() async throws {
            // With the systemd executor the reply waits for the stop (an SBC's drain): give --timeout room for it.
            let result = try await target.request(CapacityWithdrawRequest(instance: instance, reason: reason, compromised: compromised))
            if target.json { return try target.print(json: result.event) }
            Output.line("\(result.event.role)  \(result.event.action)  \(result.event.instances) -> \(result.event.after)\n    \(result.event.reason)")
        }
    }

    /// `troncal capacity return INSTANCE`: a withdrawn instance, rebuilt, back to the standby pool.
    struct Return: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put a withdrawn instance, its server rebuilt from a clean configuration, back in the standby pool.")
        @Argument(help: "The instance, e.g. sbc-1.")
        var instance: String
        @OptionGroup var target: MonitorTargetOptions

        func run() async throws {
            let result = try await target.request(CapacityReturnRequest(instance: instance))
            if target.json { return try target.print(json: result) }
            Output.line("\(result.instance): \(result.state)")
        }
    }

    /// `troncal capacity history [--role R] [--limit N] [--json]`: the decisions of the site's capacity controller (in
    /// the active monitor), newest first, each with its reason.
    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The capacity controller's decisions (hold, scale-out, scale-in), newest first, with the figures and the reason.")
        @Option(help: "Only this role: sbc, routing, billing, pbx, monitor.")
        var role: String?
        @Option(help: "At most this many decisions.")
        var limit: Int = 100
        @OptionGroup var target: MonitorTargetOptions

        func run() async throws {
            if let role, Role(rawValue: role) == nil { throw ValidationError("--role must be one of sbc, routing, billing, pbx, monitor") }
            let history = try await target.request(CapacityHistoryRequest(role: role, limit: limit))
            if target.json { return try target.print(json: history.events) }
            if history.events.isEmpty { Output.line("no capacity decisions yet") }
            for event in history.events {
                var line = "\(AlarmText.time(event.at))  \(event.role)  \(event.action)  \(event.instances) -> \(event.after)  (planned \(event.planned)"
                if event.fromStandby + event.missing > 0 { line += ", \(event.fromStandby) from standby, \(event.missing) to provision" }
                Output.line(line + ", \(event.mode))\n    \(event.reason)")
            }
        }
    }

    struct Plan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Advise, per service, from load figures: hold, add (from the standby pool) or remove instances, with the reason.")
        @Option(help: "Load figures, CSV with the header time,instance,cpu,capacity (time ISO 8601 or Unix seconds; cpu and capacity as fractions 0-1, capacity may be empty).")
        var figures: String
        @Option(help: "Sizing rules, JSON (plannedLoad, scaleOutLoad, minimumInstances, scaleInWindowSeconds, bucketSeconds); default the operator's rules.")
        var rules: String?
        @Option(help: "An inventory (infra/inventory.json): the site's running instances and standby pool come from it.")
        var inventory: String?
        @Option(help: "The site of the inventory to plan.")
        var site: String?
        @Flag(help: "Print JSON instead of text.")
        var json = false

        func run() async throws {
            var sizing = CapacityRules()
            if let rules {
                do {
                    sizing = try JSONDecoder().decode(CapacityRules.self, from: Data(contentsOf: URL(fileURLWithPath: rules)))
                    try sizing.validate()
                } catch {
                    throw ValidationError("\(rules): \(error)")
                }
            }
            let samples: [LoadSample]
            do {
                samples = try Self.parse(String(contentsOfFile: figures, encoding: .utf8), file: figures)
            } catch let error as CapacityError {
                throw ValidationError(error.description)
            } catch {
                throw ValidationError("cannot read \(figures): \(error.localizedDescription)")
            }
            var running: [Role: [String]] = [:]
            var standby: [Role: Int] = [:]
            if let inventory {
                guard let site else { throw ValidationError("--inventory needs --site") }
                let parsed: Inventory
                do { parsed = try Inventory.load(inventory) } catch { throw ValidationError("\(error)") }
                guard let chosen = parsed.sites.first(where: { $0.name == site }) else {
                    throw ValidationError("site \(site) is not in \(inventory)")
                }
                for placement in try parsed.placements(chosen) {
                    if placement.standby { standby[placement.role, default: 0] += 1 } else { running[placement.role, default: []].append(placement.instance) }
                }
            } else {
                for sample in samples {
                    guard let role = sample.role else { continue }
                    if !(running[role] ?? []).contains(sample.instance) { running[role, default: []].append(sample.instance) }
                }
            }
            let planner = CapacityPlanner(rules: sizing)
            // Backup runs once per site, isolated: it is not sized by these rules.
            let plans = Role.services.filter { running[$0] != nil && $0 != .backup }.map { role in
                planner.plan(role: role, samples: samples, instances: running[role] ?? [], standby: standby[role] ?? 0)
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                encoder.dateEncodingStrategy = .iso8601
                Output.line(String(decoding: try encoder.encode(plans), as: UTF8.self))
            } else {
                for plan in plans {
                    Output.line("\(plan.role): \(plan.action.rawValue) \(plan.instances) -> \(plan.after)")
                    Output.line("  \(plan.reason)")
                }
            }
        }

        /// `time,instance,cpu,capacity` rows; a bad row is refused with its line number.
        static func parse(_ text: String, file: String) throws -> [LoadSample] {
            var lines = text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            guard let header = lines.first?.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }),
                header.prefix(3) == ["time", "instance", "cpu"]
            else {
                throw CapacityError("\(file): the first line must be the header time,instance,cpu,capacity")
            }
            lines.removeFirst()
            let iso = ISO8601DateFormatter()
            return try lines.enumerated().map { index, line in
                let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                let number = index + 2
                guard fields.count >= 3 else { throw CapacityError("\(file): line \(number): expected time,instance,cpu[,capacity]") }
                guard let at = Double(fields[0]).map(Date.init(timeIntervalSince1970:)) ?? iso.date(from: fields[0]) else {
                    throw CapacityError("\(file): line \(number): time \"\(fields[0])\" is neither ISO 8601 nor Unix seconds")
                }
                guard Role(rawValue: String(fields[1].prefix { $0 != "-" })).map(Role.services.contains) == true else {
                    throw CapacityError("\(file): line \(number): instance \"\(fields[1])\" is not <role>-<n> of a service")
                }
                guard let cpu = Double(fields[2]), (0...1).contains(cpu) else {
                    throw CapacityError("\(file): line \(number): cpu \"\(fields[2])\" is not a fraction between 0 and 1")
                }
                var capacity: Double?
                if fields.count > 3, !fields[3].isEmpty {
                    guard let value = Double(fields[3]), value >= 0 else {
                        throw CapacityError("\(file): line \(number): capacity \"\(fields[3])\" is not a fraction of at least 0")
                    }
                    capacity = value
                }
                return LoadSample(at: at, instance: fields[1], cpu: cpu, capacity: capacity)
            }
        }
    }
}
