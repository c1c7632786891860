extension InviteClientTransaction {
    /// Whether a CANCEL may be sent now: only once a provisional response came (RFC 3261 §9.1); before that
    /// the TU waits for one, and after a final response there is nothing left to cancel.
    public var acceptsCancel: Bool { state == .proceeding }

    /// The CANCEL for this INVITE (RFC 3261 §9.1): the INVITE's Request-URI, Call-ID, From, To and CSeq number
    /// (method CANCEL), its top Via only (same branch, so the server matches it to the INVITE), its Route
    /// headers and Max-Forwards. The CANCEL runs in a `NonInviteClientTransaction` of its own; send it only
    /// when `acceptsCancel`.
    public func cancel() -> SIPRequest {
        var headers = SIPHeaders()
        if let via = request.headers.first(.via), let top = via.elements.first {
            headers.append(SIPHeaderField(.via, valueBytes: Array(top)))
        }
        for field in request.headers {
            switch field.name {
            case .maxForwards, .from, .to, .callID, .route: headers.append(field)
            default: continue
            }
        }
        let number = ((try? request.headers.cseq()) ?? nil)?.sequenceNumber ?? 1
        headers.append(.cseq, SIPCSeq(number, .cancel).description)
        headers.append(.contentLength, "0")
        return SIPRequest(method: .cancel, uri: request.uri, headers: headers)
    }
}
