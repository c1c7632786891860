import Foundation
import Logging
import TestSupport
import Testing
import TroncalProtocol
import TroncalRuntime
import TroncalStore

@testable import TroncalRouting

/// The routing catalogs in the routing database, on SQLite and on PostgreSQL (a database of its own per test,
/// on the cluster `scripts/test` starts): stored and loaded back whole, generations, a stray generation left by an
/// interrupted import, and a 200,000-prefix rate deck.
@Suite struct CatalogStoreTests {
    typealias Backend = TestBackend

    static func withDatabase(_ backend: Backend, _ body: (any SQLStore) async throws -> Void) async throws {
        try await withMigratedDatabase(backend, service: "routing", migrations: CatalogStore.migrations, body)
    }

    static func sampleCatalog() throws -> RoutingCatalog {
        var catalog = RoutingCatalog()
        try CatalogCSV.read(.carriers, CatalogCSVTests.carriers, into: &catalog)
        try CatalogCSV.read(.plans, "plan,strategy,customers\ngold,priority,acme;globex\n", into: &catalog)
        try CatalogCSV.read(.routes, """
            plan,prefix,carrier,trunk,priority,weight,cost,days,hours,blocked
            ,34,alpha,,1,1,0.0125,,,false
            gold,3491,beta,,2,30,,mon-fri,22:00-06:00,
            ,3480,,,,,,,,true
            """, into: &catalog)
        try CatalogCSV.read(.rates, "carrier,prefix,rate\nalpha,34,0.01\nbeta,1,0.000001\n", into: &catalog)
        try CatalogCSV.read(.dids, "number,customer,host,port,transport\n34911000111,acme,198.51.100.7,5070,tcp\n", into: &catalog)
        return catalog
    }

    @Test(arguments: Backend.allCases)
    func everyCatalogIsStoredAndLoadedBackWhole(backend: Backend) async throws {
        try await Self.withDatabase(backend) { store in
            let catalogs = CatalogStore(store: store)
            #expect(try await catalogs.load() == RoutingCatalog())
            var catalog = try Self.sampleCatalog()
            for kind in RoutingCatalogKind.allCases {
                catalog.generations[kind] = try await catalogs.replace(kind, from: catalog)
            }
            #expect(try await catalogs.load() == catalog)
        }
    }

    @Test(arguments: Backend.allCases)
    func anImportReplacesItsKindUnderANewGenerationAndLeavesTheOthers(backend: Backend) async throws {
        try await Self.withDatabase(backend) { store in
            let catalogs = CatalogStore(store: store)
            var catalog = try Self.sampleCatalog()
            let first = try await catalogs.replace(.carriers, from: catalog)
            try await catalogs.replace(.dids, from: catalog)
            try CatalogCSV.read(.carriers, "carrier,host\nalpha,192.0.2.50\nbeta,192.0.2.51\n", into: &catalog)
            let second = try await catalogs.replace(.carriers, from: catalog)
            #expect(second > first)
            let loaded = try await catalogs.load()
            #expect(loaded.trunks.map(\.host) == ["192.0.2.50", "192.0.2.51"])
            #expect(loaded.dids == catalog.dids)
            #expect(loaded.generations[.carriers] == second)
            // Only the current generation's rows remain.
            let rows = try await store.query("SELECT COUNT(*) AS n FROM routing_trunks")
            #expect(try rows[0].int("n") == 2)
        }
    }

    @Test(arguments: Backend.allCases)
    func rowsOfAnImportThatNeverSwitchedAreIgnoredAndClearedByTheNextOne(backend: Backend) async throws {
        try await Self.withDatabase(backend) { store in
            let catalogs = CatalogStore(store: store)
            var catalog = try Self.sampleCatalog()
            let current = try await catalogs.replace(.rates, from: catalog)
            // An import that loaded its rows and died before its switch.
            try await store.bulkLoad(
                table: "routing_rates", columns: ["generation", "position", "carrier", "prefix", "rate_micros"],
                rows: [[.integer(current + 1), .int(0), .text("ghost"), .text("1"), .integer(5)]])
            #expect(try await catalogs.load().rates == catalog.rates)
            try CatalogCSV.read(.rates, "carrier,prefix,rate\nalpha,44,0.02\n", into: &catalog)
            let next = try await catalogs.replace(.rates, from: catalog)
            #expect(next > current + 1)
            #expect(try await catalogs.load().rates == [RateRecord(carrier: "alpha", prefix: "44", rateMicros: 20_000)])
            let rows = try await store.query("SELECT COUNT(*) AS n FROM routing_rates")
            #expect(try rows[0].int("n") == 1)
        }
    }

    @Test(arguments: Backend.allCases)
    func aRateDeckOfTwoHundredThousandPrefixesIsReadStoredAndRoutedFrom(backend: Backend) async throws {
        var generator = SplitMix64(seed: 200_000)
        var seen = Set<String>()
        var text = "carrier,prefix,rate\n"
        while seen.count < 200_000 {
            let prefix = "3" + generator.digits(Int.random(in: 3...8, using: &generator))
            guard seen.insert(prefix).inserted else { continue }
            text += "alpha,\(prefix),0.\(generator.digits(4))\n"
        }
        try await Self.withDatabase(backend) { store in
            var catalog = try Self.sampleCatalog()
            try CatalogCSV.read(.rates, text, into: &catalog)
            #expect(catalog.rates.count == 200_000)
            let catalogs = CatalogStore(store: store)
            try await catalogs.replace(.rates, from: catalog)
            let loaded = try await catalogs.load()
            #expect(loaded.rates == catalog.rates)
            let table = try RouteTable(.init(), catalog: loaded)
            #expect(table.rates["alpha"]?.count == 200_000)
        }
    }
}
