import Foundation
import Logging
import TestSupport
import Testing
import TroncalProtocol
import TroncalRuntime

/// The capacity controller acting in the two-site lab (issue 16): site A's active monitor (`monitor-1`) in `act` mode
/// with the lab's executor (`scripts/lab instance site-a start|stop ROLE INSTANCE`), a standby pool of `sbc-3` and
/// `routing-3` on host a3, scrapes and rounds every second and windows shortened for the test.
@Suite("Two-site lab: the capacity controller acts", .serialized, .startsProcesses)
struct LabCapacityTests {
    static let callee = "34911234567"
    /// The flooding address on the lab's internet (the customer is 10.71.100.2, the carrier 10.71.100.3).
    static let attacker = "10.71.100.4"
    static let replaceAfterSeconds = 6
    let logger = Logger(label: "test.lab.capacity")

    /// Site A in `act` mode. The flood rule's thresholds are the shipped `SBCFlood`'s divided by 10 (a 2-core machine
    /// running the whole lab cannot send 1,000 requests a second for long), and 400 requests per 2 s window from one
    /// source: the customer's 10 calls a second send about 60.
    static func inventory(in directory: TemporaryDirectory) throws -> URL {
        let flood = AlarmRule(
            name: "SBCFlood", category: .security, metric: "troncal_sbc_requests_blocked_total", function: .increasePerMinute, warning: 600,
            critical: 6000, clear: 60, forSeconds: 3, summary: "{{instance}} dropped {{value}} requests ({{reason}}) in a minute",
            action: "A flood: the capacity controller drains and replaces the SBC.")
        let rule = try JSONSerialization.jsonObject(with: JSONEncoder().encode(flood))
        return try Lab.inventory(in: directory) { site, config in
            guard site == "site-a" else { return }
            var sip = config["sip"] as? [String: Any] ?? [:]
            sip["requestsPerWindow"] = 400
            sip["requestsPerWindowPerAddress"] = 400
            config["sip"] = sip
            var monitor = config["monitor"] as? [String: Any] ?? [:]
            var capacity = monitor["capacity"] as? [String: Any] ?? [:]
            capacity["mode"] = "act"
            capacity["intervalSeconds"] = 1
            capacity["replaceAfterSeconds"] = replaceAfterSeconds
            // Loads are not what this test is about: no scale-out unless an instance passes a whole core.
            capacity["plannedLoad"] = 0.9
            capacity["scaleOutLoad"] = 1.0
            monitor["capacity"] = capacity
            monitor["scrapeIntervalSeconds"] = 1
            monitor["scrapeTimeoutMilliseconds"] = 2000
            monitor["rules"] = [rule]
            config["monitor"] = monitor
        }
    }

    /// One lab, two cases in turn: `kill -9` of routing-1 (nothing restarts an instance in the lab) → routing-3 from
    /// the standby pool in its place; a flood from one internet address against the SBC holding the floating address
    /// → `SBCFlood` critical → that SBC drained, withdrawn and replaced by sbc-3, while a customer's calls from another
    /// address complete (at least 99 %).
    @Test(
        .enabled(if: Lab.available, "the lab needs root (network namespaces) and patroni, etcd-server, keepalived and sipp (scripts/test installs them)"),
        .startsProcessesAlone)
    func theControllerReplacesAKilledRoutingCoreAndAFloodedSBCWithStandbysWhileCallsComplete() async throws {
        let directory = try TemporaryDirectory(prefix: "troncal-lab-capacity")
        defer { directory.remove() }
        let lab = try await Lab(inventory: try Self.inventory(in: directory))
        defer { lab.down() }
        // Every instance of site A up, the standby pool not running, and the controller's rounds under way.
        var health: [String: String] = [:]
        let ready = await eventually(timeout: .seconds(90), interval: .milliseconds(500)) {
            health = await lab.health("site-a", on: "a2")
            guard health["sbc-3"] == "standby", health["routing-3"] == "standby",
                health.filter({ $0.key != "sbc-3" && $0.key != "routing-3" }).allSatisfy({ $0.value == "healthy" })
            else { return false }
            return await lab.counter("site-a", "monitor-1", "troncal_capacity_instances") > 0
        }
        #expect(ready, "site A: \(health)\n\(lab.logs)")
        try await killRoutingWithNoRestart(lab)
        try await floodTheActiveSBC(lab)
    }

    /// `kill -9` of routing-1: no process manager restarts it in the lab. The controller sees it fail for
    /// `replaceAfterSeconds`, withdraws it and starts routing-3; the decision and its reason are in the history.
    func killRoutingWithNoRestart(_ lab: Lab) async throws {
        kill(try lab.pid("site-a-routing-1"), SIGKILL)
        let killed = ContinuousClock.now
        var events: [CapacityEvent] = []
        var health: [String: String] = [:]
        let replaced = await eventually(timeout: .seconds(120), interval: .milliseconds(500)) {
            events = await lab.capacityHistory("site-a", on: "a2", role: "routing")
            guard events.contains(where: { $0.action == "replace" }) else { return false }
            health = await lab.health("site-a", on: "a2")
            return health["routing-3"] == "healthy"
        }
        let elapsed = ContinuousClock.now - killed
        logger.notice("lab: routing-1 killed, nothing restarts it: routing-3 healthy in its place after \(elapsed) (replaceAfterSeconds \(Self.replaceAfterSeconds))")
        #expect(replaced, "history: \(events.map(\.reason))\nsite A: \(health)\n\(lab.logs)")
        let replace = try #require(events.first { $0.action == "replace" })
        #expect(replace.busiestInstance == "routing-1" && replace.reason.contains("routing-1 did not answer /health")
                && replace.reason.contains("routing-3 from the standby pool started in its place"), "\(replace.reason)")
        // The configured time: the failure window, then the start of routing-3 and its first healthy scrape.
        #expect(elapsed < .seconds(Self.replaceAfterSeconds + 60), "routing-3 took over \(elapsed) after the kill")
        #expect(lab.running("site-a-routing-3"))
    }

    /// The customer places 10 calls a second through site A's floating address (its ACKs and BYEs to the answering
    /// SBC's own address, as RFC 3261 has it); meanwhile 10.71.100.4 floods the SBC
    /// holding it with OPTIONS. That SBC bans the source and drops its requests: `SBCFlood` goes critical, and the
    /// controller drains it (SIGTERM: its `/health` says it is stopping, keepalived moves the address, the calls up
    /// finish on it: each SBC advertises its own host's address), withdraws it and starts sbc-3.
    func floodTheActiveSBC(_ lab: Lab) async throws {
        let holder = try #require(await lab.holder("site-a"), "nobody holds site A's floating address\n\(lab.logs)")
        let victim = holder == "a1" ? "sbc-1" : "sbc-2"
        try await NetworkNamespaces.ip(["-n", "tl-inet", "addr", "add", "\(Self.attacker)/24", "dev", "eth0"])
        let carrier = try lab.sipp("carrier", scenario: SippScenarios.carrier(), address: Lab.carrier, port: 5080, arguments: ["-m", "100000", "-timeout", "400s"])
        defer { kill(carrier.child.pid, SIGKILL) }
        try await carrier.listening()
        let total = 900
        let caller = try lab.sipp(
            "caller", scenario: SippScenarios.caller(holdMilliseconds: 500, followsContact: true), address: Lab.customer, port: 5060,
            arguments: ["-s", Self.callee, "-m", "\(total)", "-r", "10", "-l", "100", "\(Lab.floating["site-a"]!):5060", "-recv_timeout", "10000",
                        "-timeout", "300s"])
        defer { kill(caller.child.pid, SIGKILL) }
        // 15 s of calls first.
        let flowing = await eventually(timeout: .seconds(90), interval: .milliseconds(500)) {
            caller.messageText.components(separatedBy: "SIP/2.0 200 OK").count - 1 >= 2 * 150
        }
        #expect(flowing, "\(caller.report)\n\(lab.logs)")
        let flood = try lab.sipp(
            "flood", scenario: SippScenarios.optionsFlood, address: Self.attacker, port: 5060,
            arguments: ["-s", "flood", "-m", "30000", "-r", "300", "-l", "30000", "\(Lab.address[holder]!):5060", "-timeout", "150s"])
        defer { kill(flood.child.pid, SIGKILL) }
        let flooded = ContinuousClock.now
        var events: [CapacityEvent] = []
        var health: [String: String] = [:]
        let replaced = await eventually(timeout: .seconds(120), interval: .milliseconds(500)) {
            events = await lab.capacityHistory("site-a", on: "a2", role: "sbc")
            guard events.contains(where: { $0.action == "replace" && $0.busiestInstance == victim }) else { return false }
            health = await lab.health("site-a", on: "a2")
            return health["sbc-3"] == "healthy" && !lab.running("site-a-\(victim)")
        }
        let elapsed = ContinuousClock.now - flooded
        await flood.stop()
        #expect(replaced, "history: \(events.map(\.reason))\nsite A: \(health)\n\(lab.logs)")
        let replace = events.first { $0.action == "replace" && $0.busiestInstance == victim }
        #expect(replace?.reason.contains("\(victim) is under attack: SBCFlood critical") == true && replace?.reason.contains("sbc-3") == true,
                "\(replace?.reason ?? "no replace event")")
        let after = await lab.holder("site-a")
        #expect(after != nil && after != holder, "site A's floating address is on \(after ?? "nobody")")
        _ = await caller.finish(timeout: .seconds(240))
        let completed = caller.successfulCalls ?? 0
        let failed = caller.failedCalls ?? total
        logger.notice(
            "lab: flood of \(victim) from \(Self.attacker): replaced by sbc-3 \(elapsed) after the flood began; floating address \(holder) → \(after ?? "nobody"); customer's calls: \(completed) of \(total) completed, \(failed) failed")
        if failed > 0 { logger.notice("lab: the failed calls, as sipp saw them:\n\(caller.errorText.suffix(3000))") }
        #expect(Double(completed) >= 0.99 * Double(total), "\(completed) of \(total) calls completed\n\(caller.report)\n\(lab.logs)")
        await caller.stop()
        await carrier.stop()
    }
}
