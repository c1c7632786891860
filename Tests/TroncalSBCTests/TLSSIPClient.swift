import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import TroncalSIP

/// A SIP client over TLS for the tests (Debian's sipp has no TLS): one connection, messages framed by
/// Content-Length, every message received kept in order.
final class TLSSIPClient: Sendable {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private let received = Box()

    final class Box: Sendable { let messages = Mutex<[SIPMessage]>([]) }
    private let reader: Task<Void, Never>

    /// Over TLS, trusting `caCertificatePath`; over plain TCP when it is nil.
    init(from localAddress: String, to host: String, port: Int, caCertificatePath: String?) async throws {
        let context: NIOSSLContext? = try caCertificatePath.map { path in
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .noHostnameVerification
            tls.trustRoots = .file(path)
            return try NIOSSLContext(configuration: tls)
        }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(to: try SocketAddress(ipAddress: localAddress, port: 0))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        self.channel = channel
        let received = self.received
        reader = Task {
            var pending: [UInt8] = []
            do {
                for try await buffer in channel.inbound {
                    pending += buffer.readableBytesView
                    while let message = Self.take(&pending) {
                        if let parsed = try? SIPMessageParser().parse(message) { received.messages.withLock { $0.append(parsed) } }
                    }
                }
            } catch {}
        }
    }

    /// Removes one whole message (headers, blank line, Content-Length bytes) from the front of `buffer`.
    static func take(_ buffer: inout [UInt8]) -> [UInt8]? {
        while buffer.starts(with: [13, 10]) { buffer.removeFirst(2) }
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = buffer.indices.dropLast(3).first(where: { Array(buffer[$0..<($0 + 4)]) == separator }) else { return nil }
        let head = String(decoding: buffer[..<end], as: UTF8.self)
        let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") || $0.lowercased().hasPrefix("l:") }
            .flatMap { Int($0.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        let total = end + 4 + length
        guard buffer.count >= total else { return nil }
        defer { buffer.removeFirst(total) }
        return Array(buffer[..<total])
    }

    var localPort: Int { channel.channel.localAddress?.port ?? 0 }

    func send(_ text: String) async throws {
        try await channel.channel.writeAndFlush(ByteBuffer(string: text))
    }

    var messages: [SIPMessage] { received.messages.withLock { $0 } }

    func requests(_ method: SIPMethod) -> [SIPRequest] {
        messages.compactMap { if case .request(let request) = $0, request.method == method { request } else { nil } }
    }

    func responses(status: Int) -> [SIPResponse] {
        messages.compactMap { if case .response(let response) = $0, response.statusCode == status { response } else { nil } }
    }

    func close() async {
        reader.cancel()
        try? await channel.channel.close()
    }
}
