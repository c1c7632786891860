/// One Via value (RFC 3261 §20.42, RFC 3581): `SIP/2.0/UDP host:port;branch=z9hG4bK…;received=…;rport`.
public struct SIPVia: Hashable, Sendable, CustomStringConvertible {
    public var protocolName: String
    public var protocolVersion: String
    /// The transport token as written (UDP, TCP, TLS, SCTP, WS, or an unknown token).
    public var transport: String
    public var host: String
    public var port: UInt16?
    public var parameters: SIPParameters

    /// The RFC 3261 magic cookie that starts every branch of an RFC 3261 element.
    public static let magicCookie = "z9hG4bK"

    public init(
        transport: String, host: String, port: UInt16? = nil, branch: String? = nil, parameters: SIPParameters = []
    ) {
        self.protocolName = "SIP"
        self.protocolVersion = "2.0"
        self.transport = transport
        self.host = host
        self.port = port
        self.parameters = parameters
        if let branch { self.parameters.set("branch", to: branch) }
    }

    public var branch: String? {
        get { parameters["branch"] }
        set {
            if let newValue { parameters.set("branch", to: newValue) } else { parameters.remove("branch") }
        }
    }

    /// Whether the branch starts with the magic cookie (the element follows RFC 3261 transaction matching).
    public var hasRFC3261Branch: Bool { branch?.hasPrefix(Self.magicCookie) ?? false }

    public var received: String? { parameters["received"] }
    public var maddr: String? { parameters["maddr"] }
    public var ttl: UInt8? { parameters["ttl"].flatMap { UInt8($0) } }
    /// Whether `rport` is present (RFC 3581), with or without a value.
    public var hasRPort: Bool { parameters.contains("rport") }
    /// The port filled in by the server in `rport=` (RFC 3581).
    public var rport: UInt16? { parameters["rport"].flatMap { UInt16($0) } }

    public var description: String {
        var text = "\(protocolName)/\(protocolVersion)/\(transport) \(host)"
        if let port { text += ":\(port)" }
        return text + parameters.serialized
    }

    /// Parses one via-parm (one element of a Via list).
    static func parse(_ bytes: ArraySlice<UInt8>) throws(SIPParseError) -> SIPVia {
        var scanner = SIPValueScanner(bytes, header: .via)
        scanner.skipLWS()
        let name = try scanner.requireToken("protocol name")
        guard scanner.consumeSeparator(UInt8(ascii: "/")) else { throw scanner.error("expected /") }
        let version = try scanner.requireToken("protocol version")
        guard scanner.consumeSeparator(UInt8(ascii: "/")) else { throw scanner.error("expected /") }
        let transport = try scanner.requireToken("transport")
        let beforeLWS = scanner.index
        scanner.skipLWS()
        guard scanner.index > beforeLWS else { throw scanner.error("expected LWS before sent-by") }
        let hostStart = scanner.index
        if scanner.peek == UInt8(ascii: "[") {
            guard let close = scanner.remaining.firstIndex(of: UInt8(ascii: "]")) else {
                throw scanner.error("unterminated IPv6")
            }
            scanner.index = close + 1
        } else {
            _ = scanner.scan(.host)
        }
        let host = bytes[hostStart..<scanner.index]
        guard SIPHost.isValid(host) else { throw scanner.error("invalid sent-by host") }
        var via = SIPVia(transport: transport.sipString, host: host.sipString)
        via.protocolName = name.sipString
        via.protocolVersion = version.sipString
        if scanner.consumeSeparator(UInt8(ascii: ":")) {
            let port = scanner.scan(.digit)
            via.port = try SIPDecimal<UInt16>(port).get(header: .via, detail: "sent-by port")
        }
        via.parameters = try scanner.scanGenericParameters()
        try scanner.requireEnd()
        try via.validateParameters()
        return via
    }

    private func validateParameters() throws(SIPParseError) {
        func bad(_ detail: String) -> SIPParseError { SIPParseError(.invalidHeaderValue, header: .via, detail: detail) }
        for parameter in parameters {
            let name = Array(parameter.name.utf8)
            let value = parameter.value.map { Array($0.utf8)[...] }
            if name.equalsCaseInsensitive("branch") {
                guard value != nil, !parameter.isQuoted else { throw bad("branch needs a token") }
            } else if name.equalsCaseInsensitive("ttl") {
                guard let value, value.count <= 3, case .value(let ttl) = SIPDecimal<UInt16>(value), ttl <= 255 else {
                    throw bad("ttl")
                }
            } else if name.equalsCaseInsensitive("received") {
                guard let value,
                    SIPHost.isValidIPv4(value) || SIPHost.isValidIPv6(value) || SIPHost.isValidIPv6Reference(value)
                else { throw bad("received needs an IP address") }
            } else if name.equalsCaseInsensitive("maddr") {
                guard let value, SIPHost.isValid(value) else { throw bad("maddr") }
            } else if name.equalsCaseInsensitive("rport") {
                if let value { _ = try SIPDecimal<UInt16>(value).get(header: .via, detail: "rport") }
            }
        }
    }
}
