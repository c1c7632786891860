import Foundation
import TroncalProtocol

/// `troncal infra check`: what makes an inventory unfit for production, each problem named with its site and host.
struct InfraCheck {
    let inventory: Inventory
    /// A directory of per-site PKI directories (`<pkiRoot>/<site>/<instance>.crt` and `.key`); nil: not checked.
    var pkiRoot: String?

    func problems() -> [String] {
        var problems: [String] = []
        let sites = inventory.sites
        if sites.isEmpty { problems.append("the inventory names no site") }
        if Set(sites.map(\.name)).count != sites.count { problems.append("two sites have the same name") }
        for site in sites {
            problems += check(site)
        }
        // PostgreSQL and etcd across sites.
        let postgres = sites.flatMap { $0.hosts.filter(\.postgres) }
        let etcd = sites.flatMap { site in site.hosts.filter(\.etcd).map { (site.name, $0) } }
        if postgres.count == 1 {
            problems.append("PostgreSQL: one member only; a primary needs at least one standby (two members, in two sites)")
        }
        if !postgres.isEmpty {
            if etcd.count < 3 || etcd.count % 2 == 0 {
                problems.append("etcd: \(etcd.count) members; Patroni needs an odd number, at least 3 (one in a witness site)")
            }
            if Set(etcd.map(\.0)).count < 3 {
                problems.append("etcd: members in \(Set(etcd.map(\.0)).count) site(s); put them in 3 sites so that losing one site keeps a majority")
            }
        }
        // The VPN: each site with a gateway peers with the others; addresses unique.
        let gateways = sites.compactMap { site in site.vpn.map { (site, $0) } }
        if gateways.count == 1 { problems.append("VPN: only site \(gateways[0].0.name) has a gateway; it has no peer") }
        if Set(gateways.map(\.1.address)).count != gateways.count { problems.append("VPN: two sites share a tunnel address") }
        for (site, vpn) in gateways {
            if !site.hosts.contains(where: { $0.name == vpn.host }) {
                problems.append("site \(site.name): VPN gateway host \"\(vpn.host)\" is not one of its hosts")
            }
            if Data(base64Encoded: vpn.publicKey)?.count != 32 {
                problems.append("site \(site.name): VPN publicKey is not a WireGuard public key (32 bytes, base64)")
            }
        }
        return problems
    }

    private func check(_ site: Inventory.Site) -> [String] {
        var problems: [String] = []
        let prefix = "site \(site.name)"
        if Set(site.hosts.map(\.name)).count != site.hosts.count { problems.append("\(prefix): two hosts have the same name") }
        if Set(site.hosts.map(\.address)).count != site.hosts.count { problems.append("\(prefix): two hosts have the same address") }
        let placements: [Inventory.Placement]
        do {
            placements = try inventory.placements(site)
        } catch {
            return problems + ["\(error)"]
        }
        if site.witness {
            if !placements.isEmpty { problems.append("\(prefix): a witness site runs no service, only etcd") }
            return problems
        }
        let names = placements.map(\.instance)
        for name in Set(names) where names.filter({ $0 == name }).count > 1 {
            problems.append("\(prefix): instance \(name) is placed twice")
        }
        let running = placements.filter { !$0.standby }
        for role in Role.services {
            let instances = running.filter { $0.role == role }
            let hosts = Set(instances.map(\.host.name))
            if role == .backup {
                if instances.isEmpty { problems.append("\(prefix): no backup instance") }
                if let backup = instances.first,
                    running.contains(where: { $0.host.name == backup.host.name && $0.role != .backup })
                {
                    problems.append("\(prefix): backup shares host \(backup.host.name) with other services; it must be isolated")
                }
                continue
            }
            if instances.count < 2 {
                problems.append("\(prefix): \(role.rawValue) has \(instances.count) instance(s); every service needs at least 2")
            } else if hosts.count < 2 {
                problems.append("\(prefix): both \(role.rawValue) instances are on host \(hosts.first ?? "?"); they need 2 hosts")
            }
        }
        for host in site.hosts {
            let here = placements.filter { $0.host.name == host.name }
            for role in Set(here.map(\.role)) where here.filter({ $0.role == role }).count > 1 && !inventory.allowSameHost.contains(role) {
                problems.append("\(prefix), host \(host.name): two \(role.rawValue) instances on one host (allowSameHost does not name \(role.rawValue))")
            }
            var ports: [Int: String] = [:]
            func claim(_ port: Int, _ owner: String) {
                guard port > 0 else { return }
                if let other = ports[port] {
                    problems.append("\(prefix), host \(host.name): port \(port) is taken by both \(other) and \(owner)")
                } else {
                    ports[port] = owner
                }
            }
            for placement in here {
                claim(placement.linkPort, "\(placement.instance) link")
                claim(placement.adminPort, "\(placement.instance) admin")
                claim(placement.sipPort, "\(placement.instance) SIP")
            }
            if host.postgres {
                claim(inventory.postgres.port, "PostgreSQL")
                claim(inventory.postgres.patroniPort, "Patroni")
            }
            if host.etcd {
                claim(inventory.postgres.etcdClientPort, "etcd client")
                claim(inventory.postgres.etcdPeerPort, "etcd peer")
            }
            if let pkiRoot {
                for placement in here {
                    for file in ["\(placement.instance).crt", "\(placement.instance).key"] {
                        let path = "\(pkiRoot)/\(site.name)/\(file)"
                        if !FileManager.default.fileExists(atPath: path) {
                            problems.append("\(prefix), host \(host.name): certificate file \(path) is missing (troncal pki issue)")
                        }
                    }
                }
            }
        }
        if site.sbcFloatingAddress != nil, Set(running.filter { $0.role == .sbc }.map(\.host.name)).count < 2 {
            problems.append("\(prefix): a floating SBC address needs SBCs on at least 2 hosts")
        }
        if let floating = site.sbcFloatingAddress, !floating.contains("/") {
            problems.append("\(prefix): sbcFloatingAddress \(floating) needs a prefix length (203.0.113.10/24)")
        }
        if !(1...255).contains(site.vrrpRouterID) { problems.append("\(prefix): vrrpRouterID must be 1-255") }
        if !site.sbcSpreadAddresses.isEmpty {
            let sbcs = placements.filter { $0.role == .sbc }
            if site.sbcSpreadAddresses.count > sbcs.count {
                problems.append("\(prefix): \(site.sbcSpreadAddresses.count) sbcSpreadAddresses for \(sbcs.count) SBCs: one address per SBC at most")
            }
            if Set(sbcs.map(\.host.name)).count < 2 { problems.append("\(prefix): spread SBC addresses need SBCs on at least 2 hosts") }
            // A spread address comes back to its SBC with calls up on the one that covered it: their ACKs and BYEs must
            // go to that SBC's own address.
            var advertises = false
            if case .object(let config) = site.config ?? .object([:]), case .object(let sbc) = config["sbc"] ?? .object([:]),
                case .bool(true) = sbc["advertiseInstanceAddress"] ?? .bool(false) { advertises = true }
            if !advertises {
                problems.append("\(prefix): sbcSpreadAddresses move between SBCs with calls up: set config.sbc.advertiseInstanceAddress (and instanceAddresses)")
            }
            for address in site.sbcSpreadAddresses where !address.contains("/") {
                problems.append("\(prefix): sbcSpreadAddress \(address) needs a prefix length (203.0.113.21/24)")
            }
            let ids = site.spreadRouterID..<(site.spreadRouterID + site.sbcSpreadAddresses.count)
            if ids.lowerBound < 1 || ids.upperBound - 1 > 255 { problems.append("\(prefix): spreadRouterID must leave 1-255 for every spread address") }
            if site.sbcFloatingAddress != nil, ids.contains(site.vrrpRouterID) {
                problems.append("\(prefix): vrrpRouterID \(site.vrrpRouterID) is also a spread address's (spreadRouterID \(site.spreadRouterID) and up)")
            }
        }
        return problems
    }
}
