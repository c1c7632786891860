public import Logging

/// Opens the store a configuration describes: an ``SQLiteStore`` or a ``PostgresStore``. Close it at shutdown.
public func openStore(_ configuration: StoreConfiguration, logger: Logger) async throws -> any SQLStore {
    switch configuration {
    case .sqlite(let sqlite):
        try await SQLiteStore.open(sqlite, logger: logger)
    case .postgres(let postgres):
        try await PostgresStore.connect(postgres, logger: logger)
    }
}
