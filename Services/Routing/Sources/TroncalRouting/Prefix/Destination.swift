/// A destination of the routing and rating tables: an E.164 prefix and its name ("34", "Spain"; "346", "Spain-Mobile").
public struct Destination: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The E.164 prefix, digits only, country code first.
    public let prefix: String
    /// The destination's name as the operator's tables call it.
    public let name: String

    public init(prefix: String, name: String) {
        self.prefix = prefix
        self.name = name
    }

    public var description: String { "\(prefix) \(name)" }
}
