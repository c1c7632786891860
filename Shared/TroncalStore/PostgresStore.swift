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
///
/// **Several servers** (``PostgresConfiguration/hosts``: a primary and its standbys, e.g. managed by Patroni): the
/// probe asks every server `pg_is_in_recovery()` and the pool goes to the primary. A watcher asks the pool's server
/// the same question every ``PostgresConfiguration/primaryCheckIntervalMilliseconds``; when it does not answer within
/// 2 s, or answers that it is now a standby, the servers are asked again and, when another one is the primary, a new
/// pool replaces the old. Statements that certainly did not run (no connection could be had, the pool was replaced
/// while they waited, or the server refused the write as read-only: SQLSTATE 25006) are run again on the new primary,
/// for up to ``PostgresConfiguration/failoverWaitSeconds``; so is a transaction whose body got such a refusal (its
/// work was rolled back, so bodies must not act outside the database). A statement that was sent and whose answer
/// was lost with the connection is not run again: its error is returned, and the caller, who knows whether it is
/// idempotent, decides.
public final class PostgresStore: SQLStore {
    public var backend: SQLBackendKind { .postgres }
    /// The configuration the store was opened with (its description hides the password).
    public let configuration: PostgresConfiguration

    private struct Pool: Sendable {
        var client: PostgresClient
        var runTask: Task<Void, Never>
        var server: Int
        var generation: Int
    }

    private let factory: ClientFactory
    private let pool: Mutex<Pool>
    private let watcher = Mutex<Task<Void, Never>?>(nil)
    /// Connections leased now, by the pool generation they came from: when a pool is replaced its leased connections
    /// are closed, so a statement stuck on a server that is gone (or demoted) fails instead of waiting forever.
    private let leased = Mutex<[Int: [ObjectIdentifier: PostgresConnection]]>([:])
    private let nudged = Atomic<Bool>(false)
    private let closed = Atomic<Bool>(false)
    private let logger: Logger

    private init(configuration: PostgresConfiguration, factory: ClientFactory, pool: Pool, logger: Logger) {
        self.configuration = configuration
        self.factory = factory
        self.pool = Mutex(pool)
        self.logger = logger
    }

    deinit {
        // A store dropped without close() must not leave its pool running.
        pool.withLock { $0.runTask.cancel() }
        watcher.withLock { $0?.cancel() }
    }

    /// The server the pool uses now (`host:port`, or the socket), for `status` and logs.
    public var currentServer: String {
        if let socket = configuration.unixSocketPath { return "socket \(socket)" }
        let index = pool.withLock { $0.server }
        return factory.servers[index].description
    }

    /// How many times the store moved to another primary since it was opened.
    public var failovers: Int { pool.withLock { $0.generation } }

    /// Checks that the server is reachable with these credentials (with several servers: finds the primary), then
    /// starts the connection pool.
    public static func connect(_ configuration: PostgresConfiguration, logger: Logger) async throws -> PostgresStore {
        guard configuration.maximumConnections >= 1 else {
            throw StoreError(.invalidConfiguration, "maximumConnections must be at least 1", backend: .postgres)
        }
        guard configuration.connectTimeoutSeconds >= 1 else {
            throw StoreError(.invalidConfiguration, "connectTimeoutSeconds must be at least 1", backend: .postgres)
        }
        for server in configuration.candidates where !(1...65_535).contains(server.port) {
            throw StoreError(
                .invalidConfiguration, "port \(server.port) is not between 1 and 65535", backend: .postgres)
        }
        let replicated = configuration.candidates.count > 1
        if replicated {
            guard configuration.unixSocketPath == nil else {
                throw StoreError(
                    .invalidConfiguration, "several PostgreSQL hosts cannot be reached through one Unix socket",
                    backend: .postgres)
            }
            guard configuration.primaryCheckIntervalMilliseconds >= 100, configuration.failoverWaitSeconds >= 1 else {
                throw StoreError(
                    .invalidConfiguration,
                    "primaryCheckIntervalMilliseconds must be at least 100 and failoverWaitSeconds at least 1",
                    backend: .postgres)
            }
        }
        let factory = try ClientFactory(configuration)

        let server: Int
        if replicated {
            let survey = await factory.survey(timeout: .seconds(configuration.connectTimeoutSeconds), logger: logger)
            guard let primary = survey.primary(preferring: nil) else {
                throw StoreError(
                    .connectionFailed,
                    "no primary among the PostgreSQL servers of \(configuration): \(survey.summary)", backend: .postgres)
            }
            server = primary
        } else {
            do {
                let probe = try await PostgresConnection.connect(
                    configuration: factory.probeConfiguration(0, timeout: .seconds(configuration.connectTimeoutSeconds)),
                    id: 0, logger: logger)
                try? await probe.close()
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                let reason = storeError(error, sql: nil).message
                throw StoreError(
                    .connectionFailed, "cannot connect to PostgreSQL at \(configuration): \(reason)", backend: .postgres,
                    databaseCode: (error as? PSQLError)?.serverInfo?[.sqlState])
            }
            server = 0
        }

        let client = PostgresClient(configuration: factory.clientConfiguration(server), backgroundLogger: logger)
        let runTask = Task { await client.run() }
        let store = PostgresStore(
            configuration: configuration, factory: factory,
            pool: Pool(client: client, runTask: runTask, server: server, generation: 0), logger: logger)
        logger.debug(
            "opened PostgreSQL store",
            metadata: ["database": "\(configuration)", "server": "\(factory.servers[server])"])
        if replicated {
            store.watcher.withLock { $0 = Task { [weak store] in await store?.watchPrimary() } }
        }
        return store
    }

    public func execute(_ sql: String, _ binds: [SQLValue]) async throws {
        try checkUsable()
        let logger = self.logger
        try await retryingWhatDidNotRun(sql: sql) { connection in
            try await Self.durably(sql, on: connection, logger: logger) {
                try await PostgresStatementGuard.run(on: connection) {
                    let rows = try await connection.query(
                        PostgresQuery(unsafeSQL: sql, binds: Self.bindings(binds)), logger: logger)
                    for try await _ in rows {}
                }
            }
        }
    }

    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try checkUsable()
        let logger = self.logger
        return try await retryingWhatDidNotRun(sql: sql) { connection in
            try await Self.durably(sql, on: connection, logger: logger) {
                try await PostgresStatementGuard.run(on: connection) {
                    let rows = try await connection.query(
                        PostgresQuery(unsafeSQL: sql, binds: Self.bindings(binds)), logger: logger)
                    return try await Self.collect(rows)
                }
            }
        }
    }

    /// Runs a data-changing statement (`INSERT`, `UPDATE`, `DELETE`, `MERGE`, `WITH …`) in an explicit transaction.
    ///
    /// With the extended query protocol an implicit transaction commits at the `Sync` that follows the statement,
    /// after the server has already sent `CommandComplete`, which is what the driver returns on. A server that dies
    /// in between (or a synchronous standby that never confirmed) would leave the caller believing in a write that
    /// was never committed: the failover test saw exactly that. An explicit `COMMIT` is answered only once the commit
    /// is durable (and, with synchronous replication, on the standby). Other statements (reads, DDL, statements that
    /// cannot run inside a transaction such as `CREATE DATABASE`) run as they are.
    static func durably<T: Sendable>(
        _ sql: String, on connection: PostgresConnection, logger: Logger, _ statement: () async throws -> T
    ) async throws -> T {
        guard changesData(sql) else { return try await statement() }
        try await run("BEGIN", on: connection, logger: logger)
        let value: T
        do {
            value = try await statement()
        } catch {
            await rollback(connection, logger: logger)
            throw error
        }
        try await commit(connection, logger: logger)
        return value
    }

    /// Whether the statement's first keyword makes it a data-changing statement.
    static func changesData(_ sql: String) -> Bool {
        var keyword = ""
        var inComment = false
        var previous: Character = " "
        for character in sql {
            if inComment {
                if character == "\n" { inComment = false }
                continue
            }
            if character == "-" && previous == "-" {
                keyword = ""
                inComment = true
                continue
            }
            previous = character
            if character.isLetter {
                keyword.append(character)
            } else if !keyword.isEmpty || (character != "-" && !character.isWhitespace && character != "(") {
                break
            }
        }
        return ["INSERT", "UPDATE", "DELETE", "MERGE", "WITH"].contains(keyword.uppercased())
    }

    public nonisolated(nonsending) func transaction<T: Sendable>(
        _ body: nonisolated(nonsending) (any SQLTransaction) async throws -> T
    ) async throws -> T {
        let id = ObjectIdentifier(self)
        try checkUsable()
        let logger = self.logger
        var attempt = 0
        let deadline = ContinuousClock.now + .seconds(configuration.failoverWaitSeconds)
        while true {
            attempt += 1
            let current = pool.withLock { $0 }
            do {
                return try await lease(current) { connection in
                    do {
                        try await Self.run("BEGIN", on: connection, logger: logger)
                    } catch {
                        throw BeginFailed(underlying: error)
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
            } catch let failed as BeginFailed {
                // Nothing of the body ran: whatever broke the connection (the pool moving to a new primary closes the
                // old one's), it is safe to begin again on the primary, until the failover wait.
                if factory.servers.count > 1, ContinuousClock.now < deadline, !Task.isCancelled, !closed.load(ordering: .acquiring) {
                    await waitForFailover(after: failed.underlying, attempt: attempt)
                    continue
                }
                throw StoreError(
                    .transactionFailed, "cannot begin a transaction: \(Self.storeError(failed.underlying, sql: nil).message)",
                    backend: .postgres, databaseCode: (failed.underlying as? PSQLError)?.serverInfo?[.sqlState])
            } catch {
                let underlying = (error as? TransactionBodyError)?.underlying ?? error
                if shouldRetry(underlying, deadline: deadline) {
                    await waitForFailover(after: underlying, attempt: attempt)
                    continue
                }
                if let error = error as? TransactionBodyError { throw error.underlying }
                if let error = error as? StoreError { throw error }
                if error is CancellationError { throw CancellationError() }
                throw Self.storeError(error, sql: nil)
            }
        }
    }

    public func bulkLoad(table: String, columns: [String], rows: [[SQLValue]]) async throws {
        let request = try BulkLoadRequest(table: table, columns: columns, rows: rows, backend: .postgres)
        try checkUsable()
        guard !request.rows.isEmpty else { return }
        let statement = "COPY \(table) (\(columns.joined(separator: ", "))) FROM STDIN"
        let logger = self.logger
        try await retryingWhatDidNotRun(sql: statement) { connection in
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
        logger.debug("bulk loaded rows", metadata: ["table": "\(table)", "rows": "\(rows.count)"])
    }

    public func close() async throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let watch = watcher.withLock { task -> Task<Void, Never>? in
            defer { task = nil }
            return task
        }
        watch?.cancel()
        await watch?.value
        let runTask = pool.withLock { $0.runTask }
        runTask.cancel()
        await runTask.value
        logger.debug("closed PostgreSQL store", metadata: ["database": "\(configuration)"])
    }

    // MARK: - Following the primary

    /// Runs `operation` on the current pool; when it fails in a way that shows the statement did not run and there
    /// are other servers, waits for the watcher to find the primary and runs it again, until the failover wait.
    private func retryingWhatDidNotRun<T: Sendable>(
        sql: String?, _ operation: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let deadline = ContinuousClock.now + .seconds(configuration.failoverWaitSeconds)
        var attempt = 0
        while true {
            attempt += 1
            let current = pool.withLock { $0 }
            do {
                return try await lease(current, operation)
            } catch {
                guard shouldRetry(error, deadline: deadline) else {
                    if error is CancellationError { throw CancellationError() }
                    throw Self.storeError(error, sql: sql)
                }
                await waitForFailover(after: error, attempt: attempt)
            }
        }
    }

    /// Runs `body` on a connection leased from `pool`, known to the store while it is leased.
    private nonisolated(nonsending) func lease<T: Sendable>(
        _ pool: Pool, _ body: nonisolated(nonsending) (PostgresConnection) async throws -> T
    ) async throws -> T {
        let generation = pool.generation
        try StoreError.ensureNotExpired(backend: .postgres)
        return try await pool.client.withConnection { connection in
            // The wait for a connection may have outlasted the request.
            try StoreError.ensureNotExpired(backend: .postgres)
            let key = ObjectIdentifier(connection)
            leased.withLock { $0[generation, default: [:]][key] = connection }
            defer { leased.withLock { _ = $0[generation]?.removeValue(forKey: key) } }
            return try await body(connection)
        }
    }

    private func shouldRetry(_ error: any Error, deadline: ContinuousClock.Instant) -> Bool {
        factory.servers.count > 1 && Self.certainlyDidNotRun(error) && ContinuousClock.now < deadline
            && !Task.isCancelled && !closed.load(ordering: .acquiring)
    }

    /// Errors after which the statement is known not to have changed anything.
    static func certainlyDidNotRun(_ error: any Error) -> Bool {
        if let error = error as? PSQLError {
            if error.code == .poolClosed { return true }
            if error.code == .server { return error.serverInfo?[.sqlState] == "25006" }
            return false
        }
        if let error = error as? StoreError {
            // 25006: read_only_sql_transaction (a standby, or a primary being demoted), refused before any change.
            return error.databaseCode == "25006"
        }
        // postgres-nio's ConnectionPoolError (its module is not a product): no connection could be made, or the pool
        // closed while the request waited for one.
        if String(describing: type(of: error)).contains("ConnectionPoolError") {
            let text = String(describing: error)
            return text.contains("connectionCreationCircuitBreakerTripped") || text.contains("poolShutdown")
        }
        return false
    }

    /// Wakes the watcher and waits (at most a second) for it to move the pool.
    private func waitForFailover(after error: any Error, attempt: Int) async {
        let generation = pool.withLock { $0.generation }
        nudged.store(true, ordering: .releasing)
        if attempt == 1 || attempt % 20 == 0 {
            logger.warning(
                "PostgreSQL statement did not run; waiting for the primary",
                metadata: ["server": "\(currentServer)", "reason": "\(Self.storeError(error, sql: nil).message)"])
        }
        for _ in 0..<20 {
            if pool.withLock({ $0.generation }) != generation { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The watcher: checks the pool's server is still the primary; when not, finds the one that is and moves there.
    private func watchPrimary() async {
        let interval = Duration.milliseconds(configuration.primaryCheckIntervalMilliseconds)
        var lastSurvey = ""
        var currentFailed = false
        while !Task.isCancelled {
            var waited = Duration.zero
            while waited < interval, !nudged.load(ordering: .acquiring), !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(50))
                waited += .milliseconds(50)
            }
            if Task.isCancelled { return }
            nudged.store(false, ordering: .releasing)
            let current = pool.withLock { $0 }
            // Once the pool's server has failed the check, it is not asked again (2 s each time it does not answer)
            // until a survey finds it primary again: the survey asks it anyway.
            if !currentFailed, await isPrimary(current.client) { continue }
            currentFailed = true
            let survey = await factory.survey(timeout: .seconds(2), logger: logger, firstPrimary: true)
            guard let primary = survey.primary(preferring: current.server) else {
                if survey.summary != lastSurvey {
                    logger.error(
                        "no PostgreSQL primary reachable; statements wait for one",
                        metadata: ["servers": "\(survey.summary)"])
                    lastSurvey = survey.summary
                }
                continue
            }
            lastSurvey = ""
            currentFailed = false
            if primary == current.server { continue }  // the same server, slow or restarted: its pool reconnects
            if Task.isCancelled || closed.load(ordering: .acquiring) { return }
            let client = PostgresClient(configuration: factory.clientConfiguration(primary), backgroundLogger: logger)
            let runTask = Task { await client.run() }
            let old = pool.withLock { pool -> Pool in
                let old = pool
                pool = Pool(client: client, runTask: runTask, server: primary, generation: old.generation + 1)
                return old
            }
            old.runTask.cancel()
            let stale = leased.withLock { $0.removeValue(forKey: old.generation) ?? [:] }
            for connection in stale.values { connection.close().whenComplete { _ in } }
            logger.warning(
                "PostgreSQL primary moved; the store follows it",
                metadata: [
                    "from": "\(factory.servers[old.server])", "to": "\(factory.servers[primary])",
                    "servers": "\(survey.summary)",
                ])
        }
    }

    /// Whether the pool's server answers, within 2 s, that it is not in recovery.
    private func isPrimary(_ client: PostgresClient) async -> Bool {
        let logger = self.logger
        return await valueWithin(.seconds(2)) {
            do {
                return try await client.withConnection { connection in
                    try await PostgresStatementGuard.run(on: connection) {
                        let rows = try await connection.query("SELECT pg_is_in_recovery()", logger: logger)
                        for try await recovering in rows.decode(Bool.self) { return !recovering }
                        return false
                    }
                }
            } catch {
                return false
            }
        } ?? false
    }

    // MARK: - Helpers

    private func checkUsable() throws {
        if closed.load(ordering: .acquiring) {
            throw StoreError(.closed, "the PostgreSQL store was closed", backend: .postgres)
        }
        try TransactionScope.ensureNotInside(ObjectIdentifier(self), backend: .postgres)
    }

    /// A socket directory (as in `unix_socket_directories`) becomes the socket file inside it.
    static func socketFile(_ path: String, port: Int) -> String {
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
        try await PostgresStatementGuard.run(on: connection) {
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
            for try await _ in rows {}
        }
    }

    /// Commits, and reports a transaction the server rolled back instead: PostgreSQL answers `COMMIT` of a
    /// transaction aborted by an earlier (caught) error with the tag `ROLLBACK` and no error.
    private static func commit(_ connection: PostgresConnection, logger: Logger) async throws {
        let tag: String
        do {
            tag = try await PostgresStatementGuard.run(on: connection) {
                let future: EventLoopFuture<PostgresQueryResult> = connection.query(
                    PostgresQuery(unsafeSQL: "COMMIT"), logger: logger)
                return try await future.get().metadata.command
            }
        } catch let error as StoreError where error.code == .connectionFailed {
            throw StoreError(
                .connectionFailed, "the connection closed during COMMIT; the transaction's outcome is unknown",
                backend: .postgres)
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

/// Builds the probe and pool configurations for each server of the configuration, and surveys the servers.
private struct ClientFactory: Sendable {
    let configuration: PostgresConfiguration
    let servers: [PostgresHost]
    let tls: TLSSettings

    init(_ configuration: PostgresConfiguration) throws {
        self.configuration = configuration
        self.servers = configuration.candidates
        self.tls = try TLSSettings(configuration)
    }

    func probeConfiguration(_ server: Int, timeout: Duration) -> PostgresConnection.Configuration {
        var probe: PostgresConnection.Configuration
        if let socket = configuration.unixSocketPath {
            probe = .init(
                unixSocketPath: PostgresStore.socketFile(socket, port: configuration.port), username: configuration.user,
                password: configuration.password, database: configuration.database)
        } else {
            probe = .init(
                host: servers[server].host, port: servers[server].port, username: configuration.user,
                password: configuration.password, database: configuration.database, tls: tls.connection)
        }
        probe.options.connectTimeout = TimeAmount.nanoseconds(
            Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        return probe
    }

    func clientConfiguration(_ server: Int) -> PostgresClient.Configuration {
        var client: PostgresClient.Configuration
        if let socket = configuration.unixSocketPath {
            client = .init(
                unixSocketPath: PostgresStore.socketFile(socket, port: configuration.port), username: configuration.user,
                password: configuration.password, database: configuration.database)
        } else {
            client = .init(
                host: servers[server].host, port: servers[server].port, username: configuration.user,
                password: configuration.password, database: configuration.database, tls: tls.client)
        }
        client.options.connectTimeout = .seconds(configuration.connectTimeoutSeconds)
        client.options.minimumConnections = 0
        client.options.maximumConnections = configuration.maximumConnections
        return client
    }

    /// What each server is right now.
    struct Survey: Sendable {
        enum Answer: Sendable {
            case primary, standby
            case unreachable(String)
        }
        var answers: [Answer]
        var servers: [PostgresHost]

        /// The primary to use: `preferring` when it is one of several that say so (never two pools for one
        /// cluster), else the first primary in the configured order.
        func primary(preferring current: Int?) -> Int? {
            let primaries = answers.indices.filter { if case .primary = answers[$0] { true } else { false } }
            if let current, primaries.contains(current) { return current }
            return primaries.first
        }

        var summary: String {
            zip(servers, answers).map { server, answer in
                switch answer {
                case .primary: "\(server) primary"
                case .standby: "\(server) standby"
                case .unreachable(let reason): "\(server) unreachable (\(reason))"
                }
            }.joined(separator: "; ")
        }
    }

    /// Asks every server at once whether it is in recovery, each within `timeout`. `firstPrimary`: returns as soon as
    /// one server says it is the primary, without waiting for the others (an unreachable one would hold the store
    /// back for the whole timeout while a new primary is there to write to); those not waited for are "unreachable".
    func survey(timeout: Duration, logger: Logger, firstPrimary: Bool = false) async -> Survey {
        let answers = await withTaskGroup(of: (Int, Survey.Answer).self) { group in
            for index in servers.indices {
                group.addTask {
                    (index, await ask(index, timeout: timeout, logger: logger))
                }
            }
            var answers = [Survey.Answer](repeating: .unreachable("not waited for: another server is the primary"), count: servers.count)
            for await (index, answer) in group {
                answers[index] = answer
                if firstPrimary, case .primary = answer {
                    group.cancelAll()
                    break
                }
            }
            return answers
        }
        let survey = Survey(answers: answers, servers: servers)
        let primaries = answers.filter { if case .primary = $0 { true } else { false } }.count
        if primaries > 1 {
            logger.error(
                "more than one PostgreSQL server says it is the primary; keeping the current one",
                metadata: ["servers": "\(survey.summary)"])
        }
        return survey
    }

    private func ask(_ index: Int, timeout: Duration, logger: Logger) async -> Survey.Answer {
        let configuration = probeConfiguration(index, timeout: timeout)
        let answer: Survey.Answer? = await valueWithin(timeout + .milliseconds(500)) {
            do {
                let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
                let answer: Survey.Answer = try await PostgresStatementGuard.run(on: connection) {
                    let rows = try await connection.query("SELECT pg_is_in_recovery()", logger: logger)
                    for try await recovering in rows.decode(Bool.self) { return recovering ? .standby : .primary }
                    return .unreachable("no answer to pg_is_in_recovery()")
                }
                try? await connection.close()
                return answer
            } catch {
                return .unreachable(PostgresStore.storeError(error, sql: nil).message)
            }
        }
        return answer ?? .unreachable("no answer within \(timeout)")
    }
}

/// BEGIN failed: the transaction's body never ran.
private struct BeginFailed: Error {
    let underlying: any Error
}

/// The TLS settings of both the probe connection and the pool, from one ``PostgresTLSMode``.
private struct TLSSettings: Sendable {
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
        let connection = self.connection
        let logger = self.logger
        do {
            try await PostgresStatementGuard.run(on: connection) {
                let rows = try await connection.query(
                    PostgresQuery(unsafeSQL: sql, binds: PostgresStore.bindings(binds)), logger: logger)
                for try await _ in rows {}
            }
        } catch {
            throw PostgresStore.storeError(error, sql: sql)
        }
    }

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try ensureActive()
        let connection = self.connection
        let logger = self.logger
        do {
            return try await PostgresStatementGuard.run(on: connection) {
                let rows = try await connection.query(
                    PostgresQuery(unsafeSQL: sql, binds: PostgresStore.bindings(binds)), logger: logger)
                return try await PostgresStore.collect(rows)
            }
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
