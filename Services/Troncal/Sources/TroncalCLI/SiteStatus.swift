public import Foundation
public import Logging
public import TroncalLink
public import TroncalPKI
public import TroncalProtocol
public import TroncalRuntime

/// One row of `troncal status`: what an instance said over its link, or why it could not be asked.
public struct InstanceStatusRow: Codable, Sendable, Equatable {
    public var service: Role
    public var instance: String
    public var link: String
    public var admin: String
    /// healthy, degraded, unhealthy, or unreachable when the link could not be used; `standby` for an instance of the
    /// standby pool that is not running.
    public var health: String
    public var uptimeSeconds: Double?
    public var version: String?
    public var links: [LinkStatus]?
    public var pid: Int32?
    /// The database the instance uses now (`postgres primary 10.1.0.11:5432` after following a failover).
    public var database: String?
    public var error: String?
    /// The site, when `troncal status` shows several (`--site-dir`).
    public var site: String?
}

/// Asks every instance of a site for its status over mutual TLS, as the operator.
public enum SiteStatus {
    public static func collect(config: SiteConfig, credentials: SiteCA.Credentials, timeout: Duration, logger: Logger) async -> [InstanceStatusRow] {
        await withTaskGroup(of: (Int, InstanceStatusRow).self) { group in
            for (index, instance) in config.instances.enumerated() {
                group.addTask {
                    let endpoint = LinkEndpoint(host: instance.host, port: instance.linkPort)
                    var row = InstanceStatusRow(
                        service: instance.role, instance: instance.name, link: endpoint.description,
                        admin: LinkEndpoint(host: instance.adminHost, port: instance.adminPort).description, health: "unreachable")
                    do {
                        let client = try LinkClient(role: instance.role, endpoints: [endpoint], credentials: credentials, logger: logger)
                        defer { Task { await client.close() } }
                        let status = try await client.request(StatusRequest(), timeout: timeout)
                        if status.instance != instance.name {
                            row.error = "answered as \(status.instance)"
                        }
                        row.health = status.status.rawValue
                        row.uptimeSeconds = status.uptimeSeconds
                        row.version = status.version
                        row.links = status.links
                        row.pid = status.pid
                        row.database = status.database
                    } catch {
                        // A standby instance not running is where it should be (until the capacity controller starts it).
                        if instance.standby { row.health = "standby" } else { row.error = "\(error)" }
                    }
                    return (index, row)
                }
            }
            var rows: [(Int, InstanceStatusRow)] = []
            for await row in group { rows.append(row) }
            return rows.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// The rows as an aligned text table.
    public static func table(_ rows: [InstanceStatusRow]) -> String {
        let header = ["SERVICE", "INSTANCE", "LINK", "ADMIN", "HEALTH", "UPTIME", "DATABASE"]
        let body = rows.map { row in
            [row.service.rawValue, row.instance, row.link, row.admin, row.health, row.uptimeSeconds.map(formatUptime) ?? "-", row.database ?? "-"]
        }
        let widths = header.indices.map { column in ([header] + body).map { $0[column].count }.max() ?? 0 }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        var lines = [render(header)] + body.map(render)
        for row in rows where row.error != nil { lines.append("\(row.instance): \(row.error ?? "")") }
        return lines.joined(separator: "\n")
    }

    static func formatUptime(_ seconds: Double) -> String {
        let total = Int(seconds)
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m\(total % 60)s" }
        if total < 86400 { return "\(total / 3600)h\(total % 3600 / 60)m" }
        return "\(total / 86400)d\(total % 86400 / 3600)h"
    }
}
