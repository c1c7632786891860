import NIOCore
import NIOPosix
import NIOSSL
import TestSupport
import Testing
import TroncalPKI
import TroncalProtocol
import TroncalSIP

/// The transport's connection handling, sending and ordering, against a real listener on loopback. The RFC 4475
/// corpus over UDP and TCP is in `TransportTortureTests`; these cover what it does not.
@Suite("SIP transports: connections, sending and ordering")
struct SIPTransportBehaviourTests {
    @Test(arguments: ["ncl", "mcl01"])
    func unrecoverableContentLengthOverTCPIsAnswered400ThenClosedAndTheListenerGoesOn(_ name: String) async throws {
        try await withRunningTransport { server in
            let address = try #require(server.transport.tcpAddress)
            let peer = try await StreamPeer.connect(to: address)
            try await peer.send(try TestData.tortureMessage(name))
            #expect(await eventually(timeout: .seconds(5)) { peer.received.isClosed }, "\(name) should close the connection")
            #expect(peer.received.statusCodes == [400])
            #expect(server.messages.isEmpty)

            let next = try await StreamPeer.connect(to: address)
            try await next.send(optionsRequest(callID: "after-\(name)"))
            #expect(await eventually { server.callIDs == ["after-\(name)"] })
            await next.close()
        }
    }

    @Test func contentLengthLargerThanTheMessageOverTCPIsClosedWhenTheStreamStalls() async throws {
        let stall = Duration.milliseconds(300)
        try await withRunningTransport(loopbackConfiguration(stallTimeout: stall)) { server in
            let address = try #require(server.transport.tcpAddress)
            let peer = try await StreamPeer.connect(to: address)
            let clock = ContinuousClock()
            let start = clock.now
            try await peer.send(try TestData.tortureMessage("clerr"))
            #expect(await eventually(timeout: .seconds(5), interval: .milliseconds(20)) { peer.received.isClosed })
            #expect(clock.now - start >= stall - .milliseconds(50), "closed before the stall timeout")
            #expect(server.messages.isEmpty)

            let next = try await StreamPeer.connect(to: address)
            try await next.send(optionsRequest(callID: "after-clerr"))
            #expect(await eventually { server.callIDs == ["after-clerr"] })
            await next.close()
        }
    }

    @Test func connectionWithNoTrafficIsClosedAfterTheIdleTimeout() async throws {
        let idle = Duration.milliseconds(300)
        try await withRunningTransport(loopbackConfiguration(idleTimeout: idle)) { server in
            let clock = ContinuousClock()
            let start = clock.now
            let peer = try await StreamPeer.connect(to: try #require(server.transport.tcpAddress))
            #expect(await eventually(timeout: .seconds(10), interval: .milliseconds(20)) { peer.received.isClosed })
            #expect(clock.now - start >= idle - .milliseconds(50), "closed before the idle timeout")
        }
    }

    @Test func keepAlivePingOverTCPIsAnsweredWithAPongAndTheConnectionStaysOpen() async throws {
        try await withRunningTransport { server in
            let peer = try await StreamPeer.connect(to: try #require(server.transport.tcpAddress))
            try await peer.send(Array("\r\n\r\n".utf8))
            #expect(await eventually { peer.received.bytes == [13, 10] })
            try await peer.send(optionsRequest(callID: "after-ping"))
            #expect(await eventually { server.callIDs == ["after-ping"] })
            #expect(!peer.received.isClosed)
            await peer.close()
        }
    }

    @Test func manyMessagesPipelinedOnOneConnectionAreDeliveredInArrivalOrder() async throws {
        try await withRunningTransport { server in
            let peer = try await StreamPeer.connect(to: try #require(server.transport.tcpAddress))
            let callIDs = (1...50).map { "ordered-\($0)" }
            try await peer.send(callIDs.flatMap { optionsRequest(callID: $0) })
            #expect(await eventually { server.callIDs.count == callIDs.count })
            #expect(server.callIDs == callIDs)
            #expect(Set(server.messages.map { $0.source.remotePort }).count == 1)
            await peer.close()
        }
    }

    @Test func datagramsFromOneSourceAreDeliveredInArrivalOrder() async throws {
        try await withRunningTransport { server in
            let peer = try await DatagramPeer.bind()
            let address = try #require(server.transport.udpAddress)
            let callIDs = (1...20).map { "udp-ordered-\($0)" }
            for callID in callIDs { try await peer.send(optionsRequest(callID: callID), to: address) }
            #expect(await eventually { server.callIDs.count == callIDs.count })
            #expect(server.callIDs == callIDs)
            await peer.close()
        }
    }

    @Test func responseToARequestOverUDPGoesToItsSourcePortWithReceivedAndRPortStamped() async throws {
        try await withRunningTransport(answer: RunningTransport.answerOK) { server in
            let peer = try await DatagramPeer.bind()
            // A phone behind NAT: its Via names a private address and port the packet did not come from.
            try await peer.send(optionsRequest(callID: "nat-1", viaHost: "192.0.2.20", rport: true), to: try #require(server.transport.udpAddress))
            #expect(await eventually { peer.statusCodes == [200] })
            let answer = try #require(peer.datagrams.first)
            guard case .response(let response) = try SIPMessageParser().parse(answer.bytes) else {
                Issue.record("not a response")
                return
            }
            let via = try #require(try response.headers.topVia())
            #expect(via.received == "127.0.0.1")
            #expect(via.rport.map(Int.init) == peer.port)
            #expect(answer.from.port == server.transport.udpAddress?.port, "answered from the listening socket")
            #expect(server.messages.first?.source.transport == .udp)
            #expect(server.messages.first?.source.connection == nil)
            await peer.close()
        }
    }

    @Test func requestsSentOverTCPShareOneConnectionAndTheirResponsesAreDeliveredToTheSender() async throws {
        try await withRunningTransport(loopbackConfiguration(udp: false), answer: RunningTransport.answerOK) { server in
            try await withRunningTransport(loopbackConfiguration(udp: false)) { client in
                let port = try #require(server.transport.tcpAddress?.port)
                for callID in ["out-1", "out-2"] {
                    let request = try SIPMessageParser().parse(optionsRequest(callID: callID))
                    try await client.transport.send(request, to: "127.0.0.1", port: port, transport: .tcp)
                }
                #expect(await eventually { server.callIDs == ["out-1", "out-2"] })
                #expect(Set(server.messages.map { $0.source.remotePort }).count == 1, "the second request reused the connection")
                #expect(await eventually { client.responses.count == 2 })
                #expect(client.responses.map(\.statusCode) == [200, 200])
                #expect(client.messages.allSatisfy { $0.source.transport == .tcp && $0.source.connection != nil })
            }
        }
    }

    @Test func requestSentOverUDPLeavesFromTheListeningSocketAndItsResponseComesBack() async throws {
        try await withRunningTransport(loopbackConfiguration(tcp: false), answer: RunningTransport.answerOK) { server in
            try await withRunningTransport(loopbackConfiguration(tcp: false)) { client in
                let port = try #require(server.transport.udpAddress?.port)
                let request = try SIPMessageParser().parse(optionsRequest(callID: "udp-out"))
                try await client.transport.send(request, to: "127.0.0.1", port: port, transport: .udp)
                #expect(await eventually { server.callIDs == ["udp-out"] })
                #expect(server.messages.first?.source.remotePort == client.transport.udpAddress?.port)
                #expect(await eventually { client.responses.map(\.statusCode) == [200] })
            }
        }
    }

    @Test func optionsOverTLSWithoutAClientCertificateIsAnsweredOverTheSameConnection() async throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        let credentials = try pki.credentials(.sbc, "sbc-1")
        let configuration = loopbackConfiguration(udp: false, tcp: false, tls: (credentials.certificatePath, credentials.keyPath))
        try await withRunningTransport(configuration, answer: RunningTransport.answerOK) { server in
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(credentials.caCertificatePath)
            tls.certificateVerification = .noHostnameVerification
            let peer = try await StreamPeer.connect(to: try #require(server.transport.tlsAddress), tls: try NIOSSLContext(configuration: tls))
            try await peer.send(optionsRequest(callID: "tls-no-client-cert"))
            #expect(await eventually { peer.received.statusCodes == [200] })
            let delivered = try #require(server.messages.first)
            #expect(delivered.source.transport == .tls)
            #expect(delivered.source.remotePort == peer.channel.localAddress?.port)
            await peer.close()
        }
    }

    @Test func connectionsOverTheGlobalLimitAreClosedAtOnce() async throws {
        try await withRunningTransport(loopbackConfiguration(globalLimit: 2)) { server in
            let address = try #require(server.transport.tcpAddress)
            var peers: [StreamPeer] = []
            for _ in 0..<3 { peers.append(try await StreamPeer.connect(to: address)) }
            // Connections are accepted on several event loops, so which one is refused is not fixed: one is.
            #expect(await eventually(timeout: .seconds(5)) { peers.filter { $0.received.isClosed }.count == 1 })
            let open = peers.filter { !$0.received.isClosed }
            #expect(open.count == 2)
            for peer in peers { await peer.close() }
            // Closing frees the slots (the server notices the closes a moment later): until it has, a new connection is
            // refused at once, which the sender sees as a closed channel, so such an attempt is simply tried again.
            var attempt = 0
            let admittedAgain = await eventually(timeout: .seconds(10)) {
                attempt += 1
                guard let later = try? await StreamPeer.connect(to: address) else { return false }
                defer { later.channel.close(promise: nil) }
                guard (try? await later.send(optionsRequest(callID: "after-limit-\(attempt)"))) != nil else { return false }
                return await eventually(timeout: .seconds(1)) { server.callIDs.contains("after-limit-\(attempt)") }
            }
            #expect(admittedAgain)
        }
    }

    @Test func stoppingTheTransportClosesItsOpenConnections() async throws {
        let peer = try await withRunningTransport(loopbackConfiguration(udp: false)) { server in
            let peer = try await StreamPeer.connect(to: try #require(server.transport.tcpAddress))
            try await peer.send(optionsRequest(callID: "before-stop"))
            #expect(await eventually { server.callIDs == ["before-stop"] })
            return peer
        }
        #expect(await eventually(timeout: .seconds(5)) { peer.received.isClosed })
        await peer.close()
    }

    @Test func requestSentOverTLSIsAnsweredOverTheSameConnectionAndConcurrentSendsShareIt() async throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        let serverCredentials = try pki.credentials(.sbc, "sbc-1")
        let clientCredentials = try pki.credentials(.sbc, "sbc-2")
        var serverConfiguration = loopbackConfiguration(udp: false, tcp: false, tls: (serverCredentials.certificatePath, serverCredentials.keyPath))
        serverConfiguration.tlsTrustRootsPath = serverCredentials.caCertificatePath
        serverConfiguration.tlsClientCertificates = .required
        try await withRunningTransport(serverConfiguration, answer: RunningTransport.answerOK) { server in
            // Outbound only: no listener, our certificate presented as the client's.
            var clientConfiguration = loopbackConfiguration(udp: false, tcp: false)
            clientConfiguration.tlsCertificatePath = clientCredentials.certificatePath
            clientConfiguration.tlsKeyPath = clientCredentials.keyPath
            clientConfiguration.tlsTrustRootsPath = clientCredentials.caCertificatePath
            try await withRunningTransport(clientConfiguration) { client in
                let port = try #require(server.transport.tlsAddress?.port)
                let callIDs = (1...5).map { "tls-out-\($0)" }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for callID in callIDs {
                        group.addTask {
                            let request = try SIPMessageParser().parse(optionsRequest(callID: callID))
                            try await client.transport.send(request, to: "localhost", port: port, transport: .tls)
                        }
                    }
                    try await group.waitForAll()
                }
                #expect(await eventually { server.callIDs.count == callIDs.count })
                #expect(Set(server.callIDs) == Set(callIDs))
                #expect(Set(server.messages.map { $0.source.remotePort }).count == 1, "one connection for all five")
                #expect(server.messages.allSatisfy { $0.source.transport == .tls })
                #expect(await eventually { client.responses.count == callIDs.count })
                #expect(client.messages.allSatisfy { $0.source.transport == .tls })
            }
        }
    }

    @Test func tlsListenerRequiringClientCertificatesRefusesAClientWithoutOne() async throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        let credentials = try pki.credentials(.sbc, "sbc-1")
        var configuration = loopbackConfiguration(udp: false, tcp: false, tls: (credentials.certificatePath, credentials.keyPath))
        configuration.tlsTrustRootsPath = credentials.caCertificatePath
        configuration.tlsClientCertificates = .required
        try await withRunningTransport(configuration, answer: RunningTransport.answerOK) { server in
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(credentials.caCertificatePath)
            let peer = try await StreamPeer.connect(to: try #require(server.transport.tlsAddress), tls: try NIOSSLContext(configuration: tls))
            try? await peer.send(optionsRequest(callID: "no-client-cert"))
            #expect(await eventually(timeout: .seconds(5)) { peer.received.isClosed })
            #expect(server.messages.isEmpty)
            await peer.close()
        }
    }

    @Test func stoppedTransportNoLongerAcceptsConnections() async throws {
        let address = try await withRunningTransport(loopbackConfiguration(udp: false)) { server in
            try #require(server.transport.tcpAddress)
        }
        await #expect(throws: (any Error).self) {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: address).get()
            try? await channel.close()
        }
    }
}
