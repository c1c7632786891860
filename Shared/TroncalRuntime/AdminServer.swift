public import Hummingbird
public import Logging
public import NIOCore
internal import Foundation
internal import NIOPosix
public import Prometheus
public import ServiceLifecycle
public import TroncalProtocol

/// The admin HTTP port of a service: `GET /health` (JSON: status, version, uptime, links; HTTP 503 when
/// unhealthy) and `GET /metrics` (Prometheus text format). Bind it to a private address only.
public struct AdminServer: Service {
    let application: Application<RouterResponder<BasicRequestContext>>
    private let bound: EventLoopPromise<SocketAddress>

    public init(
        host: String, port: Int, registry: PrometheusCollectorRegistry, logger: Logger,
        health: @escaping @Sendable () async -> ServiceStatus
    ) {
        let router = Router()
        router.get("/health") { _, _ -> Response in
            let status = await health()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let body = (try? encoder.encode(status)) ?? Data("{}".utf8)
            return Response(
                status: status.status == .unhealthy ? .serviceUnavailable : .ok,
                headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        router.get("/metrics") { _, _ -> Response in
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        let bound = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: SocketAddress.self)
        self.bound = bound
        application = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "troncal"),
            onServerRunning: { channel in
                if let address = channel.localAddress { bound.succeed(address) }
            }, logger: logger)
    }

    /// The bound address, once the server runs (useful with port 0).
    public func listeningAddress() async throws -> SocketAddress {
        try await bound.futureResult.get()
    }

    public func run() async throws {
        do {
            try await application.run()
        } catch {
            bound.fail(error)
            throw error
        }
    }
}
