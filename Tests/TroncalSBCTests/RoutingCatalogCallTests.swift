import Foundation
import TestSupport
import Testing
import TroncalProtocol
import TroncalRuntime

/// The routing catalogs end to end: `troncal routing import|export|inspect` against the running routing core
/// (operator certificate, mutual TLS), calls routed at once from what was imported, a bad file refused with its
/// line while the old catalog keeps routing, the catalogs kept across a restart, and trunk capacity.
@Suite("Routing catalogs with the CLI and sipp", .serialized, .startsProcesses)
struct RoutingCatalogCallTests {
    static func write(_ text: String, _ name: String, in site: CallSite) throws -> String {
        let url = site.directory.url.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    static func site() async throws -> CallSite {
        try await CallSite { config, _ in
            config.sbc.customers = [CallSite.customer()]
            config.routing.routes = []
        }
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func anImportedCatalogRoutesCallsAtOnceRefusesBadFilesAndSurvivesARestart() async throws {
        let site = try await Self.site()
        defer { site.remove() }
        let carriers = try Self.write("carrier,host,port\ncat-a,\(CallSite.carrierAddress),\(site.carrierPort(0))\n", "carriers.csv", in: site)
        let routes = try Self.write("prefix,carrier,cost\n34,cat-a,0.01\n", "routes.csv", in: site)
        let (carriersStatus, carriersOutput) = try await site.troncal(["routing", "import", "carriers", carriers])
        #expect(carriersStatus == 0, "\(carriersOutput)")
        #expect(carriersOutput.contains("routing-1: carriers: 1 rows imported (generation 1"), "\(carriersOutput)")
        let (routesStatus, routesOutput) = try await site.troncal(["routing", "import", "routes", routes])
        #expect(routesStatus == 0, "\(routesOutput)")

        // A routes file naming a carrier that does not exist: refused with its line; the imported routes stay.
        let bad = try Self.write("prefix,carrier\n34,cat-a\n44,nobody\n", "bad.csv", in: site)
        let (badStatus, badOutput) = try await site.troncal(["routing", "import", "routes", bad])
        #expect(badStatus == 1)
        #expect(badOutput.contains("routing-1: routes not imported: routes: line 3, column 'carrier': carrier 'nobody' has no trunk"), "\(badOutput)")

        let carrier = try SBCCallTests.carrier(site, "carrier", scenario: SippScenarios.carrier(), port: site.carrierPort(0), calls: 1)
        try await carrier.listening()
        let caller = try SBCCallTests.caller(site, "caller", scenario: SippScenarios.caller(holdMilliseconds: 100), slot: 1, calls: 1, rate: 1, limit: 1)
        #expect(await caller.finish() == 0, "\(caller.report)\n\(site.logs)")
        #expect(await carrier.finish(timeout: .seconds(10)) == 0, "\(carrier.report)")
        let summary = try #require(await SBCCallTests().eventuallySummaries(site, count: 1).first)
        #expect(summary.attempts.map(\.carrier) == ["cat-a"])

        // The export reads back as the routing core holds it, every column written.
        let (exportStatus, exported) = try await site.troncal(["routing", "export", "routes"])
        #expect(exportStatus == 0)
        #expect(exported == "plan,prefix,carrier,trunk,priority,weight,cost,days,hours,blocked\ndefault,34,cat-a,,1,1,0.01,,,false\n")

        // A restart loads the stored catalogs.
        try await site.restartRouting()
        let (inspectStatus, inspected) = try await site.troncal(["routing", "inspect", "--json"])
        #expect(inspectStatus == 0, "\(inspected)")
        let inspection = try JSONDecoder().decode(RoutingInspection.self, from: Data(inspected.utf8))
        #expect(inspection.catalogs.first { $0.kind == .routes }?.rows == 1)
        #expect(inspection.catalogs.first { $0.kind == .carriers }?.generation == 1)
        #expect(inspection.trunks.map(\.carrier) == ["cat-a"])
        let (againStatus, again) = try await site.troncal(["routing", "export", "carriers"])
        #expect(againStatus == 0)
        #expect(again.contains("cat-a,cat-a,\(CallSite.carrierAddress),\(site.carrierPort(0)),udp"), "\(again)")
        await caller.stop()
        await carrier.stop()
        await site.stop()
    }

    @Test(.enabled(if: Sipp.executable != nil, "sipp is not installed"))
    func aTrunkAtItsCallLimitIsSkippedForTheNextCarrier() async throws {
        let site = try await Self.site()
        defer { site.remove() }
        let carriers = try Self.write("""
            carrier,host,port,max_calls
            small,\(CallSite.carrierAddress),\(site.carrierPort(0)),1
            big,\(CallSite.carrierAddress),\(site.carrierPort(1)),0
            """, "carriers.csv", in: site)
        let routes = try Self.write("prefix,carrier,cost\n34,small,0.01\n34,big,0.02\n", "routes.csv", in: site)
        #expect(try await site.troncal(["routing", "import", "carriers", carriers]).status == 0)
        #expect(try await site.troncal(["routing", "import", "routes", routes]).status == 0)
        let small = try SBCCallTests.carrier(site, "small", scenario: SippScenarios.carrier(), port: site.carrierPort(0), calls: 1)
        let big = try SBCCallTests.carrier(site, "big", scenario: SippScenarios.carrier(), port: site.carrierPort(1), calls: 1)
        try await small.listening()
        try await big.listening()
        // Two calls one second apart, each held 3 s: the second finds small full.
        let caller = try SBCCallTests.caller(site, "caller", scenario: SippScenarios.caller(holdMilliseconds: 3000), slot: 1, calls: 2, rate: 1, limit: 2)
        #expect(await caller.finish() == 0, "\(caller.report)\n\(site.logs)")
        #expect(await small.finish(timeout: .seconds(10)) == 0, "\(small.report)")
        #expect(await big.finish(timeout: .seconds(10)) == 0, "\(big.report)")
        let summaries = await SBCCallTests().eventuallySummaries(site, count: 2).sorted { $0.setupAt < $1.setupAt }
        #expect(summaries.map { $0.attempts.map(\.carrier) } == [["small"], ["big"]])
        // Both calls ended: small has room again.
        let (_, inspected) = try await site.troncal(["routing", "inspect", "--json"])
        let inspection = try JSONDecoder().decode(RoutingInspection.self, from: Data(inspected.utf8))
        #expect(inspection.trunks.first { $0.carrier == "small" }?.callsInProgress == 0, "\(inspected)")
        await caller.stop()
        await small.stop()
        await big.stop()
        await site.stop()
    }
}
