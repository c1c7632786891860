import Testing
import TroncalSBC

@Suite("SBC defenses: access lists and flood guard")
struct DefenseTests {
    @Test(arguments: [
        ("198.51.100.0/24", "198.51.100.77", true), ("198.51.100.0/24", "198.51.101.1", false),
        ("10.0.0.1", "10.0.0.1", true), ("10.0.0.1", "10.0.0.2", false), ("0.0.0.0/0", "203.0.113.9", true),
        ("2001:db8::/32", "2001:db8:1::5", true), ("2001:db8::/32", "2001:db9::5", false),
        ("::1", "::1", true), ("192.0.2.0/24", "::ffff:192.0.2.4", true), ("fe80::/10", "198.51.100.1", false),
    ])
    func networkMembership(network: String, address: String, inside: Bool) throws {
        let parsed = try #require(IPNetwork(network))
        #expect(parsed.contains(address) == inside)
    }

    @Test(arguments: ["300.1.1.1", "1.2.3", "1.2.3.4/33", "2001:db8::1::2", "gggg::1", "", "1.2.3.4/x", "12345::"])
    func invalidNetworksAreRefused(_ text: String) {
        #expect(IPNetwork(text) == nil)
    }

    @Test func denyWinsAndAllowListRestricts() throws {
        let list = try AccessList(allow: ["198.51.100.0/24"], deny: ["198.51.100.66"])
        #expect(list.permits("198.51.100.5"))
        #expect(!list.permits("198.51.100.66"))
        #expect(!list.permits("203.0.113.1"))
        #expect(AccessList().permits("203.0.113.1"))
        #expect(throws: AccessListError.self) { try AccessList(allow: ["nope"], deny: []) }
    }

    func guardWith(limit: Int) -> FloodGuard {
        var configuration = FloodGuard.Configuration()
        configuration.requestsPerWindow = limit
        configuration.authenticatedRequestsPerWindow = limit * 4
        configuration.windowSeconds = 1
        configuration.banSeconds = 60
        return FloodGuard(configuration: configuration)
    }

    @Test func floodingSourceIsBannedAndOthersBehindTheSameNATAreNot() {
        var guardian = guardWith(limit: 10)
        var verdicts: [FloodGuard.Verdict] = []
        for n in 0..<30 { verdicts.append(guardian.check(address: "203.0.113.7", port: 5060, account: nil, userAgent: "X", now: Double(n) * 0.01).verdict) }
        #expect(verdicts.prefix(10).allSatisfy { $0 == .process })
        #expect(verdicts[10] == .drop(reason: "rate limit"))
        #expect(verdicts.dropFirst(11).allSatisfy { $0 == .drop(reason: "banned") })
        // Another phone behind the same address, other port: still served.
        #expect(guardian.check(address: "203.0.113.7", port: 5062, account: nil, userAgent: "X", now: 0.5).verdict == .process)
        // The ban lasts its time, then the source is served again.
        #expect(guardian.isBanned(address: "203.0.113.7", port: 5060, now: 59))
        #expect(guardian.check(address: "203.0.113.7", port: 5060, account: nil, userAgent: "X", now: 61).verdict == .process)
    }

    @Test func refusalsAreLoggedOncePerSourcePerWindow() {
        var guardian = guardWith(limit: 2)
        var logged = 0
        for n in 0..<200 where guardian.check(address: "192.0.2.1", port: 1, account: nil, userAgent: nil, now: Double(n) * 0.01).log { logged += 1 }
        #expect(logged == 1)
    }

    @Test func authenticatedSourcesEarnAHigherLimit() {
        var guardian = guardWith(limit: 5)
        guardian.recordAuthenticated(address: "192.0.2.9", port: 5060, account: "alice")
        let served = (0..<20).filter { n in
            guardian.check(address: "192.0.2.9", port: 5060, account: "alice", userAgent: nil, now: Double(n) * 0.01).verdict == .process
        }
        #expect(served.count == 20)
    }

    @Test(arguments: ["friendly-scanner", "sipvicious-0.3", "VaxSIPUserAgent/3.1", "sipcli/v1.8"])
    func scannerUserAgentsAreDroppedAtOnce(_ agent: String) {
        var guardian = FloodGuard()
        #expect(guardian.check(address: "192.0.2.50", port: 5070, account: nil, userAgent: agent, now: 0).verdict == .drop(reason: "scanner user-agent"))
        #expect(guardian.check(address: "192.0.2.50", port: 5070, account: nil, userAgent: "Polycom", now: 1).verdict == .drop(reason: "banned"))
    }

    @Test func repeatedDigestFailuresBanTheSource() {
        var guardian = FloodGuard()
        let banned = (0..<5).map { guardian.recordAuthenticationFailure(address: "192.0.2.60", port: 5060, now: Double($0)) }
        #expect(banned == [false, false, false, false, true])
        #expect(guardian.check(address: "192.0.2.60", port: 5060, account: nil, userAgent: nil, now: 6).verdict == .drop(reason: "banned"))
    }

    @Test func floodedAccountIsBannedAcrossSourcePorts() {
        var guardian = guardWith(limit: 5)
        var last = FloodGuard.Verdict.process
        for n in 0..<10 { last = guardian.check(address: "192.0.2.70", port: 6000 + n, account: "bob", userAgent: nil, now: Double(n) * 0.01).verdict }
        #expect(last == .drop(reason: "banned"))
    }
}
