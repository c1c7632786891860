import Foundation
public import Logging
import NIOCore
import SQLiteNIO
import Synchronization

/// The embedded backend: one SQLite connection per store, in WAL mode with a busy timeout and foreign keys on.
///
/// Every statement and transaction takes the store's async lock, so a transaction is exclusive: while it runs, other
/// statements on the store wait (suspended, never blocking a thread). Transactions start with `BEGIN IMMEDIATE`, which
/// also serialises writers across processes sharing the file.
public final class SQLiteStore: SQLStore {
    public var backend: SQLBackendKind { .sqlite }
    /// The configuration the store was opened with.
    public let configuration: SQLiteConfiguration

    private let connection: SQLiteConnection
    private let lock = AsyncLock()
    private let closed = Atomic<Bool>(false)
    private let logger: Logger

    private init(configuration: SQLiteConfiguration, connection: SQLiteConnection, logger: Logger) {
        self.configuration = configuration
        self.connection = connection
        self.logger = logger
    }

    /// Opens (creating when missing) the database file. Throws ``StoreError/Code/connectionFailed`` when its
    /// directory does not exist or the file is not an SQLite database.
    public static func open(_ configuration: SQLiteConfiguration, logger: Logger) async throws -> SQLiteStore {
        let path = configuration.path
        try checkLocation(path)
        guard configuration.busyTimeoutMilliseconds >= 0 else {
            throw StoreError(.invalidConfiguration, "busyTimeoutMilliseconds must not be negative", backend: .sqlite)
        }
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(
                storage: path == ":memory:" ? .memory : .file(path: path), logger: logger)
        } catch {
            throw StoreError(
                .connectionFailed, "cannot open SQLite database \(path): \(describe(error))", backend: .sqlite)
        }
        let store = SQLiteStore(configuration: configuration, connection: connection, logger: logger)
        do {
            // busy_timeout replaces SQLiteNIO's default busy handler, which would retry forever.
            _ = try await store.perform("PRAGMA busy_timeout = \(configuration.busyTimeoutMilliseconds)", [], collect: true)
            let mode = try await store.perform("PRAGMA journal_mode = WAL", [], collect: true)
            _ = try await store.perform("PRAGMA foreign_keys = ON", [], collect: false)
            let journal = (try? mode.first?.string("journal_mode")) ?? "unknown"
            if journal != "wal" && path != ":memory:" {
                logger.warning(
                    "SQLite database is not in WAL mode", metadata: ["path": "\(path)", "journal_mode": "\(journal)"])
            }
        } catch let error as StoreError {
            try? await connection.close()
            throw StoreError(
                .connectionFailed, "cannot use SQLite database \(path): \(error.message)", backend: .sqlite,
                databaseCode: error.databaseCode)
        }
        logger.debug("opened SQLite store", metadata: ["path": "\(path)"])
        return store
    }

    private static func checkLocation(_ path: String) throws {
        guard path != ":memory:" else { return }
        guard !path.isEmpty else {
            throw StoreError(.invalidConfiguration, "the SQLite database path is empty", backend: .sqlite)
        }
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw StoreError(
                .connectionFailed,
                "cannot open SQLite database \(path): directory \(directory) does not exist (create the data directory first)",
                backend: .sqlite)
        }
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw StoreError(
                .connectionFailed, "cannot open SQLite database \(path): it is a directory", backend: .sqlite)
        }
    }

    public func execute(_ sql: String, _ binds: [SQLValue]) async throws {
        _ = try await locked { try await self.perform(sql, binds, collect: false) }
    }

    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try await locked { try await self.perform(sql, binds, collect: true) }
    }

    public nonisolated(nonsending) func transaction<T: Sendable>(
        _ body: nonisolated(nonsending) (any SQLTransaction) async throws -> T
    ) async throws -> T {
        let id = ObjectIdentifier(self)
        try TransactionScope.ensureNotInside(id, backend: .sqlite)
        try await lockForWork()
        defer { lock.unlock() }

        do {
            _ = try await perform("BEGIN IMMEDIATE", [], collect: false)
        } catch let error as StoreError {
            throw StoreError(
                .transactionFailed, "cannot begin a transaction: \(error.message)", backend: .sqlite,
                databaseCode: error.databaseCode)
        }
        let handle = SQLiteTransactionHandle(store: self)
        let value: T
        do {
            value = try await TransactionScope.$openTransactions.withValue(TransactionScope.openTransactions + [id]) {
                try await body(handle)
            }
        } catch {
            handle.end()
            await rollback()
            throw error
        }
        handle.end()
        do {
            _ = try await perform("COMMIT", [], collect: false)
        } catch let error as StoreError {
            await rollback()
            throw StoreError(
                .transactionFailed, "commit failed, the transaction was rolled back: \(error.message)",
                backend: .sqlite, databaseCode: error.databaseCode)
        }
        return value
    }

    public func bulkLoad(table: String, columns: [String], rows: [[SQLValue]]) async throws {
        let request = try BulkLoadRequest(table: table, columns: columns, rows: rows, backend: .sqlite)
        guard !request.rows.isEmpty else { return }
        // One multi-row INSERT per batch keeps both the statement count and the bind count per statement modest.
        let rowsPerStatement = max(1, min(500, 30_000 / request.columns.count))
        let head =
            "INSERT INTO \"\(request.table)\" ("
            + request.columns.map { "\"\($0)\"" }.joined(separator: ", ") + ") VALUES "
        try await transaction { transaction in
            var start = 0
            while start < request.rows.count {
                let batch = request.rows[start..<min(start + rowsPerStatement, request.rows.count)]
                var parameter = 0
                let tuples = batch.map { _ in
                    "("
                        + request.columns.map { _ in
                            parameter += 1
                            return "$\(parameter)"
                        }.joined(separator: ", ") + ")"
                }
                try await transaction.execute(head + tuples.joined(separator: ", "), Array(batch.joined()))
                start += batch.count
            }
        }
        logger.debug("bulk loaded rows", metadata: ["table": "\(table)", "rows": "\(rows.count)"])
    }

    public func close() async throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // Wait for the running statement or transaction to finish; later waiters see `closed` and give up. If this
        // task is cancelled while waiting, close anyway: SQLite serialises calls on the connection itself.
        let locked = (try? await lock.lock()) != nil
        defer { if locked { lock.unlock() } }
        do {
            try await connection.close()
        } catch {
            throw StoreError(.connectionFailed, "closing the SQLite database failed: \(Self.describe(error))", backend: .sqlite)
        }
        logger.debug("closed SQLite store", metadata: ["path": "\(configuration.path)"])
    }

    // MARK: - Statement execution

    private func locked(_ operation: () async throws -> [SQLRow]) async throws -> [SQLRow] {
        try TransactionScope.ensureNotInside(ObjectIdentifier(self), backend: .sqlite)
        try await lockForWork()
        defer { lock.unlock() }
        return try await operation()
    }

    /// Takes the lock for one statement or transaction: the store open and the request it serves still waited for
    /// (`RequestDeadline`), before and after the wait for the lock, which may have outlasted either. The caller
    /// unlocks.
    private func lockForWork() async throws {
        try ensureOpen()
        try StoreError.ensureNotExpired(backend: .sqlite)
        try await lock.lock()
        do {
            try ensureOpen()
            try StoreError.ensureNotExpired(backend: .sqlite)
        } catch {
            lock.unlock()
            throw error
        }
    }

    private func ensureOpen() throws {
        if closed.load(ordering: .acquiring) {
            throw StoreError(.closed, "the SQLite store was closed", backend: .sqlite)
        }
    }

    /// Runs one statement; the caller holds the lock (directly or through an open transaction).
    fileprivate func perform(_ sql: String, _ binds: [SQLValue], collect: Bool) async throws -> [SQLRow] {
        let rewritten = try SQLiteStatementRewriter.rewrite(sql)
        guard rewritten.parameterCount == binds.count else {
            throw StoreError(
                .queryFailed,
                "the statement uses \(rewritten.parameterCount) parameter(s) but \(binds.count) value(s) were bound",
                backend: .sqlite, sql: sql)
        }
        let data = binds.map(Self.sqliteData)
        do {
            if collect {
                let rows = try await connection.query(rewritten.sql, data)
                guard let first = rows.first else { return [] }
                let layout = SQLColumnLayout(first.columns.map(\.name))
                return rows.map { row in SQLRow(layout: layout, values: row.columns.map { Self.value($0.data) }) }
            } else {
                try await connection.query(rewritten.sql, data) { _ in }
                return []
            }
        } catch {
            let storeError = Self.storeError(error, sql: sql)
            logger.debug("SQLite statement failed", metadata: ["error": "\(storeError)"])
            throw storeError
        }
    }

    private func rollback() async {
        do {
            _ = try await perform("ROLLBACK", [], collect: false)
        } catch {
            // SQLite rolls back by itself after some errors (e.g. SQLITE_FULL), after which ROLLBACK has nothing to do.
            logger.debug("SQLite rollback reported an error", metadata: ["error": "\(error)"])
        }
    }

    private static func sqliteData(_ value: SQLValue) -> SQLiteData {
        switch value {
        case .null: .null
        case .integer(let value): .integer(SQLiteInt64(value))
        case .real(let value): .float(value)
        case .text(let value): .text(value)
        case .blob(let bytes): .blob(ByteBuffer(bytes: bytes))
        case .bool(let value): .integer(value ? 1 : 0)
        }
    }

    private static func value(_ data: SQLiteData) -> SQLValue {
        switch data {
        case .null: .null
        case .integer(let value): .integer(Int64(value))
        case .float(let value): .real(value)
        case .text(let value): .text(value)
        case .blob(let buffer): .blob(Array(buffer.readableBytesView))
        }
    }

    private static func storeError(_ error: any Error, sql: String) -> StoreError {
        if let error = error as? StoreError { return error }
        if let error = error as? SQLiteError {
            let reason = "\(error.reason)"
            let code: StoreError.Code = reason.hasPrefix("constraint") ? .constraintViolation : .queryFailed
            return StoreError(code, error.message, backend: .sqlite, sql: sql, databaseCode: reason)
        }
        return StoreError(.queryFailed, describe(error), backend: .sqlite, sql: sql)
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? SQLiteError { return error.message }
        return "\(error)"
    }
}

/// The handle passed to an SQLite transaction's body; it runs statements under the lock its transaction holds.
private final class SQLiteTransactionHandle: SQLTransaction {
    private let store: SQLiteStore
    private let active = Atomic<Bool>(true)

    init(store: SQLiteStore) {
        self.store = store
    }

    var backend: SQLBackendKind { .sqlite }

    func end() {
        active.store(false, ordering: .releasing)
    }

    func execute(_ sql: String, _ binds: [SQLValue]) async throws {
        try ensureActive()
        _ = try await store.perform(sql, binds, collect: false)
    }

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try ensureActive()
        return try await store.perform(sql, binds, collect: true)
    }

    private func ensureActive() throws {
        guard active.load(ordering: .acquiring) else {
            throw StoreError(.misuse, "the transaction handle was used after its transaction ended", backend: .sqlite)
        }
    }
}
