import Foundation
import Testing
import TroncalProtocol
import TroncalCatalog

@testable import TroncalRouting

/// The CSV formats of the routing catalogs: every column read, checks that name the line and column, and an
/// export that reads back to the same catalog.
@Suite struct CatalogCSVTests {
    static let carriers = """
        carrier,trunk,host,port,transport,strip_digits,add_prefix,max_calls,max_cps,probe,setup_timeout_ms
        alpha,a1,192.0.2.10,5060,udp,0,,100,10,true,0
        alpha,a2,192.0.2.11,5080,tcp,2,0034,0,0,false,2500
        beta,,beta.example.net,5061,tls,0,4711#,0,0,yes,
        """

    static func read(_ kind: RoutingCatalogKind, _ text: String, into catalog: RoutingCatalog = RoutingCatalog()) throws -> RoutingCatalog {
        var catalog = catalog
        try CatalogCSV.read(kind, text, into: &catalog)
        return catalog
    }

    @Test func carriersAreReadWithEveryColumnAndDefaults() throws {
        let trunks = try Self.read(.carriers, Self.carriers).trunks
        #expect(trunks.count == 3)
        #expect(trunks[0].maximumCalls == 100 && trunks[0].maximumCallsPerSecond == 10 && trunks[0].probe)
        #expect(trunks[1].transport == "tcp" && trunks[1].stripDigits == 2 && trunks[1].addPrefix == "0034" && !trunks[1].probe)
        #expect(trunks[1].setupTimeoutMilliseconds == 2500)
        // An empty trunk name is the carrier's; an empty number is the default.
        #expect(trunks[2].trunk == "beta" && trunks[2].transport == "tls" && trunks[2].addPrefix == "4711#" && trunks[2].setupTimeoutMilliseconds == 0)
    }

    @Test func columnsMayComeInAnyOrderAndOptionalOnesMayBeLeftOut() throws {
        let trunks = try Self.read(.carriers, "HOST,Carrier\r\n198.51.100.1,gamma\r\n").trunks
        #expect(trunks == [TrunkRecord(carrier: "gamma", host: "198.51.100.1")])
    }

    @Test func quotedFieldsKeepCommasQuotesAndLineBreaks() throws {
        let table = try CSVTable(parsing: "a,b\n\"x, y\",\"say \"\"hi\"\"\"\n\"two\nlines\",z\n")
        #expect(table.rows.map(\.fields) == [["x, y", "say \"hi\""], ["two\nlines", "z"]])
        #expect(table.rows.map(\.line) == [2, 3])
        #expect(try CSVTable(parsing: table.render()) == table)
    }

    @Test(arguments: [
        ("carrier,host\nalpha\n", "line 2: 1 fields, the header has 2"),
        ("carrier,host,colour\nalpha,192.0.2.1,red\n", "line 1, column 'colour': not a column of carriers"),
        ("carrier\nalpha\n", "line 1, column 'host': this column is required"),
        ("carrier,host,port\nalpha,192.0.2.1,99999\n", "line 2, column 'port': '99999' is not a whole number from 1 to 65535"),
        ("carrier,host,transport\nalpha,192.0.2.1,sctp\n", "line 2, column 'transport': 'sctp' is not udp, tcp or tls"),
        ("carrier,host\nalpha,\n", "line 2, column 'host': '' is not a host name or IP address"),
        ("carrier,host\nalpha,bad host\n", "line 2, column 'host'"),
        ("carrier,host\nalpha,192.0.2.1\nalpha,192.0.2.2\n", "line 3, column 'trunk': carrier 'alpha' has trunk 'alpha' twice"),
        ("carrier,host\n\"alpha,192.0.2.1\n", "line 2: a quoted field is not closed"),
        ("carrier,host\nal\"pha,192.0.2.1\n", "line 2: a quote inside an unquoted field"),
        ("carrier,host,probe\nalpha,192.0.2.1,maybe\n", "line 2, column 'probe': 'maybe' is not true or false"),
        ("", "line 1: no header line"),
    ])
    func aBadCarriersFileIsRefusedWithItsLineAndColumn(text: String, expected: String) {
        #expect {
            try Self.read(.carriers, text)
        } throws: { error in
            "\(error)".hasPrefix(expected)
        }
    }

    @Test func routesReadPlansCostsSchedulesAndBlocks() throws {
        let routes = try Self.read(.routes, """
            plan,prefix,carrier,trunk,priority,weight,cost,days,hours,blocked
            ,34,alpha,,1,1,0.0125,,,false
            gold,+3491,beta,,2,30,,mon-fri,08:00-18:00,
            ,3480,,,,,,,,true
            """).routes
        #expect(routes.count == 3)
        #expect(routes[0].plan == "default" && routes[0].costMicros == 12_500)
        #expect(routes[1].prefix == "3491" && routes[1].priority == 2 && routes[1].weight == 30 && routes[1].costMicros == nil)
        #expect(routes[1].schedule.contains(weekday: 0, minute: 8 * 60) && !routes[1].schedule.contains(weekday: 5, minute: 9 * 60))
        #expect(!routes[1].schedule.contains(weekday: 2, minute: 18 * 60))
        #expect(routes[2].blocked && routes[2].carrier.isEmpty)
    }

    @Test(arguments: [
        ("prefix,carrier\n34,\n", "line 2, column 'carrier': a route needs a carrier, or blocked=true"),
        ("prefix,carrier,blocked\n34,alpha,true\n", "line 2, column 'carrier': a blocked route names no carrier"),
        ("prefix,carrier\n34x,alpha\n", "line 2, column 'prefix': '34x' is not up to 15 digits"),
        ("prefix,carrier,cost\n34,alpha,0.12345678\n", "line 2, column 'cost'"),
        ("prefix,carrier,cost\n34,alpha,-1\n", "line 2, column 'cost'"),
        ("prefix,carrier,days\n34,alpha,funday\n", "line 2, column 'days'"),
        ("prefix,carrier,hours\n34,alpha,8-18\n", "line 2, column 'hours'"),
        ("prefix,carrier,hours\n34,alpha,25:00-26:00\n", "line 2, column 'hours'"),
    ])
    func aBadRoutesFileIsRefusedWithItsLineAndColumn(text: String, expected: String) {
        #expect {
            try Self.read(.routes, text)
        } throws: { error in
            "\(error)".hasPrefix(expected)
        }
    }

    @Test func routesMustNameKnownCarriersTrunksAndPlans() throws {
        var catalog = try Self.read(.carriers, Self.carriers)
        catalog = try Self.read(.routes, "prefix,carrier,trunk\n34,alpha,a2\n44,beta,\n", into: catalog)
        try CatalogCSV.checkReferences(catalog)
        for (text, expected) in [
            ("prefix,carrier\n34,gamma\n", "line 2, column 'carrier': carrier 'gamma' has no trunk"),
            ("prefix,carrier,trunk\n34,alpha,a9\n", "line 2, column 'trunk': carrier 'alpha' has no trunk 'a9'"),
            ("plan,prefix,carrier\ngold,34,alpha\n", "line 2, column 'plan': plan 'gold' is not in the plans catalog"),
        ] {
            let bad = try Self.read(.routes, text, into: catalog)
            #expect(throws: CatalogError.self) { try CatalogCSV.checkReferences(bad) }
            #expect((try? CatalogCSV.checkReferences(bad)) == nil)
            do { try CatalogCSV.checkReferences(bad) } catch { #expect("\(error)".hasPrefix(expected)) }
        }
    }

    @Test func plansRatesAndDIDsAreReadAndChecked() throws {
        let plans = try Self.read(.plans, "plan,strategy,customers\ngold,priority,acme;globex\nbulk,weight,\n").plans
        #expect(plans == [PlanRecord(plan: "gold", strategy: .priority, customers: ["acme", "globex"]), PlanRecord(plan: "bulk", strategy: .weight)])
        #expect(throws: CatalogError.self) { try Self.read(.plans, "plan,strategy,customers\ngold,cheapest,\n") }
        #expect(throws: CatalogError.self) { try Self.read(.plans, "plan,strategy,customers\ngold,cost,acme\nbulk,cost,acme\n") }
        let rates = try Self.read(.rates, "carrier,prefix,rate\nalpha,34,0.01\nalpha,346,0.045\nbeta,34,2\n").rates
        #expect(rates.map(\.rateMicros) == [10_000, 45_000, 2_000_000])
        #expect(throws: CatalogError.self) { try Self.read(.rates, "carrier,prefix,rate\nalpha,34,0.01\nalpha,34,0.02\n") }
        let dids = try Self.read(.dids, "number,customer,host,port,transport\n+34911000111,acme,198.51.100.7,5070,tcp\n").dids
        #expect(dids == [DIDRecord(number: "34911000111", customer: "acme", host: "198.51.100.7", port: 5070, transport: "tcp")])
        #expect(throws: CatalogError.self) { try Self.read(.dids, "number,customer,host\n123,acme,198.51.100.7\n") }
    }

    @Test func everyCatalogExportsToCSVThatReadsBackTheSame() throws {
        var catalog = try Self.read(.carriers, Self.carriers)
        catalog = try Self.read(.plans, "plan,strategy,customers\ngold,priority,acme;globex\n", into: catalog)
        catalog = try Self.read(.routes, """
            plan,prefix,carrier,trunk,priority,weight,cost,days,hours,blocked
            ,34,alpha,,1,1,0.0125,,,false
            gold,3491,beta,,2,30,,mon-fri;sun,22:00-06:00,
            ,3480,,,,,,,,true
            ,,"alpha",a1,5,0,1,,,
            """, into: catalog)
        catalog = try Self.read(.rates, "carrier,prefix,rate\nalpha,34,0.01\nbeta,1,0.000001\n", into: catalog)
        catalog = try Self.read(.dids, "number,customer,host\n34911000111,acme,198.51.100.7\n", into: catalog)
        for kind in RoutingCatalogKind.allCases {
            let again = try Self.read(kind, CatalogCSV.render(kind, catalog), into: catalog)
            #expect(again == catalog, "\(kind) does not read back the same")
        }
    }

    @Test(arguments: [("0", 0), ("1", 1_000_000), ("0.0125", 12_500), (".5", 500_000), ("12.000001", 12_000_001)] as [(String, Int64)])
    func amountsAreExactMillionths(text: String, micros: Int64) {
        #expect(MicroAmount.parse(text) == micros)
        #expect(MicroAmount.parse(MicroAmount.format(micros)) == micros)
    }

    @Test func exportPartsAreWholeLinesThatJoinBackToTheText() {
        let text = (0..<5000).map { "carrier\($0),192.0.2.1\n" }.joined()
        let parts = CSVParts.split(text, partBytes: 4096)
        #expect(parts.count > 10)
        #expect(parts.joined() == text)
        #expect(parts.allSatisfy { $0.hasSuffix("\n") && $0.utf8.count <= 4096 })
    }
}
