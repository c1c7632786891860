/// One numbered schema change of a service, applied once per database in its own transaction.
///
/// Write portable SQL in ``sql``; when the backends need different text (types, `AUTOINCREMENT` versus
/// `GENERATED … AS IDENTITY`), give ``sqlite`` and/or ``postgres`` variants, which then replace ``sql`` on that
/// backend. One statement per string.
public struct Migration: Sendable, Hashable {
    /// A positive number; migrations apply in ascending order and a version is never reused.
    public var version: Int
    /// A short name for logs and the migrations table, e.g. `create_cdrs`.
    public var name: String
    /// The statements for every backend without its own variant.
    public var sql: [String]
    /// Statements used on SQLite instead of ``sql``.
    public var sqlite: [String]?
    /// Statements used on PostgreSQL instead of ``sql``.
    public var postgres: [String]?

    public init(version: Int, name: String, sql: [String]) {
        self.init(version: version, name: name, sql: sql, sqlite: nil, postgres: nil)
    }

    public init(version: Int, name: String, sqlite: [String], postgres: [String]) {
        self.init(version: version, name: name, sql: [], sqlite: sqlite, postgres: postgres)
    }

    public init(version: Int, name: String, sql: [String], sqlite: [String]?, postgres: [String]?) {
        self.version = version
        self.name = name
        self.sql = sql
        self.sqlite = sqlite
        self.postgres = postgres
    }

    /// The statements to run on `backend`.
    public func statements(for backend: SQLBackendKind) -> [String] {
        switch backend {
        case .sqlite: sqlite ?? sql
        case .postgres: postgres ?? sql
        }
    }
}
