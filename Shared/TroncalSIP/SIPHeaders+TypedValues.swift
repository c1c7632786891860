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
        for field in self where field.name == .via { try Self.parseVia(field) { result.append($0) } }
        return result
    }

    /// The top Via value.
    public func topVia() throws(SIPParseError) -> SIPVia? {
        guard let field = first(.via), let element = field.elements.first else { return nil }
        return try SIPVia.parse(element)
    }

    public func from() throws(SIPParseError) -> SIPAddress? { try single(.from).map(Self.parseFromOrTo) }
    public func to() throws(SIPParseError) -> SIPAddress? { try single(.to).map(Self.parseFromOrTo) }

    /// The Call-ID (`word [ "@" word ]`).
    public func callID() throws(SIPParseError) -> String? {
        try single(.callID).map(Self.parseCallID)
    }

    public func cseq() throws(SIPParseError) -> SIPCSeq? {
        try single(.cseq).map { (field) throws(SIPParseError) in try SIPCSeq.parse(field.value) }
    }

    /// Max-Forwards, 0...255.
    public func maxForwards() throws(SIPParseError) -> UInt8? {
        try single(.maxForwards).map(Self.parseMaxForwards)
    }

    public func contentLength() throws(SIPParseError) -> Int? {
        try single(.contentLength).map(Self.parseContentLength)
    }

    public func contentType() throws(SIPParseError) -> SIPMediaType? {
        try single(.contentType).map { (field) throws(SIPParseError) in
            try SIPMediaType.parse(field.value, header: .contentType)
        }
    }

    /// Expires as delta-seconds; values above 2^32-1 are clamped to 2^32-1 (RFC 3261 §20.19 asks for tolerance).
    public func expires() throws(SIPParseError) -> UInt32? {
        try single(.expires).map { (field) throws(SIPParseError) in try Self.deltaSeconds(field.value, header: .expires)
        }
    }

    /// The Contact values (all fields, all elements), or the wildcard.
    public func contacts() throws(SIPParseError) -> SIPContactList {
        let all = elements(.contact)
        if all.count == 1, all[0].elementsEqual("*".utf8) { return .wildcard }
        var addresses: [SIPAddress] = []
        for element in all { addresses.append(try Self.parseContact(element)) }
        return .addresses(addresses)
    }

    /// Route values (name-addr only), top first.
    public func route() throws(SIPParseError) -> [SIPAddress] { try nameAddrList(.route) }
    /// Record-Route values (name-addr only), top first.
    public func recordRoute() throws(SIPParseError) -> [SIPAddress] { try nameAddrList(.recordRoute) }

    private func nameAddrList(_ name: SIPHeaderName) throws(SIPParseError) -> [SIPAddress] {
        var result: [SIPAddress] = []
        for field in self where field.name == name { try Self.parseNameAddrList(field) { result.append($0) } }
        return result
    }

    /// The option tags of Require, Proxy-Require, Supported or Unsupported (all fields).
    public func optionTags(_ name: SIPHeaderName) throws(SIPParseError) -> [String] {
        var tags: [String] = []
        for field in self where field.name == name { try Self.parseOptionTags(field) { tags.append($0.sipString) } }
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

    // MARK: - Field parsers shared by the accessors and SIPValidator

    static func parseVia(_ field: SIPHeaderField, _ body: (SIPVia) -> Void) throws(SIPParseError) {
        for element in field.elements {
            guard !element.isEmpty else {
                throw SIPParseError(.invalidHeaderValue, header: .via, detail: "empty element")
            }
            body(try SIPVia.parse(element))
        }
    }

    static func parseFromOrTo(_ field: SIPHeaderField) throws(SIPParseError) -> SIPAddress {
        let address = try SIPAddress.parse(field.value, header: field.name)
        if let tag = address.parameters.first(named: "tag"), tag.value == nil || tag.isQuoted {
            throw SIPParseError(.invalidHeaderValue, header: field.name, detail: "tag needs a token")
        }
        return address
    }

    static func parseCallID(_ field: SIPHeaderField) throws(SIPParseError) -> String {
        let value = field.value
        var ats = 0
        var previous: UInt8 = UInt8(ascii: "@")
        for byte in value {
            if byte == UInt8(ascii: "@") {
                ats += 1
                guard ats == 1, previous != UInt8(ascii: "@") else { return try invalidCallID() }
            } else if !byte.isIn(.word) {
                return try invalidCallID()
            }
            previous = byte
        }
        guard !value.isEmpty, previous != UInt8(ascii: "@") else { return try invalidCallID() }
        return value.sipString
    }

    private static func invalidCallID() throws(SIPParseError) -> String {
        throw SIPParseError(.invalidHeaderValue, header: .callID, detail: "not word[@word]")
    }

    static func parseMaxForwards(_ field: SIPHeaderField) throws(SIPParseError) -> UInt8 {
        try SIPDecimal<UInt8>(field.value).get(header: .maxForwards, detail: "0...255")
    }

    static func parseContentLength(_ field: SIPHeaderField) throws(SIPParseError) -> Int {
        guard case .value(let length) = SIPDecimal<UInt32>(field.value) else {
            throw SIPParseError(.invalidContentLength, header: .contentLength)
        }
        return Int(length)
    }

    static func deltaSeconds(_ bytes: ArraySlice<UInt8>, header: SIPHeaderName) throws(SIPParseError) -> UInt32 {
        switch SIPDecimal<UInt32>(bytes) {
        case .value(let seconds): return seconds
        case .overflow: return UInt32.max
        case .invalid: throw SIPParseError(.invalidHeaderValue, header: header, detail: "delta-seconds")
        }
    }

    /// One Contact element (not the wildcard), with its q and expires parameters checked.
    static func parseContact(_ element: ArraySlice<UInt8>) throws(SIPParseError) -> SIPAddress {
        guard !element.isEmpty else {
            throw SIPParseError(.invalidHeaderValue, header: .contact, detail: "empty element")
        }
        let address = try SIPAddress.parse(element, header: .contact)
        for parameter in address.parameters {
            if parameter.name.utf8.equalsCaseInsensitive("q") {
                guard let value = parameter.value, !parameter.isQuoted, isQValue(Array(value.utf8)) else {
                    throw SIPParseError(.invalidHeaderValue, header: .contact, detail: "q")
                }
            } else if parameter.name.utf8.equalsCaseInsensitive("expires") {
                guard let value = parameter.value, !parameter.isQuoted else {
                    throw SIPParseError(.invalidHeaderValue, header: .contact, detail: "expires")
                }
                _ = try deltaSeconds(Array(value.utf8)[...], header: .contact)
            }
        }
        return address
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

    static func parseNameAddrList(_ field: SIPHeaderField, _ body: (SIPAddress) -> Void) throws(SIPParseError) {
        for element in field.elements {
            guard !element.isEmpty else {
                throw SIPParseError(.invalidHeaderValue, header: field.name, detail: "empty element")
            }
            body(try SIPAddress.parse(element, header: field.name, requireNameAddr: true))
        }
    }

    static func parseOptionTags(_ field: SIPHeaderField, _ body: (ArraySlice<UInt8>) -> Void) throws(SIPParseError) {
        for element in field.elements {
            guard !element.isEmpty, element.allSatisfy(\.isSIPTokenChar) else {
                throw SIPParseError(.invalidHeaderValue, header: field.name, detail: "option-tag")
            }
            body(element)
        }
    }
}
