import Foundation
import NIOCore
import Testing
import TroncalCall
import TroncalSIP

/// A `CallLayer` on a fake clock, with what it sends and tells recorded against the time it happened.
struct LayerHarness {
    enum Record: Equatable, CustomStringConvertible {
        /// A request sent: method and where.
        case request(String, to: String)
        /// A response sent: status and CSeq method.
        case response(Int, String, to: String)
        case event(String)

        var description: String {
            switch self {
            case .request(let method, let to): "send \(method) → \(to)"
            case .response(let status, let method, let to): "send \(status) (\(method)) → \(to)"
            case .event(let text): "event \(text)"
            }
        }
    }

    var layer: CallLayer
    var time: Double = 0
    var log: [(Double, Record)] = []
    /// The last message sent of each kind, to build answers from.
    var sentRequests: [SIPRequest] = []
    var sentResponses: [SIPResponse] = []
    var events: [CallLayerEvent] = []

    static let phone = try! SIPSource(transport: .udp, remote: SocketAddress(ipAddress: "192.0.2.10", port: 5060), local: nil, connection: nil)
    static let phoneTCP = try! SIPSource(transport: .tcp, remote: SocketAddress(ipAddress: "192.0.2.10", port: 5062), local: nil, connection: nil)
    static let trunk = try! SIPSource(transport: .udp, remote: SocketAddress(ipAddress: "198.51.100.7", port: 5060), local: nil, connection: nil)
    static let trunkDestination = SIPDestination.address(host: "198.51.100.7", port: 5060, transport: .udp)

    init(timers: TransactionTimers = TransactionTimers(), capacity: Int = 1000) {
        layer = CallLayer(
            configuration: .init(timers: timers, maximumTransactions: capacity, sentBy: [.udp: "203.0.113.1:5060", .tcp: "203.0.113.1:5060"]),
            identifiers: SequentialIdentifiers(prefix: "x"), now: 0)
    }

    static func nanos(_ seconds: Double) -> Int64 { Int64((seconds * 1e9).rounded()) }

    mutating func at(_ seconds: Double) {
        time = seconds
        layer.advance(to: Self.nanos(seconds))
        collect()
    }

    mutating func receive(_ text: String, from source: SIPSource = phone, at seconds: Double? = nil) throws {
        if let seconds { time = seconds }
        let message = try SIPMessageParser().parse(Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8))
        layer.receive(message, from: source, now: Self.nanos(time))
        collect()
    }

    mutating func command(_ body: (inout CallLayer) -> Void) {
        body(&layer)
        collect()
    }

    mutating func collect() {
        for effect in layer.takeEffects() {
            switch effect {
            case .send(.request(let request), let destination, _):
                sentRequests.append(request)
                log.append((time, .request(request.method.name, to: Self.describe(destination))))
            case .send(.response(let response), let destination, _):
                sentResponses.append(response)
                let method = ((try? response.headers.cseq()) ?? nil)?.method.name ?? "?"
                log.append((time, .response(response.statusCode, method, to: Self.describe(destination))))
            case .event(let event):
                events.append(event)
                log.append((time, .event(Self.describe(event))))
            }
        }
    }

    static func describe(_ destination: SIPDestination) -> String {
        switch destination {
        case .address(let host, let port, let transport): "\(transport.rawValue):\(host):\(port)"
        case .source(let source): "\(source)"
        }
    }

    static func describe(_ event: CallLayerEvent) -> String {
        switch event {
        case .newRequest(let request, _, _): "new \(request.method.name)"
        case .inDialogRequest(let leg, let request, _): "in-dialog \(request.method.name) on \(leg)"
        case .ack(let leg, _): "ack on \(leg)"
        case .cancelled(let leg, _): "cancelled \(leg)"
        case .response(let leg, let response, let id, let purpose):
            "response \(response.statusCode) on \(leg.map { "\($0)" } ?? "-") \(purpose)\(id == nil ? " (no transaction)" : "")"
        case .requestFailed(let leg, _, let purpose, let failure): "failed \(failure.rawValue) on \(leg.map { "\($0)" } ?? "-") \(purpose)"
        case .answerUnacknowledged(let leg): "unacknowledged \(leg)"
        case .timer(let call, let timer): "timer \(timer) of call \(call)"
        }
    }

    /// The log lines at or after `from`, as text (for readable failures).
    func lines(from: Double = 0) -> [String] {
        log.filter { $0.0 >= from }.map { "\(Self.format($0.0)) \($0.1)" }
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(seconds)s"
    }

    /// The last `newRequest`'s request and transaction.
    var lastNewRequest: (SIPRequest, TransactionID)? {
        for event in events.reversed() { if case .newRequest(let request, let id, _) = event { return (request, id) } }
        return nil
    }

    var lastInDialog: (LegReference, SIPRequest, TransactionID)? {
        for event in events.reversed() { if case .inDialogRequest(let leg, let request, let id) = event { return (leg, request, id) } }
        return nil
    }
}

/// Messages as the tests' phone and trunk send them.
enum Messages {
    static func invite(callID: String = "call-1", branch: String = "b1", cseq: Int = 1, toTag: String? = nil, transport: String = "UDP") -> String {
        """
        INVITE sip:34911234567@203.0.113.1 SIP/2.0
        Via: SIP/2.0/\(transport) 192.0.2.10:5060;branch=z9hG4bK\(branch)
        From: <sip:100@192.0.2.10>;tag=ft1
        To: <sip:34911234567@203.0.113.1>\(toTag.map { ";tag=\($0)" } ?? "")
        Call-ID: \(callID)
        CSeq: \(cseq) INVITE
        Contact: <sip:100@192.0.2.10:5060>
        Max-Forwards: 70
        Content-Length: 0


        """
    }

    static func inDialog(_ method: String, callID: String = "call-1", branch: String = "b2", cseq: Int = 2, toTag: String = "tt1") -> String {
        """
        \(method) sip:100@203.0.113.1 SIP/2.0
        Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK\(branch)
        From: <sip:100@192.0.2.10>;tag=ft1
        To: <sip:34911234567@203.0.113.1>;tag=\(toTag)
        Call-ID: \(callID)
        CSeq: \(cseq) \(method)
        Max-Forwards: 70
        Content-Length: 0


        """
    }

    static func ack(callID: String = "call-1", branch: String = "b3", cseq: Int = 1, toTag: String = "tt1") -> String {
        """
        ACK sip:100@203.0.113.1 SIP/2.0
        Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK\(branch)
        From: <sip:100@192.0.2.10>;tag=ft1
        To: <sip:34911234567@203.0.113.1>;tag=\(toTag)
        Call-ID: \(callID)
        CSeq: \(cseq) ACK
        Max-Forwards: 70
        Content-Length: 0


        """
    }

    static func cancel(callID: String = "call-1", branch: String = "b1", cseq: Int = 1) -> String {
        """
        CANCEL sip:34911234567@203.0.113.1 SIP/2.0
        Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK\(branch)
        From: <sip:100@192.0.2.10>;tag=ft1
        To: <sip:34911234567@203.0.113.1>
        Call-ID: \(callID)
        CSeq: \(cseq) CANCEL
        Max-Forwards: 70
        Content-Length: 0


        """
    }

    /// A request the layer sends towards the trunk (its Via is added by the layer).
    static func outboundInvite(callID: String = "leg-2") -> SIPRequest {
        outbound(.invite, callID: callID, toTag: nil, cseq: 1, contact: "<sip:203.0.113.1:5060>")
    }

    static func outboundBye(callID: String = "leg-2", cseq: Int = 2) -> SIPRequest {
        outbound(.bye, callID: callID, toTag: "rt1", cseq: cseq, contact: nil)
    }

    private static func outbound(_ method: SIPMethod, callID: String, toTag: String?, cseq: Int, contact: String?) -> SIPRequest {
        var headers = SIPHeaders()
        headers.append(.from, "<sip:100@203.0.113.1>;tag=lt1")
        headers.append(.to, "<sip:34911234567@198.51.100.7>" + (toTag.map { ";tag=\($0)" } ?? ""))
        headers.append(.callID, callID)
        headers.append(.cseq, "\(cseq) \(method.name)")
        headers.append(.maxForwards, "70")
        if let contact { headers.append(.contact, contact) }
        headers.append(.contentLength, "0")
        return SIPRequest(method: method, uri: SIPURI("sip:34911234567@198.51.100.7:5060")!, headers: headers)
    }

    /// The trunk's answer to a request the layer sent (same Via, From, Call-ID, CSeq; To with a tag unless 100).
    static func answer(_ status: Int, to request: SIPRequest, toTag: String = "rt1") -> String {
        let via = request.headers.first(.via)!.valueString
        let from = request.headers.first(.from)!.valueString
        let to = request.headers.first(.to)!.valueString
        let tag = status == 100 || to.contains("tag=") ? "" : ";tag=\(toTag)"
        return """
            SIP/2.0 \(status) Reason
            Via: \(via)
            From: \(from)
            To: \(to)\(tag)
            Call-ID: \(request.headers.first(.callID)!.valueString)
            CSeq: \(request.headers.first(.cseq)!.valueString)
            Contact: <sip:34911234567@198.51.100.7:5060>
            Content-Length: 0


            """
    }
}
