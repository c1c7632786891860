/// Who is at the other end of a link: the role, site and instance named by its certificate.
public struct PeerIdentity: Codable, Sendable, Hashable, CustomStringConvertible {
    public var role: Role
    public var site: String
    public var instance: String

    public init(role: Role, site: String, instance: String) {
        self.role = role
        self.site = site
        self.instance = instance
    }

    /// The form used in an envelope's `from` field: `site-a/sbc-1`.
    public var description: String { "\(site)/\(instance)" }

    /// Whether a name is acceptable as a site or instance name: 1–63 characters of `a-z 0-9 -`,
    /// not starting with `-`. Names end up in file names, certificate subjects and logs.
    public static func isValidName(_ name: String) -> Bool {
        guard (1...63).contains(name.utf8.count), name.utf8.first != UInt8(ascii: "-") else { return false }
        return name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "-")
        }
    }
}
