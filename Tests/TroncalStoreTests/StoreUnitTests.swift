import Foundation
import NIOCore
import Testing
@testable import TroncalStore

@Suite struct SQLiteStatementRewriterTests {
    @Test(arguments: [
        ("SELECT $1, $2", "SELECT ?1, ?2", 2),
        ("SELECT * FROM t WHERE a = $10", "SELECT * FROM t WHERE a = ?10", 10),
        ("SELECT '$1', \"$2\", `$3`, [$4] FROM t WHERE x = $1", "SELECT '$1', \"$2\", `$3`, [$4] FROM t WHERE x = ?1", 1),
        ("SELECT 'it''s $1' || $1", "SELECT 'it''s $1' || ?1", 1),
        ("SELECT $1 -- and $2\n, $3", "SELECT ?1 -- and $2\n, ?3", 3),
        ("SELECT /* $9 */ $1", "SELECT /* $9 */ ?1", 1),
        ("SELECT 1;", "SELECT 1;", 0),
        ("SELECT 1; -- trailing comment", "SELECT 1; -- trailing comment", 0),
        ("SELECT $amount", "SELECT $amount", 0),
    ])
    func rewritesPlaceholdersOutsideLiterals(input: String, expected: String, count: Int) throws {
        let rewritten = try SQLiteStatementRewriter.rewrite(input)
        #expect(rewritten.sql == expected)
        #expect(rewritten.parameterCount == count)
    }

    @Test(arguments: ["SELECT 1; SELECT 2", "SELECT $0", "INSERT INTO t VALUES (1);\nDELETE FROM t"])
    func refusesWhatCannotWork(input: String) {
        let error = #expect(throws: StoreError.self) { try SQLiteStatementRewriter.rewrite(input) }
        #expect(error?.code == .queryFailed)
    }
}

@Suite struct StoreConfigurationTests {
    @Test func decodesSQLiteWithDefaults() throws {
        let json = #"{"backend": "sqlite", "path": "/var/lib/troncal/billing.db"}"#
        let configuration = try JSONDecoder().decode(StoreConfiguration.self, from: Data(json.utf8))
        #expect(configuration == .sqlite(SQLiteConfiguration(path: "/var/lib/troncal/billing.db", busyTimeoutMilliseconds: 5_000)))
        #expect(configuration.backend == .sqlite)
    }

    @Test func decodesPostgresWithDefaultsAndRoundTrips() throws {
        let json = #"{"backend": "postgres", "host": "10.1.0.5", "user": "billing", "password": "pw", "database": "billing"}"#
        let configuration = try JSONDecoder().decode(StoreConfiguration.self, from: Data(json.utf8))
        guard case .postgres(let postgres) = configuration else {
            Issue.record("expected a PostgreSQL configuration")
            return
        }
        #expect(postgres.port == 5432)
        #expect(postgres.maximumConnections == 10)
        #expect(postgres.effectiveTLS == .require)
        let again = try JSONDecoder().decode(StoreConfiguration.self, from: JSONEncoder().encode(configuration))
        #expect(again == configuration)
    }

    @Test func anUnknownBackendNamesTheAllowedOnes() {
        let json = #"{"backend": "mysql", "path": "x"}"#
        #expect {
            try JSONDecoder().decode(StoreConfiguration.self, from: Data(json.utf8))
        } throws: { error in
            "\(error)".contains("allowed: sqlite, postgres")
        }
    }

    @Test func neverShowsThePassword() {
        let configuration = StoreConfiguration.postgres(
            host: "db.site-a", user: "billing", password: "correct-horse", database: "billing")
        for text in [configuration.description, String(reflecting: configuration), "\(configuration)"] {
            #expect(!text.contains("correct-horse"))
            #expect(text.contains("billing:***@db.site-a:5432/billing"))
        }
        var dumped = ""
        dump(configuration, to: &dumped)
        #expect(!dumped.contains("correct-horse"))
    }

    @Test func parsesPostgresURLs() throws {
        let tcp = try PostgresConfiguration(url: "postgres://user:p%40ss@127.0.0.1:54329/troncal_test?sslmode=disable")
        #expect(tcp.host == "127.0.0.1")
        #expect(tcp.port == 54329)
        #expect(tcp.user == "user")
        #expect(tcp.password == "p@ss")
        #expect(tcp.database == "troncal_test")
        #expect(tcp.effectiveTLS == .disable)

        let socket = try PostgresConfiguration(url: "postgresql://postgres@/billing?host=/run/postgresql")
        #expect(socket.unixSocketPath == "/run/postgresql")
        #expect(socket.password == nil)
        #expect(socket.effectiveTLS == .disable)

        #expect(try PostgresConfiguration(url: "postgres://u@localhost/db").effectiveTLS == .disable)
        #expect(try PostgresConfiguration(url: "postgres://u@db.example/db").effectiveTLS == .require)
    }

    @Test(arguments: [
        "mysql://u@h/db", "postgres://h/db", "postgres://u@h", "postgres://u:secret@h/db?sslmode=sometimes",
        "postgres://u:secret@h/db?bogus=1",
    ])
    func refusesBadURLsWithoutEchoingThem(url: String) {
        let error = #expect(throws: StoreError.self) { try PostgresConfiguration(url: url) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.description.contains("secret") == false)
    }
}

@Suite struct PostgresValueCodingTests {
    private func numeric(_ count: Int16, _ weight: Int16, _ sign: UInt16, _ scale: Int16, _ digits: [Int16]) -> String? {
        var buffer = ByteBuffer()
        buffer.writeInteger(count)
        buffer.writeInteger(weight)
        buffer.writeInteger(sign)
        buffer.writeInteger(scale)
        for digit in digits { buffer.writeInteger(digit) }
        return PostgresValueDecoding.numericText(&buffer)
    }

    @Test func rendersNumericExactly() {
        #expect(numeric(2, 0, 0, 2, [12, 5000]) == "12.50")
        #expect(numeric(1, 1, 0, 0, [1]) == "10000")
        #expect(numeric(1, -2, 0x4000, 8, [1]) == "-0.00000001")
        #expect(numeric(0, 0, 0, 2, []) == "0.00")
        #expect(numeric(3, 1, 0x4000, 3, [12, 3456, 7800]) == "-123456.780")
        #expect(numeric(0, 0, 0xC000, 0, []) == "NaN")
        #expect(numeric(1, 0, 0x1234, 0, [1]) == nil)
    }

    @Test func rendersTimestampsInISO8601() {
        #expect(PostgresValueDecoding.timestampText(microseconds: 0, utc: true) == "2000-01-01T00:00:00Z")
        #expect(PostgresValueDecoding.timestampText(microseconds: -1, utc: true) == "1999-12-31T23:59:59.999999Z")
        #expect(
            PostgresValueDecoding.timestampText(microseconds: 791_683_199_123_456, utc: true)
                == "2025-01-31T23:59:59.123456Z")
        #expect(PostgresValueDecoding.timestampText(microseconds: .max, utc: true) == "infinity")
        #expect(PostgresValueDecoding.dateText(days: 1_520) == "2004-02-29")
        #expect(PostgresValueDecoding.dateText(days: -10_957) == "1970-01-01")
    }

    @Test func escapesCopyText() {
        var buffer = ByteBuffer()
        PostgresCopyEncoding.append(
            [.integer(-5), .text("a\tb\nc\\d\re"), .null, .blob([0x00, 0xAB]), .bool(true), .real(.infinity), .real(0.25)],
            to: &buffer)
        #expect(String(buffer: buffer) == "-5\ta\\tb\\nc\\\\d\\re\t\\N\t\\\\x00ab\tt\tInfinity\t0.25\n")
    }
}

@Suite struct SQLRowTests {
    @Test func matchesColumnNamesExactlyThenIgnoringCase() throws {
        let row = SQLRow(columns: ["Total", "total", "Name"], values: [1, 2, "x"])
        #expect(try row.int("Total") == 1)
        #expect(try row.int("total") == 2)
        #expect(try row.string("name") == "x")
        #expect(row["missing"] == nil)
    }

    @Test func convertsOnlyWhatIsSafe() throws {
        let row = SQLRow(columns: ["sum", "big", "flag", "n"], values: ["42", "1.5", .integer(1), .integer(3)])
        #expect(try row.int("sum") == 42)
        #expect(throws: StoreError.self) { try row.int("big") }
        #expect(try row.double("big") == 1.5)
        #expect(try row.bool("flag"))
        #expect(throws: StoreError.self) { try row.bool("n") }
        #expect(throws: StoreError.self) { try row.string("n") }
    }
}

@Suite struct MigratorValidationTests {
    @Test func refusesDuplicateVersions() {
        let error = #expect(throws: StoreError.self) {
            try Migrator(
                service: "billing",
                migrations: [Migration(version: 1, name: "a", sql: ["SELECT 1"]), Migration(version: 1, name: "b", sql: ["SELECT 1"])],
                logger: testLogger)
        }
        #expect(error?.code == .misuse)
    }

    @Test func refusesAMigrationWithoutStatementsForABackend() {
        #expect(throws: StoreError.self) {
            try Migrator(
                service: "billing", migrations: [Migration(version: 1, name: "a", sqlite: ["SELECT 1"], postgres: [])],
                logger: testLogger)
        }
    }

    @Test func picksTheBackendsVariant() {
        let migration = Migration(version: 1, name: "ids", sql: ["generic"], sqlite: nil, postgres: ["pg"])
        #expect(migration.statements(for: .sqlite) == ["generic"])
        #expect(migration.statements(for: .postgres) == ["pg"])
    }
}
