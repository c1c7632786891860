import Foundation
import Testing
import TroncalStore

/// The store contract, run unchanged on SQLite and on PostgreSQL.
@Suite struct SQLStoreTests {
    // MARK: Migrations

    static func migrations(_ names: TestNames) -> [Migration] {
        let carriers = names.table("carriers")
        return [
            Migration(
                version: 1, name: "create_carriers",
                sql: ["CREATE TABLE \(carriers) (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"]),
            Migration(
                version: 2, name: "add_carrier_priority",
                sql: ["ALTER TABLE \(carriers) ADD COLUMN priority INTEGER NOT NULL DEFAULT 0"]),
        ]
    }

    @Test(arguments: TestBackend.enabled)
    func migrationsApplyToAnEmptyDatabase(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, names in
            let migrator = try Migrator(service: names.service("routing"), migrations: Self.migrations(names), logger: testLogger)
            let before = try await migrator.appliedVersions(store)
            #expect(before == [])
            let applied = try await migrator.migrate(store)
            #expect(applied == [1, 2])
            let after = try await migrator.appliedVersions(store)
            #expect(after == [1, 2])

            let carriers = names.table("carriers")
            try await store.execute("INSERT INTO \(carriers) (id, name, priority) VALUES ($1, $2, $3)", [1, "carrier-a", 5])
            let rows = try await store.query("SELECT name, priority FROM \(carriers) WHERE id = $1", [1])
            #expect(try rows.map { try $0.string("name") } == ["carrier-a"])
            #expect(try rows.first?.int("priority") == 5)
        }
    }

    @Test(arguments: TestBackend.enabled)
    func migratingAgainChangesNothing(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, names in
            let service = names.service("billing")
            let migrator = try Migrator(service: service, migrations: Self.migrations(names), logger: testLogger)
            try await migrator.migrate(store)
            let second = try await migrator.migrate(store)
            #expect(second == [])
            let third = try await migrator.migrate(store)
            #expect(third == [])
            let rows = try await store.query(
                "SELECT COUNT(*) AS n FROM \(Migrator.table) WHERE service = $1", [.text(service)])
            #expect(try rows.first?.int("n") == 2)
        }
    }

    @Test(arguments: TestBackend.enabled)
    func laterMigrationsApplyOnTopOfEarlierOnes(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, names in
            let service = names.service("pbx")
            let all = Self.migrations(names)
            let first = try await Migrator(service: service, migrations: [all[0]], logger: testLogger).migrate(store)
            #expect(first == [1])
            let rest = try await Migrator(service: service, migrations: all, logger: testLogger).migrate(store)
            #expect(rest == [2])
        }
    }

    @Test(arguments: TestBackend.enabled)
    func refusesASchemaNewerThanThisBuild(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, names in
            let service = names.service("billing")
            try await Migrator(service: service, migrations: Self.migrations(names), logger: testLogger).migrate(store)
            try await store.execute(
                "INSERT INTO \(Migrator.table) (service, version, name, applied_at) VALUES ($1, 7, 'from_the_future', 'x')",
                [.text(service)])

            let older = try Migrator(service: service, migrations: Self.migrations(names), logger: testLogger)
            let error = await storeError { try await older.migrate(store) }
            #expect(error?.code == .schemaTooNew)
            #expect(
                error?.message
                    == "database schema of \(service) is at version 7 but this build knows up to 2; upgrade Troncal or restore a matching backup"
            )
        }
    }

    @Test(arguments: TestBackend.enabled)
    func aFailedMigrationLeavesNothingBehind(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, names in
            let service = names.service("monitor")
            let alarms = names.table("alarms")
            let broken = Migration(
                version: 3, name: "broken",
                sql: ["CREATE TABLE \(alarms) (id INTEGER PRIMARY KEY)", "CREATE TABLE broken syntax here"])
            let migrator = try Migrator(service: service, migrations: Self.migrations(names) + [broken], logger: testLogger)

            let error = await storeError { try await migrator.migrate(store) }
            #expect(error?.code == .migrationFailed)
            #expect(error?.message.contains("migration 3 (broken)") == true)
            let applied = try await migrator.appliedVersions(store)
            #expect(applied == [1, 2])
            let leftover = await storeError { _ = try await store.query("SELECT COUNT(*) AS n FROM \(alarms)") }
            #expect(leftover?.code == .queryFailed)
        }
    }

    @Test(arguments: TestBackend.enabled)
    func twoInstancesMigratingAtOnceApplyEachMigrationOnce(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, names in
            let other = try await openSecondStore(like: store)
            let service = names.service("routing")
            let migrations = Self.migrations(names)
            async let first = Migrator(service: service, migrations: migrations, logger: testLogger).migrate(store)
            async let second = Migrator(service: service, migrations: migrations, logger: testLogger).migrate(other)
            let applied = try await first + second
            try await other.close()
            #expect(applied.sorted() == [1, 2])
            let rows = try await store.query(
                "SELECT COUNT(*) AS n FROM \(Migrator.table) WHERE service = $1", [.text(service)])
            #expect(try rows.first?.int("n") == 2)
        }
    }

    // MARK: Transactions

    struct Refused: Error {}

    @Test(arguments: TestBackend.enabled)
    func aTransactionThatThrowsLeavesNothingBehind(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, names in
            let cdrs = names.table("cdrs")
            try await store.execute("CREATE TABLE \(cdrs) (id TEXT PRIMARY KEY, seconds INTEGER NOT NULL)")
            await #expect(throws: Refused.self) {
                try await store.transaction { transaction in
                    try await transaction.execute("INSERT INTO \(cdrs) (id, seconds) VALUES ($1, $2)", ["cdr-1", 60])
                    try await transaction.execute("INSERT INTO \(cdrs) (id, seconds) VALUES ($1, $2)", ["cdr-2", 30])
                    throw Refused()
                }
            }
            let rows = try await store.query("SELECT COUNT(*) AS n FROM \(cdrs)")
            #expect(try rows.first?.int("n") == 0)
        }
    }

    @Test(arguments: TestBackend.enabled)
    func aCommittedTransactionIsVisibleAfterwards(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, names in
            let balances = names.table("balances")
            try await store.execute("CREATE TABLE \(balances) (customer TEXT PRIMARY KEY, cents BIGINT NOT NULL)")
            let seen = try await store.transaction { transaction -> Int64 in
                try await transaction.execute("INSERT INTO \(balances) VALUES ($1, $2)", ["acme", 10_000])
                try await transaction.execute("UPDATE \(balances) SET cents = cents - $1 WHERE customer = $2", [250, "acme"])
                return try await transaction.query("SELECT cents FROM \(balances)").first?.int("cents") ?? -1
            }
            #expect(seen == 9_750)
            let rows = try await store.query("SELECT cents FROM \(balances) WHERE customer = $1", ["acme"])
            #expect(try rows.first?.int("cents") == 9_750)
        }
    }

    @Test(arguments: TestBackend.enabled)
    func concurrentTransactionsDoNotInterleave(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, names in
            let counters = names.table("counters")
            try await store.execute("CREATE TABLE \(counters) (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
            try await store.execute("INSERT INTO \(counters) VALUES (1, 0)")
            // SQLite transactions are exclusive; on PostgreSQL the read must lock the row.
            let read = "SELECT n FROM \(counters) WHERE id = 1" + (store.backend == .postgres ? " FOR UPDATE" : "")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        for _ in 0..<50 {
                            try await store.transaction { transaction in
                                let n = try await transaction.query(read).first?.int("n") ?? -1
                                await Task.yield()
                                try await transaction.execute("UPDATE \(counters) SET n = $1 WHERE id = 1", [.integer(n + 1)])
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let rows = try await store.query("SELECT n FROM \(counters) WHERE id = 1")
            #expect(try rows.first?.int("n") == 100)
        }
    }

    @Test(arguments: TestBackend.enabled)
    func usingTheStoreInsideItsOwnTransactionIsRefused(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, names in
            let error = await storeError {
                try await store.transaction { _ in
                    _ = try await store.query("SELECT 1 AS one")
                }
            }
            #expect(error?.code == .misuse)
            let nested = await storeError {
                try await store.transaction { _ in
                    try await store.transaction { _ in }
                }
            }
            #expect(nested?.code == .misuse)
            let one = try await store.query("SELECT 1 AS one").first?.int("one")
            #expect(one == 1)
        }
    }

    @Test(arguments: TestBackend.enabled)
    func aTransactionHandleDoesNotOutliveItsTransaction(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, _ in
            let escaped = try await store.transaction { transaction in transaction }
            let error = await storeError { try await escaped.execute("SELECT 1") }
            #expect(error?.code == .misuse)
        }
    }

    // MARK: Values

    @Test(arguments: TestBackend.enabled)
    func bindsRoundTripForEveryValueType(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, names in
            let values = names.table("values")
            let blobType = store.backend == .postgres ? "BYTEA" : "BLOB"
            let realType = store.backend == .postgres ? "DOUBLE PRECISION" : "REAL"
            let boolType = store.backend == .postgres ? "BOOLEAN" : "INTEGER"
            try await store.execute(
                "CREATE TABLE \(values) (k INTEGER PRIMARY KEY, i BIGINT, r \(realType), t TEXT, b \(blobType), f \(boolType))")
            let text = "Ñandú 'quoted' \"double\" \\ tab\tnew\nline $1 ☎️"
            let blob = (0...255).map(UInt8.init)
            let cases: [(Int64, SQLValue, SQLValue, SQLValue, SQLValue, SQLValue)] = [
                (1, .integer(.max), .real(-0.5), .text(text), .blob(blob), .bool(true)),
                (2, .integer(.min), .real(1e300), .text(""), .blob([]), .bool(false)),
                (3, .null, .null, .null, .null, .null),
            ]
            for (key, i, r, t, b, f) in cases {
                try await store.execute(
                    "INSERT INTO \(values) (k, i, r, t, b, f) VALUES ($1, $2, $3, $4, $5, $6)", [.integer(key), i, r, t, b, f])
            }
            let rows = try await store.query("SELECT k, i, r, t, b, f FROM \(values) ORDER BY k")
            #expect(rows.count == 3)
            #expect(try rows[0].int("i") == .max)
            #expect(try rows[0].double("r") == -0.5)
            #expect(try rows[0].string("t") == text)
            #expect(try rows[0].bytes("b") == blob)
            #expect(try rows[0].bool("f") == true)
            #expect(try rows[1].int("i") == .min)
            #expect(try rows[1].double("r") == 1e300)
            #expect(try rows[1].string("t") == "")
            #expect(try rows[1].bytes("b") == [])
            #expect(try rows[1].bool("f") == false)
            for column in ["i", "r", "t", "b", "f"] {
                #expect(try rows[2].isNull(column))
            }
            #expect(try rows[2].optionalInt("i") == nil)
            #expect(try rows[2].optionalString("t") == nil)
            #expect(try rows[2].optionalBool("f") == nil)

            let matched = try await store.query("SELECT k FROM \(values) WHERE t = $1 AND b = $2", [.text(text), .blob(blob)])
            #expect(try matched.map { try $0.int("k") } == [1])
        }
    }

    @Test(arguments: TestBackend.enabled)
    func placeholdersInsideLiteralsAreLeftAlone(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, _ in
            let rows = try await store.query("SELECT '$1' AS literal, $1 AS bound -- $2 in a comment", ["value"])
            #expect(try rows.first?.string("literal") == "$1")
            #expect(try rows.first?.string("bound") == "value")
        }
    }

    @Test(arguments: TestBackend.enabled)
    func typedAccessorsExplainWhatIsWrong(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, _ in
            let row = try #require(try await store.query("SELECT 'text' AS name, NULL AS absent_value").first)
            let missing = #expect(throws: StoreError.self) { try row.int("absent") }
            #expect(missing?.code == .decoding)
            #expect(missing?.message.contains("no column \"absent\"") == true)
            let wrongType = #expect(throws: StoreError.self) { try row.int("name") }
            #expect(wrongType?.message == "column \"name\" holds a text value, expected integer")
            let null = #expect(throws: StoreError.self) { try row.string("absent_value") }
            #expect(null?.message == "column \"absent_value\" is NULL, expected text")
        }
    }

    // MARK: Bulk load

    @Test(arguments: TestBackend.enabled)
    func bulkLoadLandsEveryRow(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, names in
            let cdrs = names.table("cdrs")
            let blobType = store.backend == .postgres ? "BYTEA" : "BLOB"
            let realType = store.backend == .postgres ? "DOUBLE PRECISION" : "REAL"
            try await store.execute(
                "CREATE TABLE \(cdrs) (id BIGINT PRIMARY KEY, caller TEXT, mos \(realType), raw \(blobType), note TEXT)")
            let tricky = "tab\there\nnewline\\backslash\r\\N not null"
            let rows: [[SQLValue]] = (1...10_000).map { (id: Int) -> [SQLValue] in
                let note: SQLValue = id % 1_000 == 0 ? .text(tricky) : .null
                let mos = Double(id % 45) / 10
                return [.integer(Int64(id)), .text("+3491\(id)"), .real(mos), .blob([UInt8(id % 256), 0, 255]), note]
            }
            try await store.bulkLoad(table: cdrs, columns: ["id", "caller", "mos", "raw", "note"], rows: rows)

            let totals = try #require(try await store.query("SELECT COUNT(*) AS n, SUM(id) AS total FROM \(cdrs)").first)
            #expect(try totals.int("n") == 10_000)
            #expect(try totals.int("total") == 50_005_000)
            let sample = try #require(try await store.query("SELECT * FROM \(cdrs) WHERE id = $1", [3_000]).first)
            #expect(try sample.string("caller") == "+34913000")
            #expect(try sample.double("mos") == 3.0)
            #expect(try sample.bytes("raw") == [184, 0, 255])
            #expect(try sample.string("note") == tricky)
            let notes = try await store.query("SELECT COUNT(*) AS n FROM \(cdrs) WHERE note IS NULL")
            #expect(try notes.first?.int("n") == 9_990)
        }
    }

    @Test(arguments: TestBackend.enabled)
    func aFailedBulkLoadLandsNothing(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, names in
            let dids = names.table("dids")
            try await store.execute("CREATE TABLE \(dids) (number TEXT PRIMARY KEY, tenant TEXT NOT NULL)")
            var rows: [[SQLValue]] = (1...2_000).map { [.text("+3491555\($0)"), "tenant-a"] }
            rows.append(["+34915551", "tenant-b"])  // a duplicate of the first row
            let error = await storeError { try await store.bulkLoad(table: dids, columns: ["number", "tenant"], rows: rows) }
            #expect(error?.code == .constraintViolation)
            let landed = try await store.query("SELECT COUNT(*) AS n FROM \(dids)").first?.int("n")
            #expect(landed == 0)

            let badName = await storeError { try await store.bulkLoad(table: "dids; DROP TABLE x", columns: ["a"], rows: []) }
            #expect(badName?.code == .misuse)
            let ragged = await storeError { try await store.bulkLoad(table: dids, columns: ["number", "tenant"], rows: [["x"]]) }
            #expect(ragged?.code == .misuse)
        }
    }

    // MARK: Errors

    @Test(arguments: TestBackend.enabled)
    func badSQLFailsAndTheStoreKeepsWorking(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, names in
            let syntax = await storeError { try await store.execute("SELEKT 1") }
            #expect(syntax?.code == .queryFailed)
            #expect(syntax?.backend == store.backend)
            #expect(syntax?.sql == "SELEKT 1")
            let missingTable = await storeError { _ = try await store.query("SELECT * FROM no_such_table_\(names.suffix)") }
            #expect(missingTable?.code == .queryFailed)
            let wrongBinds = await storeError { _ = try await store.query("SELECT $1 AS a, $2 AS b", [1]) }
            #expect(wrongBinds?.code == .queryFailed)
            let twoStatements = await storeError { try await store.execute("SELECT 1; SELECT 2") }
            #expect(twoStatements?.code == .queryFailed)

            let inTransaction = await storeError {
                try await store.transaction { transaction in
                    try await transaction.execute("SELEKT 2")
                }
            }
            #expect(inTransaction?.code == .queryFailed)

            let answer = try await store.query("SELECT 41 + 1 AS answer").first?.int("answer")
            #expect(answer == 42)
            let committed = try await store.transaction { transaction in
                try await transaction.query("SELECT 7 AS seven").first?.int("seven")
            }
            #expect(committed == 7)
        }
    }

    @Test(arguments: TestBackend.enabled)
    func constraintViolationsHaveTheirOwnCode(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, names in
            let cdrs = names.table("cdrs")
            try await store.execute("CREATE TABLE \(cdrs) (id TEXT PRIMARY KEY)")
            try await store.execute("INSERT INTO \(cdrs) VALUES ($1)", ["cdr-1"])
            let error = await storeError { try await store.execute("INSERT INTO \(cdrs) VALUES ($1)", ["cdr-1"]) }
            #expect(error?.code == .constraintViolation)
            // The idempotent form services use for CDRs works on both backends.
            try await store.execute("INSERT INTO \(cdrs) VALUES ($1) ON CONFLICT (id) DO NOTHING", ["cdr-1"])
            let count = try await store.query("SELECT COUNT(*) AS n FROM \(cdrs)").first?.int("n")
            #expect(count == 1)
        }
    }

    @Test(arguments: TestBackend.enabled)
    func aClosedStoreRefusesWork(backend: TestBackend) async throws {
        try await withTestStore(backend) { store, _ in
            let other = try await openSecondStore(like: store)
            let rows = try await other.query("SELECT 1 AS one")
            #expect(rows.count == 1)
            try await other.close()
            try await other.close()
            let error = await storeError { _ = try await other.query("SELECT 1 AS one") }
            #expect(error?.code == .closed)
            let inTransaction = await storeError { try await other.transaction { _ in } }
            #expect(inTransaction?.code == .closed)
        }
    }
}
