import Logging
import NIOCore
import NIOPosix
import TestSupport
import Testing
import TroncalMedia

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

    @Test(arguments: [1, 2, 3, 8])
    func theRangeIsSharedOutBetweenLoopsInWholePairsWithoutOverlap(_ loops: Int) {
        let shares = MediaRelay.shares(of: 20000...20399, count: loops)
        #expect(shares.count == loops)
        let pairs = shares.map { RelayPortPool(range: $0).available }
        #expect(pairs.reduce(0, +) == 200)
        #expect(pairs.max()! - pairs.min()! <= 1)
        for (left, right) in zip(shares, shares.dropFirst()) { #expect(left.upperBound < right.lowerBound) }
        #expect(shares.allSatisfy { $0.lowerBound % 2 == 0 })
    }

    func rtp(_ sequence: UInt16) -> ByteBuffer {
        let timestamp = UInt32(sequence) * 160
        var buffer = ByteBuffer(bytes: [0x80, 0x00, UInt8(sequence >> 8), UInt8(sequence & 0xff),
                                        UInt8(timestamp >> 24), UInt8(timestamp >> 16 & 0xff), UInt8(timestamp >> 8 & 0xff), UInt8(timestamp & 0xff),
                                        0xde, 0xad, 0xbe, 0xef])
        buffer.writeRepeatingByte(0xff, count: 160)
        return buffer
    }

    @Test func rtpFlowsBothWaysThroughTheRelayIsCountedAndRatedByTheEModel() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let base = await freePortOffset() + 9500
        let relay = try await loop.submit {
            NIOLoopBound(MediaRelay(bindAddress: "127.0.0.1", portRange: base...(base + 20), eventLoop: loop, logger: Logger(label: "test")), eventLoop: loop)
        }.get()
        let session = try await loop.flatSubmit { relay.value.openSession().map { NIOLoopBound($0, eventLoop: loop) } }.get()
        let (callerPort, calleePort) = try await loop.submit { (session.value.callerPort, session.value.calleePort) }.get()
        func phone() async throws -> NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>> {
            try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).flatMapThrowing { channel in
                try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: channel)
            }.get()
        }
        let caller = try await phone()
        let callee = try await phone()
        let calleePhonePort = try #require(callee.channel.localAddress?.port)
        // What the SDP said: the callee's address; the caller's is learned from its packets.
        try await loop.submit {
            session.value.setDestination(.callee, host: "127.0.0.1", port: calleePhonePort, codec: "PCMU")
            session.value.setDestination(.caller, host: "127.0.0.1", port: 9, codec: "PCMU")
        }.get()

        let toCallerSide = try SocketAddress(ipAddress: "127.0.0.1", port: callerPort)
        let toCalleeSide = try SocketAddress(ipAddress: "127.0.0.1", port: calleePort)
        // 50 packets with sequence number 25 missing: 49 arrive, one is counted lost.
        let sent = (0..<50).filter { $0 != 25 }.map(UInt16.init)
        let received = try await withThrowingTaskGroup(of: Int.self) { group in
            group.addTask {
                var count = 0
                for try await _ in callee.inbound {
                    count += 1
                    if count == sent.count { break }
                }
                return count
            }
            for sequence in sent {
                try await caller.outbound.write(AddressedEnvelope(remoteAddress: toCallerSide, data: rtp(sequence)))
            }
            return try await group.next() ?? 0
        }
        #expect(received == sent.count)
        // Back the other way: the relay latched onto the caller's real address.
        try await callee.outbound.write(AddressedEnvelope(remoteAddress: toCalleeSide, data: rtp(1)))
        var back: AddressedEnvelope<ByteBuffer>?
        for try await packet in caller.inbound {
            back = packet
            break
        }
        #expect(back?.data.readableBytes == 172)
        #expect(back?.remoteAddress.port == callerPort)

        let reports = try await loop.submit { session.value.streamReports() }.get()
        let forward = try #require(reports.first { $0.direction == "caller-to-callee" }).quality
        #expect(forward.packets == 49)
        #expect(forward.lost == 1)
        #expect(forward.codec == "PCMU")
        // The MOS is the E-model's for what was counted (the jitter depends on how busy the machine is): one-way delay
        // of 20 ms assumed network, twice the jitter, one 20 ms packet.
        let expected = EModel(
            codec: CodecImpairment.forEncoding("PCMU"), oneWayDelayMilliseconds: 20 + 2 * forward.jitterMilliseconds + 20,
            packetLossPercent: forward.lossPercent
        ).rating()
        #expect(abs(forward.mos - expected.mos) < 0.000_1)
        #expect(abs(forward.rFactor - expected.r) < 0.000_1)
        #expect(abs(forward.lossPercent - 100.0 / 50) < 0.01)
        let backward = try #require(reports.first { $0.direction == "callee-to-caller" }).quality
        #expect(backward.packets == 1)

        // A re-INVITE moves the caller's media elsewhere (a resumed hold, another media server): the new SDP address is
        // followed at once although the caller's side had latched; the same address again would not undo the latch.
        let moved = try await phone()
        let movedPort = try #require(moved.channel.localAddress?.port)
        try await loop.submit { session.value.setDestination(.caller, host: "127.0.0.1", port: movedPort) }.get()
        try await callee.outbound.write(AddressedEnvelope(remoteAddress: toCalleeSide, data: rtp(2)))
        var followed: AddressedEnvelope<ByteBuffer>?
        for try await packet in moved.inbound {
            followed = packet
            break
        }
        #expect(followed?.remoteAddress.port == callerPort)
        try? await moved.channel.close()

        let free = try await loop.submit {
            relay.value.release(session.value)
            return relay.value.portsAvailable
        }.get()
        #expect(free == 10)
        try? await caller.channel.close()
        try? await callee.channel.close()
    }

    @Test func aReleasedSessionsSocketsAreParkedDropWhatArrivesAndServeTheNextCallAfterTheQuarantine() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let base = await freePortOffset() + 9540
        // Quarantine long enough that the second call cannot take the parked set; then a relay with none.
        for quarantine in [TimeAmount.seconds(60), .zero] {
            let relay = try await loop.submit {
                NIOLoopBound(
                    MediaRelay(bindAddress: "127.0.0.1", portRange: base...(base + 20), eventLoop: loop, logger: Logger(label: "test"), quarantine: quarantine),
                    eventLoop: loop)
            }.get()
            let first = try await loop.flatSubmit { relay.value.openSession().map { NIOLoopBound($0, eventLoop: loop) } }.get()
            let firstPorts = try await loop.submit { [first.value.callerPort, first.value.calleePort] }.get()
            let parked = try await loop.submit {
                relay.value.release(first.value)
                return relay.value.parkedSessions
            }.get()
            #expect(parked == 1)
            // A late packet of the ended call reaches the parked socket and goes nowhere.
            let phone = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
            try await phone.writeAndFlush(AddressedEnvelope(remoteAddress: try SocketAddress(ipAddress: "127.0.0.1", port: firstPorts[0]), data: rtp(7)))
            #expect(await eventually { (try? await loop.submit { first.value.dropped }.get()) == 1 })

            let second = try await loop.flatSubmit { relay.value.openSession().map { NIOLoopBound($0, eventLoop: loop) } }.get()
            let (secondPorts, packets, available) = try await loop.submit {
                ([second.value.callerPort, second.value.calleePort], second.value.streamReports().count, relay.value.portsAvailable)
            }.get()
            if quarantine == .zero {
                #expect(secondPorts == firstPorts, "the parked sockets serve the next call")
            } else {
                #expect(Set(secondPorts).isDisjoint(with: firstPorts), "a parked set in quarantine is not reused")
            }
            #expect(packets == 0, "nothing of the old call is carried over")
            #expect(available == 10 - 2)
            try await loop.submit {
                relay.value.release(second.value)
                relay.value.closeParked()
            }.get()
            #expect(try await loop.submit { relay.value.portsAvailable }.get() == 10)
            try? await phone.close()
        }
    }

    @Test func noMoreThanTheIdleLimitOfSessionsStayParked() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let base = await freePortOffset() + 9580
        let (parked, available) = try await loop.flatSubmit { () -> EventLoopFuture<(Int, Int)> in
            let relay = MediaRelay(bindAddress: "127.0.0.1", portRange: base...(base + 20), eventLoop: loop, logger: Logger(label: "test"), idleLimit: 1)
            let sessions = (0..<3).map { _ in relay.openSession() }
            return EventLoopFuture.whenAllSucceed(sessions, on: loop).map { opened in
                for session in opened { relay.release(session) }
                return (relay.parkedSessions, relay.portsAvailable)
            }
        }.get()
        #expect(parked == 1)
        #expect(available == 10)
    }
}
