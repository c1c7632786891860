import Foundation
import Logging
import Testing
import TroncalProtocol
import TroncalRuntime

@testable import TroncalRouting

/// Routing from imported catalogs: least cost from rate decks, priority with weighted shares, load share, plans
/// per customer, time-of-day variants, blocks, multi-trunk carriers and capacity.
@Suite struct CatalogRoutingTests {
    static func catalog(_ files: [RoutingCatalogKind: String]) throws -> RoutingCatalog {
        var catalog = RoutingCatalog()
        for kind in RoutingCatalogKind.allCases {
            if let text = files[kind] { try CatalogCSV.read(kind, text, into: &catalog) }
        }
        try CatalogCSV.checkReferences(catalog)
        return catalog
    }

    static let carriers = """
        carrier,trunk,host,max_calls
        cheap,c1,192.0.2.1,0
        cheap,c2,192.0.2.2,0
        mid,,192.0.2.3,0
        dear,,192.0.2.4,0
        small,,192.0.2.5,2
        """

    static func table(_ files: [RoutingCatalogKind: String], timeZone: String = "UTC", configured: [RouteSettings] = []) throws -> RouteTable {
        var settings = RoutingSettings()
        settings.timeZone = timeZone
        settings.routes = configured
        var all = files
        if all[.carriers] == nil { all[.carriers] = carriers }
        return try RouteTable(settings, catalog: try catalog(all))
    }

    static func ask(_ table: RouteTable, _ callee: String, customer: String = "acme", at time: String = "2026-12-01T09:00:00Z",
                    availability: (RouteTable.Trunk) -> RouteTable.Availability = { _ in .available }) -> RouteDecision {
        var generator = SplitMix64(seed: 7)
        let now = try! Date(time, strategy: .iso8601)
        return table.decide(RouteRequest(customer: customer, caller: "100", callee: callee, site: "a", callID: "x"), now: now,
                            availability: availability, using: &generator)
    }

    @Test func leastCostOrdersCarriersByTheirRateForTheNumberAndTriesEveryTrunkOfEach() throws {
        let table = try Self.table([
            .routes: "prefix,carrier\n34,dear\n34,cheap\n34,mid\n",
            .rates: "carrier,prefix,rate\ncheap,34,0.02\ncheap,346,0.09\nmid,34,0.03\ndear,34,0.05\n",
        ])
        // Landline: cheap (0.02, both trunks), mid (0.03), dear (0.05).
        #expect(Self.ask(table, "34911234567").targets.map(\.trunk) == ["c1", "c2", "mid", "dear"])
        // Mobile: cheap's longest prefix 346 costs 0.09, so mid and dear come first.
        #expect(Self.ask(table, "34611234567").targets.map(\.carrier) == ["mid", "dear", "cheap", "cheap"])
    }

    @Test func aFixedCostOnTheRouteRowBeatsTheRateDeckAndUnratedCarriersGoLast() throws {
        let table = try Self.table([
            .routes: "prefix,carrier,cost\n44,dear,0.001\n44,mid,\n44,cheap,\n",
            .rates: "carrier,prefix,rate\ncheap,44,0.02\n",
        ])
        #expect(Self.ask(table, "442079460018").targets.map(\.carrier) == ["dear", "cheap", "cheap", "mid"])
    }

    @Test func priorityGoesFirstAndEqualPrioritiesShareByWeight() throws {
        let table = try Self.table([
            .plans: "plan,strategy,customers\ndefault,priority,\n",
            .routes: "prefix,carrier,priority,weight\n1,dear,2,1\n1,cheap,1,3\n1,mid,1,1\n",
        ])
        var firsts: [String: Int] = [:]
        var generator = SplitMix64(seed: 42)
        for _ in 0..<4000 {
            let decision = table.decide(RouteRequest(customer: "acme", caller: "1", callee: "12025550100", site: "a", callID: "x"), now: Date(),
                                        availability: { _ in .available }, using: &generator)
            #expect(decision.targets.last?.carrier == "dear")
            firsts[decision.targets[0].carrier, default: 0] += 1
        }
        // cheap has weight 3 of 4 among priority 1: about 3,000 of 4,000 first places.
        #expect((2800...3200).contains(firsts["cheap"] ?? 0), "\(firsts)")
        #expect((800...1200).contains(firsts["mid"] ?? 0), "\(firsts)")
    }

    @Test func weightedLoadShareSpreadsFirstAttemptsByWeight() throws {
        let table = try Self.table([
            .plans: "plan,strategy,customers\nshare,weight,acme\n",
            .routes: "plan,prefix,carrier,weight\nshare,33,cheap,1\nshare,33,mid,1\nshare,33,dear,2\nshare,33,small,0\n",
        ])
        var firsts: [String: Int] = [:]
        var generator = SplitMix64(seed: 9)
        for _ in 0..<4000 {
            let decision = table.decide(RouteRequest(customer: "acme", caller: "1", callee: "33123456789", site: "a", callID: "x"), now: Date(),
                                        availability: { _ in .available }, using: &generator)
            firsts[decision.targets[0].carrier, default: 0] += 1
            // Weight 0 is a last resort.
            #expect(decision.targets.last?.carrier == "small")
        }
        #expect((1800...2200).contains(firsts["dear"] ?? 0), "\(firsts)")
        #expect((800...1200).contains(firsts["mid"] ?? 0), "\(firsts)")
        #expect(firsts["small"] == nil)
    }

    @Test func customersOnAPlanGetItsRoutesAndOthersGetTheDefaultPlan() throws {
        let table = try Self.table([
            .plans: "plan,strategy,customers\ngold,priority,acme\n",
            .routes: "plan,prefix,carrier\ndefault,34,dear\ngold,34,cheap\ndefault,3491,mid\n",
        ])
        #expect(Self.ask(table, "34931234567", customer: "acme").targets.map(\.carrier) == ["cheap", "cheap"])
        #expect(Self.ask(table, "34931234567", customer: "globex").targets.map(\.carrier) == ["dear"])
        // A longer general prefix still beats the plan's shorter one, as with configured customer routes.
        #expect(Self.ask(table, "34911234567", customer: "acme").targets.map(\.carrier) == ["mid"])
    }

    @Test func timeOfDayVariantsApplyInTheSiteTimeZone() throws {
        let files: [RoutingCatalogKind: String] = [
            .plans: "plan,strategy,customers\ndefault,priority,\n",
            .routes: """
                prefix,carrier,days,hours
                49,cheap,mon-fri,08:00-18:00
                49,dear,sat;sun,
                49,mid,mon-fri,18:00-08:00
                4930,small,,
                """,
        ]
        let utc = try Self.table(files)
        // 2026-12-01 is a Tuesday.
        #expect(Self.ask(utc, "493012345", at: "2026-12-01T09:00:00Z").targets.map(\.carrier) == ["small"])
        #expect(Self.ask(utc, "4989123456", at: "2026-12-01T09:00:00Z").targets.map(\.carrier) == ["cheap", "cheap"])
        #expect(Self.ask(utc, "4989123456", at: "2026-12-01T18:00:00Z").targets.map(\.carrier) == ["mid"])
        #expect(Self.ask(utc, "4989123456", at: "2026-12-05T12:00:00Z").targets.map(\.carrier) == ["dear"])
        // Saturday 03:00 is still Friday's night window.
        #expect(Set(Self.ask(utc, "4989123456", at: "2026-12-05T03:00:00Z").targets.map(\.carrier)) == ["dear", "mid"])
        // 07:30 UTC is 08:30 in Berlin: the day window.
        let berlin = try Self.table(files, timeZone: "Europe/Berlin")
        #expect(Self.ask(berlin, "4989123456", at: "2026-12-01T07:30:00Z").targets.map(\.carrier) == ["cheap", "cheap"])
        #expect(Self.ask(utc, "4989123456", at: "2026-12-01T07:30:00Z").targets.map(\.carrier) == ["mid"])
    }

    @Test func aPrefixWhoseRowsAreAllForOtherTimesFallsBackToAShorterOne() throws {
        let table = try Self.table([.routes: "prefix,carrier,hours\n39,dear,\n3906,cheap,09:00-17:00\n"])
        #expect(Self.ask(table, "390612345678", at: "2026-12-01T10:00:00Z").targets.map(\.carrier) == ["cheap", "cheap"])
        #expect(Self.ask(table, "390612345678", at: "2026-12-01T20:00:00Z").targets.map(\.carrier) == ["dear"])
    }

    @Test func aBlockCanHoldForSomeHoursOnly() throws {
        let table = try Self.table([.routes: "prefix,carrier,hours,blocked\n882,dear,,\n882,,00:00-06:00,true\n"])
        #expect(Self.ask(table, "88216123456", at: "2026-12-01T02:00:00Z").rejectStatus == 403)
        #expect(Self.ask(table, "88216123456", at: "2026-12-01T12:00:00Z").targets.map(\.carrier) == ["dear"])
    }

    @Test func aTrunkAtCapacityIsSkippedAndAllFullGets503() throws {
        let table = try Self.table([.routes: "prefix,carrier,cost\n7,small,0.01\n7,mid,0.02\n"])
        let full: (RouteTable.Trunk) -> RouteTable.Availability = { $0.carrier == "small" ? .atCapacity : .available }
        #expect(Self.ask(table, "74951234567", availability: full).targets.map(\.carrier) == ["mid"])
        let none = Self.ask(table, "74951234567", availability: { $0.carrier == "small" ? .atCapacity : .outOfService })
        #expect(none.rejectStatus == 503)
        #expect(none.reason == "no carrier in service for +7 (1 out of service, 1 at capacity)")
    }

    @Test func aTrunkBelowTheMinimumMOSIsTriedLastUntilTheReportSaysItRecoveredOrExpires() throws {
        let table = try Self.table([.routes: "prefix,carrier,cost\n7,small,0.01\n7,mid,0.02\n7,dear,0.03\n"])
        let board = TrunkQualityBoard(minimumMOS: 3.6, logger: Logger(label: "test"))
        let now = Date()
        func ask(at time: Date) -> [String] {
            Self.ask(table, "74951234567", availability: { board.isDemoted($0.key, now: time) ? .demoted : .available }).targets.map(\.carrier)
        }
        #expect(ask(at: now) == ["small", "mid", "dear"])
        board.update(
            TrunkQualityReport(
                windowSeconds: 900, trunks: [
                    .init(carrier: "small", trunk: "small", mos: 3.1, calls: 30, lossPercent: 5),
                    .init(carrier: "mid", trunk: "mid", mos: 4.3, calls: 30, lossPercent: 0),
                ], at: now, validSeconds: 30),
            at: now)
        // Demoted, not removed: still tried, after the others.
        #expect(ask(at: now) == ["mid", "dear", "small"])
        #expect(board.verdict(CarrierHealth.Trunk(carrier: "small", trunk: "small"), now: now)?.demoted == true)
        #expect(board.verdict(CarrierHealth.Trunk(carrier: "mid", trunk: "mid"), now: now)?.demoted == false)
        // A report nobody renewed counts for nothing.
        #expect(ask(at: now.addingTimeInterval(31)) == ["small", "mid", "dear"])
        // The next report no longer lists it (too few calls in the window) or lists it recovered: back in its place.
        board.update(TrunkQualityReport(windowSeconds: 900, trunks: [], at: now, validSeconds: 30), at: now)
        #expect(ask(at: now) == ["small", "mid", "dear"])
        // Off (0): nothing is demoted.
        let off = TrunkQualityBoard(minimumMOS: 0, logger: Logger(label: "test"))
        off.update(
            TrunkQualityReport(windowSeconds: 900, trunks: [.init(carrier: "small", trunk: "small", mos: 1.5, calls: 30, lossPercent: 20)], at: now, validSeconds: 30),
            at: now)
        #expect(!off.isDemoted(CarrierHealth.Trunk(carrier: "small", trunk: "small"), now: now))
    }

    @Test func trunkLoadCountsSeizuresUntilTheyEndAndLimitsCallsAndRate() throws {
        let load = TrunkLoad(seizureLifetime: 3600)
        let table = try Self.table([.routes: "prefix,carrier\n7,small\n"])
        let small = try #require(table.allTrunks.first { $0.carrier == "small" })
        let now = Date()
        load.record(TrunkUsage(event: .seized, carrier: "small", trunk: "small", callID: "a"), now: now)
        #expect(load.hasRoom(small, now: now))
        load.record(TrunkUsage(event: .seized, carrier: "small", trunk: "small", callID: "b"), now: now)
        #expect(!load.hasRoom(small, now: now))
        // An unanswered attempt frees its trunk; an answered one holds it until released.
        load.record(CallAttemptReport(carrier: "small", trunk: "small", result: .noAnswer, status: nil, postDialDelayMilliseconds: nil, callID: "a"), now: now)
        #expect(load.load(of: small.key, now: now).inProgress == 1)
        load.record(CallAttemptReport(carrier: "small", trunk: "small", result: .answered, status: 200, postDialDelayMilliseconds: nil, callID: "b"), now: now)
        #expect(load.load(of: small.key, now: now).inProgress == 1)
        load.record(TrunkUsage(event: .released, carrier: "small", trunk: "small", callID: "b"), now: now)
        #expect(load.load(of: small.key, now: now).inProgress == 0)
        // A report that overtakes its seizure: the late seizure is not counted.
        load.record(CallAttemptReport(carrier: "small", trunk: "small", result: .failed, status: 503, postDialDelayMilliseconds: nil, callID: "c"), now: now)
        load.record(TrunkUsage(event: .seized, carrier: "small", trunk: "small", callID: "c"), now: now)
        #expect(load.load(of: small.key, now: now).inProgress == 0)

        var limited = small
        limited.maximumCalls = 0
        limited.maximumCallsPerSecond = 3
        for index in 0..<3 { load.record(TrunkUsage(event: .seized, carrier: "small", trunk: "small", callID: "r\(index)"), now: now) }
        #expect(!limited.isAdmitted(by: load, now: now))
        #expect(limited.isAdmitted(by: load, now: now.addingTimeInterval(1.1)))
    }

    @Test func seizuresThatAreNeverClosedExpire() {
        let load = TrunkLoad(seizureLifetime: 60)
        let trunk = CarrierHealth.Trunk(carrier: "x", trunk: "x")
        let start = Date()
        load.record(TrunkUsage(event: .seized, carrier: "x", trunk: "x", callID: "lost"), now: start)
        #expect(load.load(of: trunk, now: start).inProgress == 1)
        load.record(TrunkUsage(event: .seized, carrier: "x", trunk: "x", callID: "new"), now: start.addingTimeInterval(120))
        #expect(load.load(of: trunk, now: start.addingTimeInterval(120)).inProgress == 1)
    }

    @Test func catalogRoutesOverrideConfiguredOnesOfTheSamePrefixAndRowsWithUnknownCarriersAreSkipped() throws {
        var config = RouteSettings(prefix: "34", targets: [RouteTargetSettings(carrier: "configured", host: "192.0.2.99", port: 5060)])
        config.customers = []
        let table = try Self.table([.routes: "prefix,carrier\n34,cheap\n"], configured: [config, RouteSettings(prefix: "44", targets: [config.targets[0]])])
        #expect(Self.ask(table, "34911234567").targets.map(\.carrier) == ["cheap", "cheap"])
        #expect(Self.ask(table, "442079460018").targets.map(\.carrier) == ["configured"])
        // A carriers import that drops a carrier still named by routes: the build skips those rows.
        var catalog = try Self.catalog([.carriers: Self.carriers, .routes: "prefix,carrier\n34,cheap\n351,mid\n"])
        try CatalogCSV.read(.carriers, "carrier,host\ncheap,192.0.2.1\n", into: &catalog)
        let rebuilt = try RouteTable(RoutingSettings(), catalog: catalog)
        #expect(rebuilt.skippedRoutes == 1)
        #expect(Self.ask(rebuilt, "351211234567").rejectStatus == 404)
    }

    @Test func catalogDIDsAnswerOnNetAlongsideConfiguredOnes() throws {
        let table = try Self.table([.dids: "number,customer,host,port\n34911000111,acme,198.51.100.7,5070\n"])
        let decision = table.decide(RouteRequest(customer: "carrier-x", caller: "1", callee: "+34911000111", site: "a", callID: "x", fromCarrier: true))
        #expect(decision.outcome == .onNet)
        #expect(decision.onNet?.host == "198.51.100.7" && decision.onNet?.port == 5070 && decision.onNet?.trunk == "acme")
    }
}

extension RouteTable.Trunk {
    func isAdmitted(by load: TrunkLoad, now: Date) -> Bool { load.hasRoom(self, now: now) }
}
