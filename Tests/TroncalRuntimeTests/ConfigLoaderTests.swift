import Foundation
import Testing
import TroncalProtocol
import TroncalRuntime

@Suite("Site configuration: defaults, strict keys and types")
struct ConfigLoaderTests {
    func parse(_ json: String) throws(ConfigError) -> SiteConfig {
        try ConfigLoader.parse(Data(json.utf8), file: "site.json")
    }

    @Test func emptyObjectGivesEveryDefault() throws {
        let config = try parse("{}")
        #expect(config == SiteConfig())
        #expect(config.sip.udpPort == 5060)
        #expect(config.sip.tcpPort == 5060)
        #expect(config.sip.tlsPort == 5061)
        #expect(config.instances.map(\.linkPort) == [7101, 7102, 7103, 7104, 7105, 7106])
        #expect(config.instances.map(\.adminPort) == [8101, 8102, 8103, 8104, 8105, 8106])
    }

    @Test func defaultsRoundTripThroughTheFileFormat() throws {
        let written = ConfigLoader.encode(SiteConfig().shiftingPorts(by: 1000))
        let read = try ConfigLoader.parse(written)
        #expect(read.sip.udpPort == 6060)
        #expect(read.instances.first?.linkPort == 8101)
    }

    @Test func givenKeysOverrideDefaultsAndOthersStay() throws {
        let config = try parse(#"{"site":"madrid-1","link":{"requestTimeoutMilliseconds":250}}"#)
        #expect(config.site == "madrid-1")
        #expect(config.link.requestTimeoutMilliseconds == 250)
        #expect(config.link.maximumFrameBytes == 1 << 20)
    }

    @Test func instanceNeedsOnlyRoleAndName() throws {
        let config = try parse(#"""
            {"instances":[{"role":"sbc","name":"sbc-1"},{"role":"sbc","name":"sbc-2","linkPort":7201,"adminPort":8201},
            {"role":"routing","name":"routing-1"},{"role":"billing","name":"billing-1"},{"role":"pbx","name":"pbx-1"},
            {"role":"backup","name":"backup-1"},{"role":"monitor","name":"monitor-1"}]}
            """#)
        #expect(config.instances(of: .sbc).map(\.name) == ["sbc-1", "sbc-2"])
        #expect(config.instance(named: "routing-1")?.linkPort == 7102)
        #expect(config.instance(named: "sbc-2")?.host == "127.0.0.1")
    }

    /// `sbc.advertiseInstanceAddress`: each SBC writes its own host's address, not the floating one; a wildcard host
    /// cannot be advertised.
    @Test func anSBCAdvertisesItsOwnHostAddressWhenAskedAndAWildcardHostIsRefused() throws {
        let instances = #"[{"role":"sbc","name":"sbc-1","host":"10.0.0.1"},{"role":"sbc","name":"sbc-2","host":"HOST","linkPort":7201,"adminPort":8201},"#
            + #"{"role":"routing","name":"routing-1"},{"role":"billing","name":"billing-1"},{"role":"pbx","name":"pbx-1"},"#
            + #"{"role":"backup","name":"backup-1"},{"role":"monitor","name":"monitor-1"}]"#
        let config = try parse(#"{"sbc":{"advertisedAddress":"10.0.0.10","advertiseInstanceAddress":true},"instances":"# + instances.replacingOccurrences(of: "HOST", with: "10.0.0.2") + "}")
        #expect(config.sbc.advertised(listenAddress: "0.0.0.0", instanceHost: config.instance(named: "sbc-2")?.host) == "10.0.0.2")
        #expect(config.sbc.advertised(listenAddress: "0.0.0.0") == "10.0.0.10")
        var publicAddresses = config.sbc
        publicAddresses.instanceAddresses = ["sbc-2": "198.51.100.12"]
        #expect(publicAddresses.advertised(listenAddress: "0.0.0.0", instance: "sbc-2", instanceHost: "10.0.0.2") == "198.51.100.12")
        #expect(publicAddresses.advertised(listenAddress: "0.0.0.0", instance: "sbc-1", instanceHost: "10.0.0.1") == "10.0.0.1")
        // Relay sockets bind the host address behind a public instance address, else the advertised one.
        #expect(publicAddresses.mediaBindAddress(advertised: "198.51.100.12", instance: "sbc-2", instanceHost: "10.0.0.2") == "10.0.0.2")
        #expect(publicAddresses.mediaBindAddress(advertised: "10.0.0.1", instance: "sbc-1", instanceHost: "10.0.0.1") == "10.0.0.1")
        var floating = config.sbc
        floating.advertiseInstanceAddress = false
        #expect(floating.advertised(listenAddress: "0.0.0.0", instanceHost: "10.0.0.2") == "10.0.0.10")
        let error = #expect(throws: ConfigError.self) {
            try parse(#"{"sbc":{"advertiseInstanceAddress":true},"instances":"# + instances.replacingOccurrences(of: "HOST", with: "0.0.0.0") + "}")
        }
        #expect(error?.key == "sbc.advertiseInstanceAddress" && error?.description.contains("sbc-2") == true, "\(String(describing: error))")
    }

    struct BadCase: Sendable, CustomTestStringConvertible {
        var json: String
        var key: String
        var says: String
        var testDescription: String { key.isEmpty ? "whole file" : key }
    }

    static let badCases: [BadCase] = [
        BadCase(json: #"{"sitee":"x"}"#, key: "sitee", says: "unknown key"),
        BadCase(json: #"{"link":{"requestTimeout":5}}"#, key: "link.requestTimeout", says: "unknown key"),
        BadCase(json: #"{"link":{"requestTimeoutMilliseconds":"5000"}}"#, key: "link.requestTimeoutMilliseconds", says: "must be a number"),
        BadCase(json: #"{"sip":{"udpPort":5060.5}}"#, key: "sip.udpPort", says: "whole number"),
        BadCase(json: #"{"sip":{"udpPort":70000}}"#, key: "sip.udpPort", says: "1 to 65535"),
        BadCase(json: #"{"sip":"5060"}"#, key: "sip", says: "must be an object"),
        BadCase(json: #"{"logging":{"level":"verbose"}}"#, key: "logging.level", says: "must be one of"),
        BadCase(json: #"{"store":{"backend":"mysql"}}"#, key: "store.backend", says: "sqlite, postgres"),
        BadCase(json: #"{"site":"Site A"}"#, key: "site", says: "a-z"),
        BadCase(json: #"{"instances":[{"role":"sbc","name":"sbc-1","colour":"red"}]}"#, key: "instances[0].colour", says: "unknown key"),
        BadCase(json: #"{"instances":[{"role":"sbx","name":"sbc-1"}]}"#, key: "instances[0].role", says: "must be one of"),
        BadCase(json: #"{"instances":[{"name":"sbc-1"}]}"#, key: "instances[0].role", says: "is required"),
        BadCase(json: #"{"instances":[{"role":"sbc","name":"sbc-1"}]}"#, key: "instances", says: "no instance of role routing"),
        BadCase(json: #"{"link":{"probeIntervalMilliseconds":true}}"#, key: "link.probeIntervalMilliseconds", says: "must be a number"),
        BadCase(json: #"{"link":{"suspicionSeconds":1}}"#, key: "link.suspicionSeconds", says: "must be from 2 to 3600"),
        BadCase(json: #"{"sbc":{"instanceAddresses":{"sbc-1":5}}}"#, key: "sbc.instanceAddresses.sbc-1", says: "must be a string"),
        BadCase(json: #"{"sbc":{"instanceAddresses":{"sbc-9":"10.0.0.9"}}}"#, key: "sbc.instanceAddresses", says: "not an SBC instance"),
        BadCase(json: #"{"sbc":{"drainGraceSeconds":61}}"#, key: "sbc.drainGraceSeconds", says: "must be from 0 to 60"),
        BadCase(json: #"{"site": }"#, key: "", says: "not valid JSON"),
        BadCase(json: #"[1]"#, key: "", says: "top level must be a JSON object"),
    ]

    @Test(arguments: badCases)
    func badConfigurationIsRefusedNamingTheKey(_ bad: BadCase) {
        let error = #expect(throws: ConfigError.self) { try parse(bad.json) }
        #expect(error?.key == bad.key)
        #expect(error?.description.contains(bad.says) == true, "\(error?.description ?? "")")
        if !bad.key.isEmpty { #expect(error?.description.contains("'\(bad.key)'") == true) }
    }

    @Test func duplicatePortsAcrossInstancesAreRefused() {
        var config = SiteConfig()
        config.instances[1].linkPort = config.instances[0].linkPort
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.parse(ConfigLoader.encode(config)) }
        #expect(error?.key == "instances[1].linkPort")
    }

    @Test func missingFileIsAClearError() {
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.load(path: "/nonexistent/site.json") }
        #expect(error?.description.contains("cannot read") == true)
    }
}
