extension SIPValidator {
    /// Decides on a message whose Content-Length broke the framing of a TCP/TLS stream, given its header section
    /// (`SIPStreamFramer.failedHeaderSection`). The connection is closed either way; a request is first answered 400,
    /// or 513 when its Content-Length is over the size limit (RFC 4475 §3.1.2.3 and §3.3.9 ask for an error response).
    /// A response, an ACK or an unreadable start line is dropped.
    public func disposition(forBrokenStreamHeaderSection headerSection: [UInt8], error: SIPParseError) -> SIPMessageDisposition {
        let (status, reason) = error.code == .messageTooLarge ? (513, "Message Too Large") : (400, "Bad Request")
        switch disposition(forStreamMessage: headerSection) {
        case .reject(var rejection):
            // The framing error decides the answer, whatever else is wrong with the headers.
            rejection.statusCode = status
            rejection.reasonPhrase = reason
            rejection.error = error
            rejection.unsupportedOptionTags = []
            return .reject(rejection)
        case .accept(.request(let request)) where request.method != .ack:
            return .reject(
                SIPRejection(statusCode: status, reasonPhrase: reason, error: error, method: request.method, headers: request.headers))
        case .accept, .drop:
            return .drop(error)
        }
    }
}
