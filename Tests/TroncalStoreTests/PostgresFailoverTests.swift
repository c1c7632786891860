import Foundation
import Synchronization
import Testing
import TestSupport
import TroncalStore

/// The store given several PostgreSQL servers (a primary and a synchronous standby, as Patroni runs them) finds the
/// primary, and follows it when the primary dies and the standby is promoted, losing no acknowledged write.
@Suite(.enabled(if: !TestBackend.skipPostgres, "TRONCAL_TEST_SKIP_POSTGRES=1"), .serialized)
struct PostgresFailoverTests {
    @Test func hostsInALibpqURLAreEveryServerOfTheCluster() throws {
        let configuration = try PostgresConfiguration(
            url: "postgres://troncal:secret@10.1.0.5:5432,[fd00::6]:5433,db3/billing?target_session_attrs=read-write")
        #expect(configuration.candidates.map(\.description) == ["10.1.0.5:5432", "[fd00::6]:5433", "db3:5432"])
        #expect(configuration.user == "troncal" && configuration.password == "secret")
        #expect(configuration.database == "billing")
        #expect(configuration.description == "postgres://troncal:***@10.1.0.5:5432,[fd00::6]:5433,db3:5432/billing")
        #expect(throws: StoreError.self) { try PostgresConfiguration(url: "postgres://u@a:1,b:notaport/db") }
        #expect(throws: StoreError.self) { try PostgresConfiguration(url: "postgres://u@a,b/db?target_session_attrs=any") }
    }

    @Test func theStoreFindsThePrimaryAndFollowsItToThePromotedStandbyLosingNoAcknowledgedWrite() async throws {
        try await withCluster { cluster in
        let (a, b) = (cluster.servers[0], cluster.servers[1])

        // The standby first in the list: the store must pick the primary by asking, not by order.
        var configuration = PostgresConfiguration(
            user: "postgres", database: cluster.database, connectTimeoutSeconds: 2,
            hosts: [try PostgresHost(parsing: b.hostPort), try PostgresHost(parsing: a.hostPort)],
            primaryCheckIntervalMilliseconds: 200, failoverWaitSeconds: 60)
        configuration.tls = .disable
        let store = try await PostgresStore.connect(configuration, logger: testLogger)
        #expect(store.currentServer == a.hostPort)
        try await store.execute("CREATE TABLE cdrs (id BIGINT PRIMARY KEY, seconds INTEGER NOT NULL)")

        // A writer inserting CDR rows one after another, noting which inserts were acknowledged.
        let acknowledged = Mutex<[Int]>([])
        let failed = Mutex<[String]>([])
        let stop = Atomic<Bool>(false)
        let writer = Task {
            var id = 0
            while !stop.load(ordering: .acquiring) {
                id += 1
                do {
                    try await store.execute("INSERT INTO cdrs (id, seconds) VALUES ($1, $2)", [.integer(Int64(id)), .integer(60)])
                    acknowledged.withLock { $0.append(id) }
                } catch {
                    failed.withLock { $0.append("\(id): \(error)") }
                }
            }
        }
        // Every commit waits for the synchronous standby: a loaded full run wrote 49 rows in 30 s, so the bars are low
        // and the waits long.
        #expect(await eventually(timeout: .seconds(60)) { acknowledged.withLock { $0.count } >= 20 })

        try await cluster.crash(a)
        let beforePromotion = acknowledged.withLock { $0.count }
        try await cluster.promote(b)
        let followed = await eventually(timeout: .seconds(60)) { store.currentServer == b.hostPort }
        #expect(followed, "the store did not move to the promoted standby; \(cluster.logs.suffix(2_000))")
        let afterFailover = acknowledged.withLock { $0.count }
        #expect(await eventually(timeout: .seconds(60)) { acknowledged.withLock { $0.count } >= afterFailover + 20 })
        stop.store(true, ordering: .releasing)
        await writer.value

        let written = Set(
            try await cluster.sql(b, "SELECT id FROM cdrs").split(separator: "\n").compactMap { Int($0) })
        let acked = acknowledged.withLock { $0 }
        let missing = acked.filter { !written.contains($0) }
        #expect(missing.isEmpty, "acknowledged rows missing after failover: \(missing) of \(acked.count); failures \(failed.withLock { $0 })")
        // Only statements in flight when the primary died may fail (their answer was lost with the connection);
        // every statement that waited for a primary ran on the new one.
        let failures = failed.withLock { $0 }
        #expect(failures.count <= 2, "\(failures)")
        #expect(store.failovers == 1)
        #expect(beforePromotion >= 20)
        try await store.close()
        }
    }

    @Test func aClusterWithNoPrimaryIsRefusedWithEachServersState() async throws {
        try await withCluster { cluster in
        let (a, b) = (cluster.servers[0], cluster.servers[1])
        try await cluster.crash(a)
        var configuration = PostgresConfiguration(
            user: "postgres", database: cluster.database, connectTimeoutSeconds: 2,
            hosts: [try PostgresHost(parsing: a.hostPort), try PostgresHost(parsing: b.hostPort)])
        configuration.tls = .disable
        let error = await storeError { _ = try await PostgresStore.connect(configuration, logger: testLogger) }
        #expect(error?.code == .connectionFailed)
        #expect(error?.message.contains("\(b.hostPort) standby") == true, "\(String(describing: error))")
        #expect(error?.message.contains("\(a.hostPort) unreachable") == true, "\(String(describing: error))")
        }
    }

    /// Runs `body` with a fresh cluster, removed afterwards even when the body throws.
    private func withCluster(_ body: (PostgresCluster) async throws -> Void) async throws {
        let cluster = try await PostgresCluster()
        do {
            try await body(cluster)
        } catch {
            await cluster.remove()
            throw error
        }
        await cluster.remove()
    }
}
