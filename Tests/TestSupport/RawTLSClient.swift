public import NIOCore
import NIOPosix
import NIOSSL
public import TroncalPKI

/// A bare TLS connection presenting instance credentials, for sending hand-made (broken) frames to a link.
public struct RawTLSClient: Sendable {
    public let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>

    public static func connect(host: String = "127.0.0.1", port: Int, credentials: SiteCA.Credentials) async throws -> RawTLSClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv13
        tls.certificateVerification = .noHostnameVerification
        tls.trustRoots = .file(credentials.caCertificatePath)
        tls.certificateChain = try NIOSSLCertificate.fromPEMFile(credentials.certificatePath).map { .certificate($0) }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: credentials.keyPath, format: .pem))
        let context = try NIOSSLContext(configuration: tls)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return RawTLSClient(channel: channel)
    }

    /// Writes raw bytes, then reads until `frames` complete frames arrived or the peer closed.
    /// Returns the JSON of each frame received and whether the peer closed the connection.
    public func exchange(_ bytes: [UInt8], frames wanted: Int = 1) async throws -> (frames: [String], closed: Bool) {
        var received: [UInt8] = []
        var frames: [String] = []
        var closed = true
        try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: bytes))
            do {
                for try await buffer in inbound {
                    received += buffer.readableBytesView
                    while received.count >= 4 {
                        let length = received[0..<4].reduce(0) { $0 << 8 | Int($1) }
                        guard received.count >= 4 + length else { break }
                        frames.append(String(decoding: received[4..<(4 + length)], as: UTF8.self))
                        received.removeFirst(4 + length)
                    }
                    if frames.count >= wanted {
                        closed = false
                        break
                    }
                }
            } catch {
                closed = true
            }
        }
        return (frames, closed)
    }

    /// A frame: the 4-byte big-endian length, then the bytes.
    public static func frame(_ payload: [UInt8]) -> [UInt8] {
        let n = UInt32(payload.count)
        return [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + payload
    }
}
