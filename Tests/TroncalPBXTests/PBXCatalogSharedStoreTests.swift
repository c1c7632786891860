import Foundation
import Logging
import Testing
import TestSupport
import TroncalProtocol
import TroncalStore
@testable import TroncalPBX

/// PBX instances sharing one store (PostgreSQL in a site with several PBX instances): an import through one is seen by
/// the others at their next refresh, and an import through a stale one builds on what is stored, never on its memory.
@Suite struct PBXCatalogSharedStoreTests {
    @Test(arguments: TestBackend.allCases)
    func anImportThroughOneInstanceReachesTheOtherAndTheNextImportBuildsOnIt(backend: TestBackend) async throws {
        try await withMigratedDatabase(backend, service: "pbx", migrations: PBXCatalogManager.migrations) { store in
            let logger = Logger(label: "test.pbx")
            let first = try await PBXCatalogManager(store: store, instance: "pbx-1", logger: logger)
            let second = try await PBXCatalogManager(store: store, instance: "pbx-2", logger: logger)
            _ = try await first.apply(.tenants, csv: PBXCatalogTests.tenants)
            #expect(second.catalog.tenants.isEmpty, "not yet refreshed")
            #expect(try await second.refresh())
            #expect(second.catalog.tenants.map(\.name).sorted() == ["acme", "globex"])
            #expect(second.catalog.generations[.tenants] == 1)
            #expect(try await second.refresh() == false, "nothing new: no reload")

            // The first instance has not refreshed: its import of extensions still checks against stored tenants, and
            // the generation follows the stored one.
            _ = try await second.apply(.tenants, csv: PBXCatalogTests.tenants)
            let result = try await first.apply(.extensions, csv: PBXCatalogTests.extensions)
            #expect(result.generation == 1)
            #expect(first.catalog.generations[.tenants] == 2, "the import re-read the stored tenants (generation 2, by the second)")
            #expect(try await second.refresh())
            #expect(second.catalog.extensions.count == 4)
        }
    }
}
