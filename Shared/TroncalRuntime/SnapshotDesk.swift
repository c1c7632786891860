import Crypto
import Foundation
import Logging
import Metrics
import TroncalProtocol
import TroncalStore

/// Answers `backup.snapshot` for an instance whose database is SQLite: a consistent copy made with `VACUUM INTO` on a
/// second connection (the service's own connection keeps writing: in WAL mode the copy reads one moment while writers
/// go on), measured (``DatabaseFigures``), then sent in parts. One copy at a time: a request for a new one while one is
/// being made is answered `unavailable` (the backup service tries again), and a new copy replaces an older one (whoever
/// pulled it gave up). A copy is removed after its last part or after ten minutes unused (checked every minute while a
/// copy exists); copies left by a crash are removed at start.
actor SnapshotDesk {
    struct Snapshot {
        var file: URL
        var size: Int64
        var sha256: String
        var figures: DatabaseFigures
        var touched: ContinuousClock.Instant
    }

    let database: String
    let directory: URL
    let service: String
    let instance: String
    let largestPart: Int
    let logger: Logger
    private var snapshots: [String: Snapshot] = [:]
    private var making = false
    private var sweeper: Task<Void, Never>?
    static let unusedLimit = Duration.seconds(600)

    /// `frameLimit`: the link's largest frame; a part's base64 must fit in it with the envelope.
    init(database: String, service: String, instance: String, frameLimit: Int, logger: Logger) {
        self.database = database
        self.directory = URL(fileURLWithPath: database).deletingLastPathComponent().appendingPathComponent("snapshots")
        self.service = service
        self.instance = instance
        self.largestPart = max(4096, (frameLimit - 16_384) / 4 * 3)
        self.logger = logger
        let stale = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in stale where Self.isCopy(name, of: instance) { try? FileManager.default.removeItem(at: directory.appendingPathComponent(name)) }
    }

    deinit { sweeper?.cancel() }

    /// Whether `name` is one of `instance`'s copies (`<instance>-<uuid>.sqlite`, and its -wal/-shm/-journal), never
    /// another instance's whose name starts the same (`billing` and `billing-eu` share a data directory).
    static func isCopy(_ name: String, of instance: String) -> Bool {
        guard name.hasPrefix(instance + "-") else { return false }
        var rest = name.dropFirst(instance.count + 1)
        for suffix in ["-wal", "-shm", "-journal"] where rest.hasSuffix(suffix) { rest = rest.dropLast(suffix.count) }
        guard rest.hasSuffix(".sqlite") else { return false }
        let id = rest.dropLast(".sqlite".count)
        return id.count == 36 && id.allSatisfy { $0.isHexDigit || $0 == "-" }
    }

    func answer(_ request: BackupSnapshotRequest) async throws -> BackupSnapshotPart {
        expire()
        guard request.maximumBytes > 0, request.offset >= 0 else {
            throw ProtocolError(.badRequest, "backup.snapshot needs a positive maximumBytes and an offset of 0 or more")
        }
        let id: String
        if let wanted = request.snapshot {
            guard snapshots[wanted] != nil else {
                throw ProtocolError(.badRequest, "no snapshot \(wanted) here (sent in full already, or unused for 10 minutes)")
            }
            id = wanted
        } else {
            guard !making else {
                throw ProtocolError(.unavailable, "a snapshot of \(instance)'s database is being made; ask again when it is done")
            }
            making = true
            defer { making = false }
            id = try await make()
            // A new copy means whoever pulled an older one gave up on it.
            for other in snapshots.keys where other != id {
                logger.warning("database snapshot replaced by a newer one before it was sent", metadata: ["snapshot": "\(other)"])
                drop(other)
            }
            sweep()
        }
        guard var snapshot = snapshots[id] else { throw ProtocolError(.internal, "snapshot \(id) vanished") }
        guard request.offset <= snapshot.size else {
            throw ProtocolError(.badRequest, "offset \(request.offset) is past the snapshot's \(snapshot.size) bytes")
        }
        let length = Int(min(Int64(min(request.maximumBytes, largestPart)), snapshot.size - request.offset))
        let data: Data
        do {
            let handle = try FileHandle(forReadingFrom: snapshot.file)
            defer { try? handle.close() }
            try handle.seek(toOffset: UInt64(request.offset))
            data = try handle.read(upToCount: length) ?? Data()
        } catch {
            drop(id)
            throw ProtocolError(.internal, "snapshot \(id) unreadable: \(error)")
        }
        let last = request.offset + Int64(data.count) >= snapshot.size
        if last {
            drop(id)
            logger.info("database snapshot sent", metadata: ["snapshot": "\(id)", "bytes": "\(snapshot.size)"])
        } else {
            snapshot.touched = .now
            snapshots[id] = snapshot
        }
        return BackupSnapshotPart(
            snapshot: id, service: service, totalBytes: snapshot.size, sha256: snapshot.sha256, figures: snapshot.figures, offset: request.offset,
            data: data, last: last)
    }

    /// Copies the database, measures the copy and hashes it.
    private func make() async throws -> String {
        let id = RandomID.uuidString().lowercased()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("\(instance)-\(id).sqlite")
        let started = ContinuousClock.now
        do {
            let source = try await SQLiteStore.open(SQLiteConfiguration(path: database), logger: logger)
            do {
                try await source.execute("VACUUM INTO '\(file.path.replacingOccurrences(of: "'", with: "''"))'")
                try await source.close()
            } catch {
                try? await source.close()
                throw error
            }
            let figures = try await DatabaseFigures.measure(.sqlite(path: file.path), logger: logger)
            for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: file.path + suffix) }
            let (size, sha256) = try Self.digest(file)
            snapshots[id] = Snapshot(file: file, size: size, sha256: sha256, figures: figures, touched: .now)
            logger.info("database snapshot made", metadata: [
                "snapshot": "\(id)", "bytes": "\(size)", "tables": "\(figures.tables.count)",
                "milliseconds": "\(Int((ContinuousClock.now - started).seconds * 1000))",
            ])
            Counter(label: "troncal_backup_snapshots_total").increment()
            return id
        } catch {
            for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: file.path + suffix) }
            logger.error("database snapshot failed", metadata: ["reason": "\(error)"])
            throw ProtocolError(.internal, "snapshot of \(instance)'s database failed: \(error)")
        }
    }

    private func drop(_ id: String) {
        if let snapshot = snapshots.removeValue(forKey: id) { try? FileManager.default.removeItem(at: snapshot.file) }
    }

    /// Expires unused copies every minute while there are any, so that an abandoned copy does not wait for the next
    /// request to be removed.
    private func sweep() {
        guard sweeper == nil else { return }
        sweeper = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(60))
                guard let self, await self.expireAndCheck() else { return }
            }
        }
    }

    /// Expires; returns whether copies remain (the sweeper goes on).
    private func expireAndCheck() -> Bool {
        expire()
        if snapshots.isEmpty { sweeper = nil }
        return !snapshots.isEmpty
    }

    private func expire() {
        let now = ContinuousClock.now
        for (id, snapshot) in snapshots where now - snapshot.touched > Self.unusedLimit {
            logger.warning("database snapshot removed unused", metadata: ["snapshot": "\(id)"])
            drop(id)
        }
    }

    /// Size and SHA-256 (hex) of a file, read in 1 MiB pieces.
    static func digest(_ file: URL) throws -> (Int64, String) {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        var hash = SHA256()
        var size: Int64 = 0
        while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
            hash.update(data: data)
            size += Int64(data.count)
        }
        return (size, hash.finalize().map { String(format: "%02x", $0) }.joined())
    }
}
