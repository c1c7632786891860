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
        var labels = host.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        if labels.count > 1, labels.last?.isEmpty == true { labels.removeLast() }
        guard let top = labels.last, let topFirst = top.first, topFirst.isIn(.alpha) else { return false }
        for label in labels {
            guard let firstByte = label.first, let lastByte = label.last,
                firstByte.isIn(.alphanum), lastByte.isIn(.alphanum),
                label.allSatisfy({ $0.isIn(.alphanum) || $0 == UInt8(ascii: "-") })
            else { return false }
        }
        return true
    }

    /// Four dotted decimal octets, each 1-3 digits and at most 255.
    static func isValidIPv4(_ host: ArraySlice<UInt8>) -> Bool {
        let parts = host.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        for part in parts {
            guard (1...3).contains(part.count), case .value(let octet) = SIPDecimal<UInt16>(part), octet <= 255 else {
                return false
            }
        }
        return true
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
