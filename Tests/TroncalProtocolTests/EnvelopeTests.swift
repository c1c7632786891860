import Foundation
import Testing
import TroncalProtocol

@Suite("Envelope and message catalog")
struct EnvelopeTests {
    @Test func envelopeRoundTripsWithTypedBody() throws {
        let head = EnvelopeHead(v: 1, id: "id-1", type: Pong.messageType, from: "site-a/routing-1", re: "req-9")
        let pong = Pong(role: .routing, site: "site-a", instance: "routing-1", version: "0.1.0")
        let json = try EnvelopeEncoder.encode(Envelope(head: head, body: pong))
        let inbound = try InboundEnvelope(json: json)
        #expect(inbound.head == head)
        #expect(try inbound.body(as: Pong.self) == pong)
    }

    @Test func envelopeFieldsAreTheDocumentedNames() throws {
        let head = EnvelopeHead(v: 1, id: "x", type: "ping", from: "s/i", re: "y")
        let json = try EnvelopeEncoder.encode(Envelope(head: head, body: Ping()))
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(Set(object.keys) == ["v", "id", "type", "from", "re", "body"])
    }

    @Test func errorBodyHasCodeAndMessage() throws {
        let json = try EnvelopeEncoder.encode(
            Envelope(head: EnvelopeHead(v: 1, id: "e", type: "error", from: "s/i", re: "r"), body: ProtocolError(.forbidden, "no")))
        #expect(String(decoding: json, as: UTF8.self).contains(#""body":{"code":"forbidden","message":"no"}"#))
    }

    @Test(arguments: [
        (#"{"v":1,"id":"#, ErrorCode.badJSON),
        (#"{"v":"1","id":"a","type":"ping","from":"x"}"#, ErrorCode.badEnvelope),
        (#"{"id":"a","type":"ping","from":"x"}"#, ErrorCode.badEnvelope),
        (#""just a string""#, ErrorCode.badEnvelope),
    ])
    func malformedEnvelopesGiveTheRightCode(json: String, code: ErrorCode) {
        let error = #expect(throws: ProtocolError.self) { try InboundEnvelope(json: Data(json.utf8)) }
        #expect(error?.code == code)
    }

    @Test func badBodyNamesTheField() throws {
        let inbound = try InboundEnvelope(json: Data(#"{"v":1,"id":"a","type":"pong","from":"x","body":{"role":"sbc"}}"#.utf8))
        let error = #expect(throws: ProtocolError.self) { try inbound.body(as: Pong.self) }
        #expect(error?.code == .badRequest)
        #expect(error?.message.contains("body.site") == true)
    }

    @Test func protocolDocumentListsEveryMessageType() throws {
        var root = URL(fileURLWithPath: #filePath)
        while !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) { root.deleteLastPathComponent() }
        let document = try String(contentsOf: root.appendingPathComponent("docs/protocol.md"), encoding: .utf8)
        for message in MessageCatalog.all {
            #expect(document.contains("| `\(message.type)` | \(message.version) | \(message.kind.rawValue) |"), "docs/protocol.md lacks \(message.type)")
        }
        for code in ErrorCode.allCases {
            #expect(document.contains("| `\(code.rawValue)` |"), "docs/protocol.md lacks error code \(code.rawValue)")
        }
    }
}
