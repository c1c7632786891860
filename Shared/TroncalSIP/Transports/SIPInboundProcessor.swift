import NIOCore

/// The receive path shared by every transport: validates one framed message, stamps `received`/`rport` on
/// the top Via of an accepted request (RFC 3261 §18.2.1, RFC 3581), and says what to deliver or answer.
struct SIPInboundProcessor: Sendable {
    let validator: SIPValidator

    enum Outcome {
        case deliver(SIPMessage)
        case answer(SIPResponse, status: Int)
        case drop(SIPParseError)
    }

    func process(_ bytes: [UInt8], transport: SIPTransportKind, remote: SocketAddress) -> Outcome {
        switch validator.disposition(for: bytes, transport: transport) {
        case .accept(let message):
            guard case .request(var request) = message else { return .deliver(message) }
            Self.stampVia(&request.headers, remote: remote)
            return .deliver(.request(request))
        case .reject(let rejection):
            var response = rejection.makeResponse()
            Self.stampVia(&response.headers, remote: remote)
            return .answer(response, status: rejection.statusCode)
        case .drop(let error):
            return .drop(error)
        }
    }

    /// What to answer, before closing, to a stream whose framing broke on a message's Content-Length; nil when
    /// nothing can be answered (a response, an ACK, an unreadable start line, or a header section never completed).
    func answer(brokenStream failedHeaderSection: [UInt8]?, error: SIPParseError, remote: SocketAddress) -> (SIPResponse, status: Int)? {
        guard let failedHeaderSection,
            case .reject(let rejection) = validator.disposition(forBrokenStreamHeaderSection: failedHeaderSection, error: error)
        else { return nil }
        var response = rejection.makeResponse()
        Self.stampVia(&response.headers, remote: remote)
        return (response, rejection.statusCode)
    }

    /// Adds `received` when the top Via's host is not the packet's source IP, and fills an empty `rport`.
    static func stampVia(_ headers: inout SIPHeaders, remote: SocketAddress) {
        guard let index = headers.firstIndex(where: { $0.name == .via }), let ip = remote.ipAddress else { return }
        let elements = headers[index].elements
        guard let first = elements.first, var via = try? SIPVia.parse(first) else { return }
        var changed = false
        if via.host.trimmingCharacters(in: ["[", "]"]) != ip {
            via.parameters.set("received", to: ip)
            changed = true
        }
        if via.hasRPort, via.rport == nil, let port = remote.port {
            via.parameters.set("rport", to: "\(port)")
            changed = true
        }
        guard changed else { return }
        let rest = elements.dropFirst().map { String(decoding: $0, as: UTF8.self) }
        headers.remove(at: index)
        headers.insert(SIPHeaderField(.via, value: ([via.description] + rest).joined(separator: ", ")), at: index)
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        String(self.drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}
