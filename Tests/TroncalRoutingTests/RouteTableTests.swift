import Foundation
import Testing
import TroncalProtocol
import TroncalRuntime

@testable import TroncalRouting

/// The configured route table: longest prefix, customer plans, blocks, number shaping and out-of-service trunks.
@Suite struct RouteTableTests {
    static func target(_ carrier: String, port: Int = 5060, strip: Int = 0, add: String = "", timeout: Int = 0) -> RouteTargetSettings {
        var target = RouteTargetSettings(carrier: carrier, host: "192.0.2.1", port: port, setupTimeoutMilliseconds: timeout)
        target.stripDigits = strip
        target.addPrefix = add
        return target
    }

    static func table(nationalCountry: String = "") throws -> RouteTable {
        var settings = RoutingSettings()
        settings.setupTimeoutMilliseconds = 6000
        settings.nationalCountry = nationalCountry
        settings.routes = [
            RouteSettings(prefix: "34", targets: [target("spain-a"), target("spain-b", timeout: 2500)]),
            RouteSettings(prefix: "346", targets: [target("mobile", strip: 2, add: "0034")]),
            RouteSettings(prefix: "3491", customers: ["gold"], targets: [target("madrid-premium")]),
            RouteSettings(prefix: "34", customers: ["gold"], targets: [target("gold-spain")]),
            RouteSettings(prefix: "3480", blocked: true),
            RouteSettings(prefix: "", targets: [target("world")]),
        ]
        return try RouteTable(settings)
    }

    static func ask(_ table: RouteTable, _ callee: String, customer: String = "acme") -> RouteDecision {
        table.decide(RouteRequest(customer: customer, caller: "100", callee: callee, site: "a", callID: "x"))
    }

    @Test func theLongestPrefixWinsAndTargetsKeepTheirOrder() throws {
        let table = try Self.table()
        let spain = Self.ask(table, "+34911234567")
        #expect(spain.outcome == .route)
        #expect(spain.callee == "34911234567")
        #expect(spain.targets.map(\.carrier) == ["spain-a", "spain-b"])
        #expect(spain.targets.map(\.setupTimeoutMilliseconds) == [6000, 2500])
        #expect(Self.ask(table, "0034612345678").targets.map(\.carrier) == ["mobile"])
        #expect(Self.ask(table, "4420794600018").targets.map(\.carrier) == ["world"])
    }

    @Test func aCarrierGetsTheNumberShapedByItsTrunkRules() throws {
        let mobile = try #require(Self.ask(try Self.table(), "+34612345678").targets.first)
        #expect(mobile.number == "0034612345678")
        #expect(Self.ask(try Self.table(), "sip:+34911234567@example.com").targets.first?.number == "34911234567")
    }

    @Test func aCustomersOwnRouteBeatsAGeneralOneOfTheSameOrAShorterPrefix() throws {
        let table = try Self.table()
        #expect(Self.ask(table, "34911234567", customer: "gold").targets.map(\.carrier) == ["madrid-premium"])
        #expect(Self.ask(table, "34931234567", customer: "gold").targets.map(\.carrier) == ["gold-spain"])
        // A longer general prefix still wins over a shorter customer route.
        #expect(Self.ask(table, "34612345678", customer: "gold").targets.map(\.carrier) == ["mobile"])
    }

    @Test func blockedDestinationsGet403AndBadNumbers404() throws {
        let table = try Self.table()
        let blocked = Self.ask(table, "+34803123456")
        #expect(blocked.outcome == .reject && blocked.rejectStatus == 403)
        for bad in ["12", "abc", "+1234567890123456", ""] {
            let decision = Self.ask(table, bad)
            #expect(decision.outcome == .reject && decision.rejectStatus == 404, "\(bad)")
        }
        var settings = RoutingSettings()
        settings.routes = [RouteSettings(prefix: "34", targets: [Self.target("spain")])]
        let noDefault = try RouteTable(settings)
        #expect(Self.ask(noDefault, "4420794600018").rejectStatus == 404)
    }

    @Test func nationalNumbersAreReadWithTheConfiguredCountrysRules() throws {
        let table = try Self.table(nationalCountry: "ES")
        #expect(Self.ask(table, "911 23 45 67").callee == "34911234567")
        #expect(Self.ask(table, "00 44 20 7946 0018").callee == "442079460018")
        #expect(throws: NumberingError.self) { try RouteTable({ var s = RoutingSettings(); s.nationalCountry = "XX"; return s }()) }
    }

    @Test func trunksOutOfServiceAreLeftOutAndNoneLeftMeans503() throws {
        let table = try Self.table()
        let decision = table.decide(RouteRequest(customer: "acme", caller: "1", callee: "34911234567", site: "a", callID: "x")) {
            $0.carrier != "spain-a"
        }
        #expect(decision.targets.map(\.carrier) == ["spain-b"])
        let none = table.decide(RouteRequest(customer: "acme", caller: "1", callee: "34911234567", site: "a", callID: "x")) { _ in false }
        #expect(none.outcome == .reject && none.rejectStatus == 503)
        #expect(table.trunks.map(\.carrier).sorted() == ["gold-spain", "madrid-premium", "mobile", "spain-a", "spain-b", "world"])
    }
}

/// Origination: calls from carriers to the operator's numbers.
@Suite struct DIDRoutingTests {
    /// One DID in each of 65 countries (distinct calling codes), each to its own customer trunk.
    static let dids: [DIDSettings] = {
        var seen = Set<String>()
        var dids: [DIDSettings] = []
        for country in CountryTable.itu.countries where country.isoCode != nil && seen.insert(country.callingCode).inserted {
            let length = min(country.nationalNumberLengths.upperBound, 15 - country.callingCode.count)
            let number = country.callingCode + (country.identifyingPrefixes.first ?? "") .dropFirst(country.callingCode.count)
            let padded = number + String(repeating: "7", count: max(0, country.callingCode.count + length - number.count))
            guard padded.count >= 6 else { continue }
            dids.append(DIDSettings(number: padded, customer: "tenant-\(country.isoCode ?? "")", host: "192.0.2.\(dids.count % 250 + 1)", port: 5060))
            if dids.count == 65 { break }
        }
        return dids
    }()

    static func table() throws -> RouteTable {
        var settings = RoutingSettings()
        settings.dids = dids
        settings.routes = [RouteSettings(prefix: "", targets: [RouteTargetSettings(carrier: "world", host: "198.51.100.1", port: 5060)])]
        return try RouteTable(settings)
    }

    @Test func everyDIDInSixtyFiveCountriesReachesItsCustomer() throws {
        let table = try Self.table()
        #expect(Self.dids.count == 65)
        #expect(Set(Self.dids.map { CountryTable.itu.country(forE164: $0.number)?.callingCode }).count == 65)
        for did in Self.dids {
            let decision = table.decide(RouteRequest(customer: "carrier-x", caller: "1", callee: "+" + did.number, site: "a", callID: "x", fromCarrier: true))
            #expect(decision.outcome == .onNet, "+\(did.number)")
            #expect(decision.onNet?.trunk == did.customer && decision.onNet?.host == did.host && decision.onNet?.number == did.number)
        }
    }

    @Test func aCarrierCallToANumberThatIsNotOursGets404() throws {
        let decision = try Self.table().decide(RouteRequest(customer: "carrier-x", caller: "1", callee: "+34911000000", site: "a", callID: "x", fromCarrier: true))
        #expect(decision.outcome == .reject && decision.rejectStatus == 404)
    }

    @Test func aCustomerDiallingADIDIsRoutedLikeAnyNumber() throws {
        let did = try #require(Self.dids.first)
        let decision = try Self.table().decide(RouteRequest(customer: "acme", caller: "1", callee: did.number, site: "a", callID: "x"))
        #expect(decision.outcome == .route && decision.targets.map(\.carrier) == ["world"])
    }
}

@Suite struct CarrierHealthTests {
    let trunk = CarrierHealth.Trunk(carrier: "c1", trunk: "c1")

    func report(_ result: CallAttemptReport.Result, _ status: Int? = nil, pdd: Int? = nil) -> CallAttemptReport {
        CallAttemptReport(carrier: "c1", trunk: "c1", result: result, status: status, postDialDelayMilliseconds: pdd, callID: "x")
    }

    @Test func fiveFailedCallsInARowTakeATrunkOutAndAProbeBringsItBack() {
        var health = CarrierHealth(failuresToTakeOut: 5)
        for index in 1...4 { #expect(health.record(report(index % 2 == 0 ? .failed : .noAnswer, index % 2 == 0 ? 503 : nil)) == nil) }
        #expect(health.isInService(trunk))
        guard case .takenOut(let out, let reason)? = health.record(report(.transportError)) else {
            Issue.record("not taken out")
            return
        }
        #expect(out == trunk && reason.contains("5 failed calls"))
        #expect(!health.isInService(trunk))
        #expect(health.recordProbe(trunk, alive: false, detail: "timeout") == nil)
        #expect(health.recordProbe(trunk, alive: true, detail: "answered 200") == .restored(trunk))
        #expect(health.isInService(trunk))
        #expect(health.status(of: trunk).consecutiveFailures == 0)
    }

    @Test func answersThatShowTheTrunkWorksEndTheStreak() {
        var health = CarrierHealth(failuresToTakeOut: 3)
        _ = health.record(report(.failed, 503))
        _ = health.record(report(.failed, 500))
        _ = health.record(report(.failed, 486))  // busy: the carrier is fine
        _ = health.record(report(.failed, 408))
        _ = health.record(report(.cancelled))  // neither
        #expect(health.isInService(trunk))
        #expect(health.status(of: trunk).consecutiveFailures == 1)
    }

    @Test func failedProbesAloneTakeATrunkOut() {
        var health = CarrierHealth(failuresToTakeOut: 2)
        #expect(health.recordProbe(trunk, alive: false, detail: "timeout") == nil)
        #expect(health.recordProbe(trunk, alive: false, detail: "timeout") != nil)
        #expect(!health.isInService(trunk))
    }

    @Test func answerSeizureRatioAndPostDialDelayFollowTheReports() {
        var health = CarrierHealth(failuresToTakeOut: 10, window: 4)
        _ = health.record(report(.answered, 200, pdd: 100))
        _ = health.record(report(.failed, 486, pdd: 300))
        _ = health.record(report(.answered, 200, pdd: 200))
        _ = health.record(report(.cancelled, pdd: nil))
        let status = health.status(of: trunk)
        #expect(status.answerSeizureRatio == 2.0 / 3.0)
        #expect(status.postDialDelayMilliseconds == 200)
        #expect(status.attempts == 3)
    }

    @Test func probeResultsCountServerErrorsAsDead() {
        #expect(TrunkProbeResult(status: 200, roundTripMilliseconds: 1, failure: nil).isAlive)
        #expect(TrunkProbeResult(status: 404, roundTripMilliseconds: 1, failure: nil).isAlive)
        #expect(TrunkProbeResult(status: 501, roundTripMilliseconds: 1, failure: nil).isAlive)
        #expect(!TrunkProbeResult(status: 503, roundTripMilliseconds: 1, failure: nil).isAlive)
        #expect(!TrunkProbeResult(status: nil, roundTripMilliseconds: nil, failure: "timeout").isAlive)
    }
}
