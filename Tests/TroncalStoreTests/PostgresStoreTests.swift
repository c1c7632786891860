import Foundation
import Testing
import TroncalStore

/// What only PostgreSQL has: its own data types, connection paths and transaction semantics.
@Suite(.enabled(if: !TestBackend.skipPostgres, "TRONCAL_TEST_SKIP_POSTGRES=1"))
struct PostgresStoreTests {
    @Test func decodesPostgresTypesByTheirDataType() async throws {
        try await withTestStore(.postgres) { store, _ in
            let row = try #require(
                try await store.query(
                    """
                    SELECT 12.50::numeric AS price, (-0.0001)::numeric(10,6) AS tiny, 123456789012345678901234567890::numeric AS huge,
                           TIMESTAMPTZ '2025-01-31 23:59:59.123456+00' AS at, TIMESTAMP '1999-12-31 00:00:00' AS local,
                           DATE '2024-02-29' AS day, 7::smallint AS small, 8::integer AS medium, 1.5::real AS single,
                           'x'::varchar(3) AS v, 'ab'::char(3) AS c, '00000000-0000-0000-0000-000000000001'::uuid AS id,
                           '{"a": 1}'::jsonb AS doc, true AS yes
                    """
                ).first)
            #expect(try row.string("price") == "12.50")
            #expect(try row.string("tiny") == "-0.000100")
            #expect(try row.string("huge") == "123456789012345678901234567890")
            #expect(try row.string("at") == "2025-01-31T23:59:59.123456Z")
            #expect(try row.string("local") == "1999-12-31T00:00:00")
            #expect(try row.string("day") == "2024-02-29")
            #expect(try row.int("small") == 7)
            #expect(try row.int("medium") == 8)
            #expect(try row.double("single") == 1.5)
            #expect(try row.string("v") == "x")
            #expect(try row.string("c") == "ab ")
            #expect(try row.string("id").lowercased() == "00000000-0000-0000-0000-000000000001")
            #expect(try row.string("doc") == #"{"a": 1}"#)
            #expect(try row.bool("yes"))
        }
    }

    @Test func refusesTypesItDoesNotRead() async throws {
        try await withTestStore(.postgres) { store, _ in
            let error = await storeError { _ = try await store.query("SELECT point(1, 2) AS p") }
            #expect(error?.code == .decoding)
            #expect(error?.message.contains("p::text") == true)
            let text = try await store.query("SELECT point(1, 2)::text AS p").first?.string("p")
            #expect(text == "(1,2)")
        }
    }

    @Test func aTransactionWhoseBodySwallowedAnErrorIsNotReportedAsCommitted() async throws {
        try await withTestStore(.postgres) { store, names in
            let table = names.table("t")
            try await store.execute("CREATE TABLE \(table) (id INTEGER PRIMARY KEY)")
            let error = await storeError {
                try await store.transaction { transaction in
                    try await transaction.execute("INSERT INTO \(table) VALUES (1)")
                    _ = try? await transaction.execute("SELEKT")
                }
            }
            #expect(error?.code == .transactionFailed)
            let count = try await store.query("SELECT COUNT(*) AS n FROM \(table)").first?.int("n")
            #expect(count == 0)
        }
    }

    @Test func connectsThroughTheUnixSocket() async throws {
        var configuration = try TestBackend.postgresConfiguration()
        let directory = try #require(
            ProcessInfo.processInfo.environment["TRONCAL_TEST_PG_SOCKET_DIR"],
            "TRONCAL_TEST_PG_SOCKET_DIR is set by troncal_pg_start")
        configuration.host = "unused.invalid"
        configuration.unixSocketPath = directory
        let store = try await PostgresStore.connect(configuration, logger: testLogger)
        let one = try await store.query("SELECT 1 AS one").first?.int("one")
        #expect(one == 1)
        try await store.close()
    }

    @Test func aMissingDatabaseFailsAtOpenWithAClearError() async throws {
        var configuration = try TestBackend.postgresConfiguration()
        configuration.database = "no_such_database_troncal"
        configuration.password = "s3cret-password"
        let error = await storeError { _ = try await PostgresStore.connect(configuration, logger: testLogger) }
        #expect(error?.code == .connectionFailed)
        #expect(error?.databaseCode == "3D000")
        #expect(error?.description.contains("no_such_database_troncal") == true)
        #expect(error?.description.contains("s3cret-password") == false)
    }
}

/// Connection failures that need no server.
@Suite struct StoreOpeningTests {
    @Test func aClosedPortFailsAtOpenWithAClearError() async throws {
        let configuration = PostgresConfiguration(
            host: "127.0.0.1", port: 1, user: "troncal", password: "hunter2-secret", database: "billing",
            connectTimeoutSeconds: 2)
        let error = await storeError { _ = try await openStore(.postgres(configuration), logger: testLogger) }
        #expect(error?.code == .connectionFailed)
        #expect(error?.description.contains("127.0.0.1:1") == true)
        #expect(error?.description.contains("hunter2-secret") == false)
    }

    @Test func anSQLiteFileInAMissingDirectoryFailsClearly() async throws {
        let directory = try TemporaryStoreDirectory()
        defer { directory.remove() }
        let path = directory.path("missing/sub/billing.db")
        let error = await storeError { _ = try await openStore(.sqlite(path: path), logger: testLogger) }
        #expect(error?.code == .connectionFailed)
        #expect(error?.message.contains("directory \(directory.path("missing/sub")) does not exist") == true)
    }

    @Test func aFileThatIsNotADatabaseFailsClearly() async throws {
        let directory = try TemporaryStoreDirectory()
        defer { directory.remove() }
        let path = directory.path("notes.db")
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: path))
        let error = await storeError { _ = try await openStore(.sqlite(path: path), logger: testLogger) }
        #expect(error?.code == .connectionFailed)
    }

    @Test func sqliteStoresUseWriteAheadLogging() async throws {
        let directory = try TemporaryStoreDirectory()
        defer { directory.remove() }
        let store = try await openStore(.sqlite(path: directory.path("wal.db")), logger: testLogger)
        let journal = try await store.query("PRAGMA journal_mode").first?.string("journal_mode")
        #expect(journal == "wal")
        let timeout = try await store.query("PRAGMA busy_timeout").first?.int("timeout")
        #expect(timeout == 5_000)
        let foreignKeys = try await store.query("PRAGMA foreign_keys").first?.int("foreign_keys")
        #expect(foreignKeys == 1)
        try await store.close()
    }
}
