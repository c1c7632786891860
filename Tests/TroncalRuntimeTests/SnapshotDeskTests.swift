import Testing
@testable import TroncalRuntime

/// The snapshot desk's start-up cleanup removes its own instance's leftover copies only.
@Suite struct SnapshotDeskTests {
    @Test(arguments: [
        ("billing-0b5c2a7e-3f43-4c55-9e0f-5c1d2e3f4a5b.sqlite", "billing", true),
        ("billing-0b5c2a7e-3f43-4c55-9e0f-5c1d2e3f4a5b.sqlite-wal", "billing", true),
        ("billing-0b5c2a7e-3f43-4c55-9e0f-5c1d2e3f4a5b.sqlite-journal", "billing", true),
        ("billing-eu-0b5c2a7e-3f43-4c55-9e0f-5c1d2e3f4a5b.sqlite", "billing", false),
        ("billing-eu-0b5c2a7e-3f43-4c55-9e0f-5c1d2e3f4a5b.sqlite", "billing-eu", true),
        ("billing.sqlite", "billing", false),
        ("billing-notes.sqlite", "billing", false),
    ])
    func aLeftoverCopyIsRecognisedAsThisInstancesOnly(name: String, instance: String, expected: Bool) {
        #expect(SnapshotDesk.isCopy(name, of: instance) == expected)
    }
}
