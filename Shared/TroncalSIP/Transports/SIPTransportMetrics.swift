internal import Metrics

/// The transport's counters, with bounded labels (transport, status code, refusal reason).
struct SIPTransportMetrics: Sendable {
    func received(_ transport: SIPTransportProtocol) {
        Counter(label: "troncal_sip_messages_received_total", dimensions: [("transport", transport.rawValue)]).increment()
    }

    func rejected(_ transport: SIPTransportProtocol, status: Int) {
        Counter(label: "troncal_sip_messages_rejected_total", dimensions: [("transport", transport.rawValue), ("code", "\(status)")]).increment()
    }

    func dropped(_ transport: SIPTransportProtocol) {
        Counter(label: "troncal_sip_messages_dropped_total", dimensions: [("transport", transport.rawValue)]).increment()
    }

    func refused(_ reason: String) {
        Counter(label: "troncal_sip_connections_refused_total", dimensions: [("reason", reason)]).increment()
    }
}
