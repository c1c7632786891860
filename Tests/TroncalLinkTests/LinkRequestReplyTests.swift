import Foundation
import Logging
import NIOCore
import TestSupport
import Testing
import TroncalLink
import TroncalPKI
import TroncalProtocol

@Suite("Link: request and reply over mutual TLS")
struct LinkRequestReplyTests {
    @Test func twoServicesExchangeRequestAndReplyOverMutualTLS() async throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        let routing = try await RunningServer.start(pki, instance: "routing-1")
        defer { routing.task.cancel() }
        let client = try LinkClient(
            role: .routing, endpoints: [LinkEndpoint(host: "127.0.0.1", port: routing.port)],
            credentials: try pki.credentials(.sbc, "sbc-1"), logger: Logger(label: "test"), connectTimeout: .seconds(20))
        let pong = try await client.request(Ping(), timeout: .seconds(30))
        #expect(pong.role == .routing)
        #expect(pong.instance == "routing-1")
        #expect(pong.site == "test-site")
        // Several requests in flight on one connection are matched to their replies by id.
        let replies = try await withThrowingTaskGroup(of: String.self) { group in
            for n in 0..<20 {
                group.addTask { try await client.request(SlowEcho(text: "m\(n)", delayMilliseconds: (20 - n) * 5)).text }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(replies == Set((0..<20).map { "m\($0)" }))
        let status = await client.status()
        #expect(status.state == "connected")
        await client.close()
        await routing.stop()
    }

    @Test func clientWithCertificateOfAnotherCAIsRefusedAtHandshake() async throws {
        let pki = try TemporaryPKI()
        let foreign = try TemporaryPKI()
        defer { pki.remove(); foreign.remove() }
        let routing = try await RunningServer.start(pki, instance: "routing-1")
        defer { routing.task.cancel() }
        let endpoint = LinkEndpoint(host: "127.0.0.1", port: routing.port)
        let intruder = try LinkClient(
            role: .routing, endpoints: [endpoint], credentials: try foreign.credentials(.sbc, "sbc-1"), logger: Logger(label: "test"), connectTimeout: .seconds(20))
        await #expect(throws: LinkError.self) { _ = try await intruder.request(Ping(), timeout: .seconds(2)) }
        // The listener keeps serving well-behaved clients.
        let client = try LinkClient(
            role: .routing, endpoints: [endpoint], credentials: try pki.credentials(.sbc, "sbc-1"), logger: Logger(label: "test"), connectTimeout: .seconds(20))
        #expect(try await client.request(Ping(), timeout: .seconds(30)).instance == "routing-1")
        await client.close()
        await routing.stop()
    }

    @Test func serverWithCertificateOfAnotherCAIsRefusedByClient() async throws {
        let pki = try TemporaryPKI()
        let foreign = try TemporaryPKI()
        defer { pki.remove(); foreign.remove() }
        let impostor = try await RunningServer.start(foreign, instance: "routing-1")
        defer { impostor.task.cancel() }
        let client = try LinkClient(
            role: .routing, endpoints: [LinkEndpoint(host: "127.0.0.1", port: impostor.port)],
            credentials: try pki.credentials(.sbc, "sbc-1"), logger: Logger(label: "test"), connectTimeout: .seconds(20))
        let error = await #expect(throws: LinkError.self) { _ = try await client.request(Ping(), timeout: .seconds(30)) }
        #expect(error?.code == .unavailable)
        await impostor.stop()
    }

    @Test func serverOfTheWrongRoleIsRefusedByClient() async throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        let billing = try await RunningServer.start(pki, role: .billing, instance: "billing-1")
        defer { billing.task.cancel() }
        let client = try LinkClient(
            role: .routing, endpoints: [LinkEndpoint(host: "127.0.0.1", port: billing.port)],
            credentials: try pki.credentials(.sbc, "sbc-1"), logger: Logger(label: "test"), connectTimeout: .seconds(20))
        let error = await #expect(throws: LinkError.self) { _ = try await client.request(Ping(), timeout: .seconds(30)) }
        #expect(error?.message.contains("expected routing") == true)
        await billing.stop()
    }

    @Test func roleNotAllowedToSendAMessageTypeGetsForbiddenErrorNamingTheReason() async throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        let routing = try await RunningServer.start(pki, instance: "routing-1", allowStatusFrom: [.operator])
        defer { routing.task.cancel() }
        let endpoint = LinkEndpoint(host: "127.0.0.1", port: routing.port)
        let sbc = try LinkClient(role: .routing, endpoints: [endpoint], credentials: try pki.credentials(.sbc, "sbc-1"), logger: Logger(label: "test"), connectTimeout: .seconds(20))
        let error = await #expect(throws: LinkError.self) { _ = try await sbc.request(StatusRequest(), timeout: .seconds(30)) }
        #expect(error?.code == .remote)
        #expect(error?.remote?.code == .forbidden)
        #expect(error?.remote?.message == "role sbc may not send status")
        // The same connection and the listener go on serving.
        #expect(try await sbc.request(Ping(), timeout: .seconds(30)).instance == "routing-1")
        let operatorClient = try LinkClient(
            role: .routing, endpoints: [endpoint], credentials: try pki.credentials(.operator, "operator"), logger: Logger(label: "test"), connectTimeout: .seconds(20))
        #expect(try await operatorClient.request(StatusRequest(), timeout: .seconds(30)).status == .healthy)
        await sbc.close()
        await operatorClient.close()
        await routing.stop()
    }
}
