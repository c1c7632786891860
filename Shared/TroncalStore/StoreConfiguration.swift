import Foundation

/// Where a service keeps its data: an embedded SQLite file (the default) or a PostgreSQL server.
///
/// Coded with a `backend` discriminator next to the backend's own keys, e.g.
/// `{"backend": "sqlite", "path": "/var/lib/troncal/billing.db"}` or
/// `{"backend": "postgres", "host": "10.0.0.5", "user": "billing", "password": "…", "database": "billing"}`.
/// Its description never shows the password.
public enum StoreConfiguration: Sendable, Hashable {
    case sqlite(SQLiteConfiguration)
    case postgres(PostgresConfiguration)

    /// An SQLite database file at `path`; its directory must exist.
    public static func sqlite(path: String) -> StoreConfiguration {
        .sqlite(SQLiteConfiguration(path: path))
    }

    /// A PostgreSQL server reached over TCP.
    public static func postgres(
        host: String, port: Int = 5432, user: String, password: String?, database: String
    ) -> StoreConfiguration {
        .postgres(PostgresConfiguration(host: host, port: port, user: user, password: password, database: database))
    }

    /// The backend this configuration selects.
    public var backend: SQLBackendKind {
        switch self {
        case .sqlite: .sqlite
        case .postgres: .postgres
        }
    }
}

extension StoreConfiguration: Codable {
    private enum CodingKeys: String, CodingKey {
        case backend
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let name = try container.decode(String.self, forKey: .backend)
        guard let backend = SQLBackendKind(rawValue: name) else {
            let allowed = SQLBackendKind.allCases.map(\.rawValue).joined(separator: ", ")
            throw DecodingError.dataCorruptedError(
                forKey: .backend, in: container, debugDescription: "unknown store backend \"\(name)\"; allowed: \(allowed)")
        }
        switch backend {
        case .sqlite: self = .sqlite(try SQLiteConfiguration(from: decoder))
        case .postgres: self = .postgres(try PostgresConfiguration(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(backend.rawValue, forKey: .backend)
        switch self {
        case .sqlite(let configuration): try configuration.encode(to: encoder)
        case .postgres(let configuration): try configuration.encode(to: encoder)
        }
    }
}

extension StoreConfiguration: CustomStringConvertible, CustomDebugStringConvertible {
    /// The database's location, without the password.
    public var description: String {
        switch self {
        case .sqlite(let configuration): configuration.description
        case .postgres(let configuration): configuration.description
        }
    }

    public var debugDescription: String { description }
}

/// An embedded SQLite database file, opened in WAL mode with a busy timeout.
public struct SQLiteConfiguration: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The database file (created when missing); its directory must exist. `:memory:` opens a private in-memory
    /// database, for tests.
    public var path: String
    /// How long a statement waits for another process's lock on the file before failing.
    public var busyTimeoutMilliseconds: Int

    public init(path: String, busyTimeoutMilliseconds: Int = 5_000) {
        self.path = path
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
    }

    private enum CodingKeys: String, CodingKey {
        case path, busyTimeoutMilliseconds
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        path = try container.decode(String.self, forKey: .path)
        busyTimeoutMilliseconds = try container.decodeIfPresent(Int.self, forKey: .busyTimeoutMilliseconds) ?? 5_000
    }

    public var description: String { "sqlite:\(path)" }
}

/// How a PostgreSQL connection uses TLS.
public enum PostgresTLSMode: String, Sendable, Hashable, Codable, CaseIterable {
    /// Plain TCP (loopback, a Unix socket, or a link already inside the site VPN).
    case disable
    /// TLS when the server offers it, plain TCP otherwise; the certificate is verified when TLS is used.
    case prefer
    /// TLS with a verified server certificate, or no connection.
    case require
}

/// One PostgreSQL server of a replicated cluster, `host:port` (`[::1]:5432` for an IPv6 address).
public struct PostgresHost: Sendable, Hashable, CustomStringConvertible, Codable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int = 5432) {
        self.host = host
        self.port = port
    }

    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`.
    public init(parsing text: String) throws {
        var host = text
        var port = 5432
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw StoreError(.invalidConfiguration, "PostgreSQL host \"\(text)\" has no closing ]")
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let value = Int(rest.dropFirst()) else {
                    throw StoreError(.invalidConfiguration, "PostgreSQL host \"\(text)\" has a bad port")
                }
                port = value
            }
        } else if let colon = text.lastIndex(of: ":"), text.firstIndex(of: ":") == colon {
            host = String(text[..<colon])
            guard let value = Int(text[text.index(after: colon)...]) else {
                throw StoreError(.invalidConfiguration, "PostgreSQL host \"\(text)\" has a bad port")
            }
            port = value
        }
        guard !host.isEmpty else { throw StoreError(.invalidConfiguration, "a PostgreSQL host is empty") }
        guard (1...65_535).contains(port) else {
            throw StoreError(.invalidConfiguration, "PostgreSQL host \"\(text)\": port \(port) is not between 1 and 65535")
        }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(parsing: text)
        } catch let error as StoreError {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// A PostgreSQL server (or a replicated cluster of them) and the credentials to reach it.
///
/// Connects over TCP to `host:port`, or through the Unix socket at ``unixSocketPath`` when set. TLS defaults to
/// ``PostgresTLSMode/disable`` for loopback hosts and Unix sockets and to ``PostgresTLSMode/require`` for any other
/// host; set ``tls`` to choose explicitly.
///
/// With several ``hosts`` (a primary and its standbys, e.g. managed by Patroni) the store connects to the one that
/// accepts writes (`pg_is_in_recovery()` is false), checks it every ``primaryCheckIntervalMilliseconds``, and moves
/// to the new primary after a failover or switchover; see ``PostgresStore``.
public struct PostgresConfiguration: Sendable, Hashable, Codable {
    public var host: String
    public var port: Int
    /// Every server of a replicated cluster, in order of preference; empty means only `host:port`.
    public var hosts: [PostgresHost]
    /// With several hosts: how often the store checks that its server is still the primary.
    public var primaryCheckIntervalMilliseconds: Int
    /// With several hosts: how long a statement that could not run (no primary reachable, or the server turned
    /// read-only) waits for a primary before its error is returned.
    public var failoverWaitSeconds: Int
    public var user: String
    public var password: String?
    public var database: String
    /// A Unix-domain socket to connect through instead of TCP: either the socket file or the directory holding it
    /// (as in PostgreSQL's `unix_socket_directories`; `.s.PGSQL.<port>` is then appended).
    public var unixSocketPath: String?
    /// The TLS mode; `nil` picks the default described on the type.
    public var tls: PostgresTLSMode?
    /// A PEM file of the CA that signed the server's certificate, when it is not in the system's trust store.
    public var tlsCACertificatePath: String?
    /// The most connections the store's pool opens.
    public var maximumConnections: Int
    /// How long opening one connection may take.
    public var connectTimeoutSeconds: Int

    public init(
        host: String = "127.0.0.1", port: Int = 5432, user: String, password: String? = nil, database: String,
        unixSocketPath: String? = nil, tls: PostgresTLSMode? = nil, tlsCACertificatePath: String? = nil,
        maximumConnections: Int = 10, connectTimeoutSeconds: Int = 10, hosts: [PostgresHost] = [],
        primaryCheckIntervalMilliseconds: Int = 1_000, failoverWaitSeconds: Int = 30
    ) {
        self.host = host
        self.port = port
        self.hosts = hosts
        self.primaryCheckIntervalMilliseconds = primaryCheckIntervalMilliseconds
        self.failoverWaitSeconds = failoverWaitSeconds
        self.user = user
        self.password = password
        self.database = database
        self.unixSocketPath = unixSocketPath
        self.tls = tls
        self.tlsCACertificatePath = tlsCACertificatePath
        self.maximumConnections = maximumConnections
        self.connectTimeoutSeconds = connectTimeoutSeconds
    }

    /// The servers to try: ``hosts``, or `host:port` alone.
    public var candidates: [PostgresHost] {
        hosts.isEmpty ? [PostgresHost(host: host, port: port)] : hosts
    }

    /// Parses a libpq-style URL: `postgres://user:password@host:port/database?sslmode=disable&host=/socket/dir`.
    ///
    /// `sslmode` accepts `disable`, `prefer` and `require` (`verify-ca`/`verify-full` mean `require`); a `host`
    /// query item that is a path selects a Unix socket. Several servers are written as libpq writes them,
    /// `postgres://user@db1:5432,db2:5432/database`; `target_session_attrs` may be given as `read-write` (what the
    /// store always looks for). Errors never repeat the URL, which may hold a password.
    public init(url: String) throws {
        var url = url
        var hostList: [PostgresHost] = []
        if let schemeEnd = url.range(of: "://") {
            let authorityEnd = url[schemeEnd.upperBound...].firstIndex(where: { $0 == "/" || $0 == "?" }) ?? url.endIndex
            let authority = url[schemeEnd.upperBound..<authorityEnd]
            let hostStart = authority.lastIndex(of: "@").map { authority.index(after: $0) } ?? authority.startIndex
            let hostPart = authority[hostStart...]
            if hostPart.contains(",") {
                hostList = try hostPart.split(separator: ",", omittingEmptySubsequences: false).map {
                    try PostgresHost(parsing: String($0))
                }
                url.replaceSubrange(hostStart..<authorityEnd, with: hostList[0].description)
            }
        }
        guard let components = URLComponents(string: url), let scheme = components.scheme,
            scheme == "postgres" || scheme == "postgresql"
        else {
            throw StoreError(.invalidConfiguration, "not a postgres:// URL")
        }
        guard let user = components.user, !user.isEmpty else {
            throw StoreError(.invalidConfiguration, "the PostgreSQL URL names no user")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else {
            throw StoreError(.invalidConfiguration, "the PostgreSQL URL names no database")
        }
        self.init(
            host: components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1", port: components.port ?? 5432,
            user: user, password: components.password, database: database)
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                switch item.value {
                case "disable": tls = .disable
                case "prefer", "allow": tls = .prefer
                case "require", "verify-ca", "verify-full": tls = .require
                default:
                    throw StoreError(
                        .invalidConfiguration, "sslmode \"\(item.value ?? "")\" is not one of disable, prefer, require")
                }
            case "host":
                if let value = item.value, value.hasPrefix("/") { unixSocketPath = value }
            case "sslrootcert":
                tlsCACertificatePath = item.value
            case "target_session_attrs":
                guard item.value == "read-write" || item.value == "primary" else {
                    throw StoreError(
                        .invalidConfiguration,
                        "target_session_attrs \"\(item.value ?? "")\" is not supported; the store always uses the primary")
                }
            default:
                throw StoreError(.invalidConfiguration, "unknown PostgreSQL URL option \"\(item.name)\"")
            }
        }
        hosts = hostList
    }

    /// The TLS mode in force: ``tls`` when set, otherwise the default for the host.
    public var effectiveTLS: PostgresTLSMode {
        if let tls { return tls }
        if unixSocketPath != nil { return .disable }
        return candidates.allSatisfy({ Self.isLoopback($0.host) }) ? .disable : .require
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    private enum CodingKeys: String, CodingKey {
        case host, port, user, password, database, unixSocketPath, tls, tlsCACertificatePath, maximumConnections,
            connectTimeoutSeconds, hosts, primaryCheckIntervalMilliseconds, failoverWaitSeconds
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            host: try container.decodeIfPresent(String.self, forKey: .host) ?? "127.0.0.1",
            port: try container.decodeIfPresent(Int.self, forKey: .port) ?? 5432,
            user: try container.decode(String.self, forKey: .user),
            password: try container.decodeIfPresent(String.self, forKey: .password),
            database: try container.decode(String.self, forKey: .database),
            unixSocketPath: try container.decodeIfPresent(String.self, forKey: .unixSocketPath),
            tls: try container.decodeIfPresent(PostgresTLSMode.self, forKey: .tls),
            tlsCACertificatePath: try container.decodeIfPresent(String.self, forKey: .tlsCACertificatePath),
            maximumConnections: try container.decodeIfPresent(Int.self, forKey: .maximumConnections) ?? 10,
            connectTimeoutSeconds: try container.decodeIfPresent(Int.self, forKey: .connectTimeoutSeconds) ?? 10,
            hosts: try container.decodeIfPresent([PostgresHost].self, forKey: .hosts) ?? [],
            primaryCheckIntervalMilliseconds:
                try container.decodeIfPresent(Int.self, forKey: .primaryCheckIntervalMilliseconds) ?? 1_000,
            failoverWaitSeconds: try container.decodeIfPresent(Int.self, forKey: .failoverWaitSeconds) ?? 30)
    }
}

extension PostgresConfiguration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// `postgres://user@host:port/database`, with the password replaced by `***` when there is one.
    public var description: String {
        let credentials = password == nil ? user : "\(user):***"
        let endpoint =
            unixSocketPath.map { "[socket \($0)]" } ?? candidates.map(\.description).joined(separator: ",")
        return "postgres://\(credentials)@\(endpoint)/\(database)"
    }

    public var debugDescription: String { description }

    /// Mirrors the configuration without its password, so `dump` and debuggers do not show it.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "host": host, "port": port, "hosts": hosts.map(\.description), "user": user, "password": password == nil ? "nil" : "***",
                "database": database, "unixSocketPath": unixSocketPath as Any, "tls": effectiveTLS,
                "maximumConnections": maximumConnections, "connectTimeoutSeconds": connectTimeoutSeconds,
            ])
    }
}
