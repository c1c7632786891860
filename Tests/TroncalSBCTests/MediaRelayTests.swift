import Logging
import NIOCore
import NIOPosix
import TestSupport
import Testing
import TroncalProtocol
import TroncalSBC

@Suite("Media relay")
struct MediaRelayTests {
    @Test func portPoolHandsOutEvenPortsAndReusesReturnedOnesLast() {
        var pool = RelayPortPool(range: 30001...30010)
        #expect(pool.available == 4)
        let ports = (0..<4).compactMap { _ in pool.allocate() }
        #expect(ports == [30002, 30004, 30006, 30008])
        #expect(pool.allocate() == nil)
        pool.release(30004)
        pool.release(12345)
        #expect(pool.allocate() == 30004)
    }

    func rtp(_ sequence: UInt16) -> ByteBuffer {
        let timestamp = UInt32(sequence) * 160
        var buffer = ByteBuffer(bytes: [0x80, 0x00, UInt8(sequence >> 8), UInt8(sequence & 0xff),
                                        UInt8(timestamp >> 24), UInt8(timestamp >> 16 & 0xff), UInt8(timestamp >> 8 & 0xff), UInt8(timestamp & 0xff),
                                        0xde, 0xad, 0xbe, 0xef])
        buffer.writeRepeatingByte(0xff, count: 160)
        return buffer
    }

    @Test func rtpFlowsBothWaysThroughTheRelayAndIsCounted() async throws {
        let base = freePortOffset() + 9500
        let relay = MediaRelay(bindAddress: "127.0.0.1", portRange: base...(base + 20), logger: Logger(label: "test"))
        let session = try await relay.openSession()
        let group = MultiThreadedEventLoopGroup.singleton
        func phone() async throws -> NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>> {
            try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).flatMapThrowing { channel in
                try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: channel)
            }.get()
        }
        let caller = try await phone()
        let callee = try await phone()
        let callerAddress = try #require(caller.channel.localAddress)
        let calleeAddress = try #require(callee.channel.localAddress)
        // What the SDP said: the callee's address; the caller's is learned from its packets.
        session.setDestination(.callee, host: "127.0.0.1", port: try #require(calleeAddress.port), codec: "PCMU")
        session.setDestination(.caller, host: "127.0.0.1", port: 9, codec: "PCMU")

        let toCallerSide = try SocketAddress(ipAddress: "127.0.0.1", port: session.callerPort)
        let toCalleeSide = try SocketAddress(ipAddress: "127.0.0.1", port: session.calleePort)
        let received = try await withThrowingTaskGroup(of: Int.self) { group in
            group.addTask {
                var count = 0
                for try await _ in callee.inbound {
                    count += 1
                    if count == 50 { break }
                }
                return count
            }
            for n in 0..<50 {
                try await caller.outbound.write(AddressedEnvelope(remoteAddress: toCallerSide, data: rtp(UInt16(n))))
                try await Task.sleep(for: .milliseconds(2))
            }
            return try await group.next() ?? 0
        }
        #expect(received == 50)
        // Back the other way: the relay latched onto the caller's real address.
        try await callee.outbound.write(AddressedEnvelope(remoteAddress: toCalleeSide, data: rtp(1)))
        var back: AddressedEnvelope<ByteBuffer>?
        for try await packet in caller.inbound {
            back = packet
            break
        }
        #expect(back?.data.readableBytes == 172)
        #expect(back?.remoteAddress.port == session.callerPort)
        _ = callerAddress

        let reports = await session.streamReports()
        let forward = try #require(reports.first { $0.direction == "caller-to-callee" })
        #expect(forward.packets == 50)
        #expect(forward.lost == 0)
        #expect(forward.mos > 4)
        await relay.release(session)
        #expect(relay.portsAvailable == 10)
        try? await caller.channel.close()
        try? await callee.channel.close()
    }
}
