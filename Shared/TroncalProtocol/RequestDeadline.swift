/// The time after which nobody waits for the work of the current task any more: set by the link server while it
/// handles a request whose sender said how long it waits (`EnvelopeHead.ttl`), and read by the stores before they
/// start on a statement or a transaction. Work whose caller has given up is refused instead of done: under overload
/// a queue of abandoned requests would otherwise keep the database busy with answers nobody reads, while the
/// callers' retries add more, and the service would not recover when the load falls.
public enum RequestDeadline {
    @TaskLocal public static var current: ContinuousClock.Instant?

    /// Whether the current task's caller has stopped waiting.
    public static var hasPassed: Bool {
        guard let current else { return false }
        return ContinuousClock.now >= current
    }
}
