internal import TroncalProtocol
/// The one error type of TroncalStore: a ``code`` to switch on plus context for logs.
///
/// Its description names the backend, the failing statement (SQL text only, never bound values) and the database's
/// own message; it never contains a password.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, for callers to branch on.
    public enum Code: String, Sendable, Hashable, CustomStringConvertible {
        /// The database could not be opened or reached, or the connection was lost.
        case connectionFailed
        /// The configuration is unusable (bad path, URL or option).
        case invalidConfiguration
        /// A statement failed: bad SQL, a missing table, a type error, a wrong number of parameters.
        case queryFailed
        /// A statement broke a UNIQUE, PRIMARY KEY, FOREIGN KEY, NOT NULL or CHECK constraint.
        case constraintViolation
        /// BEGIN, COMMIT or ROLLBACK failed; the transaction's changes were not kept.
        case transactionFailed
        /// The database holds a newer schema than this build knows.
        case schemaTooNew
        /// A migration could not be applied; nothing of it was kept.
        case migrationFailed
        /// A result value could not be read as the requested type, or a column is missing.
        case decoding
        /// The API was used in a way that cannot work (e.g. the store used inside its own transaction).
        case misuse
        /// The store was closed.
        case closed
        /// The statement or transaction was not started: the request it serves has passed its deadline (its sender
        /// stopped waiting, `RequestDeadline`). Nothing was changed.
        case expired

        public var description: String { rawValue }
    }

    /// What went wrong.
    public var code: Code
    /// A human-readable explanation, without credentials.
    public var message: String
    /// The backend that reported the error, when one did.
    public var backend: SQLBackendKind?
    /// The statement that failed (SQL text only), when there was one.
    public var sql: String?
    /// The database's own error code: a PostgreSQL SQLSTATE (e.g. `23505`) or an SQLite result name (e.g. `constraint`).
    public var databaseCode: String?

    public init(
        _ code: Code, _ message: String, backend: SQLBackendKind? = nil, sql: String? = nil, databaseCode: String? = nil
    ) {
        self.code = code
        self.message = message
        self.backend = backend
        self.sql = sql
        self.databaseCode = databaseCode
    }

    public var description: String {
        var text = "StoreError.\(code)"
        if let backend { text += " (\(backend))" }
        text += ": \(message)"
        if let databaseCode { text += " [\(databaseCode)]" }
        if let sql { text += " in statement: \(Self.abbreviate(sql))" }
        return text
    }

    private static func abbreviate(_ sql: String) -> String {
        let collapsed = sql.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return collapsed.count > 240 ? String(collapsed.prefix(240)) + "…" : collapsed
    }
}

extension StoreError {
    /// Throws `.expired` when the current task serves a request whose sender has stopped waiting
    /// (`RequestDeadline`): called before a statement or a transaction starts, including after waiting for a
    /// connection or the database lock, so that a backlog of abandoned requests is not worked through.
    static func ensureNotExpired(backend: SQLBackendKind) throws {
        guard RequestDeadline.hasPassed else { return }
        throw StoreError(.expired, "not started: the request's sender has stopped waiting", backend: backend)
    }
}
