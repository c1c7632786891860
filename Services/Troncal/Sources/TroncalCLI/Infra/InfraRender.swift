import Foundation
import TroncalProtocol
import TroncalRuntime

/// Turns an ``Inventory`` into each host's files, under `<out>/<site>/<host>/`:
/// - `systemd/troncal-<role>@.service` templates and `systemd/enable.txt` (the `troncal-<role>@<instance>.service`
///   units to enable; standby instances are listed in `systemd/standby.txt`, installed but not started);
/// - `troncal/site.json` (the site's configuration with every instance's addresses and the PostgreSQL hosts);
/// - `wireguard/wg-troncal.conf` on the site's VPN gateway (peers: the other sites' gateways);
/// - `keepalived/keepalived.conf` on SBC hosts (standby ones included) when the site has floating addresses;
/// - `patroni/patroni.yml` on PostgreSQL members, `etcd/etcd.env` on etcd members;
/// - `prometheus/troncal-targets.json` on monitor hosts (file_sd targets of every instance's admin port).
struct InfraRenderer {
    let inventory: Inventory

    /// Every file to write: path relative to the output directory → contents.
    func files() throws -> [String: String] {
        var files: [String: String] = [:]
        let etcdMembers = inventory.sites.flatMap { site in site.hosts.filter(\.etcd).map { (site.name, $0) } }
        let postgresMembers = inventory.sites.flatMap { site in site.hosts.filter(\.postgres).map { (site.name, $0) } }
        for site in inventory.sites {
            let placements = try inventory.placements(site)
            let siteJSON = site.witness ? nil : try siteConfig(site, placements: placements, postgres: postgresMembers.map(\.1))
            // systemd waits this long for a stop before SIGKILL: an SBC takes calls for sbc.drainGraceSeconds while its
            // floating address moves, then drains them for sbc.drainSeconds.
            let drainSeconds = try siteJSON.map {
                let sbc = try ConfigLoader.parse(Data($0.utf8), file: "site \(site.name)").sbc
                return sbc.drainSeconds + sbc.drainGraceSeconds
            } ?? 0
            for host in site.hosts {
                let base = "\(site.name)/\(host.name)"
                let here = placements.filter { $0.host.name == host.name }
                if !here.isEmpty {
                    for role in Set(here.map(\.role)).sorted(by: { $0.rawValue < $1.rawValue }) {
                        files["\(base)/systemd/troncal-\(role.rawValue)@.service"] = unit(role, stopSeconds: role == .sbc ? max(40, drainSeconds + 10) : 40)
                    }
                    files["\(base)/systemd/enable.txt"] = here.filter { !$0.standby }
                        .map { "troncal-\($0.role.rawValue)@\($0.instance).service\n" }.joined()
                    files["\(base)/systemd/standby.txt"] = here.filter(\.standby)
                        .map { "troncal-\($0.role.rawValue)@\($0.instance).service\n" }.joined()
                    if let siteJSON { files["\(base)/troncal/site.json"] = siteJSON }
                }
                if let vpn = site.vpn, vpn.host == host.name {
                    files["\(base)/wireguard/wg-troncal.conf"] = wireguard(site, vpn)
                }
                // The standby SBCs' hosts too, last by priority: a standby the controller starts takes part in VRRP
                // at once (until then its health check fails and its keepalived stays in FAULT).
                let sbcs = placements.filter { $0.role == .sbc && !$0.standby } + placements.filter { $0.role == .sbc && $0.standby }
                if site.sbcFloatingAddress != nil || !site.sbcSpreadAddresses.isEmpty, let mine = sbcs.first(where: { $0.host.name == host.name }) {
                    files["\(base)/keepalived/keepalived.conf"] = keepalived(site, floating: site.sbcFloatingAddress, mine: mine, all: sbcs)
                }
                if host.postgres {
                    files["\(base)/patroni/patroni.yml"] = patroni(site, host, etcd: etcdMembers.map(\.1))
                }
                if host.etcd {
                    files["\(base)/etcd/etcd.env"] = etcd(host, members: etcdMembers)
                }
                if here.contains(where: { $0.role == .monitor }) {
                    files["\(base)/prometheus/troncal-targets.json"] = try prometheusTargets(placements.filter { !$0.standby })
                }
            }
        }
        return files
    }

    /// Writes the files under `directory` (created), private keys never among them.
    func write(to directory: URL) throws -> Int {
        let files = try files()
        for (path, contents) in files {
            let url = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(contents.utf8).write(to: url, options: .atomic)
            let secret = path.hasSuffix(".conf") && path.contains("wireguard") || path.hasSuffix("patroni.yml")
            try FileManager.default.setAttributes([.posixPermissions: secret ? 0o600 : 0o644], ofItemAtPath: url.path)
        }
        return files.count
    }

    // MARK: - systemd

    /// One template per role; `%i` is the instance name. Restarted on failure, with the usual hardening; an SBC may
    /// bind port 5060/5061 without root.
    func unit(_ role: Role, stopSeconds: Int = 40) -> String {
        let capabilities = role == .sbc ? "CAP_NET_BIND_SERVICE" : ""
        return """
            [Unit]
            Description=Troncal \(role.rawValue) instance %i
            Documentation=https://github.com/troncal/troncal/blob/main/docs/infra.md
            After=network-online.target
            Wants=network-online.target
            StartLimitIntervalSec=60
            StartLimitBurst=5

            [Service]
            Type=simple
            User=\(inventory.user)
            Group=\(inventory.user)
            ExecStart=\(inventory.binDirectory)/troncal-\(role.rawValue) --config \(inventory.configDirectory)/site.json --instance %i
            Restart=on-failure
            RestartSec=2
            TimeoutStopSec=\(stopSeconds)
            KillSignal=SIGTERM
            LimitNOFILE=65536
            NoNewPrivileges=yes
            ProtectSystem=strict
            ProtectHome=yes
            PrivateTmp=yes
            PrivateDevices=yes
            ProtectKernelTunables=yes
            ProtectKernelModules=yes
            ProtectControlGroups=yes
            RestrictSUIDSGID=yes
            LockPersonality=yes
            RestrictRealtime=yes
            RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
            SystemCallArchitectures=native
            ReadWritePaths=\(inventory.dataDirectory)
            ReadOnlyPaths=\(inventory.configDirectory)
            CapabilityBoundingSet=\(capabilities)
            AmbientCapabilities=\(capabilities)

            [Install]
            WantedBy=multi-user.target

            """
    }

    // MARK: - site.json

    func siteConfig(_ site: Inventory.Site, placements: [Inventory.Placement], postgres: [Inventory.Host]) throws -> String {
        var object: [String: JSONValue] = [:]
        if case .object(let given) = site.config ?? .object([:]) { object = given }
        object["site"] = .string(site.name)
        object["instances"] = .array(placements.map { placement in
            var instance: [String: JSONValue] = [
                "role": .string(placement.role.rawValue), "name": .string(placement.instance),
                "host": .string(placement.host.address), "linkPort": .number(Double(placement.linkPort)),
                "adminHost": .string(placement.host.address), "adminPort": .number(Double(placement.adminPort)),
            ]
            if placement.role == .pbx { instance["sipPort"] = .number(Double(placement.sipPort)) }
            // The standby pool: known to every peer, started by the capacity controller (act mode) when needed.
            if placement.standby { instance["standby"] = .bool(true) }
            return .object(instance)
        })
        if !postgres.isEmpty {
            var store: [String: JSONValue] = [:]
            if case .object(let given) = object["store"] ?? .object([:]) { store = given }
            var settings: [String: JSONValue] = [:]
            if case .object(let given) = store["postgres"] ?? .object([:]) { settings = given }
            settings["hosts"] = .array(postgres.map { .string("\($0.address):\(inventory.postgres.port)") })
            settings["database"] = settings["database"] ?? .string(inventory.postgres.database)
            settings["user"] = settings["user"] ?? .string(inventory.postgres.user)
            store["postgres"] = .object(settings)
            store["backend"] = .string("postgres")
            object["store"] = .object(store)
        }
        if site.sbcFloatingAddress != nil || !site.sbcSpreadAddresses.isEmpty {
            // keepalived moves an address about 3 s after an SBC's /health fails: a stopping SBC takes calls that long.
            var sbc: [String: JSONValue] = [:]
            if case .object(let given) = object["sbc"] ?? .object([:]) { sbc = given }
            sbc["drainGraceSeconds"] = sbc["drainGraceSeconds"] ?? .number(4)
            object["sbc"] = .object(sbc)
        }
        object["pkiDirectory"] = object["pkiDirectory"] ?? .string("\(inventory.configDirectory)/pki")
        object["dataDirectory"] = object["dataDirectory"] ?? .string(inventory.dataDirectory)
        let data = try JSONEncoder().encode(JSONValue.object(object))
        let config: SiteConfig
        do {
            config = try ConfigLoader.parse(data, file: "inventory site \(site.name)")
        } catch {
            throw InventoryError("site \(site.name): \(error)")
        }
        return String(decoding: ConfigLoader.encode(config), as: UTF8.self) + "\n"
    }

    // MARK: - WireGuard

    /// The gateway's interface. No private key: `PostUp` loads it from the host's own key file, so the rendered
    /// files hold no secret.
    func wireguard(_ site: Inventory.Site, _ vpn: Inventory.VPN) -> String {
        var text = """
            # Troncal site \(site.name): WireGuard between sites (rendered by `troncal infra render`).
            # The private key stays on this host: wg genkey > /etc/wireguard/troncal.key (mode 600).
            [Interface]
            Address = \(vpn.address)/32
            ListenPort = \(vpn.listenPort)
            PostUp = wg set %i private-key /etc/wireguard/troncal.key

            """
        for other in inventory.sites where other.name != site.name {
            guard let peer = other.vpn else { continue }
            let allowed = (["\(peer.address)/32"] + peer.networks).joined(separator: ", ")
            text += """

                # site \(other.name)
                [Peer]
                PublicKey = \(peer.publicKey)
                AllowedIPs = \(allowed)
                Endpoint = \(peer.endpoint):\(peer.listenPort)
                PersistentKeepalive = 25

                """
        }
        return text
    }

    // MARK: - keepalived

    /// VRRP between the site's SBC hosts, unicast (no multicast on most clouds). The address sits on the host
    /// whose SBC answers `/health` (a draining SBC says it is shutting down, so the address leaves it at once); the
    /// first SBC has the highest priority, standby ones the lowest; no preemption, so a recovered SBC does not take
    /// the address back from a working one.
    ///
    /// Each spread address (`sbcSpreadAddresses`) is a VRRP instance of its own whose home is one SBC (the k-th):
    /// there it has the highest priority and preempts, so the address comes back to its SBC as soon as that SBC is
    /// healthy again (started by the controller, say); elsewhere the priorities fall with the distance from the home.
    /// Moving it cuts no call when the SBCs advertise their own addresses (`sbc.advertiseInstanceAddress`).
    func keepalived(
        _ site: Inventory.Site, floating: String?, mine: Inventory.Placement, all: [Inventory.Placement]
    ) -> String {
        let index = all.firstIndex { $0.instance == mine.instance } ?? 0
        let peers = all.filter { $0.host.address != mine.host.address }.map { "        \($0.host.address)" }
        let name = site.name.replacingOccurrences(of: "-", with: "_")
        // One VRRP instance per address, over unicast to the other SBC hosts, following the SBC's health.
        func vrrp(_ suffix: String, routerID: Int, priority: Int, preempt: Bool, address: String) -> String {
            """
            vrrp_instance troncal_sbc_\(name)\(suffix) {
                state BACKUP
                interface \(site.sbcInterface)
                virtual_router_id \(routerID)
                priority \(priority)
                advert_int 1\(preempt ? "" : "\n    nopreempt")
                unicast_src_ip \(mine.host.address)
                unicast_peer {
            \(peers.joined(separator: "\n"))
                }
                virtual_ipaddress {
                    \(address) dev \(site.sbcInterface)
                }
                track_script {
                    troncal_sbc_health
                }
            }

            """
        }
        var instances: [String] = []
        if let floating {
            instances.append(vrrp("", routerID: site.vrrpRouterID, priority: max(1, 200 - 10 * index), preempt: false, address: floating))
        }
        for (home, address) in site.sbcSpreadAddresses.enumerated() {
            let distance = (index - home + all.count) % max(1, all.count)
            instances.append(vrrp(
                "_\(home + 1)", routerID: site.spreadRouterID + home, priority: distance == 0 ? 250 : max(1, 150 - 10 * distance), preempt: true,
                address: address))
        }
        return """
            # Troncal site \(site.name): the SBCs' floating address (rendered by `troncal infra render`).
            global_defs {
                router_id \(site.name)-\(mine.host.name)
                enable_script_security
                script_user root
            }

            vrrp_script troncal_sbc_health {
                script "/usr/bin/curl -fsS --max-time 1 -o /dev/null http://\(mine.host.address):\(mine.adminPort)/health"
                interval 1
                timeout 1
                fall 2
                rise 2
            }

            \(instances.joined(separator: "\n"))
            """
    }

    // MARK: - Patroni and etcd

    func patroni(_ site: Inventory.Site, _ host: Inventory.Host, etcd: [Inventory.Host]) -> String {
        let pg = inventory.postgres
        let etcdHosts = etcd.map { "\($0.address):\(pg.etcdClientPort)" }.joined(separator: ",")
        return """
            # Troncal: a PostgreSQL member managed by Patroni (rendered by `troncal infra render`).
            # Passwords come from the environment (PATRONI_SUPERUSER_PASSWORD, PATRONI_REPLICATION_PASSWORD,
            # PATRONI_RESTAPI_PASSWORD), never from this file.
            scope: \(pg.scope)
            name: \(site.name)-\(host.name)
            restapi:
              listen: \(host.address):\(pg.patroniPort)
              connect_address: \(host.address):\(pg.patroniPort)
            etcd3:
              hosts: \(etcdHosts)
            bootstrap:
              dcs:
                ttl: \(pg.ttl)
                loop_wait: \(pg.loopWait)
                retry_timeout: \(pg.loopWait)
                maximum_lag_on_failover: 0
                synchronous_mode: true
                synchronous_mode_strict: false
                postgresql:
                  use_pg_rewind: true
                  parameters:
                    wal_level: replica
                    hot_standby: "on"
                    max_wal_senders: 10
                    max_replication_slots: 10
                    synchronous_commit: "on"
              initdb:
                - encoding: UTF8
                - data-checksums
            postgresql:
              listen: \(host.address):\(pg.port)
              connect_address: \(host.address):\(pg.port)
              use_unix_socket: true
              data_dir: \(pg.dataDirectory)
              bin_dir: \(pg.binDirectory)
              parameters:
                ssl: "on"
                ssl_cert_file: \(pg.tlsCertificateFile)
                ssl_key_file: \(pg.tlsKeyFile)
              authentication:
                superuser:
                  username: postgres
                replication:
                  username: replicator
              pg_hba:
                - local all all peer
                - hostssl replication replicator 0.0.0.0/0 scram-sha-256
                - hostssl all all 0.0.0.0/0 scram-sha-256
            tags:
              nofailover: false
              noloadbalance: false

            """
    }

    func etcd(_ host: Inventory.Host, members: [(String, Inventory.Host)]) -> String {
        let pg = inventory.postgres
        let me = members.first { $0.1.name == host.name && $0.1.address == host.address }.map { "\($0.0)-\($0.1.name)" } ?? host.name
        let cluster = members.map { "\($0.0)-\($0.1.name)=http://\($0.1.address):\(pg.etcdPeerPort)" }.joined(separator: ",")
        return """
            # Troncal: an etcd member for Patroni (rendered by `troncal infra render`); /etc/default/etcd on Debian.
            ETCD_NAME="\(me)"
            ETCD_DATA_DIR="/var/lib/etcd/troncal"
            ETCD_LISTEN_PEER_URLS="http://\(host.address):\(pg.etcdPeerPort)"
            ETCD_LISTEN_CLIENT_URLS="http://\(host.address):\(pg.etcdClientPort),http://127.0.0.1:\(pg.etcdClientPort)"
            ETCD_INITIAL_ADVERTISE_PEER_URLS="http://\(host.address):\(pg.etcdPeerPort)"
            ETCD_ADVERTISE_CLIENT_URLS="http://\(host.address):\(pg.etcdClientPort)"
            ETCD_INITIAL_CLUSTER="\(cluster)"
            ETCD_INITIAL_CLUSTER_STATE="new"
            ETCD_INITIAL_CLUSTER_TOKEN="\(pg.scope)"
            ETCD_ENABLE_V2="false"

            """
    }

    // MARK: - Prometheus

    func prometheusTargets(_ placements: [Inventory.Placement]) throws -> String {
        struct Group: Encodable {
            var targets: [String]
            var labels: [String: String]
        }
        let groups = placements.map { placement in
            Group(
                targets: ["\(placement.host.address):\(placement.adminPort)"],
                labels: ["site": placement.site, "role": placement.role.rawValue, "instance_name": placement.instance, "host": placement.host.name])
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(groups), as: UTF8.self) + "\n"
    }
}
