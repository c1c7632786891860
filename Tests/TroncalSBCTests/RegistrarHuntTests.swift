import Testing

@testable import TroncalSBC

/// Which PBX instance an SBC tries first for a REGISTER or a phone's call: those in service share by a stable hash;
/// the standby pool (not running until the capacity controller starts one) is tried last.
@Suite struct RegistrarHuntTests {
    @Test func thePBXStandbyPoolIsTriedOnlyAfterEveryInstanceInService() {
        // pbx-1, pbx-2 in service, pbx-3 standby.
        for first in 0..<2 {
            let order = (0..<3).map { RegistrationRelay.hunt($0, first: first, count: 3, inService: 2) }
            #expect(order == [first, 1 - first, 2], "\(order)")
        }
    }

    @Test func withoutAStandbyEveryInstanceSharesByTheHash() {
        #expect((0..<3).map { RegistrationRelay.hunt($0, first: 2, count: 3, inService: 3) } == [2, 0, 1])
        #expect((0..<2).map { RegistrationRelay.hunt($0, first: 1, count: 2, inService: 0) } == [1, 0])
    }
}
