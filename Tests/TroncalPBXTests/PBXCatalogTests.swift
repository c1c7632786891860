import Foundation
import Testing
import TroncalCatalog
import TroncalProtocol
@testable import TroncalPBX

/// The PBX catalogs read from CSV: every field checked with its line and column, references between catalogs checked,
/// and an export that imports back to the same catalog.
@Suite struct PBXCatalogTests {
    static let tenants = """
        tenant,customer,time_zone,caller_id,pickup_code
        acme,acme-billing,Europe/Madrid,+34911000100,*8
        globex,globex,America/New_York,,
        """
    static let extensions = """
        tenant,extension,name,password,voicemail,forward_always,forward_busy,forward_no_answer,no_answer_seconds,dnd,withhold_caller_id,pickup_group
        acme,101,Ana Front Desk,secret-101-pw,yes,,ext:102,number:+34600111222,15,no,no,front
        acme,102,Bob,secret-102-pw,no,,,,,,,front
        acme,103,Carla,secret-103-pw,no,ext:101,,,,yes,yes,
        globex,101,Homer,secret-g101-pw,,,,,,,,
        """
    static let groups = """
        tenant,group,number,strategy,members,member_seconds,fallback
        acme,sales,600,sequential,101 102 103,5,ext:101
        acme,support,601,simultaneous,102 103,,group:sales
        """
    static let conditions = """
        tenant,condition,days,hours,holidays,open,closed
        acme,office,mon-fri,09:00-18:00,2026-12-25 2027-01-01,group:sales,ext:103
        """
    static let dids = """
        number,tenant,destination
        +34911000100,acme,condition:office
        +12125550100,globex,ext:101
        """

    static func full() throws -> PBXCatalog {
        var catalog = PBXCatalog()
        try PBXCatalogCSV.read(.tenants, tenants, into: &catalog)
        try PBXCatalogCSV.read(.extensions, extensions, into: &catalog)
        try PBXCatalogCSV.read(.ringGroups, groups, into: &catalog)
        try PBXCatalogCSV.read(.timeConditions, conditions, into: &catalog)
        try PBXCatalogCSV.read(.dids, dids, into: &catalog)
        try PBXCatalogCSV.checkReferences(catalog)
        return catalog
    }

    @Test func everyCatalogReadsItsRowsAndDefaults() throws {
        let catalog = try Self.full()
        #expect(catalog.tenants.map(\.name) == ["acme", "globex"])
        #expect(catalog.tenants[1].pickupCode == "*8")
        let ana = try #require(catalog.extensions.first)
        #expect(ana.forwardBusy == .extensionNumber("102") && ana.forwardNoAnswer == .number("+34600111222") && ana.noAnswerSeconds == 15)
        #expect(catalog.extensions[1].noAnswerSeconds == 20 && !catalog.extensions[1].voicemail)
        #expect(catalog.extensions[2].doNotDisturb && catalog.extensions[2].withholdCallerID)
        #expect(catalog.ringGroups[0].strategy == .sequential && catalog.ringGroups[0].members == ["101", "102", "103"])
        #expect(catalog.ringGroups[1].memberSeconds == 20 && catalog.ringGroups[1].fallback == .group("sales"))
        #expect(catalog.timeConditions[0].holidays == ["2026-12-25", "2027-01-01"])
        #expect(catalog.dids[0].destination == .condition("office"))
    }

    @Test func anExportImportsBackToTheSameCatalog() throws {
        let catalog = try Self.full()
        var again = PBXCatalog()
        for kind in PBXCatalogManager.order { try PBXCatalogCSV.read(kind, PBXCatalogCSV.render(kind, catalog), into: &again) }
        for kind in PBXCatalogKind.allCases { #expect(PBXCatalogCSV.render(kind, again) == PBXCatalogCSV.render(kind, catalog), "\(kind)") }
    }

    @Test(arguments: [
        (PBXCatalogKind.tenants, "tenant,customer,time_zone\nacme,a,Mars/Olympus\n", "line 2, column 'time_zone'"),
        (.tenants, "tenant,customer,time_zone\nacme,a,UTC\nacme,b,UTC\n", "line 3, column 'tenant'"),
        (.extensions, "tenant,extension,password\nacme,1a1,secret-pw-1\n", "line 2, column 'extension'"),
        (.extensions, "tenant,extension,password\nacme,101,short\n", "line 2, column 'password'"),
        (.extensions, "tenant,extension,password,forward_always\nacme,101,secret-pw-1,group:sales\n", "line 2, column 'forward_always'"),
        (.ringGroups, "tenant,group,number,strategy,members\nacme,g,600,random,101\n", "line 2, column 'strategy'"),
        (.timeConditions, "tenant,condition,days,hours,open,closed\nacme,c,mon-fri,09:00-18:00,condition:x,hangup\n", "line 2, column 'open'"),
        (.timeConditions, "tenant,condition,days,hours,holidays,open,closed\nacme,c,,,2026-13-45,hangup,hangup\n", "line 2, column 'holidays'"),
        (.dids, "number,tenant,destination\n34911,acme,ext:101\n", "line 2, column 'number'"),
        (.dids, "number,tenant,destination\n+34911000100,acme,number:+34600111222\n", "line 2, column 'destination'"),
        (.dids, "number,tenant,destination,color\n+34911000100,acme,ext:101,red\n", "line 1, column 'color'"),
    ])
    func aBadFieldIsRefusedWithItsLineAndColumn(kind: PBXCatalogKind, csv: String, expected: String) throws {
        var catalog = try Self.full()
        let before = catalog
        do {
            try PBXCatalogCSV.read(kind, csv, into: &catalog)
            Issue.record("accepted: \(csv)")
        } catch {
            #expect(error.description.hasPrefix(expected), "\(error)")
        }
        #expect(catalog == before, "a refused file changed the catalog")
    }

    @Test(arguments: [
        (PBXCatalogKind.extensions, "tenant,extension,password\nacme,101,secret-101-pw\nacme,103,secret-103-pw\n", "ring-groups line 2, column 'members': no extension 102 in tenant acme"),
        (.extensions, "tenant,extension,password\ninitech,101,secret-101-pw\n", "extensions line 2, column 'tenant': no tenant 'initech'"),
        (.ringGroups, "tenant,group,number,strategy,members\nacme,sales,101,simultaneous,102\n", "ring-groups line 2, column 'number': 101 is an extension's number"),
        (.timeConditions, "tenant,condition,days,hours,open,closed\nacme,night,,,group:nobody,hangup\n", "time-conditions line 2, column 'open': no ring group 'nobody'"),
        (.timeConditions, "tenant,condition,days,hours,open,closed\nacme,night,,,hangup,hangup\n", "dids line 2, column 'destination': no time condition 'office'"),
        (.dids, "number,tenant,destination\n+34911000100,globex,group:sales\n", "dids line 2, column 'destination': no ring group 'sales' in tenant globex"),
    ])
    func aBrokenReferenceBetweenCatalogsIsRefusedNamingTheRow(kind: PBXCatalogKind, csv: String, expected: String) throws {
        var catalog = try Self.full()
        try PBXCatalogCSV.read(kind, csv, into: &catalog)
        #expect(throws: CatalogError.self) { try PBXCatalogCSV.checkReferences(catalog) }
        do {
            try PBXCatalogCSV.checkReferences(catalog)
        } catch {
            #expect(error.description.contains(expected), "\(error)")
        }
    }
}
