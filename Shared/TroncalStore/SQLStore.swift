/// Which database engine a store talks to.
public enum SQLBackendKind: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// An embedded SQLite file (the default, so a site runs with nothing else installed).
    case sqlite
    /// A PostgreSQL server (production).
    case postgres

    public var description: String { rawValue }
}

/// The statements that can run inside a transaction opened by ``SQLStore/transaction(_:)``.
///
/// Placeholders are written `$1, $2, …` on every backend. Pass one statement per call. On PostgreSQL an error
/// aborts the whole transaction, so let errors propagate out of the body rather than catching them and going on.
/// The handle is valid only while the body runs.
public protocol SQLTransaction: Sendable {
    /// The backend this transaction runs on, for the rare statement that must differ between backends.
    var backend: SQLBackendKind { get }
    /// Runs a statement and discards any rows it returns.
    func execute(_ sql: String, _ binds: [SQLValue]) async throws
    /// Runs a statement and returns all its rows.
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
}

/// One SQL store API for every Troncal service, over SQLite (embedded) or PostgreSQL (production).
///
/// Open one with ``openStore(_:logger:)``, migrate it with a ``Migrator``, and ``close()`` it at shutdown. Every
/// method throws ``StoreError``; a cancelled task may also see `CancellationError`.
public protocol SQLStore: Sendable {
    /// The backend this store talks to.
    var backend: SQLBackendKind { get }

    /// Runs one statement outside any explicit transaction and discards any rows it returns.
    func execute(_ sql: String, _ binds: [SQLValue]) async throws

    /// Runs one statement outside any explicit transaction and returns all its rows.
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws (the error is rethrown
    /// unchanged), so a failed body leaves nothing behind.
    ///
    /// Use only the handle passed to `body`: calling the store itself from inside the body (or from a task it
    /// starts) throws ``StoreError/Code/misuse`` instead of deadlocking. On SQLite transactions are exclusive
    /// (`BEGIN IMMEDIATE`, and other statements on the store wait); on PostgreSQL they run at READ COMMITTED on one
    /// pooled connection, so use `SELECT … FOR UPDATE` for read-modify-write.
    nonisolated(nonsending) func transaction<T: Sendable>(
        _ body: nonisolated(nonsending) (any SQLTransaction) async throws -> T
    ) async throws -> T

    /// Loads many rows into `table` at once: `COPY … FROM STDIN` on PostgreSQL, batched INSERTs in one transaction
    /// on SQLite. All rows land or none do.
    ///
    /// `table` and `columns` must be plain lower-case identifiers (`[a-z_][a-z0-9_]*`), since they are spliced
    /// into SQL; every row must have one value per column.
    func bulkLoad(table: String, columns: [String], rows: [[SQLValue]]) async throws

    /// Closes the store; later calls throw ``StoreError/Code/closed``. Calling it twice is harmless.
    func close() async throws
}

extension SQLTransaction {
    /// Runs a statement without parameters and discards any rows it returns.
    public func execute(_ sql: String) async throws {
        try await execute(sql, [])
    }

    /// Runs a statement without parameters and returns all its rows.
    public func query(_ sql: String) async throws -> [SQLRow] {
        try await query(sql, [])
    }
}

extension SQLStore {
    /// Runs a statement without parameters and discards any rows it returns.
    public func execute(_ sql: String) async throws {
        try await execute(sql, [])
    }

    /// Runs a statement without parameters and returns all its rows.
    public func query(_ sql: String) async throws -> [SQLRow] {
        try await query(sql, [])
    }
}
