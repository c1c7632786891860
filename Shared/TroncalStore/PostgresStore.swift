import Foundation
public import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The production backend: a PostgresNIO `PostgresClient` (a connection pool) owned by the store.
///
/// `PostgresClient` only works while its `run()` is running. The store owns that: ``connect(_:logger:)`` first opens
/// and closes one probe connection (so a wrong host, password or database fails at once with
/// ``StoreError/Code/connectionFailed`` instead of after the pool's retries), then runs `client.run()` in a task the
/// store keeps; ``close()`` cancels that task and waits for it, closing every pooled connection. Callers therefore
/// use a store like any other value, with no service to schedule, and must `close()` it at shutdown.
public final class PostgresStore: SQLStore {
    public var backend: SQLBackendKind { .postgres }
    /// The configuration the store was opened with (its description hides the password).
    public let configuration: PostgresConfiguration

    private let client: PostgresClient
    private let runTask: Task<Void, Never>
    private let closed = Atomic<Bool>(false)
    private let logger: Logger

    private init(configuration: PostgresConfiguration, client: PostgresClient, runTask: Task<Void, Never>, logger: Logger)
    {
        self.configuration = configuration
        self.client = client
        self.runTask = runTask
        self.logger = logger
    }

    deinit {
        // A store dropped without close() must not leave its pool running.
        runTask.cancel()
    }

    /// Checks that the server is reachable with these credentials, then starts the connection pool.
    public static func connect(_ configuration: PostgresConfiguration, logger: Logger) async throws -> PostgresStore {
        guard configuration.maximumConnections >= 1 else {
            throw StoreError(.invalidConfiguration, "maximumConnections must be at least 1", backend: .postgres)
        }
        guard configuration.connectTimeoutSeconds >= 1 else {
            throw StoreError(.invalidConfiguration, "connectTimeoutSeconds must be at least 1", backend: .postgres)
        }
        guard (1...65_535).contains(configuration.port) else {
            throw StoreError(
                .invalidConfiguration, "port \(configuration.port) is not between 1 and 65535", backend: .postgres)
        }
        let socketPath = configuration.unixSocketPath.map { socketFile($0, port: configuration.port) }
        let tls = try TLSSettings(configuration)

        var probeConfiguration: PostgresConnection.Configuration
        var clientConfiguration: PostgresClient.Configuration
        if let socketPath {
            probeConfiguration = .init(
                unixSocketPath: socketPath, username: configuration.user, password: configuration.password,
                database: configuration.database)
            clientConfiguration = .init(
                unixSocketPath: socketPath, username: configuration.user, password: configuration.password,
                database: configuration.database)
        } else {
            probeConfiguration = .init(
                host: configuration.host, port: configuration.port, username: configuration.user,
                password: configuration.password, database: configuration.database, tls: tls.connection)
            clientConfiguration = .init(
                host: configuration.host, port: configuration.port, username: configuration.user,
                password: configuration.password, database: configuration.database, tls: tls.client)
        }
        probeConfiguration.options.connectTimeout = .seconds(Int64(configuration.connectTimeoutSeconds))
        clientConfiguration.options.connectTimeout = .seconds(configuration.connectTimeoutSeconds)
        clientConfiguration.options.minimumConnections = 0
        clientConfiguration.options.maximumConnections = configuration.maximumConnections

        do {
            let probe = try await PostgresConnection.connect(
                configuration: probeConfiguration, id: 0, logger: logger)
            try? await probe.close()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            let reason = storeError(error, sql: nil).message
            throw StoreError(
                .connectionFailed, "cannot connect to PostgreSQL at \(configuration): \(reason)", backend: .postgres,
                databaseCode: (error as? PSQLError)?.serverInfo?[.sqlState])
        }

        let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: logger)
        let runTask = Task { await client.run() }
        logger.debug("opened PostgreSQL store", metadata: ["database": "\(configuration)"])
        return PostgresStore(configuration: configuration, client: client, runTask: runTask, logger: logger)
    }

    public func execute(_ sql: String, _ binds: [SQLValue]) async throws {
        try checkUsable()
        do {
            let rows = try await client.query(PostgresQuery(unsafeSQL: sql, binds: Self.bindings(binds)), logger: logger)
            for try await _ in rows {}
        } catch {
            throw Self.storeError(error, sql: sql)
        }
    }

    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try checkUsable()
        do {
            let rows = try await client.query(PostgresQuery(unsafeSQL: sql, binds: Self.bindings(binds)), logger: logger)
            return try await Self.collect(rows)
        } catch {
            throw Self.storeError(error, sql: sql)
        }
    }

    public nonisolated(nonsending) func transaction<T: Sendable>(
        _ body: nonisolated(nonsending) (any SQLTransaction) async throws -> T
    ) async throws -> T {
        let id = ObjectIdentifier(self)
        try checkUsable()
        let logger = self.logger
        do {
            return try await client.withConnection { connection in
                do {
                    try await Self.run("BEGIN", on: connection, logger: logger)
                } catch {
                    throw StoreError(
                        .transactionFailed, "cannot begin a transaction: \(Self.storeError(error, sql: nil).message)",
                        backend: .postgres)
                }
                let handle = PostgresTransactionHandle(connection: connection, logger: logger)
                let value: T
                do {
                    value = try await TransactionScope.$openTransactions.withValue(
                        TransactionScope.openTransactions + [id]
                    ) {
                        try await body(handle)
                    }
                } catch {
                    handle.end()
                    await Self.rollback(connection, logger: logger)
                    throw TransactionBodyError(underlying: error)
                }
                handle.end()
                try await Self.commit(connection, logger: logger)
                return value
            }
        } catch let error as TransactionBodyError {
            throw error.underlying
        } catch let error as StoreError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw Self.storeError(error, sql: nil)
        }
    }

    public func bulkLoad(table: String, columns: [String], rows: [[SQLValue]]) async throws {
        let request = try BulkLoadRequest(table: table, columns: columns, rows: rows, backend: .postgres)
        try checkUsable()
        guard !request.rows.isEmpty else { return }
        let statement = "COPY \(table) (\(columns.joined(separator: ", "))) FROM STDIN"
        let logger = self.logger
        do {
            try await client.withConnection { connection in
                try await connection.copyFrom(table: request.table, columns: request.columns, logger: logger) { writer in
                    var buffer = ByteBuffer()
                    buffer.reserveCapacity(128 * 1024)
                    for row in request.rows {
                        PostgresCopyEncoding.append(row, to: &buffer)
                        if buffer.readableBytes >= 64 * 1024 {
                            try await writer.write(buffer)
                            buffer.clear()
                        }
                    }
                    if buffer.readableBytes > 0 { try await writer.write(buffer) }
                }
            }
        } catch {
            throw Self.storeError(error, sql: statement)
        }
        logger.debug("bulk loaded rows", metadata: ["table": "\(table)", "rows": "\(rows.count)"])
    }

    public func close() async throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        runTask.cancel()
        await runTask.value
        logger.debug("closed PostgreSQL store", metadata: ["database": "\(configuration)"])
    }

    // MARK: - Helpers

    private func checkUsable() throws {
        if closed.load(ordering: .acquiring) {
            throw StoreError(.closed, "the PostgreSQL store was closed", backend: .postgres)
        }
        try TransactionScope.ensureNotInside(ObjectIdentifier(self), backend: .postgres)
    }

    /// A socket directory (as in `unix_socket_directories`) becomes the socket file inside it.
    private static func socketFile(_ path: String, port: Int) -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            return URL(fileURLWithPath: path).appendingPathComponent(".s.PGSQL.\(port)").path
        }
        return path
    }

    static func bindings(_ values: [SQLValue]) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .null: bindings.appendNull()
            case .integer(let value): bindings.append(value)
            case .real(let value): bindings.append(value)
            case .text(let value): bindings.append(value)
            case .blob(let bytes): bindings.append(ByteBuffer(bytes: bytes))
            case .bool(let value): bindings.append(value)
            }
        }
        return bindings
    }

    static func collect(_ rows: PostgresRowSequence) async throws -> [SQLRow] {
        var result: [SQLRow] = []
        var layout: SQLColumnLayout?
        for try await row in rows {
            let cells = Array(row)
            let rowLayout = layout ?? SQLColumnLayout(cells.map(\.columnName))
            layout = rowLayout
            result.append(SQLRow(layout: rowLayout, values: try cells.map(PostgresValueDecoding.value(of:))))
        }
        return result
    }

    static func run(_ sql: String, on connection: PostgresConnection, logger: Logger) async throws {
        let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        for try await _ in rows {}
    }

    /// Commits, and reports a transaction the server rolled back instead: PostgreSQL answers `COMMIT` of a
    /// transaction aborted by an earlier (caught) error with the tag `ROLLBACK` and no error.
    private static func commit(_ connection: PostgresConnection, logger: Logger) async throws {
        let tag: String
        do {
            let future: EventLoopFuture<PostgresQueryResult> = connection.query(
                PostgresQuery(unsafeSQL: "COMMIT"), logger: logger)
            tag = try await future.get().metadata.command
        } catch {
            await rollback(connection, logger: logger)
            throw StoreError(
                .transactionFailed, "commit failed, the transaction was rolled back: \(storeError(error, sql: nil).message)",
                backend: .postgres, databaseCode: (error as? PSQLError)?.serverInfo?[.sqlState])
        }
        guard tag == "COMMIT" else {
            throw StoreError(
                .transactionFailed,
                "the transaction was aborted by an earlier error that the body caught, and has been rolled back",
                backend: .postgres)
        }
    }

    /// Rolls back; if even that fails the connection's state is unknown, so it is closed and the pool drops it.
    private static func rollback(_ connection: PostgresConnection, logger: Logger) async {
        do {
            try await run("ROLLBACK", on: connection, logger: logger)
        } catch {
            logger.warning(
                "PostgreSQL rollback failed; closing the connection", metadata: ["error": "\(storeError(error, sql: nil))"])
            try? await connection.close()
        }
    }

    static func storeError(_ error: any Error, sql: String?) -> StoreError {
        if let error = error as? StoreError { return error }
        if let error = error as? PSQLError {
            switch error.code {
            case .server:
                let state = error.serverInfo?[.sqlState]
                var message = error.serverInfo?[.message] ?? "the server reported an error"
                if let detail = error.serverInfo?[.detail] { message += " (\(detail))" }
                if let hint = error.serverInfo?[.hint] { message += "; hint: \(hint)" }
                let code: StoreError.Code
                switch state?.prefix(2) {
                case "23": code = .constraintViolation
                case "08", "28", "3D", "57":
                    // 08P01 is a protocol violation such as a wrong parameter count; 57014 a cancelled statement.
                    code = state == "08P01" || state == "57014" ? .queryFailed : .connectionFailed
                default: code = .queryFailed
                }
                return StoreError(code, message, backend: .postgres, sql: sql, databaseCode: state)
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed,
                .sslUnsupported, .failedToAddSSLHandler, .receivedUnencryptedDataAfterSSLRequest,
                .unsupportedAuthMechanism, .authMechanismRequiresPassword, .saslError:
                let reason = error.underlying.map { "\($0)" } ?? "\(error.code)"
                return StoreError(.connectionFailed, "\(error.code): \(reason)", backend: .postgres, sql: sql)
            default:
                let reason = error.underlying.map { ": \($0)" } ?? ""
                return StoreError(.queryFailed, "\(error.code)\(reason)", backend: .postgres, sql: sql)
            }
        }
        if let error = error as? PostgresDecodingError {
            return StoreError(
                .decoding, "cannot read column \"\(error.columnName)\" of type \(error.postgresType)", backend: .postgres,
                sql: sql)
        }
        let type = String(describing: type(of: error))
        if type.contains("ConnectionPoolError") {
            return StoreError(.connectionFailed, "connection pool: \(error)", backend: .postgres, sql: sql)
        }
        return StoreError(.queryFailed, "\(error)", backend: .postgres, sql: sql)
    }
}

/// Carries an error thrown by a transaction body through the pool's lease so it is rethrown unchanged.
private struct TransactionBodyError: Error {
    let underlying: any Error
}

/// The TLS settings of both the probe connection and the pool, from one ``PostgresTLSMode``.
private struct TLSSettings {
    let connection: PostgresConnection.Configuration.TLS
    let client: PostgresClient.Configuration.TLS

    init(_ configuration: PostgresConfiguration) throws {
        let mode = configuration.effectiveTLS
        guard mode != .disable else {
            connection = .disable
            client = .disable
            return
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile = configuration.tlsCACertificatePath {
            tls.trustRoots = .file(caFile)
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: tls)
        } catch {
            throw StoreError(.invalidConfiguration, "cannot set up TLS for PostgreSQL: \(error)", backend: .postgres)
        }
        if mode == .require {
            connection = .require(context)
            client = .require(tls)
        } else {
            connection = .prefer(context)
            client = .prefer(tls)
        }
    }
}

/// The handle passed to a PostgreSQL transaction's body: the leased connection, valid until the body ends.
private final class PostgresTransactionHandle: SQLTransaction {
    private let connection: PostgresConnection
    private let logger: Logger
    private let active = Atomic<Bool>(true)

    init(connection: PostgresConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    var backend: SQLBackendKind { .postgres }

    func end() {
        active.store(false, ordering: .releasing)
    }

    func execute(_ sql: String, _ binds: [SQLValue]) async throws {
        try ensureActive()
        do {
            let rows = try await connection.query(
                PostgresQuery(unsafeSQL: sql, binds: PostgresStore.bindings(binds)), logger: logger)
            for try await _ in rows {}
        } catch {
            throw PostgresStore.storeError(error, sql: sql)
        }
    }

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try ensureActive()
        do {
            let rows = try await connection.query(
                PostgresQuery(unsafeSQL: sql, binds: PostgresStore.bindings(binds)), logger: logger)
            return try await PostgresStore.collect(rows)
        } catch {
            throw PostgresStore.storeError(error, sql: sql)
        }
    }

    private func ensureActive() throws {
        guard active.load(ordering: .acquiring) else {
            throw StoreError(.misuse, "the transaction handle was used after its transaction ended", backend: .postgres)
        }
    }
}
