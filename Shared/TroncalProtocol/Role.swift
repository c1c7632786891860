/// The role a service instance plays in a site. It is written into every instance's certificate,
/// and the link layer authorizes messages by it.
public enum Role: String, Codable, Sendable, CaseIterable, Hashable, CustomStringConvertible {
    case sbc, routing, billing, pbx, backup, monitor
    /// The operator's CLI (`troncal status`, imports, exports): not a service, but a peer with a certificate.
    case `operator`

    /// The six roles that run as services (every role but the operator).
    public static let services: [Role] = [.sbc, .routing, .billing, .pbx, .backup, .monitor]

    /// The executable that runs this role, e.g. `troncal-sbc`.
    public var executableName: String { self == .operator ? "troncal" : "troncal-\(rawValue)" }

    public var description: String { rawValue }
}
