public import Foundation
internal import NIOPosix
public import Logging
public import TroncalLink
public import TroncalProtocol
public import TroncalRuntime

/// Where the SBC asks for a call's targets and reports how each attempt went: the routing core.
public protocol CallRouter: Sendable {
    func route(_ request: RouteRequest) async throws -> RouteDecision
    func report(_ attempt: CallAttemptReport) async
    /// A trunk seized for a call, or an answered call on it ended (the routing core counts trunk capacity).
    func usage(_ usage: TrunkUsage) async
    /// Asks billing to extend a call's grant.
    func renew(_ request: RenewRequest) async throws -> Authorization
}

extension CallRouter {
    public func usage(_ usage: TrunkUsage) async {}
    public func renew(_ request: RenewRequest) async throws -> Authorization {
        throw LinkError(.unavailable, "no billing instance is configured")
    }
}

/// The routing core over the mutual-TLS link.
public struct LinkCallRouter: CallRouter {
    let client: LinkClient
    let billing: LinkClient?
    let timeout: Duration

    public init(client: LinkClient, billing: LinkClient? = nil, timeout: Duration) {
        self.client = client
        self.billing = billing
        self.timeout = timeout
    }

    public func renew(_ request: RenewRequest) async throws -> Authorization {
        guard let billing else { throw LinkError(.unavailable, "no billing instance is configured") }
        return try await billing.request(request, timeout: timeout).authorization
    }

    public func route(_ request: RouteRequest) async throws -> RouteDecision {
        try await client.request(request, timeout: timeout)
    }

    public func report(_ attempt: CallAttemptReport) async {
        try? await client.send(attempt, timeout: timeout)
    }

    public func usage(_ usage: TrunkUsage) async {
        try? await client.send(usage, timeout: timeout)
    }
}

/// No routing core configured: every call is refused (503), with the reason logged.
public struct NoRouter: CallRouter {
    public init() {}
    public func route(_ request: RouteRequest) async throws -> RouteDecision {
        throw LinkError(.unavailable, "no routing instance is configured")
    }
    public func report(_ attempt: CallAttemptReport) async {}
}

/// Where a finished call's summary goes.
public protocol CallSummarySink: Sendable {
    func submit(_ summary: CallSummary) async
}

/// Writes each call summary to the SBC's local spool directory, one JSON file per call named by its id,
/// written to a temporary name, fsynced and renamed, so that a crash never leaves half a summary. The billing
/// pipeline takes summaries from here (and removes them once billing has acknowledged them).
public struct CallSummarySpool: CallSummarySink {
    public let directory: URL
    let logger: Logger

    public init(directory: URL, logger: Logger) throws {
        self.directory = directory
        self.logger = logger
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    public func submit(_ summary: CallSummary) async {
        // A full disk or no file descriptor left may pass: try again for about 3 s before giving up.
        var delay = Duration.milliseconds(50)
        var lastError: (any Error)?
        for _ in 0..<7 {
            do {
                // fsync blocks: run it on NIO's thread pool, not on the few threads of the cooperative pool.
                try await NIOThreadPool.singleton.runIfActive { try self.write(summary) }
                return
            } catch {
                lastError = error
                try? await Task.sleep(for: delay)
                delay *= 2
            }
        }
        // Never silently: the whole summary goes to the log, from where it can be put back into the spool.
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(Self.timeFormat))
        }
        encoder.outputFormatting = [.sortedKeys]
        let json = (try? encoder.encode(summary)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        logger.critical("call summary could not be spooled: it is in this line only", metadata: [
            "call-id": "\(summary.callID)", "customer": "\(summary.customer)", "reason": "\(lastError.map { "\($0)" } ?? "")",
            "summary": "\(json)",
        ])
    }

    /// Times are ISO 8601 in UTC with milliseconds (`2026-11-25T10:44:35.123Z`): billing needs better than seconds.
    static let timeFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    /// A decoder for spool files.
    public static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            if let date = try? timeFormat.parse(text) { return date }
            return try Date.ISO8601FormatStyle().parse(text)
        }
        return decoder
    }

    /// The summaries waiting in the spool, oldest file name first.
    public func pending() throws -> [CallSummary] {
        let decoder = Self.decoder
        return try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }.sorted().compactMap {
            try? decoder.decode(CallSummary.self, from: Data(contentsOf: directory.appendingPathComponent($0)))
        }
    }

    func write(_ summary: CallSummary) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(Self.timeFormat))
        }
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(summary)
        let name = summary.id.filter { $0.isLetter || $0.isNumber || $0 == "-" }
        let final = directory.appendingPathComponent("\(name).json")
        let temporary = directory.appendingPathComponent(".\(name).tmp")
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary.path]) }
        defer { close(descriptor) }
        try data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Foundation.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                guard written > 0 else { throw CocoaError(.fileWriteOutOfSpace, userInfo: [NSFilePathErrorKey: temporary.path]) }
                offset += written
            }
        }
        guard fsync(descriptor) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary.path]) }
        guard rename(temporary.path, final.path) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: final.path]) }
        let directoryDescriptor = open(directory.path, O_RDONLY)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }
}

/// The customers of `sbc.customers`, found by source address (the most specific network first).
public struct CustomerDirectory: Sendable {
    struct Entry: Sendable {
        let network: IPNetwork
        let customer: CustomerSettings
    }

    let entries: [Entry]

    public init(_ customers: [CustomerSettings]) {
        var entries: [Entry] = []
        for customer in customers {
            for address in customer.addresses {
                if let network = IPNetwork(address) { entries.append(Entry(network: network, customer: customer)) }
            }
        }
        self.entries = entries.sorted { $0.network.prefixLength > $1.network.prefixLength }
    }

    /// The length of the most specific network holding `address`, if any.
    public func bestPrefixLength(at address: String) -> Int? {
        entries.first { $0.network.contains(address) }?.network.prefixLength
    }

    /// Every customer whose trunk addresses hold `address`, the most specific first.
    public func customers(at address: String) -> [CustomerSettings] {
        var seen = Set<String>()
        return entries.filter { $0.network.contains(address) && seen.insert($0.customer.id).inserted }.map(\.customer)
    }
}
