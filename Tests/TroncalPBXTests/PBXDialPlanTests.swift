import Foundation
import Testing
import TroncalCatalog
import TroncalProtocol
@testable import TroncalPBX

/// The PBX's dial plan over the catalogs: extensions, do-not-disturb, unconditional forwarding (bounded), time
/// conditions in the tenant's time zone with holidays, DIDs, and what counts as a number outside.
@Suite struct PBXDialPlanTests {
    static let tenants = "tenant,customer,time_zone,caller_id\nacme,acme,Europe/Madrid,+34911000100\n"
    static let extensions = """
        tenant,extension,name,password,forward_always,dnd
        acme,101,Ana,pw-101-secret,,no
        acme,102,Bob,pw-102-secret,ext:101,no
        acme,103,Carla,pw-103-secret,,yes
        acme,104,Dan,pw-104-secret,number:+34600111222,no
        acme,105,Eve,pw-105-secret,ext:106,no
        acme,106,Fay,pw-106-secret,ext:105,no
        """
    static let conditions = """
        tenant,condition,days,hours,holidays,open,closed
        acme,office,mon-fri,09:00-18:00,2026-12-25,ext:101,ext:103
        """

    static func plan() throws -> PBXDialPlan {
        var catalog = PBXCatalog()
        try PBXCatalogCSV.read(.tenants, tenants, into: &catalog)
        try PBXCatalogCSV.read(.extensions, extensions, into: &catalog)
        try PBXCatalogCSV.read(.timeConditions, conditions, into: &catalog)
        return PBXDialPlan(catalog: catalog, tenant: try #require(catalog.tenants.first))
    }

    /// A moment given in UTC.
    static func at(_ text: String) throws -> Date { try Date(text, strategy: .iso8601) }

    @Test func extensionsForwardsAndDoNotDisturbRouteAsConfigured() throws {
        let plan = try Self.plan()
        let now = Date()
        #expect(plan.dialled("101", now: now) == .extensionNumber("101"))
        // Unconditional forwarding, to an extension and to a number outside.
        #expect(plan.dialled("102", now: now) == .extensionNumber("101"))
        #expect(plan.dialled("104", now: now) == .outside("+34600111222"))
        #expect(plan.dialled("103", now: now) == .reject(486, "extension 103 is on do-not-disturb"))
        // Two extensions forwarding to each other: refused after the hop limit, never a loop.
        guard case .reject(482, _) = plan.dialled("105", now: now) else {
            Issue.record("a forwarding loop was not stopped: \(plan.dialled("105", now: now))")
            return
        }
    }

    @Test func numbersThatAreNotExtensionsLeaveThePlatformAndShortOnesAreUnknown() throws {
        let plan = try Self.plan()
        let now = Date()
        #expect(plan.dialled("34911234567", now: now) == .outside("34911234567"))
        #expect(plan.dialled("+442079460018", now: now) == .outside("+442079460018"))
        #expect(plan.dialled("199", now: now) == .reject(404, "no extension 199 in acme"))
        #expect(plan.dialled("12ab345678", now: now) == .reject(404, "no extension 12ab345678 in acme"))
    }

    @Test func aTimeConditionFollowsTheTenantsClockAndItsHolidays() throws {
        let plan = try Self.plan()
        // Thursday 2026-12-03: 08:30 UTC is 09:30 in Madrid (open); 17:30 UTC is 18:30 (closed).
        #expect(plan.follow(.condition("office"), now: try Self.at("2026-12-03T08:30:00Z"), hops: 0) == .extensionNumber("101"))
        #expect(plan.follow(.condition("office"), now: try Self.at("2026-12-03T17:30:00Z"), hops: 0) == .reject(486, "extension 103 is on do-not-disturb"))
        // The window starts at 09:00 Madrid time (08:00 UTC in winter), not 09:00 UTC.
        #expect(plan.follow(.condition("office"), now: try Self.at("2026-12-03T07:30:00Z"), hops: 0) != .extensionNumber("101"))
        #expect(plan.follow(.condition("office"), now: try Self.at("2026-12-03T08:00:00Z"), hops: 0) == .extensionNumber("101"))
        // Saturday, and Christmas (a Friday) in office hours: closed.
        #expect(plan.follow(.condition("office"), now: try Self.at("2026-12-05T10:00:00Z"), hops: 0) != .extensionNumber("101"))
        #expect(plan.follow(.condition("office"), now: try Self.at("2026-12-25T10:00:00Z"), hops: 0) != .extensionNumber("101"))
        #expect(plan.follow(.condition("office"), now: try Self.at("2026-12-24T10:00:00Z"), hops: 0) == .extensionNumber("101"))
    }
}
