/// Syntax checks for the `host` rule of RFC 3261 §25.1: hostname, IPv4address or IPv6reference.
enum SIPHost {
    /// hostname / IPv4address / IPv6reference.
    static func isValid(_ host: ArraySlice<UInt8>) -> Bool {
        guard let first = host.first else { return false }
        if first == UInt8(ascii: "[") { return isValidIPv6Reference(host) }
        return isValidIPv4(host) || isValidHostname(host)
    }

    /// hostname = *( domainlabel "." ) toplabel [ "." ]; labels are alphanumerics and inner hyphens,
    /// the top label starts with a letter.
    static func isValidHostname(_ host: ArraySlice<UInt8>) -> Bool {
        var end = host.endIndex
        if end > host.startIndex, host[end - 1] == UInt8(ascii: ".") { end -= 1 }
        guard end > host.startIndex else { return false }
        var labelStart = host.startIndex
        var index = host.startIndex
        while index <= end {
            if index == end || host[index] == UInt8(ascii: ".") {
                guard index > labelStart, host[labelStart].isIn(.alphanum), host[index - 1].isIn(.alphanum) else {
                    return false
                }
                if index == end { return host[labelStart].isIn(.alpha) }
                labelStart = index + 1
            } else if !(host[index].isIn(.alphanum) || host[index] == UInt8(ascii: "-")) {
                return false
            }
            index += 1
        }
        return false
    }

    /// Four dotted decimal octets, each 1-3 digits and at most 255.
    static func isValidIPv4(_ host: ArraySlice<UInt8>) -> Bool {
        var octets = 0
        var digits = 0
        var value = 0
        for byte in host {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, octets < 3 else { return false }
                octets += 1
                digits = 0
                value = 0
            } else if byte.isSIPDigit {
                digits += 1
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                guard digits <= 3, value <= 255 else { return false }
            } else {
                return false
            }
        }
        return octets == 3 && digits > 0
    }

    /// "[" IPv6address "]".
    static func isValidIPv6Reference(_ host: ArraySlice<UInt8>) -> Bool {
        guard host.count > 2, host.first == UInt8(ascii: "["), host.last == UInt8(ascii: "]") else { return false }
        return isValidIPv6(host.dropFirst().dropLast())
    }

    /// hexpart [ ":" IPv4address ] with at most one "::".
    static func isValidIPv6(_ address: ArraySlice<UInt8>) -> Bool {
        guard address.count >= 2 else { return false }
        var groups = 0
        var sawDoubleColon = false
        var index = address.startIndex
        let end = address.endIndex
        if address[index] == UInt8(ascii: ":") {
            guard address[index + 1] == UInt8(ascii: ":") else { return false }
            sawDoubleColon = true
            index += 2
            if index == end { return true }
        }
        while index < end {
            let start = index
            while index < end, address[index].isIn(.hex) { index += 1 }
            if index < end, address[index] == UInt8(ascii: ".") {
                // Embedded IPv4 takes the place of the last two groups.
                guard isValidIPv4(address[start..<end]) else { return false }
                groups += 2
                index = end
                break
            }
            guard (1...4).contains(index - start) else { return false }
            groups += 1
            if index == end { break }
            guard address[index] == UInt8(ascii: ":") else { return false }
            index += 1
            if index < end, address[index] == UInt8(ascii: ":") {
                guard !sawDoubleColon else { return false }
                sawDoubleColon = true
                index += 1
                if index == end { break }
            } else if index == end {
                return false
            }
        }
        return sawDoubleColon ? groups <= 7 : groups == 8
    }
}
