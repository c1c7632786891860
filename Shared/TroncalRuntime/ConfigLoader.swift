public import Foundation
internal import Logging
public import TroncalProtocol
internal import TroncalStore

/// A configuration problem, naming the key at fault (`link.requestTimeoutMilliseconds`) and what is allowed.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var key: String
    public var message: String
    public var file: String

    public init(file: String, key: String, _ message: String) {
        self.file = file
        self.key = key
        self.message = message
    }

    public var description: String {
        key.isEmpty ? "\(file): \(message)" : "\(file): key '\(key)': \(message)"
    }
}

/// Reads and validates a site configuration file. Unknown keys, wrong types and invalid values are refused
/// with an error that names the key; missing keys take their defaults.
public enum ConfigLoader {
    public static func load(path: String) throws(ConfigError) -> SiteConfig {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigError(file: path, key: "", "cannot read the configuration file: \(error.localizedDescription)")
        }
        return try parse(data, file: path)
    }

    /// Parses and validates configuration JSON; `file` only labels errors.
    public static func parse(_ data: Data, file: String = "config") throws(ConfigError) -> SiteConfig {
        let tree: JSONTree
        do {
            tree = try JSONDecoder().decode(JSONTree.self, from: data)
        } catch {
            let detail = (error as? DecodingError).map { error -> String in
                if case .dataCorrupted(let context) = error {
                    return (context.underlyingError.map { "\($0)" }) ?? context.debugDescription
                }
                return "\(error)"
            } ?? "\(error)"
            throw ConfigError(file: file, key: "", "not valid JSON: \(detail)")
        }
        guard case .object(let object) = tree else {
            throw ConfigError(file: file, key: "", "the top level must be a JSON object")
        }
        let defaults = try defaultTree()
        try checkKeys(object, against: defaults, path: "", file: file)
        let merged = merge(object, onto: defaults)
        let config: SiteConfig
        do {
            let json = try JSONEncoder().encode(JSONTree.object(merged))
            config = try JSONDecoder().decode(SiteConfig.self, from: json)
        } catch let error as DecodingError {
            let (key, message) = describe(error)
            throw ConfigError(file: file, key: key, message)
        } catch {
            throw ConfigError(file: file, key: "", "\(error)")
        }
        try validate(config, file: file)
        return config
    }

    /// Writes a configuration as pretty JSON (sorted keys), e.g. the defaults `troncal up` creates.
    public static func encode(_ config: SiteConfig) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(config)) ?? Data()
    }

    // MARK: - Structure: unknown keys and JSON types

    private static func defaultTree() throws(ConfigError) -> [String: JSONTree] {
        guard case .object(let tree)? = try? JSONDecoder().decode(JSONTree.self, from: encode(SiteConfig())) else {
            throw ConfigError(file: "built-in defaults", key: "", "cannot encode the defaults")
        }
        return tree
    }

    private static func checkKeys(_ value: [String: JSONTree], against schema: [String: JSONTree], path: String, file: String) throws(ConfigError) {
        for (key, element) in value.sorted(by: { $0.key < $1.key }) {
            let keyPath = path.isEmpty ? key : "\(path).\(key)"
            guard let expected = schema[key] else {
                let known = schema.keys.sorted().joined(separator: ", ")
                throw ConfigError(file: file, key: keyPath, "unknown key (known keys here: \(known))")
            }
            try checkType(element, against: expected, path: keyPath, file: file)
        }
    }

    private static func checkType(_ value: JSONTree, against expected: JSONTree, path: String, file: String) throws(ConfigError) {
        switch (expected, value) {
        case (.object, .object(let nested)) where mapTemplates[templatePath(path)] != nil:
            // A map whose keys are the operator's (instance names, roles): only its values are checked.
            for (key, element) in nested.sorted(by: { $0.key < $1.key }) {
                try checkType(element, against: mapTemplates[templatePath(path)]!, path: "\(path).\(key)", file: file)
            }
        case (.object(let schema), .object(let nested)):
            try checkKeys(nested, against: schema, path: path, file: file)
        case (.array(let defaults), .array(let elements)):
            if let template = arrayTemplates[templatePath(path)] ?? defaults.first {
                for (index, element) in elements.enumerated() {
                    try checkType(element, against: template, path: "\(path)[\(index)]", file: file)
                }
            }
        case (.string, .string), (.bool, .bool), (.null, _):
            return
        case (.number(let standard), .number(let number)):
            // A key whose default has a fraction (a MOS threshold) takes fractions; the others are counts and times.
            if number.rounded() != number, standard.rounded() == standard {
                throw ConfigError(file: file, key: path, "must be a whole number, got \(number)")
            }
        default:
            throw ConfigError(file: file, key: path, "must be \(expected.kind), got \(value.kind)")
        }
    }

    /// Objects merge key by key onto the defaults; arrays and scalars replace them. The elements of a list with a
    /// template (`arrayTemplates`) merge onto the template, so that their keys are optional too.
    private static func merge(_ value: [String: JSONTree], onto defaults: [String: JSONTree], path: String = "") -> [String: JSONTree] {
        var result = defaults
        for (key, element) in value {
            let keyPath = path.isEmpty ? key : "\(path).\(key)"
            if case .object(let nested) = element, case .object(let base)? = defaults[key] {
                result[key] = .object(merge(nested, onto: base, path: keyPath))
            } else if case .array(let elements) = element, case .object(let template)? = arrayTemplates[keyPath] {
                result[key] = .array(elements.map { element in
                    guard case .object(let nested) = element else { return element }
                    return .object(merge(nested, onto: template, path: keyPath))
                })
            } else {
                result[key] = element
            }
        }
        return result
    }

    /// The shape of one element of lists whose default is empty, by key path without indices.
    static let arrayTemplates: [String: JSONTree] = {
        func tree(_ value: some Encodable) -> JSONTree {
            (try? JSONDecoder().decode(JSONTree.self, from: JSONEncoder().encode(value))) ?? .null
        }
        return [
            "sbc.customers": tree(CustomerSettings()), "routing.routes": tree(RouteSettings()),
            "routing.routes.targets": tree(RouteTargetSettings()), "sbc.carriers": tree(CarrierSourceSettings()),
            "routing.dids": tree(DIDSettings()), "monitor.receivers": tree(ReceiverSettings()), "monitor.siteProbes": tree(SiteProbeSettings()),
            "monitor.rules": tree(AlarmRule(name: "", category: .service, metric: "", summary: "", action: "")),
        ]
    }()

    /// Objects whose keys are free (names chosen by the operator), with the shape of their values.
    static let mapTemplates: [String: JSONTree] = ["sbc.instanceAddresses": .string(""), "monitor.capacity.standby": .number(0)]

    /// `routing.routes[3].targets[0]` → `routing.routes.targets`.
    static func templatePath(_ path: String) -> String {
        var result = ""
        var skipping = false
        for character in path {
            if character == "[" { skipping = true } else if character == "]" { skipping = false } else if !skipping { result.append(character) }
        }
        return result
    }

    private static func describe(_ error: DecodingError) -> (String, String) {
        func path(_ codingPath: [any CodingKey]) -> String {
            var text = ""
            for key in codingPath {
                if let index = key.intValue { text += "[\(index)]" } else { text += text.isEmpty ? key.stringValue : ".\(key.stringValue)" }
            }
            return text
        }
        switch error {
        case .keyNotFound(let key, let context):
            return (path(context.codingPath + [key]), "is required")
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return (path(context.codingPath), "has the wrong type")
        case .dataCorrupted(let context):
            if context.codingPath.last?.stringValue == "role" {
                return (path(context.codingPath), "must be one of \(Role.services.map(\.rawValue).joined(separator: ", "))")
            }
            return (path(context.codingPath), context.debugDescription)
        @unknown default:
            return ("", "\(error)")
        }
    }

    // MARK: - Values

    static let logLevels = Logger.Level.allCases.map(\.rawValue)

    /// An IPv4/IPv6 address or CIDR network, as the SBC's lists take them.
    static func isNetwork(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, !parts[0].isEmpty else { return false }
        let address = String(parts[0])
        let isV6 = address.contains(":")
        if isV6 {
            var storage = in6_addr()
            guard inet_pton(AF_INET6, address, &storage) == 1 else { return false }
        } else {
            var storage = in_addr()
            guard inet_pton(AF_INET, address, &storage) == 1 else { return false }
        }
        guard parts.count == 2 else { return true }
        guard let length = Int(parts[1]) else { return false }
        return (0...(isV6 ? 128 : 32)).contains(length)
    }

    static func validate(_ config: SiteConfig, file: String) throws(ConfigError) {
        func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(file: file, key: key, message) }
        func port(_ value: Int, _ key: String) throws(ConfigError) {
            guard (1...65535).contains(value) else { throw fail(key, "must be a port number from 1 to 65535, got \(value)") }
        }
        guard PeerIdentity.isValidName(config.site) else { throw fail("site", "must be 1-63 characters of a-z, 0-9 and -, not starting with -") }
        guard !config.pkiDirectory.isEmpty else { throw fail("pkiDirectory", "must not be empty") }
        guard !config.dataDirectory.isEmpty else { throw fail("dataDirectory", "must not be empty") }
        guard logLevels.contains(config.logging.level) else {
            throw fail("logging.level", "must be one of \(logLevels.joined(separator: ", ")), got '\(config.logging.level)'")
        }
        guard (1024...(64 << 20)).contains(config.link.maximumFrameBytes) else {
            throw fail("link.maximumFrameBytes", "must be from 1024 to 67108864")
        }
        guard (10...600_000).contains(config.link.requestTimeoutMilliseconds) else {
            throw fail("link.requestTimeoutMilliseconds", "must be from 10 to 600000")
        }
        guard (100...600_000).contains(config.link.probeIntervalMilliseconds) else {
            throw fail("link.probeIntervalMilliseconds", "must be from 100 to 600000")
        }
        guard (2...3600).contains(config.link.suspicionSeconds) else {
            throw fail("link.suspicionSeconds", "must be from 2 to 3600")
        }
        guard ["sqlite", "postgres"].contains(config.store.backend) else {
            throw fail("store.backend", "must be one of sqlite, postgres, got '\(config.store.backend)'")
        }
        if config.store.backend == "postgres" {
            try port(config.store.postgres.port, "store.postgres.port")
            for (index, host) in config.store.postgres.hosts.enumerated() {
                do {
                    _ = try PostgresHost(parsing: host)
                } catch let error as StoreError {
                    throw fail("store.postgres.hosts[\(index)]", error.message)
                } catch {
                    throw fail("store.postgres.hosts[\(index)]", "\(error)")
                }
            }
            guard config.store.postgres.hosts.isEmpty || config.store.postgres.unixSocketPath.isEmpty else {
                throw fail("store.postgres.hosts", "cannot be used with store.postgres.unixSocketPath")
            }
            guard config.store.postgres.primaryCheckIntervalMilliseconds >= 100 else {
                throw fail("store.postgres.primaryCheckIntervalMilliseconds", "must be at least 100")
            }
            guard config.store.postgres.failoverWaitSeconds >= 1 else {
                throw fail("store.postgres.failoverWaitSeconds", "must be at least 1")
            }
            guard config.store.postgres.tls.isEmpty || ["disable", "prefer", "require"].contains(config.store.postgres.tls) else {
                throw fail("store.postgres.tls", "must be disable, prefer or require (or empty for the default), not \(config.store.postgres.tls)")
            }
            guard !config.store.postgres.database.isEmpty else { throw fail("store.postgres.database", "must not be empty") }
            guard !config.store.postgres.user.isEmpty else { throw fail("store.postgres.user", "must not be empty") }
        }
        try port(config.sip.udpPort, "sip.udpPort")
        try port(config.sip.tcpPort, "sip.tcpPort")
        try port(config.sip.tlsPort, "sip.tlsPort")
        guard ["drop", "refuse"].contains(config.sip.refusedSources) else {
            throw fail("sip.refusedSources", "must be one of drop, refuse, got '\(config.sip.refusedSources)'")
        }
        for (key, list) in [("sip.allow", config.sip.allow), ("sip.deny", config.sip.deny)] {
            for (index, entry) in list.enumerated() where !isNetwork(entry) {
                throw fail("\(key)[\(index)]", "'\(entry)' is not an IP address or CIDR network")
            }
        }
        for (key, value) in [
            ("sip.requestsPerWindow", config.sip.requestsPerWindow), ("sip.authenticatedRequestsPerWindow", config.sip.authenticatedRequestsPerWindow),
            ("sip.requestsPerWindowPerAddress", config.sip.requestsPerWindowPerAddress),
            ("sip.maximumAuthenticationFailures", config.sip.maximumAuthenticationFailures),
            ("sip.maximumConnectionsPerAddress", config.sip.maximumConnectionsPerAddress),
        ] where value < 1 {
            throw fail(key, "must be at least 1")
        }
        for (key, value) in [("sip.windowSeconds", config.sip.windowSeconds), ("sip.banSeconds", config.sip.banSeconds), ("sip.stallTimeoutSeconds", config.sip.stallTimeoutSeconds)]
        where !(value > 0 && value <= 86400) {
            throw fail(key, "must be more than 0 and at most 86400 seconds")
        }
        guard config.sip.udpReceiveBufferBytes == 0 || (65_536...(1 << 30)).contains(config.sip.udpReceiveBufferBytes) else {
            throw fail("sip.udpReceiveBufferBytes", "must be 0 (the kernel's default) or from 65536 to 1073741824 bytes")
        }
        if config.sip.tlsCertificatePath.isEmpty != config.sip.tlsKeyPath.isEmpty {
            throw fail(config.sip.tlsKeyPath.isEmpty ? "sip.tlsKeyPath" : "sip.tlsCertificatePath", "tlsCertificatePath and tlsKeyPath go together")
        }
        try validateCalls(config, file: file)
        try validateMonitor(config, file: file)
        try validateBackup(config, file: file)
        var names = Set<String>()
        var addresses = Set<String>()
        for (index, instance) in config.instances.enumerated() {
            let key = "instances[\(index)]"
            guard instance.role != .operator else { throw fail("\(key).role", "operator is not a service role") }
            guard PeerIdentity.isValidName(instance.name) else { throw fail("\(key).name", "must be 1-63 characters of a-z, 0-9 and -") }
            guard names.insert(instance.name).inserted else { throw fail("\(key).name", "'\(instance.name)' is used twice") }
            try port(instance.linkPort, "\(key).linkPort")
            try port(instance.adminPort, "\(key).adminPort")
            for (host, port, field) in [(instance.host, instance.linkPort, "linkPort"), (instance.adminHost, instance.adminPort, "adminPort")] {
                guard addresses.insert("\(host):\(port)").inserted else {
                    throw fail("\(key).\(field)", "\(host):\(port) is already used by another instance")
                }
            }
        }
        for role in Role.services where !config.instances.contains(where: { $0.role == role && !$0.standby }) {
            throw fail("instances", "no instance of role \(role) in service (standby ones do not count); every service needs at least one")
        }
    }
}

/// A JSON value as read from a configuration file, before it is given a type.
enum JSONTree: Codable, Equatable , Sendable {
    case object([String: JSONTree]), array([JSONTree]), string(String), number(Double), bool(Bool), null

    var kind: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number: "a number"
        case .bool: "true or false"
        case .null: "null"
        }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONTree].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONTree].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .object(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .number(let value):
            if value.rounded() == value, abs(value) < 1e15 { try container.encode(Int64(value)) } else { try container.encode(value) }
        case .bool(let value): try container.encode(value)
        case .null: try container.encodeNil()
        }
    }
}
