import Logging
import NIOCore
import Synchronization
import TroncalSIP

/// A `SIPTransport` running on loopback for the duration of one test body, recording what it delivered.
///
/// `withRunningTransport` runs the service in a child task and always cancels and awaits it when the body ends,
/// also when the body throws, so no test leaves a listener behind.
final class RunningTransport: Sendable {
    let transport: SIPTransport
    private let recorder: DeliveryRecorder

    /// What to do with each delivered message: answer it through the transport, or not.
    typealias Answer = @Sendable (SIPInbound) -> SIPResponse?

    fileprivate init(configuration: SIPTransportConfiguration, answer: Answer?) {
        let slot = TransportSlot()
        let recorder = DeliveryRecorder()
        let transport = SIPTransport(configuration: configuration, logger: Logger(label: "test.sip.transport")) { inbound in
            recorder.record(inbound)
            if let response = answer?(inbound) { slot.transport?.respond(response, to: inbound.source) }
        }
        slot.transport = transport
        self.transport = transport
        self.recorder = recorder
    }

    /// Messages delivered so far, in delivery order.
    var messages: [SIPInbound] { recorder.messages }

    var callIDs: [String] { messages.compactMap { (try? $0.message.headers.callID()) ?? nil } }

    var requests: [SIPRequest] {
        messages.compactMap { if case .request(let request) = $0.message { request } else { nil } }
    }

    var responses: [SIPResponse] {
        messages.compactMap { if case .response(let response) = $0.message { response } else { nil } }
    }

    /// Answers every request but ACK with 200 OK.
    static let answerOK: Answer = { inbound in
        guard case .request(let request) = inbound.message, request.method != .ack else { return nil }
        return okResponse(to: request)
    }

    /// A 200 OK copying Via, From, To (with a tag), Call-ID and CSeq (RFC 3261 §8.2.6.2).
    static func okResponse(to request: SIPRequest) -> SIPResponse {
        var headers = SIPHeaders()
        for field in request.headers where [.via, .from, .callID, .cseq].contains(field.name) { headers.append(field) }
        if let to = request.headers.first(.to) {
            headers.insert(SIPHeaderField(.to, value: to.valueString + ";tag=uas1"), at: min(2, headers.count))
        }
        headers.append(.contentLength, "0")
        return SIPResponse(statusCode: 200, reasonPhrase: "OK", headers: headers)
    }
}

/// Loopback listeners on port 0 with short timeouts, so tests do not wait for production values.
func loopbackConfiguration(
    udp: Bool = true, tcp: Bool = true, tls: (certificate: String, key: String)? = nil, stallTimeout: Duration = .seconds(20),
    idleTimeout: Duration = .seconds(60), perAddressLimit: Int = 64, globalLimit: Int = 1_000
) -> SIPTransportConfiguration {
    SIPTransportConfiguration(
        host: "127.0.0.1", udpPort: udp ? 0 : nil, tcpPort: tcp ? 0 : nil, tlsPort: tls == nil ? nil : 0,
        tlsCertificatePath: tls?.certificate, tlsKeyPath: tls?.key, stallTimeout: stallTimeout, idleTimeout: idleTimeout,
        maximumConnectionsPerAddress: perAddressLimit, maximumConnections: globalLimit)
}

/// Runs a transport for the duration of `body`, then stops it (cancels `run()` and waits for it to return).
func withRunningTransport<Result: Sendable>(
    _ configuration: SIPTransportConfiguration = loopbackConfiguration(), answer: RunningTransport.Answer? = nil,
    _ body: (RunningTransport) async throws -> Result
) async throws -> Result {
    let running = RunningTransport(configuration: configuration, answer: answer)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await running.transport.run() }
        do {
            try await running.transport.waitUntilListening()
            let result = try await body(running)
            group.cancelAll()
            try await group.waitForAll()
            return result
        } catch {
            group.cancelAll()
            try? await group.waitForAll()
            throw error
        }
    }
}

/// Lets the delivery closure answer through the transport it was given to, which exists only after the closure.
private final class TransportSlot: Sendable {
    private let slot = Mutex<SIPTransport?>(nil)

    var transport: SIPTransport? {
        get { slot.withLock { $0 } }
        set { slot.withLock { $0 = newValue } }
    }
}

private final class DeliveryRecorder: Sendable {
    private let items = Mutex<[SIPInbound]>([])

    func record(_ inbound: SIPInbound) { items.withLock { $0.append(inbound) } }

    var messages: [SIPInbound] { items.withLock { $0 } }
}
