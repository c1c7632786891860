import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import TestSupport
import TroncalLink
import TroncalPKI
import TroncalProtocol

/// A request that a test server answers after `delayMilliseconds` (to hold a request in flight).
struct SlowEcho: LinkRequest {
    typealias Reply = Echoed
    static let messageType = "test.slow-echo"
    var text: String
    var delayMilliseconds: Int
}

/// The same, marked safe to send twice: `routing-1` of the test servers never answers it (a paused instance).
struct RetryableEcho: LinkRequest {
    typealias Reply = Echoed
    static let messageType = "test.retryable-echo"
    static var retryable: Bool { true }
    var text: String
}

struct Echoed: LinkMessage {
    static let messageType = "test.slow-echo.reply"
    var text: String
    var instance: String
}

/// One link server running in a task, stopped by `stop()`.
struct RunningServer {
    let server: LinkServer
    let task: Task<Void, any Error>
    let port: Int

    static func start(
        _ pki: TemporaryPKI, role: Role = .routing, instance: String, allowStatusFrom: Set<Role>? = [.operator],
        maximumFrameLength: Int = 64 * 1024
    ) async throws -> RunningServer {
        let credentials = try pki.credentials(role, instance)
        var handlers = LinkHandlers(localIdentity: credentials.identity)
        handlers.on(Ping.self, from: nil) { _, _ in
            Pong(role: role, site: credentials.identity.site, instance: instance, version: TroncalVersion.current)
        }
        handlers.on(StatusRequest.self, from: allowStatusFrom) { _, _ in
            ServiceStatus(
                role: role, site: credentials.identity.site, instance: instance, version: TroncalVersion.current,
                status: .healthy, uptimeSeconds: 1, linkAddress: "", adminAddress: "", links: [])
        }
        handlers.on(RetryableEcho.self, from: nil) { request, _ in
            if instance == "routing-1" { try await Task.sleep(for: .seconds(60)) }
            return Echoed(text: request.text, instance: instance)
        }
        handlers.on(SlowEcho.self, from: nil) { request, _ in
            try await Task.sleep(for: .milliseconds(request.delayMilliseconds))
            return Echoed(text: request.text, instance: instance)
        }
        let server = try LinkServer(
            configuration: .init(host: "127.0.0.1", port: 0, maximumFrameLength: maximumFrameLength),
            credentials: credentials, handlers: handlers, logger: Logger(label: "test.link.\(instance)"))
        let task = Task { try await server.run() }
        let address = try await server.listeningAddress()
        return RunningServer(server: server, task: task, port: address.port ?? 0)
    }

    func stop() async {
        task.cancel()
        _ = await task.result
    }
}
