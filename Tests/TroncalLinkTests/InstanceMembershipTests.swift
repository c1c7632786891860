import NIOCore
import Testing
import TroncalLink

/// The Lifeguard-style membership of a role's instances, on a clock the test moves.
@Suite("Link: instance membership")
struct InstanceMembershipTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test func aliveInstancesShareTheRequestsInTurnAndASuspectedOneGetsNoneWhileOthersAreAlive() {
        var membership = InstanceMembership(count: 3, now: start)
        let firsts = (0..<6).map { _ in membership.order().first! }
        #expect(Set(firsts) == [0, 1, 2], "the alive instances did not take turns: \(firsts)")
        _ = membership.missedProbe(1, now: start)
        #expect(membership.missedProbe(1, now: start) == .suspected(1, missedProbes: 2))
        for _ in 0..<6 {
            let order = membership.order()
            #expect(order.first != 1)
            #expect(order.last == 1, "a suspected instance is still tried when the others fail")
        }
    }

    @Test func missedProbesSuspectAnInstanceButOnlyALongSuspicionDeclaresItDead() {
        var membership = InstanceMembership(count: 2, now: start)
        #expect(membership.missedProbe(0, now: start) == nil, "one missed probe is not a suspicion")
        #expect(membership.missedProbe(0, now: start + .milliseconds(500)) == .suspected(0, missedProbes: 2))
        // Paused 10 s: still suspected, not dead (suspicion 30 s).
        #expect(membership.missedProbe(0, now: start + .seconds(10)) == nil)
        #expect(membership.state(0) == .suspect)
        #expect(membership.answered(0, now: start + .seconds(11)) == .recovered(0, from: .suspect))
        #expect(membership.state(0) == .alive)
        // Paused 60 s: declared dead once the suspicion has lasted 30 s.
        _ = membership.missedProbe(0, now: start + .seconds(20))
        _ = membership.missedProbe(0, now: start + .seconds(20))
        #expect(membership.missedProbe(0, now: start + .seconds(49)) == nil)
        guard case .declaredDead(0, _) = membership.missedProbe(0, now: start + .seconds(50)) else {
            Issue.record("not declared dead after a 30 s suspicion")
            return
        }
        #expect(membership.order().last == 0)
        #expect(membership.answered(0, now: start + .seconds(80)) == .recovered(0, from: .dead))
    }

    @Test func aBrokenLinkIsProofAndTakesTheInstanceOutAtOnce() {
        var membership = InstanceMembership(count: 2, now: start)
        guard case .declaredDead(1, let reason) = membership.linkFailed(1, now: start, reason: "connection refused") else {
            Issue.record("a refused connection did not take the instance out")
            return
        }
        #expect(reason == "connection refused")
        #expect(membership.linkFailed(1, now: start, reason: "again") == nil, "dead twice")
        #expect((0..<4).allSatisfy { _ in membership.order().first == 0 })
    }

    @Test func aLateProbeTimerStretchesTimeoutsAndSuspicionAndACleanRoundShrinksThemBack() {
        var membership = InstanceMembership(count: 2, now: start)
        #expect(membership.probeTimeout == .milliseconds(500))
        membership.probeRound(lateness: .seconds(2), allAnswered: false)
        membership.probeRound(lateness: .seconds(2), allAnswered: false)
        #expect(membership.localHealth == 2)
        #expect(membership.probeTimeout == .milliseconds(1_500))
        #expect(membership.suspicion == .seconds(90))
        // Suspected at 0 s, a 60 s silence on a starved machine is not yet death (suspicion stretched to 90 s).
        _ = membership.missedProbe(0, now: start)
        _ = membership.missedProbe(0, now: start)
        #expect(membership.missedProbe(0, now: start + .seconds(60)) == nil)
        for _ in 0..<10 { membership.probeRound(lateness: .zero, allAnswered: true) }
        #expect(membership.localHealth == 0)
        // A round on time but with silent peers leaves the multiplier where it is.
        membership.probeRound(lateness: .seconds(2), allAnswered: false)
        membership.probeRound(lateness: .zero, allAnswered: false)
        #expect(membership.localHealth == 1)
    }
}
