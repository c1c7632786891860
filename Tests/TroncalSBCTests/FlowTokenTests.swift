import Testing
@testable import TroncalSBC
import TroncalSIP

/// The flow tokens the SBC writes into a phone's Path: they name the flow, and nobody but this SBC can make one.
@Suite struct FlowTokenTests {
    @Test func aTokenNamesItsFlowAndATamperedOrForeignOneIsRefused() throws {
        let tokens = FlowTokens()
        let flow = FlowTokens.Flow(transport: .tcp, host: "203.0.113.7", port: 41_234)
        let token = tokens.make(flow)
        #expect(token.allSatisfy { $0.isLowercase || $0.isNumber }, "usable as a URI user part: \(token)")
        #expect(tokens.flow(token) == flow)
        #expect(tokens.flow(token.uppercased()) == flow, "case does not matter")
        // Another SBC process (another key), a changed character, a truncated token: refused.
        #expect(FlowTokens().flow(token) == nil)
        var tampered = Array(token)
        tampered[3] = tampered[3] == "a" ? "b" : "a"
        #expect(tokens.flow(String(tampered)) == nil)
        #expect(tokens.flow(String(token.dropLast(4))) == nil)
        #expect(tokens.flow("not-a-token!") == nil)
        let v6 = FlowTokens.Flow(transport: .udp, host: "2001:db8::5", port: 5060)
        #expect(tokens.flow(tokens.make(v6)) == v6)
    }

    @Test func aTokenAlsoNamesTheLineOfAPhoneWithSeveral() throws {
        let tokens = FlowTokens()
        let flow = FlowTokens.Flow(transport: .udp, host: "198.51.100.9", port: 5062)
        let first = tokens.make(flow, aor: "101@acme")
        let second = tokens.make(flow, aor: "102@acme")
        #expect(first != second)
        #expect(tokens.named(first)?.flow == flow && tokens.named(first)?.aor == "101@acme")
        #expect(tokens.named(second)?.aor == "102@acme")
        // A user part with the separator in it stays whole.
        #expect(tokens.named(tokens.make(flow, aor: "a|b@acme"))?.aor == "a|b@acme")
    }
}
