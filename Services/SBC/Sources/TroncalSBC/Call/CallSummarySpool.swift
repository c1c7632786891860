public import Foundation
public import Logging
public import TroncalProtocol

/// The SBC's local spool of call summaries: files in one directory, each written to a temporary name, fsynced and
/// renamed (and the directory fsynced), so that a crash never leaves half a summary. The billing pipeline
/// (`SpoolShipper`) takes summaries from here and removes them once billing has acknowledged them.
///
/// Summaries are appended to segments (`SpoolWriter`): one JSON object per line, each group of lines written and
/// fdatasynced together (group commit). A segment being written is `.<milliseconds>-<loop>-<sequence>.open` (hidden:
/// not shipped); once sealed (about a second later) it is renamed `<milliseconds>-<loop>-<sequence>.jsonl`, so names
/// sort oldest first. An `.open` segment left by a crash is sealed at start (`recoverOpenSegments`), without a torn
/// last line: that line's call was never told its summary was safe. Files of one summary in a JSON object (`<id>.json`,
/// as earlier versions wrote them) are read the same way.
public struct CallSummarySpool: Sendable {
    public let directory: URL
    let logger: Logger

    public init(directory: URL, logger: Logger) throws {
        self.directory = directory
        self.logger = logger
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// Times are ISO 8601 in UTC with milliseconds (`2026-11-25T10:44:35.123Z`): billing needs better than seconds.
    static let timeFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(Self.timeFormat))
        }
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

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

    /// The summary as one line of JSON, for a log line when it could not be written.
    static func json(_ summary: CallSummary) -> String {
        (try? encoder.encode(summary)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    // MARK: - Writing

    /// Writes `summaries` as one file named `name` (without extension): one write, one fsync, one rename, one fsync of
    /// the directory. Blocks: call it off the event loops.
    func write(_ summaries: [CallSummary], name: String) throws {
        let final = directory.appendingPathComponent("\(name).jsonl")
        let temporary = directory.appendingPathComponent(".\(name).jsonl.tmp")
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw SpoolError("cannot create \(temporary.path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        do {
            try Self.writeAll(try Self.lines(summaries), to: descriptor, path: temporary.path)
            guard fsync(descriptor) == 0 else { throw SpoolError("cannot fsync \(temporary.path): \(String(cString: strerror(errno)))") }
            guard rename(temporary.path, final.path) == 0 else {
                throw SpoolError("cannot rename into \(final.path): \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(temporary.path)
            throw error
        }
        syncDirectory()
    }

    // MARK: - Segments

    /// Encodes summaries as lines of JSON.
    static func lines(_ summaries: [CallSummary]) throws -> Data {
        let encoder = Self.encoder
        var data = Data()
        for summary in summaries {
            data.append(try encoder.encode(summary))
            data.append(0x0A)
        }
        return data
    }

    func openSegmentPath(_ name: String) -> String { directory.appendingPathComponent(".\(name).open").path }

    /// Creates the segment `name` for appending. Blocks.
    func openSegment(_ name: String) throws -> Int32 {
        let path = openSegmentPath(name)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw SpoolError("cannot create \(path): \(String(cString: strerror(errno)))") }
        return descriptor
    }

    /// Appends `data` to an open segment and makes it durable (fdatasync). On failure the segment is cut back to
    /// `length` (what was durable before), so that it never holds half a line. Blocks.
    func append(_ data: Data, to descriptor: Int32, length: Int, name: String) throws {
        do {
            try Self.writeAll(data, to: descriptor, path: openSegmentPath(name))
            guard fdatasync(descriptor) == 0 else { throw SpoolError("cannot fdatasync \(openSegmentPath(name)): \(String(cString: strerror(errno)))") }
        } catch {
            ftruncate(descriptor, off_t(length))
            throw error
        }
    }

    /// Closes a segment and gives it its shipped name (rename, then fsync of the directory). Blocks.
    func seal(_ descriptor: Int32, name: String) throws {
        close(descriptor)
        let final = directory.appendingPathComponent("\(name).jsonl").path
        guard rename(openSegmentPath(name), final) == 0 else {
            throw SpoolError("cannot rename \(openSegmentPath(name)) to \(final): \(String(cString: strerror(errno)))")
        }
        syncDirectory()
    }

    /// Seals the segments a previous run left open (a crash or kill): complete lines are kept, a torn last line is
    /// cut off (its call never got past the durable point). Empty segments are removed. Call once at start, before
    /// any writer runs.
    public func recoverOpenSegments() {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasPrefix(".") }
        for file in names {
            let path = directory.appendingPathComponent(file).path
            if file.hasSuffix(".tmp") {
                // A whole-file write that never reached its rename: never durable, never acknowledged.
                unlink(path)
                continue
            }
            guard file.hasSuffix(".open") else { continue }
            let name = String(file.dropFirst().dropLast(5))
            guard var data = try? Data(contentsOf: URL(fileURLWithPath: path)) else {
                logger.error("open spool segment unreadable: left in place", metadata: ["file": "\(file)"])
                continue
            }
            if let lastNewline = data.lastIndex(of: 0x0A) {
                let torn = data.count - (lastNewline + 1)
                data = data.prefix(lastNewline + 1)
                if torn > 0 { logger.warning("spool segment had a torn last line: cut off", metadata: ["file": "\(file)", "bytes": "\(torn)"]) }
            } else {
                data = Data()
            }
            if data.isEmpty {
                unlink(path)
                continue
            }
            let descriptor = open(path, O_WRONLY | O_CLOEXEC)
            guard descriptor >= 0 else { continue }
            ftruncate(descriptor, off_t(data.count))
            fsync(descriptor)
            do {
                try seal(descriptor, name: name)
                logger.info("spool segment left open by the previous run sealed", metadata: ["file": "\(name).jsonl"])
            } catch {
                logger.error("open spool segment could not be sealed", metadata: ["file": "\(file)", "reason": "\(error)"])
            }
        }
    }

    static func writeAll(_ data: Data, to descriptor: Int32, path: String) throws {
        try data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Foundation.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0, errno == EINTR { continue }
                guard written > 0 else { throw SpoolError("cannot write \(path): \(String(cString: strerror(errno)))") }
                offset += written
            }
        }
    }

    func syncDirectory() {
        let directoryDescriptor = open(directory.path, O_RDONLY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    // MARK: - Reading

    /// The spool's files, oldest first.
    public func pendingNames() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { ($0.hasSuffix(".jsonl") || $0.hasSuffix(".json")) && !$0.hasPrefix(".") }.sorted()
    }

    /// The summaries of one file.
    func read(_ name: String) throws -> [CallSummary] {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        return try Self.summaries(in: data, name: name)
    }

    static func summaries(in data: Data, name: String) throws -> [CallSummary] {
        let decoder = Self.decoder
        guard name.hasSuffix(".jsonl") else { return [try decoder.decode(CallSummary.self, from: data)] }
        return try data.split(separator: 0x0A).map { try decoder.decode(CallSummary.self, from: Data($0)) }
    }

    /// Every summary waiting in the spool, oldest file first (unreadable files are skipped).
    public func pending() -> [CallSummary] {
        pendingNames().flatMap { (try? read($0)) ?? [] }
    }

    /// The summaries waiting in the spool at `directory`, sealed or still in an open segment (complete lines only):
    /// tests and tools read an SBC's spool this way.
    public static func pending(in directory: URL) -> [CallSummary] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let sealed = files.filter { ($0.hasSuffix(".jsonl") || $0.hasSuffix(".json")) && !$0.hasPrefix(".") }
        let open = files.filter { $0.hasPrefix(".") && $0.hasSuffix(".open") }
        return (sealed + open).sorted { $0.trimmingPrefix(".") < $1.trimmingPrefix(".") }.flatMap { name -> [CallSummary] in
            guard var data = try? Data(contentsOf: directory.appendingPathComponent(name)) else { return [] }
            if name.hasSuffix(".open") {
                data = data.lastIndex(of: 0x0A).map { data.prefix($0 + 1) } ?? Data()
                return (try? summaries(in: data, name: "segment.jsonl")) ?? []
            }
            return (try? summaries(in: data, name: name)) ?? []
        }
    }

    // MARK: - Removing

    func remove(_ name: String) {
        unlink(directory.appendingPathComponent(name).path)
    }

    /// Keeps only `remaining` of a file (some of its summaries were acknowledged): written anew under the same name.
    func keep(_ remaining: [CallSummary], of name: String) throws {
        guard !remaining.isEmpty else { return remove(name) }
        let base = name.hasSuffix(".jsonl") ? String(name.dropLast(6)) : String(name.dropLast(5))
        try write(remaining, name: base)
        if !name.hasSuffix(".jsonl") { remove(name) }
    }

    var rejectedDirectory: URL { directory.deletingLastPathComponent().appendingPathComponent("cdr-rejected") }

    /// Moves a whole file out of the way, to `cdr-rejected/` beside the spool.
    func reject(_ name: String, reason: String) {
        try? FileManager.default.createDirectory(at: rejectedDirectory, withIntermediateDirectories: true)
        rename(directory.appendingPathComponent(name).path, rejectedDirectory.appendingPathComponent(name).path)
        logger.error("call summaries set aside: billing cannot take them", metadata: [
            "file": "\(name)", "reason": "\(reason)", "directory": "\(rejectedDirectory.path)",
        ])
    }

    /// Writes one summary billing refused into `cdr-rejected/<id>.json`.
    func reject(_ summary: CallSummary, reason: String) {
        try? FileManager.default.createDirectory(at: rejectedDirectory, withIntermediateDirectories: true)
        let name = summary.id.filter { $0.isLetter || $0.isNumber || $0 == "-" }
        let data = (try? Self.encoder.encode(summary)) ?? Data()
        if !FileManager.default.createFile(atPath: rejectedDirectory.appendingPathComponent("\(name).json").path, contents: data) {
            logger.critical("refused call summary could not be set aside: it is in this line only", metadata: [
                "call-id": "\(summary.callID)", "summary": "\(Self.json(summary))",
            ])
        }
        logger.error("call summary set aside: billing cannot take it", metadata: [
            "call-id": "\(summary.callID)", "reason": "\(reason)", "directory": "\(rejectedDirectory.path)",
        ])
    }
}

/// The spool could not write a file.
struct SpoolError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
