/// Remembers, per task, which stores have a transaction open in that task (or an enclosing one), so that using the
/// store itself inside its own transaction fails fast with ``StoreError/Code/misuse`` rather than deadlocking on
/// SQLite's lock or on PostgreSQL row locks.
enum TransactionScope {
    @TaskLocal static var openTransactions: [ObjectIdentifier] = []

    static func ensureNotInside(_ store: ObjectIdentifier, backend: SQLBackendKind) throws {
        if openTransactions.contains(store) {
            throw StoreError(
                .misuse,
                "the store was used directly inside one of its own transactions; run statements on the transaction handle",
                backend: backend)
        }
    }
}
