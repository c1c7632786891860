import Foundation
import Testing
import TestSupport
import TroncalMonitor
import TroncalStore

/// Dashboard operator accounts: a session lasts until it expires, the password changes or the account goes; the last
/// account cannot go.
@Suite struct OperatorsTests {
    @Test(arguments: TestBackend.allCases)
    func aSessionEndsWithANewPasswordOrTheAccountsRemovalEvenIfItIsAddedAgain(backend: TestBackend) async throws {
        try await withMigratedDatabase(backend, service: "monitor", migrations: MonitorStore.migrations) { store in
            let operators = try await Operators(store: store)
            let now = Date()
            try await operators.set("admin", password: "first-password", at: now)
            try await operators.set("nina.ops", password: "second-password", at: now)
            let session = try await operators.session(for: "nina.ops", until: now.addingTimeInterval(3600))
            #expect(try await operators.operatorName(ofSession: session, at: now) == "nina.ops")
            #expect(try await operators.operatorName(ofSession: session, at: now.addingTimeInterval(3601)) == nil, "expired")
            #expect(try await operators.operatorName(ofSession: session + "0", at: now) == nil, "a forged signature")

            try await operators.set("nina.ops", password: "a-new-password", at: now)
            #expect(try await operators.operatorName(ofSession: session, at: now) == nil, "a new password ends old sessions")
            let renewed = try await operators.session(for: "nina.ops", until: now.addingTimeInterval(3600))
            try await operators.remove("nina.ops")
            #expect(try await operators.operatorName(ofSession: renewed, at: now) == nil, "a removed operator is logged out")
            try await operators.set("nina.ops", password: "a-new-password", at: now)
            #expect(try await operators.operatorName(ofSession: renewed, at: now) == nil, "added again, the old session stays ended")

            try await operators.remove("nina.ops")
            await #expect(throws: MonitorError.self) { try await operators.remove("admin") }
            #expect(try await operators.list().map(\.name) == ["admin"])
        }
    }
}
