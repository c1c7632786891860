import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import TestSupport
import TroncalSIP

/// A running SIPTransport on loopback that records what it delivered, answering every request with 200
/// when asked to.
final class TransportHarness: Sendable {
    let transport: SIPTransport
    let task: Task<Void, any Error>
    private let delivered: DeliveredLog

    init(answer: Bool = false, stallTimeout: Duration = .milliseconds(300), perAddressLimit: Int = 64, tls: (String, String)? = nil) async throws {
        let delivered = DeliveredLog()
        self.delivered = delivered
        let box = TransportBox()
        transport = SIPTransport(
            configuration: SIPTransportConfiguration(
                host: "127.0.0.1", udpPort: 0, tcpPort: 0, tlsPort: tls == nil ? nil : 0, tlsCertificatePath: tls?.0, tlsKeyPath: tls?.1,
                stallTimeout: stallTimeout, maximumConnectionsPerAddress: perAddressLimit),
            logger: Logger(label: "test.sip")
        ) { inbound in
            delivered.items.withLock { $0.append(inbound) }
            if answer, case .request(let request) = inbound.message, request.method != .ack {
                box.transport?.respond(InviteServerTransaction.response(200, "OK", to: request, toTag: "t1"), to: inbound.source)
            }
        }
        box.transport = transport
        let transport = self.transport
        task = Task { try await transport.run() }
        try await transport.waitUntilListening()
    }

    var messages: [SIPInbound] { delivered.items.withLock { $0 } }

    func callIDs() -> [String] {
        messages.compactMap { (try? $0.message.headers.callID()) ?? nil }
    }

    func stop() async {
        task.cancel()
        _ = await task.result
    }

    static func options(callID: String) -> [UInt8] {
        Array("""
            OPTIONS sip:sbc@127.0.0.1 SIP/2.0\r
            Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK\(callID)\r
            Max-Forwards: 70\r
            From: <sip:probe@127.0.0.1>;tag=p1\r
            To: <sip:sbc@127.0.0.1>\r
            Call-ID: \(callID)\r
            CSeq: 1 OPTIONS\r
            Content-Length: 0\r
            \r

            """.utf8)
    }
}

/// What a transport delivered, in order.
final class DeliveredLog: Sendable {
    let items = Mutex<[SIPInbound]>([])
}

/// Lets the delivery closure answer through the transport it belongs to.
final class TransportBox: @unchecked Sendable {
    // @unchecked: written once before the transport starts running, only read afterwards.
    var transport: SIPTransport?
}

/// A UDP client socket collecting what comes back.
struct UDPClient {
    let channel: NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>

    static func make() async throws -> UDPClient {
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0)
            .flatMapThrowing { try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: $0) }
            .get()
        return UDPClient(channel: channel)
    }

    func send(_ bytes: [UInt8], to address: SocketAddress) async throws {
        try await channel.outbound.write(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: bytes)))
    }

    /// The status codes of responses received within `timeout`, stopping at `count`.
    func statusCodes(count: Int, timeout: Duration) async -> [Int] {
        await withTaskGroup(of: [Int].self) { group in
            group.addTask {
                var codes: [Int] = []
                do {
                    for try await envelope in channel.inbound {
                        if case .response(let response)? = try? SIPMessageParser().parse(Array(envelope.data.readableBytesView)) {
                            codes.append(response.statusCode)
                        }
                        if codes.count >= count { break }
                    }
                } catch {}
                return codes
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return []
            }
            let first = await group.next() ?? []
            group.cancelAll()
            return first
        }
    }
}
