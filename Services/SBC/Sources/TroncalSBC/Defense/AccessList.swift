/// Source allow and deny lists: a deny match always refuses; when an allow list is set, only sources in it
/// (or in a customer's trunk addresses) get through.
public struct AccessList: Sendable, Hashable {
    public var allow: [IPNetwork]
    public var deny: [IPNetwork]

    public init(allow: [IPNetwork] = [], deny: [IPNetwork] = []) {
        self.allow = allow
        self.deny = deny
    }

    /// Parses textual networks; returns the first that does not parse as an error string.
    public init(allow: [String], deny: [String]) throws(AccessListError) {
        func parse(_ list: [String], _ key: String) throws(AccessListError) -> [IPNetwork] {
            var out: [IPNetwork] = []
            for (index, text) in list.enumerated() {
                guard let network = IPNetwork(text) else { throw AccessListError(key: "\(key)[\(index)]", value: text) }
                out.append(network)
            }
            return out
        }
        self.allow = try parse(allow, "allow")
        self.deny = try parse(deny, "deny")
    }

    public func permits(_ address: String) -> Bool {
        if deny.contains(where: { $0.contains(address) }) { return false }
        return allow.isEmpty || allow.contains { $0.contains(address) }
    }
}

/// An entry of an allow or deny list that is not an IP address or CIDR network.
public struct AccessListError: Error, Sendable, Hashable, CustomStringConvertible {
    public var key: String
    public var value: String
    public var description: String { "\(key): '\(value)' is not an IP address or CIDR network" }
}
