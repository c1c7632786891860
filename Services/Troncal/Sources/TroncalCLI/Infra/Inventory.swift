import Foundation
import TroncalProtocol
import TroncalRuntime

/// `infra/inventory.json`: the sites, their hosts, which instances run where, the standby pool, the VPN between
/// sites, the SBCs' floating address and the PostgreSQL/etcd members. `troncal infra render` turns it into each
/// host's files; `troncal infra check` validates it. See docs/infra.md.
struct Inventory: Codable, Sendable {
    /// Where the Troncal executables are installed on the hosts.
    var binDirectory = "/usr/bin"
    /// Where each host keeps `site.json` and `pki/`.
    var configDirectory = "/etc/troncal"
    /// Where the services keep their state.
    var dataDirectory = "/var/lib/troncal"
    /// The OS user the services run as.
    var user = "troncal"
    /// Roles that may have two instances on one host (normally none: a host's failure must not take two).
    var allowSameHost: [Role] = []
    var postgres = PostgresCluster()
    var sites: [Site] = []

    struct PostgresCluster: Codable, Sendable {
        /// Patroni's scope (the cluster's name in etcd).
        var scope = "troncal"
        var database = "troncal"
        var user = "troncal"
        var port = 5432
        var patroniPort = 8008
        var etcdClientPort = 2379
        var etcdPeerPort = 2380
        var binDirectory = "/usr/lib/postgresql/15/bin"
        var dataDirectory = "/var/lib/postgresql/15/troncal"
        /// The server's TLS certificate and key on each member (the pg_hba rules accept TLS connections only).
        var tlsCertificateFile = "/etc/troncal/postgres/server.crt"
        var tlsKeyFile = "/etc/troncal/postgres/server.key"
        /// Patroni's TTL and loop wait: a dead primary's leader key expires after `ttl`; standbys look every `loopWait`.
        var ttl = 30
        var loopWait = 10

        init() {}
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = PostgresCluster()
            scope = try c.decodeIfPresent(String.self, forKey: .scope) ?? d.scope
            database = try c.decodeIfPresent(String.self, forKey: .database) ?? d.database
            user = try c.decodeIfPresent(String.self, forKey: .user) ?? d.user
            port = try c.decodeIfPresent(Int.self, forKey: .port) ?? d.port
            patroniPort = try c.decodeIfPresent(Int.self, forKey: .patroniPort) ?? d.patroniPort
            etcdClientPort = try c.decodeIfPresent(Int.self, forKey: .etcdClientPort) ?? d.etcdClientPort
            etcdPeerPort = try c.decodeIfPresent(Int.self, forKey: .etcdPeerPort) ?? d.etcdPeerPort
            binDirectory = try c.decodeIfPresent(String.self, forKey: .binDirectory) ?? d.binDirectory
            dataDirectory = try c.decodeIfPresent(String.self, forKey: .dataDirectory) ?? d.dataDirectory
            tlsCertificateFile = try c.decodeIfPresent(String.self, forKey: .tlsCertificateFile) ?? d.tlsCertificateFile
            tlsKeyFile = try c.decodeIfPresent(String.self, forKey: .tlsKeyFile) ?? d.tlsKeyFile
            ttl = try c.decodeIfPresent(Int.self, forKey: .ttl) ?? d.ttl
            loopWait = try c.decodeIfPresent(Int.self, forKey: .loopWait) ?? d.loopWait
        }
    }

    struct Site: Codable, Sendable {
        var name: String
        /// A witness site only holds an etcd member (and no service).
        var witness = false
        var vpn: VPN?
        /// The SBCs' floating address (CIDR) that customers and carriers use, moved by keepalived; none: no VRRP.
        var sbcFloatingAddress: String?
        /// The network interface the floating address lives on.
        var sbcInterface = "eth0"
        /// VRRP router id of the site's SBC group (1-255, unique on the LAN).
        var vrrpRouterID = 51
        /// More floating addresses (CIDR), one per SBC in placement order (the SBCs in service, then the standby
        /// ones): each lives on its own SBC while that SBC is healthy and is covered by another one otherwise.
        /// Customers spread their calls over them (DNS with several addresses), so an SBC the controller starts
        /// takes its share of new calls as soon as it answers `/health`.
        var sbcSpreadAddresses: [String] = []
        /// VRRP router id of the first spread address; the next ones count up from it (1-255, unique on the LAN).
        var spreadRouterID = 100
        /// The site's configuration (site.json keys) apart from `site`, `instances` and `store.postgres.hosts`,
        /// which the renderer fills; missing keys take their defaults.
        var config: JSONValue?
        var hosts: [Host] = []

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            witness = try c.decodeIfPresent(Bool.self, forKey: .witness) ?? false
            vpn = try c.decodeIfPresent(VPN.self, forKey: .vpn)
            sbcFloatingAddress = try c.decodeIfPresent(String.self, forKey: .sbcFloatingAddress)
            sbcInterface = try c.decodeIfPresent(String.self, forKey: .sbcInterface) ?? "eth0"
            vrrpRouterID = try c.decodeIfPresent(Int.self, forKey: .vrrpRouterID) ?? 51
            sbcSpreadAddresses = try c.decodeIfPresent([String].self, forKey: .sbcSpreadAddresses) ?? []
            spreadRouterID = try c.decodeIfPresent(Int.self, forKey: .spreadRouterID) ?? 100
            config = try c.decodeIfPresent(JSONValue.self, forKey: .config)
            hosts = try c.decodeIfPresent([Host].self, forKey: .hosts) ?? []
        }
    }

    /// The site's WireGuard gateway: its tunnel address, its public key (the private key stays on the host, in
    /// `/etc/wireguard/troncal.key`), where other sites reach it, and the networks behind it.
    struct VPN: Codable, Sendable {
        var host: String
        var address: String
        var listenPort = 51820
        var endpoint: String
        var publicKey: String
        var networks: [String] = []

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            host = try c.decode(String.self, forKey: .host)
            address = try c.decode(String.self, forKey: .address)
            listenPort = try c.decodeIfPresent(Int.self, forKey: .listenPort) ?? 51820
            endpoint = try c.decode(String.self, forKey: .endpoint)
            publicKey = try c.decode(String.self, forKey: .publicKey)
            networks = try c.decodeIfPresent([String].self, forKey: .networks) ?? []
        }
    }

    struct Host: Codable, Sendable {
        var name: String
        var address: String
        /// Instances (`sbc-1`, `routing-2`, …) that run here.
        var instances: [String] = []
        /// Instances installed here but not started: the site's standby pool, taken into service by the controller.
        var standby: [String] = []
        /// A PostgreSQL member (Patroni).
        var postgres = false
        /// An etcd member.
        var etcd = false

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            address = try c.decode(String.self, forKey: .address)
            instances = try c.decodeIfPresent([String].self, forKey: .instances) ?? []
            standby = try c.decodeIfPresent([String].self, forKey: .standby) ?? []
            postgres = try c.decodeIfPresent(Bool.self, forKey: .postgres) ?? false
            etcd = try c.decodeIfPresent(Bool.self, forKey: .etcd) ?? false
        }
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        binDirectory = try c.decodeIfPresent(String.self, forKey: .binDirectory) ?? "/usr/bin"
        configDirectory = try c.decodeIfPresent(String.self, forKey: .configDirectory) ?? "/etc/troncal"
        dataDirectory = try c.decodeIfPresent(String.self, forKey: .dataDirectory) ?? "/var/lib/troncal"
        user = try c.decodeIfPresent(String.self, forKey: .user) ?? "troncal"
        allowSameHost = try c.decodeIfPresent([Role].self, forKey: .allowSameHost) ?? []
        postgres = try c.decodeIfPresent(PostgresCluster.self, forKey: .postgres) ?? PostgresCluster()
        sites = try c.decode([Site].self, forKey: .sites)
    }

    static func load(_ path: String) throws -> Inventory {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw InventoryError("cannot read \(path): \(error.localizedDescription)")
        }
        do {
            return try JSONDecoder().decode(Inventory.self, from: data)
        } catch let error as DecodingError {
            throw InventoryError("\(path): \(InventoryError.describe(error))")
        }
    }

    /// An instance placed on a host, with the ports the renderer gives it.
    struct Placement: Sendable {
        var site: String
        var host: Host
        var instance: String
        var role: Role
        var standby: Bool
        var linkPort: Int
        var adminPort: Int
        var sipPort: Int
    }

    /// Every instance of a site (running and standby), with its ports: the role's default ports, plus 10 for each
    /// earlier instance of the same role on the same host.
    func placements(_ site: Site) throws -> [Placement] {
        var result: [Placement] = []
        for host in site.hosts {
            var perRole: [Role: Int] = [:]
            for (name, standby) in host.instances.map({ ($0, false) }) + host.standby.map({ ($0, true) }) {
                guard let role = Role(rawValue: String(name.prefix { $0 != "-" })), Role.services.contains(role) else {
                    throw InventoryError("site \(site.name), host \(host.name): \"\(name)\" is not <role>-<n> of a service role")
                }
                let earlier = perRole[role, default: 0]
                perRole[role] = earlier + 1
                result.append(Placement(
                    site: site.name, host: host, instance: name, role: role, standby: standby,
                    linkPort: InstanceSettings.defaultLinkPort(for: role) + 10 * earlier,
                    adminPort: InstanceSettings.defaultAdminPort(for: role) + 10 * earlier,
                    sipPort: role == .pbx ? 5070 + earlier : 0))
            }
        }
        return result
    }
}

struct InventoryError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description
        }
        switch error {
        case .keyNotFound(let key, let context): return "key '\(path(context)).\(key.stringValue)' is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "key '\(path(context))': \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

/// Any JSON value, kept as it was written (the inventory's per-site configuration).
indirect enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let value = try? c.decode(Bool.self) { self = .bool(value) }
        else if let value = try? c.decode(Double.self) { self = .number(value) }
        else if let value = try? c.decode(String.self) { self = .string(value) }
        else if let value = try? c.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let value): try c.encode(value)
        case .number(let value):
            if value.rounded() == value, abs(value) < 1e15 { try c.encode(Int64(value)) } else { try c.encode(value) }
        case .string(let value): try c.encode(value)
        case .array(let value): try c.encode(value)
        case .object(let value): try c.encode(value)
        }
    }
}
