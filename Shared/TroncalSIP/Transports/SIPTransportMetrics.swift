internal import Metrics

/// The transport's counters, with bounded labels (transport, status code, refusal reason). The per-message ones are
/// created once, so the receive path does not look them up in the metrics backend for every message.
struct SIPTransportMetrics: Sendable {
    private let receivedCounters: [SIPTransportProtocol: Counter]
    private let droppedCounters: [SIPTransportProtocol: Counter]

    init() {
        let transports: [SIPTransportProtocol] = [.udp, .tcp, .tls]
        receivedCounters = Dictionary(uniqueKeysWithValues: transports.map {
            ($0, Counter(label: "troncal_sip_messages_received_total", dimensions: [("transport", $0.rawValue)]))
        })
        droppedCounters = Dictionary(uniqueKeysWithValues: transports.map {
            ($0, Counter(label: "troncal_sip_messages_dropped_total", dimensions: [("transport", $0.rawValue)]))
        })
    }

    func received(_ transport: SIPTransportProtocol) {
        receivedCounters[transport]?.increment()
    }

    /// Rejections are the exception, so their counter (one per transport and status code) is looked up when needed.
    func rejected(_ transport: SIPTransportProtocol, status: Int) {
        Counter(label: "troncal_sip_messages_rejected_total", dimensions: [("transport", transport.rawValue), ("code", "\(status)")]).increment()
    }

    func dropped(_ transport: SIPTransportProtocol) {
        droppedCounters[transport]?.increment()
    }

    func refused(_ reason: String) {
        Counter(label: "troncal_sip_connections_refused_total", dimensions: [("reason", reason)]).increment()
    }
}
