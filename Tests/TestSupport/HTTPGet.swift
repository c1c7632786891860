public import NIOCore
import NIOPosix

/// A minimal HTTP/1.1 GET over a plain TCP connection (for admin ports on loopback); returns the raw response.
public func httpGet(host: String = "127.0.0.1", port: Int, path: String) async throws -> String {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: host, port: port) { channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
    var response = ""
    try await channel.executeThenClose { inbound, outbound in
        try await outbound.write(ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n"))
        for try await buffer in inbound { response += String(buffer: buffer) }
    }
    return response
}
