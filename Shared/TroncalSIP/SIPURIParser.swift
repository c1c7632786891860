extension SIPURI {
    /// Parses exactly `bytes` as a URI (no surrounding whitespace).
    static func parse(_ bytes: ArraySlice<UInt8>, header: SIPHeaderName? = nil) throws(SIPParseError) -> SIPURI {
        func fail(_ detail: String, at index: Int? = nil) -> SIPParseError {
            SIPParseError(
                .invalidURI, header: header, offset: (index ?? bytes.startIndex) - bytes.startIndex, detail: detail)
        }
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { throw fail("missing scheme") }
        let schemeBytes = bytes[..<colon]
        guard let first = schemeBytes.first, first.isIn(.alpha), schemeBytes.allSatisfy({ $0.isIn(.scheme) }) else {
            throw fail("invalid scheme")
        }
        let rest = bytes[(colon + 1)...]
        if schemeBytes.equalsCaseInsensitive("sip") {
            return try parseSIP(rest, scheme: .sip, fail: fail)
        }
        if schemeBytes.equalsCaseInsensitive("sips") {
            return try parseSIP(rest, scheme: .sips, fail: fail)
        }
        if schemeBytes.equalsCaseInsensitive("tel") {
            return try parseTel(rest, fail: fail)
        }
        // absoluteURI: opaque-part or hier-part, 1*( reserved / unreserved / escaped ).
        guard !rest.isEmpty else { throw fail("empty URI") }
        try checkEscaped(rest, allowed: [.reserved, .unreserved], extra: "[]#", fail: fail)
        var uri = SIPURI(host: "")
        uri.scheme = .other(schemeBytes.sipString)
        uri.opaque = rest.sipString
        return uri
    }

    /// Checks every byte is in `allowed` (or `extra`) or starts a valid `%HH` escape.
    private static func checkEscaped(
        _ bytes: ArraySlice<UInt8>, allowed: SIPByteClass, extra: StaticString = "",
        fail: (String, Int?) -> SIPParseError
    ) throws(SIPParseError) {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let b = bytes[index]
            if b == UInt8(ascii: "%") {
                guard index + 2 < bytes.endIndex,
                    bytes[index + 1].hexValue != nil, bytes[index + 2].hexValue != nil
                else { throw fail("invalid escape", index) }
                index += 3
                continue
            }
            guard b.isIn(allowed) || extra.withUTF8Buffer({ $0.contains(b) }) else {
                throw fail("invalid character", index)
            }
            index += 1
        }
    }

    private static func parseSIP(
        _ rest: ArraySlice<UInt8>, scheme: Scheme, fail: (String, Int?) -> SIPParseError
    ) throws(SIPParseError) -> SIPURI {
        var uri = SIPURI(scheme: scheme, host: "")
        var hostStart = rest.startIndex
        // Only userinfo may hold "@": parameters and headers cannot.
        if let at = rest.firstIndex(of: UInt8(ascii: "@")) {
            let userinfo = rest[..<at]
            let userEnd = userinfo.firstIndex(of: UInt8(ascii: ":")) ?? userinfo.endIndex
            let user = userinfo[..<userEnd]
            guard !user.isEmpty else { throw fail("empty user", at) }
            try checkEscaped(user, allowed: [.unreserved, .userUnreserved], fail: fail)
            uri.user = user.sipString
            if userEnd < userinfo.endIndex {
                let password = userinfo[(userEnd + 1)...]
                try checkEscaped(password, allowed: [.unreserved, .passwordExtra], fail: fail)
                uri.password = password.sipString
            }
            hostStart = at + 1
        }
        // hostport
        var index = hostStart
        if index < rest.endIndex, rest[index] == UInt8(ascii: "[") {
            guard let close = rest[index...].firstIndex(of: UInt8(ascii: "]")) else {
                throw fail("unterminated IPv6", index)
            }
            index = close + 1
        } else {
            while index < rest.endIndex, rest[index].isIn(.host) { index += 1 }
        }
        let host = rest[hostStart..<index]
        guard SIPHost.isValid(host) else { throw fail("invalid host", hostStart) }
        uri.host = host.sipString
        if index < rest.endIndex, rest[index] == UInt8(ascii: ":") {
            let portStart = index + 1
            index = portStart
            while index < rest.endIndex, rest[index].isSIPDigit { index += 1 }
            switch SIPDecimal<UInt16>(rest[portStart..<index]) {
            case .value(let port): uri.port = port
            case .overflow: throw SIPParseError(.valueOutOfRange, offset: portStart - rest.startIndex, detail: "port")
            case .invalid: throw fail("invalid port", portStart)
            }
        }
        // uri-parameters
        while index < rest.endIndex, rest[index] == UInt8(ascii: ";") {
            index += 1
            let nameStart = index
            while index < rest.endIndex, rest[index] != UInt8(ascii: ";"), rest[index] != UInt8(ascii: "?"),
                rest[index] != UInt8(ascii: "=")
            {
                index += 1
            }
            let name = rest[nameStart..<index]
            guard !name.isEmpty else { throw fail("empty parameter", nameStart) }
            try checkEscaped(name, allowed: [.unreserved, .paramUnreserved], fail: fail)
            var value: String?
            if index < rest.endIndex, rest[index] == UInt8(ascii: "=") {
                index += 1
                let valueStart = index
                while index < rest.endIndex, rest[index] != UInt8(ascii: ";"), rest[index] != UInt8(ascii: "?") {
                    index += 1
                }
                let valueBytes = rest[valueStart..<index]
                guard !valueBytes.isEmpty else { throw fail("empty parameter value", valueStart) }
                try checkEscaped(valueBytes, allowed: [.unreserved, .paramUnreserved], fail: fail)
                value = valueBytes.sipString
            }
            uri.parameters.append(SIPParameter(name: name.sipString, value: value))
        }
        // headers
        if index < rest.endIndex, rest[index] == UInt8(ascii: "?") {
            index += 1
            let headerBytes = rest[index...]
            for header in headerBytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: false) {
                guard let equals = header.firstIndex(of: UInt8(ascii: "=")) else {
                    throw fail("URI header without =", header.startIndex)
                }
                let name = header[..<equals]
                let value = header[(equals + 1)...]
                guard !name.isEmpty else { throw fail("empty URI header name", header.startIndex) }
                try checkEscaped(name, allowed: [.unreserved, .hnvUnreserved], fail: fail)
                try checkEscaped(value, allowed: [.unreserved, .hnvUnreserved], fail: fail)
                uri.headers.append(Header(name: name.sipString, value: value.sipString))
            }
            index = rest.endIndex
        }
        guard index == rest.endIndex else { throw fail("unexpected character", index) }
        return uri
    }

    /// telephone-uri = "tel:" telephone-subscriber (RFC 3966): a global number `+digits` or a local number, which
    /// must carry `phone-context`.
    private static func parseTel(
        _ rest: ArraySlice<UInt8>, fail: (String, Int?) -> SIPParseError
    ) throws(SIPParseError) -> SIPURI {
        let numberEnd = rest.firstIndex(of: UInt8(ascii: ";")) ?? rest.endIndex
        let number = rest[..<numberEnd]
        let isGlobal = number.first == UInt8(ascii: "+")
        let digits = isGlobal ? number.dropFirst() : number
        let separators: Set<UInt8> = Set("-.()".utf8)
        guard !digits.isEmpty else { throw fail("empty telephone number", rest.startIndex) }
        if isGlobal {
            guard digits.allSatisfy({ $0.isSIPDigit || separators.contains($0) }), digits.contains(where: \.isSIPDigit)
            else {
                throw fail("invalid global number", rest.startIndex)
            }
        } else {
            guard digits.allSatisfy({ $0.isIn(.telDigit) }), digits.contains(where: { !separators.contains($0) }) else {
                throw fail("invalid local number", rest.startIndex)
            }
        }
        var uri = SIPURI(telephoneNumber: number.sipString)
        if numberEnd < rest.endIndex {
            for parameter in rest[(numberEnd + 1)...].split(
                separator: UInt8(ascii: ";"), omittingEmptySubsequences: false)
            {
                let equals = parameter.firstIndex(of: UInt8(ascii: "=")) ?? parameter.endIndex
                let name = parameter[..<equals]
                guard !name.isEmpty, name.allSatisfy({ $0.isIn(.alphanum) || $0 == UInt8(ascii: "-") }) else {
                    throw fail("invalid tel parameter", parameter.startIndex)
                }
                var value: String?
                if equals < parameter.endIndex {
                    let valueBytes = parameter[(equals + 1)...]
                    guard !valueBytes.isEmpty else { throw fail("empty tel parameter value", equals) }
                    try checkEscaped(valueBytes, allowed: [.unreserved, .paramUnreserved], extra: "@?=,", fail: fail)
                    value = valueBytes.sipString
                }
                uri.parameters.append(SIPParameter(name: name.sipString, value: value))
            }
        }
        if !isGlobal, !uri.parameters.contains("phone-context") {
            throw fail("local number without phone-context", rest.startIndex)
        }
        return uri
    }
}
