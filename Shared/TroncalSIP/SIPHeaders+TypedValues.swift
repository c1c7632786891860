/// The Contact header value: the `*` wildcard (REGISTER removal) or a list of addresses.
public enum SIPContactList: Hashable, Sendable {
    case wildcard
    case addresses([SIPAddress])
}

extension SIPHeaders {
    /// The only field with this name; nil when absent, `duplicateHeader` when repeated.
    func single(_ name: SIPHeaderName) throws(SIPParseError) -> SIPHeaderField? {
        var found: SIPHeaderField?
        for field in self where field.name == name {
            if found != nil { throw SIPParseError(.duplicateHeader, header: name) }
            found = field
        }
        return found
    }

    /// All Via values, top first.
    public func via() throws(SIPParseError) -> [SIPVia] {
        var result: [SIPVia] = []
        for element in elements(.via) {
            guard !element.isEmpty else { throw SIPParseError(.invalidHeaderValue, header: .via, detail: "empty element") }
            result.append(try SIPVia.parse(element))
        }
        return result
    }

    /// The top Via value.
    public func topVia() throws(SIPParseError) -> SIPVia? {
        guard let field = first(.via), let element = field.elements.first else { return nil }
        return try SIPVia.parse(element)
    }

    public func from() throws(SIPParseError) -> SIPAddress? { try address(.from) }
    public func to() throws(SIPParseError) -> SIPAddress? { try address(.to) }

    private func address(_ name: SIPHeaderName) throws(SIPParseError) -> SIPAddress? {
        guard let field = try single(name) else { return nil }
        let address = try SIPAddress.parse(field.value, header: name)
        if let tag = address.parameters.first(named: "tag") {
            guard tag.value != nil, !tag.isQuoted else {
                throw SIPParseError(.invalidHeaderValue, header: name, detail: "tag needs a token")
            }
        }
        return address
    }

    /// The Call-ID (`word [ "@" word ]`).
    public func callID() throws(SIPParseError) -> String? {
        guard let field = try single(.callID) else { return nil }
        let value = field.value
        let parts = value.split(separator: UInt8(ascii: "@"), omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isIn(.word) } }) else {
            throw SIPParseError(.invalidHeaderValue, header: .callID, detail: "not word[@word]")
        }
        return value.sipString
    }

    public func cseq() throws(SIPParseError) -> SIPCSeq? {
        guard let field = try single(.cseq) else { return nil }
        return try SIPCSeq.parse(field.value)
    }

    /// Max-Forwards, 0...255.
    public func maxForwards() throws(SIPParseError) -> UInt8? {
        guard let field = try single(.maxForwards) else { return nil }
        return try SIPDecimal<UInt8>(field.value).get(header: .maxForwards, detail: "0...255")
    }

    public func contentLength() throws(SIPParseError) -> Int? {
        guard let field = try single(.contentLength) else { return nil }
        switch SIPDecimal<UInt32>(field.value) {
        case .value(let length): return Int(length)
        case .overflow, .invalid: throw SIPParseError(.invalidContentLength, header: .contentLength)
        }
    }

    public func contentType() throws(SIPParseError) -> SIPMediaType? {
        guard let field = try single(.contentType) else { return nil }
        return try SIPMediaType.parse(field.value, header: .contentType)
    }

    /// Expires as delta-seconds; values above 2^32-1 are clamped to 2^32-1 (RFC 3261 §20.19 asks for tolerance).
    public func expires() throws(SIPParseError) -> UInt32? {
        guard let field = try single(.expires) else { return nil }
        return try Self.deltaSeconds(field.value, header: .expires)
    }

    static func deltaSeconds(_ bytes: ArraySlice<UInt8>, header: SIPHeaderName) throws(SIPParseError) -> UInt32 {
        switch SIPDecimal<UInt32>(bytes) {
        case .value(let seconds): return seconds
        case .overflow: return UInt32.max
        case .invalid: throw SIPParseError(.invalidHeaderValue, header: header, detail: "delta-seconds")
        }
    }

    /// The Contact values (all fields, all elements), or the wildcard.
    public func contacts() throws(SIPParseError) -> SIPContactList {
        let all = elements(.contact)
        if all.count == 1, all[0].elementsEqual("*".utf8) { return .wildcard }
        var addresses: [SIPAddress] = []
        for element in all {
            guard !element.isEmpty else { throw SIPParseError(.invalidHeaderValue, header: .contact, detail: "empty element") }
            let address = try SIPAddress.parse(element, header: .contact)
            for parameter in address.parameters {
                let name = Array(parameter.name.utf8)
                if name.equalsCaseInsensitive("q") {
                    guard let value = parameter.value, !parameter.isQuoted, Self.isQValue(Array(value.utf8)) else {
                        throw SIPParseError(.invalidHeaderValue, header: .contact, detail: "q")
                    }
                } else if name.equalsCaseInsensitive("expires") {
                    guard let value = parameter.value, !parameter.isQuoted else {
                        throw SIPParseError(.invalidHeaderValue, header: .contact, detail: "expires")
                    }
                    _ = try Self.deltaSeconds(Array(value.utf8)[...], header: .contact)
                }
            }
            addresses.append(address)
        }
        return .addresses(addresses)
    }

    /// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ).
    static func isQValue(_ bytes: [UInt8]) -> Bool {
        guard let first = bytes.first, first == UInt8(ascii: "0") || first == UInt8(ascii: "1") else { return false }
        if bytes.count == 1 { return true }
        guard bytes[1] == UInt8(ascii: "."), bytes.count <= 5 else { return false }
        let fraction = bytes[2...]
        return first == UInt8(ascii: "0")
            ? fraction.allSatisfy(\.isSIPDigit) : fraction.allSatisfy { $0 == UInt8(ascii: "0") }
    }

    /// Route values (name-addr only), top first.
    public func route() throws(SIPParseError) -> [SIPAddress] { try nameAddrList(.route) }
    /// Record-Route values (name-addr only), top first.
    public func recordRoute() throws(SIPParseError) -> [SIPAddress] { try nameAddrList(.recordRoute) }

    private func nameAddrList(_ name: SIPHeaderName) throws(SIPParseError) -> [SIPAddress] {
        var result: [SIPAddress] = []
        for element in elements(name) {
            guard !element.isEmpty else { throw SIPParseError(.invalidHeaderValue, header: name, detail: "empty element") }
            result.append(try SIPAddress.parse(element, header: name, requireNameAddr: true))
        }
        return result
    }

    /// The option tags of Require, Proxy-Require, Supported or Unsupported (all fields).
    public func optionTags(_ name: SIPHeaderName) throws(SIPParseError) -> [String] {
        var tags: [String] = []
        for element in elements(name) {
            guard !element.isEmpty, element.allSatisfy(\.isSIPTokenChar) else {
                throw SIPParseError(.invalidHeaderValue, header: name, detail: "option-tag")
            }
            tags.append(element.sipString)
        }
        return tags
    }

    /// The values of an authentication header (Authorization, WWW-Authenticate, Proxy-*), one per field.
    public func authValues(_ name: SIPHeaderName) throws(SIPParseError) -> [SIPAuthHeaderValue] {
        var values: [SIPAuthHeaderValue] = []
        for field in self where field.name == name {
            values.append(try SIPAuthHeaderValue.parse(field.value, header: name))
        }
        return values
    }
}
