/// A SIP request: Request-Line, header fields and body.
public struct SIPRequest: Hashable, Sendable {
    public var method: SIPMethod
    public var uri: SIPURI
    public var version: SIPVersion
    public var headers: SIPHeaders
    public var body: [UInt8]

    public init(
        method: SIPMethod, uri: SIPURI, version: SIPVersion = .sip20, headers: SIPHeaders = [], body: [UInt8] = []
    ) {
        self.method = method
        self.uri = uri
        self.version = version
        self.headers = headers
        self.body = body
    }
}
