import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing
import TroncalPKI
import TroncalProtocol
import TroncalRuntime
import TroncalSBC
import TroncalSIP

/// The SBC service's SIP border, running for real on loopback (UDP on port 0).
@Suite("SBC SIP border")
struct SBCFrontDoorTests {
    struct RunningSBC {
        let service: SBCService
        let task: Task<Void, any Error>
        let pki: TemporaryPKI
        var udp: SocketAddress { get throws { try #require(service.transport.udpAddress) } }

        func stop() async {
            task.cancel()
            _ = await task.result
            pki.remove()
        }
    }

    static func start(_ adjust: (inout SIPSettings) -> Void = { _ in }) async throws -> RunningSBC {
        let pki = try TemporaryPKI()
        var config = SiteConfig()
        config.sip.listenAddress = "127.0.0.1"
        config.sip.udpPort = 0
        config.sip.tcpPort = 0
        config.sip.tlsPort = 0
        // These tests make no calls: no relay sockets held for them (the default range overlaps other tests' ports).
        config.sbc.relayPrebindSessions = 0
        adjust(&config.sip)
        let credentials = try pki.credentials(.sbc, "sbc-1")
        let context = ServiceContext(
            config: config, configDirectory: pki.directory.url, instance: config.instances[0], credentials: credentials,
            logger: Logger(label: "test.sbc"), store: nil, links: [:])
        let service = try await SBCService(context: context)
        let transport = service.transport
        let task = Task { try await transport.run() }
        try await transport.waitUntilListening()
        return RunningSBC(service: service, task: task, pki: pki)
    }

    static func options(_ callID: String, userAgent: String = "Polycom/5.0") -> [UInt8] {
        Array("""
            OPTIONS sip:sbc@127.0.0.1 SIP/2.0\r
            Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK\(callID);rport\r
            Max-Forwards: 70\r
            From: <sip:probe@127.0.0.1>;tag=p1\r
            To: <sip:sbc@127.0.0.1>\r
            Call-ID: \(callID)\r
            CSeq: 1 OPTIONS\r
            User-Agent: \(userAgent)\r
            Content-Length: 0\r
            \r

            """.utf8)
    }

    static func socket() async throws -> SIPProbe { try await SIPProbe() }

    static var tortureDirectory: URL {
        var root = URL(fileURLWithPath: #filePath)
        while !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) { root.deleteLastPathComponent() }
        return root.deletingLastPathComponent().appendingPathComponent("shared/testdata/sip/rfc4475")
    }

    @Test func everyTortureMessageGetsTheStacksAnswerAndOptionsIsStillAnsweredAfterEach() async throws {
        // Refuse (rather than ignore) calls from sources that are not customers, so that every accepted request
        // gets an answer: INVITE 403, OPTIONS 200, REGISTER 405, in-dialog requests 481, others 501.
        let sbc = try await Self.start { $0.refusedSources = "refuse" }
        defer { sbc.task.cancel() }
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.tortureDirectory.path).filter { $0.hasSuffix(".sip") }.sorted()
        #expect(files.count == 39)  // every message of the shared RFC 4475 folder
        let validator = SIPValidator()
        for file in files {
            let client = try await Self.socket()
            let bytes = [UInt8](try Data(contentsOf: Self.tortureDirectory.appendingPathComponent(file)))
            let disposition = validator.disposition(forDatagram: bytes)
            // An answer is awaited generously; silence only briefly (a late answer would show up below).
            let expectsAnswer: Bool
            switch disposition {
            case .reject: expectsAnswer = true
            case .drop: expectsAnswer = false
            case .accept(let message):
                if case .request(let request) = message, request.method != .ack { expectsAnswer = true } else { expectsAnswer = false }
            }
            let answer = try await client.ask(bytes, to: try sbc.udp, timeout: expectsAnswer ? .seconds(8) : .milliseconds(300))
            switch disposition {
            case .reject(let rejection): #expect(answer == rejection.statusCode, "\(file)")
            case .drop: #expect(answer == nil, "\(file)")
            case .accept(let message):
                // Accepted by the stack: the SBC answers requests and absorbs responses and ACKs.
                if case .request(let request) = message, request.method != .ack { #expect(answer != nil, "\(file)") }
            }
            #expect(try await client.request(Self.options("after-\(file)"), callID: "after-\(file)", to: try sbc.udp) == 200, "no OPTIONS answer after \(file)")
            await client.close()
        }
        await sbc.stop()
    }

    @Test func floodingSourceIsBannedWhileAnotherSourceIsStillServed() async throws {
        let sbc = try await Self.start { $0.requestsPerWindow = 100; $0.windowSeconds = 10 }
        defer { sbc.task.cancel() }
        let flooder = try await Self.socket()
        let address = try sbc.udp
        for n in 0..<1000 {
            try await flooder.send(Self.options("flood-\(n)"), to: address)
        }
        // Another customer: another address (still loopback).
        let good = try await SIPProbe(host: "127.0.0.2")
        #expect(try await good.request(Self.options("good-1"), callID: "good-1", to: address) == 200)
        // Whatever was answered before the ban has arrived by now; after it, the flooder gets nothing.
        _ = await eventually(timeout: .seconds(2)) { false }
        flooder.drain()
        #expect(try await flooder.request(Self.options("flood-late"), callID: "flood-late", to: address, timeout: .seconds(2)) == nil, "the flooding source was not banned")
        #expect(try await good.request(Self.options("good-2"), callID: "good-2", to: address) == 200)
        await flooder.close()
        await good.close()
        await sbc.stop()
    }

    @Test(arguments: ["friendly-scanner", "sipvicious"])
    func scannersGetNoAnswer(_ agent: String) async throws {
        let sbc = try await Self.start()
        defer { sbc.task.cancel() }
        let client = try await Self.socket()
        #expect(try await client.ask(Self.options("scan", userAgent: agent), to: try sbc.udp, timeout: .milliseconds(500)) == nil)
        await client.close()
        await sbc.stop()
    }

    @Test func deniedSourceIsRefusedWith403WhenConfiguredSo() async throws {
        let sbc = try await Self.start { $0.deny = ["127.0.0.0/8"]; $0.refusedSources = "refuse" }
        defer { sbc.task.cancel() }
        let client = try await Self.socket()
        #expect(try await client.ask(Self.options("denied"), to: try sbc.udp) == 403)
        await client.close()
        await sbc.stop()
    }
}

/// A UDP socket that keeps reading in the background and records the status of every response it gets.
final class SIPProbe: Sendable {
    let channel: NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>
    private let log = CodeLog()
    private let reader: Task<Void, Never>

    final class CodeLog: Sendable {
        let codes = Mutex<[Int]>([])
        let answered = Mutex<[String: Int]>([:])
        let datagrams = Mutex(0)
        /// Every response by Call-ID, in arrival order.
        let responses = Mutex<[String: [SIPResponse]]>([:])
        /// Every request received (a probe playing a carrier).
        let requests = Mutex<[SIPRequest]>([])
        let responder = Mutex<(@Sendable (SIPRequest) -> Int?)?>(nil)
    }

    /// The responses received for a Call-ID so far.
    func responses(_ callID: String) -> [SIPResponse] { log.responses.withLock { $0[callID] ?? [] } }
    /// The requests received so far.
    var requests: [SIPRequest] { log.requests.withLock { $0 } }

    /// Makes the probe answer requests, playing a carrier: the closure gives the status for each request (nil:
    /// say nothing). ACKs are never answered.
    func answer(_ status: @escaping @Sendable (SIPRequest) -> Int?) { log.responder.withLock { $0 = status } }

    /// Datagrams received so far, of any kind.
    var received: Int { log.datagrams.withLock { $0 } }

    init(host: String = "127.0.0.1", port: Int = 0) async throws {
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: host, port: port)
            .flatMapThrowing { try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: $0) }.get()
        self.channel = channel
        let log = self.log
        reader = Task {
            do {
                for try await envelope in channel.inbound {
                    log.datagrams.withLock { $0 += 1 }
                    let parsed = try? SIPMessageParser().parse(Array(envelope.data.readableBytesView))
                    if case .request(let request)? = parsed {
                        log.requests.withLock { $0.append(request) }
                        if request.method != .ack, let status = log.responder.withLock({ $0 })?(request) {
                            var buffer = ByteBuffer()
                            SIPMessage.response(InviteServerTransaction.response(status, status < 300 ? "OK" : "Service Unavailable", to: request, toTag: "fake"))
                                .write(into: &buffer)
                            try? await channel.outbound.write(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: buffer))
                        }
                    }
                    if case .response(let response)? = parsed {
                        log.codes.withLock { $0.append(response.statusCode) }
                        if let callID = (try? response.headers.callID()) ?? nil {
                            log.responses.withLock { $0[callID, default: []].append(response) }
                            // The first final answer.
                            if response.statusCode >= 200 {
                                log.answered.withLock { answered in
                                    if answered[callID] == nil { answered[callID] = response.statusCode }
                                }
                            }
                        }
                    }
                }
            } catch {}
        }
    }

    func send(_ bytes: [UInt8], to address: SocketAddress) async throws {
        try await channel.outbound.write(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: bytes)))
    }

    /// Sends one datagram and returns the status of the first response that arrives within `timeout`, if any.
    func ask(_ bytes: [UInt8], to address: SocketAddress, timeout: Duration = .seconds(3)) async throws -> Int? {
        let before = log.codes.withLock { $0.count }
        try await send(bytes, to: address)
        let answered = await eventually(timeout: timeout, interval: .milliseconds(10)) { self.log.codes.withLock { $0.count } > before }
        return answered ? log.codes.withLock { $0[before] } : nil
    }

    /// Sends an OPTIONS (or any request) with this Call-ID and waits for the final answer to it, retransmitting
    /// every 500 ms as a SIP client does over UDP (RFC 3261 timer E), until `timeout`.
    func request(_ bytes: [UInt8], callID: String, to address: SocketAddress, timeout: Duration = .seconds(8)) async throws -> Int? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            try await send(bytes, to: address)
            if await eventually(timeout: .milliseconds(500), interval: .milliseconds(10), { self.log.answered.withLock { $0[callID] != nil } }) {
                return log.answered.withLock { $0[callID] }
            }
        }
        return nil
    }

    /// Forgets responses received so far.
    func drain() {
        log.codes.withLock { $0.removeAll() }
        log.answered.withLock { $0.removeAll() }
    }

    func close() async {
        reader.cancel()
        try? await channel.channel.close()
    }
}
