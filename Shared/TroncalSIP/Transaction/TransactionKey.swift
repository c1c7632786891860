/// What identifies a transaction (RFC 3261 §17.1.3 and §17.2.3): the top Via's branch with its sent-by and
/// the method (ACK matching its INVITE), or, for RFC 2543 peers whose branch lacks the magic cookie, the
/// Request-URI, From tag, To tag, Call-ID, CSeq number and top Via.
public enum TransactionKey: Sendable, Hashable {
    case rfc3261(branch: String, sentBy: String, method: String)
    case rfc2543(requestURI: String, fromTag: String, toTag: String, callID: String, cseq: UInt32, via: String, method: String)

    /// The server transaction a request belongs to. An ACK maps to its INVITE's transaction; for RFC 2543
    /// peers the ACK of a non-2xx carries the To tag our response added, so the To tag is left out of its
    /// key and of the INVITE's. Nil when the request lacks the headers to match it.
    public static func server(for request: SIPRequest) -> TransactionKey? {
        guard let via = (try? request.headers.topVia()) ?? nil else { return nil }
        let method = request.method == .ack ? "INVITE" : request.method.name
        let sentBy = via.port.map { "\(via.host.lowercased()):\($0)" } ?? via.host.lowercased()
        if via.hasRFC3261Branch, let branch = via.branch, branch.count > SIPVia.magicCookie.count {
            return .rfc3261(branch: branch, sentBy: sentBy, method: method)
        }
        guard let callID = (try? request.headers.callID()) ?? nil, let cseq = (try? request.headers.cseq()) ?? nil else { return nil }
        let from = (try? request.headers.from()) ?? nil
        let isInviteOrAck = request.method == .invite || request.method == .ack
        let to = isInviteOrAck ? "" : (((try? request.headers.to()) ?? nil)?.tag ?? "")
        return .rfc2543(
            requestURI: request.uri.description, fromTag: from?.tag ?? "", toTag: to, callID: callID, cseq: cseq.sequenceNumber,
            via: via.description, method: method)
    }

    /// The client transaction a response belongs to: its top Via's branch and its CSeq method.
    public static func client(for response: SIPResponse) -> TransactionKey? {
        guard let via = (try? response.headers.topVia()) ?? nil, let branch = via.branch,
            let cseq = (try? response.headers.cseq()) ?? nil
        else { return nil }
        let sentBy = via.port.map { "\(via.host.lowercased()):\($0)" } ?? via.host.lowercased()
        return .rfc3261(branch: branch, sentBy: sentBy, method: cseq.method.name)
    }

    /// The key of a client transaction for a request we send (with our Via already on top).
    public static func client(for request: SIPRequest) -> TransactionKey? {
        guard let via = (try? request.headers.topVia()) ?? nil, let branch = via.branch else { return nil }
        let sentBy = via.port.map { "\(via.host.lowercased()):\($0)" } ?? via.host.lowercased()
        return .rfc3261(branch: branch, sentBy: sentBy, method: request.method.name)
    }
}
