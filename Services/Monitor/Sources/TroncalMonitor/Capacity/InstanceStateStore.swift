public import Foundation
public import TroncalProtocol
public import TroncalRuntime
public import TroncalStore

/// Which instances of the site are in service, in the standby pool, or withdrawn, as the capacity controller last
/// decided (kept in the monitor's database, so that every monitor instance scrapes the same ones and the controller
/// that takes over knows what the previous one did). Instances it has never decided about follow the configuration:
/// `standby` ones are in the pool, the others in service.
public struct InstanceStateStore: Sendable {
    public enum State: String, Codable, Sendable { case service, standby, withdrawn }

    static let migration = Migration(
        version: 7, name: "instance states of the capacity controller",
        sql: [
            """
            CREATE TABLE monitor_instance_states (site TEXT NOT NULL, instance TEXT NOT NULL, role TEXT NOT NULL, state TEXT NOT NULL,
            changed_at DOUBLE PRECISION NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (site, instance))
            """,
        ])

    let store: any SQLStore
    let site: String
    let instances: [InstanceSettings]

    public init(store: any SQLStore, site: String, instances: [InstanceSettings]) {
        self.store = store
        self.site = site
        self.instances = instances
    }

    public struct Entry: Sendable, Equatable {
        public var instance: InstanceSettings
        public var state: State
        /// When the controller last changed it (nil: as configured).
        public var changedAt: Date?
    }

    /// Every configured instance as the configuration places it (standby ones in the pool), with no decision read.
    public var configured: [Entry] {
        instances.map { Entry(instance: $0, state: $0.standby ? .standby : .service, changedAt: nil) }
    }

    /// Every configured instance with its state.
    public func entries() async throws -> [Entry] {
        var decided: [String: (State, Date)] = [:]
        for row in try await store.query("SELECT instance, state, changed_at FROM monitor_instance_states WHERE site = $1", [.text(site)]) {
            guard let state = State(rawValue: try row.string("state")) else { continue }
            decided[try row.string("instance")] = (state, Date(timeIntervalSince1970: try row.double("changed_at")))
        }
        return configured.map { entry in
            guard let (state, at) = decided[entry.instance.name] else { return entry }
            return Entry(instance: entry.instance, state: state, changedAt: at)
        }
    }

    public func set(_ instance: InstanceSettings, _ state: State, reason: String, at: Date) async throws {
        try await store.execute(
            """
            INSERT INTO monitor_instance_states (site, instance, role, state, changed_at, reason) VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (site, instance) DO UPDATE SET state = excluded.state, changed_at = excluded.changed_at, reason = excluded.reason
            """,
            [.text(site), .text(instance.name), .text(instance.role.rawValue), .text(state.rawValue), .real(at.timeIntervalSince1970), .text(reason)])
    }
}
