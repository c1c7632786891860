import ArgumentParser
import Logging
import TroncalCLI

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .info
    return handler
}
// Parsed and dispatched by hand: ArgumentParser's async `main()` is only picked for an `@main` type.
do {
    var command = try TroncalCommand.parseAsRoot()
    if var asyncCommand = command as? any AsyncParsableCommand {
        try await asyncCommand.runAsynchronously()
    } else {
        try command.run()
    }
} catch {
    TroncalCommand.exit(withError: error)
}

extension AsyncParsableCommand {
    /// Calls the async `run()` (a plain call on an existential may pick the synchronous one).
    mutating func runAsynchronously() async throws {
        try await run()
    }
}
