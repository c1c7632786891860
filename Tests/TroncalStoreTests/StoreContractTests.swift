import Foundation
import Logging
import Testing
import TroncalProtocol
import TroncalStore

/// One suite, run against SQLite and against a real PostgreSQL server.
@Suite("Store contract on both backends")
struct StoreContractTests {
    func withStore(_ backend: StoreBackend, _ body: (any SQLStore) async throws -> Void) async throws {
        guard let opened = try await backend.open() else { return }
        do {
            try await body(opened.store)
        } catch {
            await opened.close()
            throw error
        }
        await opened.close()
    }

    static let billingMigrations = [
        Migration(version: 1, name: "create_accounts", sql: ["CREATE TABLE ACCOUNTS (id TEXT PRIMARY KEY, balance BIGINT NOT NULL)"]),
        Migration(version: 2, name: "add_currency", sql: ["ALTER TABLE ACCOUNTS ADD COLUMN currency TEXT NOT NULL DEFAULT 'EUR'"]),
    ]

    func migrations(table: String) -> [Migration] {
        Self.billingMigrations.map { migration in
            Migration(version: migration.version, name: migration.name, sql: migration.sql.map { $0.replacingOccurrences(of: "ACCOUNTS", with: table) })
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func migrationsApplyFromEmptyAndAreIdempotent(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let service = uniqueName("svc")
            let table = uniqueName("accounts")
            let migrator = try Migrator(service: service, migrations: migrations(table: table), logger: Logger(label: "test"))
            #expect(try await migrator.migrate(store) == [1, 2])
            #expect(try await migrator.migrate(store) == [])
            try await store.execute("INSERT INTO \(table) (id, balance) VALUES ($1, $2)", [.text("c1"), .integer(500)])
            let rows = try await store.query("SELECT id, balance, currency FROM \(table)")
            #expect(rows.count == 1)
            #expect(try rows[0].string("currency") == "EUR")
            let recorded = try await store.query("SELECT version FROM \(Migrator.table) WHERE service = $1 ORDER BY version", [.text(service)])
            #expect(try recorded.map { try $0.int("version") } == [1, 2])
            try await store.execute("DROP TABLE \(table)")
        }
    }

    /// Work for a request whose sender stopped waiting (`RequestDeadline` passed) is not started: statements and
    /// transactions are refused with `expired` and change nothing; without a deadline, or before it, they run.
    @Test(arguments: StoreBackend.allCases)
    func workWhoseRequestDeadlinePassedIsRefusedAndChangesNothing(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let table = uniqueName("late")
            try await store.execute("CREATE TABLE \(table) (id TEXT PRIMARY KEY)")
            let insert = "INSERT INTO \(table) (id) VALUES ($1)"
            try await RequestDeadline.$current.withValue(.now - .seconds(1)) {
                let statement = await #expect(throws: StoreError.self) { try await store.execute(insert, [.text("statement")]) }
                #expect(statement?.code == .expired, "\(String(describing: statement))")
                let read = await #expect(throws: StoreError.self) { try await store.query("SELECT id FROM \(table)") }
                #expect(read?.code == .expired)
                var bodyRan = false
                let transaction = await #expect(throws: StoreError.self) {
                    try await store.transaction { transaction in
                        bodyRan = true
                        try await transaction.execute(insert, [.text("transaction")])
                    }
                }
                #expect(transaction?.code == .expired && !bodyRan)
            }
            try await RequestDeadline.$current.withValue(.now + .seconds(60)) {
                try await store.execute(insert, [.text("in time")])
            }
            #expect(try await store.query("SELECT id FROM \(table)").map { try $0.string("id") } == ["in time"])
            try await store.execute("DROP TABLE \(table)")
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func schemaNewerThanTheCodeIsRefused(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let service = uniqueName("svc")
            let table = uniqueName("accounts")
            try await Migrator(service: service, migrations: migrations(table: table), logger: Logger(label: "test")).migrate(store)
            let older = try Migrator(service: service, migrations: Array(migrations(table: table).prefix(1)), logger: Logger(label: "test"))
            let error = await #expect(throws: StoreError.self) { try await older.migrate(store) }
            #expect(error?.code == .schemaTooNew)
            #expect(error?.message.contains("version 2") == true, "\(error?.message ?? "")")
            try await store.execute("DROP TABLE \(table)")
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func failingMigrationLeavesNothingBehind(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let service = uniqueName("svc")
            let table = uniqueName("t")
            let broken = [
                Migration(version: 1, name: "ok", sql: ["CREATE TABLE \(table) (id INTEGER)"]),
                Migration(version: 2, name: "broken", sql: ["INSERT INTO \(table) (id) VALUES (1)", "THIS IS NOT SQL"]),
            ]
            await #expect(throws: StoreError.self) { try await Migrator(service: service, migrations: broken, logger: Logger(label: "test")).migrate(store) }
            let recorded = try await store.query("SELECT version FROM \(Migrator.table) WHERE service = $1", [.text(service)])
            #expect(try recorded.map { try $0.int("version") } == [1])
            #expect(try await store.query("SELECT id FROM \(table)").isEmpty)
            try await store.execute("DROP TABLE \(table)")
        }
    }

    struct Boom: Error {}

    @Test(arguments: StoreBackend.allCases)
    func transactionThatThrowsLeavesNothingBehindAndCommittedOneIsVisible(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let table = uniqueName("tx")
            try await store.execute("CREATE TABLE \(table) (id TEXT PRIMARY KEY, n BIGINT)")
            await #expect(throws: Boom.self) {
                try await store.transaction { tx in
                    try await tx.execute("INSERT INTO \(table) (id, n) VALUES ($1, $2)", [.text("a"), .integer(1)])
                    throw Boom()
                }
            }
            #expect(try await store.query("SELECT id FROM \(table)").isEmpty)
            let inserted = try await store.transaction { tx in
                try await tx.execute("INSERT INTO \(table) (id, n) VALUES ($1, $2)", [.text("b"), .integer(2)])
                return try await tx.query("SELECT n FROM \(table) WHERE id = $1", [.text("b")]).count
            }
            #expect(inserted == 1)
            #expect(try await store.query("SELECT n FROM \(table)").map { try $0.int("n") } == [2])
            try await store.execute("DROP TABLE \(table)")
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func everyValueTypeRoundTrips(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let table = uniqueName("vals")
            let blob = backend == .postgres ? "BYTEA" : "BLOB"
            let real = backend == .postgres ? "DOUBLE PRECISION" : "REAL"
            try await store.execute("CREATE TABLE \(table) (i BIGINT, r \(real), t TEXT, b \(blob), n TEXT)")
            let bytes: [UInt8] = [0, 1, 2, 255, 0x27, 0x5c]
            try await store.execute(
                "INSERT INTO \(table) (i, r, t, b, n) VALUES ($1, $2, $3, $4, $5)",
                [.integer(Int64.max), .real(-2.5), .text("Ñandú 'quoted' \u{1F4DE}"), .blob(bytes), .null])
            let row = try #require(try await store.query("SELECT i, r, t, b, n FROM \(table)").first)
            #expect(try row.int("i") == Int64.max)
            #expect(try row.double("r") == -2.5)
            #expect(try row.string("t") == "Ñandú 'quoted' \u{1F4DE}")
            #expect(try row.bytes("b") == bytes)
            #expect(try row.isNull("n"))
            #expect(throws: StoreError.self) { try row.int("t") }
            #expect(throws: StoreError.self) { try row.int("missing") }
            try await store.execute("DROP TABLE \(table)")
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func bulkLoadLandsEveryRow(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let table = uniqueName("rates")
            try await store.execute("CREATE TABLE \(table) (prefix TEXT PRIMARY KEY, price BIGINT NOT NULL, note TEXT)")
            let rows: [[SQLValue]] = (0..<10_000).map { n in
                [.text("34\(n)"), .integer(Int64(n)), n % 7 == 0 ? .null : .text("tab\there, comma, \"quote\"\nline \(n)")]
            }
            try await store.bulkLoad(table: table, columns: ["prefix", "price", "note"], rows: rows)
            let count = try await store.query("SELECT COUNT(*) AS c, SUM(price) AS s FROM \(table)")
            #expect(try count[0].int("c") == 10_000)
            #expect(try count[0].int("s") == Int64((0..<10_000).reduce(0, +)))
            let odd = try await store.query("SELECT note FROM \(table) WHERE prefix = $1", [.text("341")])
            #expect(try odd[0].string("note") == "tab\there, comma, \"quote\"\nline 1")
            let empty = try await store.query("SELECT note FROM \(table) WHERE prefix = $1", [.text("347")])
            #expect(try empty[0].isNull("note"))
            // A bad row rejects the whole load.
            await #expect(throws: StoreError.self) {
                try await store.bulkLoad(table: table, columns: ["prefix", "price"], rows: [[.text("x1"), .integer(1)], [.text("x1"), .integer(2)]])
            }
            #expect(try await store.query("SELECT prefix FROM \(table) WHERE prefix = $1", [.text("x1")]).isEmpty)
            try await store.execute("DROP TABLE \(table)")
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func concurrentReadModifyWriteTransactionsDoNotLoseUpdates(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let table = uniqueName("counter")
            try await store.execute("CREATE TABLE \(table) (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)")
            try await store.execute("INSERT INTO \(table) (id, n) VALUES (1, 0)")
            let lock = backend == .postgres ? " FOR UPDATE" : ""
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        for _ in 0..<50 {
                            try await store.transaction { tx in
                                let n = try await tx.query("SELECT n FROM \(table) WHERE id = 1\(lock)")[0].int("n")
                                try await tx.execute("UPDATE \(table) SET n = $1 WHERE id = 1", [.integer(n + 1)])
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await store.query("SELECT n FROM \(table)")[0].int("n") == 100)
            try await store.execute("DROP TABLE \(table)")
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func badSQLIsAClearErrorAndTheStoreKeepsWorking(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let error = await #expect(throws: StoreError.self) { try await store.query("SELEC nonsense") }
            #expect(error?.code == .queryFailed)
            let table = uniqueName("dup")
            try await store.execute("CREATE TABLE \(table) (id TEXT PRIMARY KEY)")
            try await store.execute("INSERT INTO \(table) (id) VALUES ('a')")
            let duplicate = await #expect(throws: StoreError.self) { try await store.execute("INSERT INTO \(table) (id) VALUES ('a')") }
            #expect(duplicate?.code == .constraintViolation || duplicate?.code == .queryFailed)
            #expect(try await store.query("SELECT 1 AS one")[0].int("one") == 1)
            try await store.execute("DROP TABLE \(table)")
        }
    }

    @Test func sqliteInAMissingDirectoryIsAClearError() async throws {
        let error = await #expect(throws: StoreError.self) {
            _ = try await openStore(.sqlite(path: "/nonexistent-dir/x/db.sqlite"), logger: Logger(label: "test"))
        }
        #expect(error?.code == .connectionFailed)
    }

    @Test func postgresThatIsNotThereIsAClearErrorWithoutThePassword() async throws {
        let error = await #expect(throws: (any Error).self) {
            let store = try await openStore(
                .postgres(host: "127.0.0.1", port: 1, user: "nobody", password: "s3cret-pw", database: "none"), logger: Logger(label: "test"))
            _ = try await store.query("SELECT 1")
        }
        #expect(!"\(error.map { "\($0)" } ?? "")".contains("s3cret-pw"))
    }
}
