extension TransactionKey {
    /// The key of the INVITE server transaction a CANCEL asks to cancel (RFC 3261 §9.2): the CANCEL's own key
    /// with the method INVITE, since a CANCEL carries the INVITE's top Via (branch and sent-by), or, from an
    /// RFC 2543 peer, its Request-URI, From tag, Call-ID, CSeq number and top Via. Nil when `cancel` is not a
    /// CANCEL or cannot be keyed. The CANCEL itself is a separate non-INVITE server transaction.
    public static func invite(cancelledBy cancel: SIPRequest) -> TransactionKey? {
        guard cancel.method == .cancel, let key = server(for: cancel) else { return nil }
        let invite = SIPMethod.invite.name
        switch key {
        case .rfc3261(let branch, let sentBy, _):
            return .rfc3261(branch: branch, sentBy: sentBy, method: invite)
        case .rfc2543(let requestURI, let fromTag, _, let callID, let cseq, let via, _):
            // An INVITE's RFC 2543 key leaves the To tag out (see `server(for:)`).
            return .rfc2543(
                requestURI: requestURI, fromTag: fromTag, toTag: "", callID: callID, cseq: cseq, via: via,
                method: invite)
        }
    }
}
