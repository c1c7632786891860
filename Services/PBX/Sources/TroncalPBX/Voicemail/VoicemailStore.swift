internal import Crypto
public import Foundation
internal import TroncalMedia
public import TroncalProtocol
public import TroncalStore

/// Voicemail: messages (the WAV in the instance's data directory, `voicemail/TENANT/EXTENSION/ID.wav`, and the same
/// audio as µ-law in the PBX database, so that the database's backups keep it and, on PostgreSQL, every instance can
/// play and deliver it), PINs their owners changed by phone, recorded greetings, and the outbox of
/// deliveries (e-mail, webhook) with their attempts and status. A message is stored (file synced, then its row) before
/// the caller hears that it is saved; deleting one removes its file.
public final class VoicemailStore: Sendable {
    let store: any SQLStore
    let directory: URL
    let instance: String

    public init(store: any SQLStore, directory: URL, instance: String) {
        self.store = store
        self.directory = directory
        self.instance = instance
    }

    public static let migration = Migration(
        version: 3, name: "pbx voicemail",
        sql: [
            """
            CREATE TABLE pbx_voicemail_messages (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, extension TEXT NOT NULL, caller TEXT NOT NULL,
            received_at BIGINT NOT NULL, duration_ms BIGINT NOT NULL, folder TEXT NOT NULL, file TEXT NOT NULL, instance TEXT NOT NULL,
            audio BYTEA NOT NULL)
            """,
            "CREATE INDEX pbx_voicemail_box ON pbx_voicemail_messages (tenant, extension, folder)",
            """
            CREATE TABLE pbx_voicemail_deliveries (message_id TEXT NOT NULL, channel TEXT NOT NULL, target TEXT NOT NULL, status TEXT NOT NULL,
            attempts BIGINT NOT NULL, last_error TEXT NOT NULL, next_attempt_at BIGINT, delivered_at BIGINT, instance TEXT NOT NULL,
            updated_at BIGINT NOT NULL, PRIMARY KEY (message_id, channel))
            """,
            "CREATE INDEX pbx_voicemail_due ON pbx_voicemail_deliveries (instance, status, next_attempt_at)",
            """
            CREATE TABLE pbx_voicemail_boxes (tenant TEXT NOT NULL, extension TEXT NOT NULL, pin_hash TEXT NOT NULL, greeting TEXT NOT NULL,
            PRIMARY KEY (tenant, extension))
            """,
        ])

    public struct Message: Sendable, Hashable {
        public var id: String
        public var tenant: String
        public var extensionNumber: String
        public var caller: String
        public var receivedAt: Int64
        public var durationMilliseconds: Int64
        public var folder: String
        public var file: String
        public var instance: String
    }

    public struct Delivery: Sendable, Hashable {
        public var messageID: String
        public var channel: String
        public var target: String
        public var status: String
        public var attempts: Int64
        public var lastError: String
        public var nextAttemptAt: Int64?
        public var deliveredAt: Int64?
    }

    /// Where a box's files live.
    func boxDirectory(tenant: String, extensionNumber: String) -> URL {
        directory.appendingPathComponent("voicemail").appendingPathComponent(tenant).appendingPathComponent(extensionNumber)
    }

    /// Saves a recorded message: its WAV (16-bit PCM, synced), then its row and its deliveries, in one transaction.
    func save(
        tenant: String, extensionNumber: String, caller: String, samples: [Int16], deliveries: [(channel: String, target: String)], now: Date
    ) async throws -> Message {
        let id = UUID().uuidString.lowercased()
        let folder = boxDirectory(tenant: tenant, extensionNumber: extensionNumber)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("\(id).wav")
        try WAVFile(samples: samples).write(to: file)
        let message = Message(
            id: id, tenant: tenant, extensionNumber: extensionNumber, caller: caller, receivedAt: Int64(now.timeIntervalSince1970),
            durationMilliseconds: Int64(samples.count / 8), folder: "new", file: file.path, instance: instance)
        do {
            try await store.transaction { transaction in
                try await transaction.execute(
                    """
                    INSERT INTO pbx_voicemail_messages (id, tenant, extension, caller, received_at, duration_ms, folder, file, instance, audio)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                    """,
                    [.text(id), .text(tenant), .text(extensionNumber), .text(caller), .integer(message.receivedAt), .integer(message.durationMilliseconds),
                     .text("new"), .text(file.path), .text(instance), .blob(WAVFile(format: .muLaw, samples: samples).bytes)])
                for delivery in deliveries {
                    try await transaction.execute(
                        """
                        INSERT INTO pbx_voicemail_deliveries (message_id, channel, target, status, attempts, last_error, next_attempt_at, delivered_at, instance,
                        updated_at) VALUES ($1, $2, $3, 'pending', 0, '', $4, NULL, $5, $4)
                        """, [.text(id), .text(delivery.channel), .text(delivery.target), .integer(message.receivedAt), .text(instance)])
                }
            }
        } catch {
            try? FileManager.default.removeItem(at: file)
            throw error
        }
        return message
    }

    static let messageColumns = "id, tenant, extension, caller, received_at, duration_ms, folder, file, instance"

    static func message(_ row: SQLRow) throws -> Message {
        Message(
            id: try row.string("id"), tenant: try row.string("tenant"), extensionNumber: try row.string("extension"), caller: try row.string("caller"),
            receivedAt: try row.int("received_at"), durationMilliseconds: try row.int("duration_ms"), folder: try row.string("folder"),
            file: try row.string("file"), instance: try row.string("instance"))
    }

    /// A message's recording as WAV bytes: its file on this instance, else the database's copy (µ-law).
    func recording(_ message: Message) async throws -> [UInt8] {
        if let bytes = try? Data(contentsOf: URL(fileURLWithPath: message.file)) { return Array(bytes) }
        let rows = try await store.query("SELECT audio FROM pbx_voicemail_messages WHERE id = $1", [.text(message.id)])
        guard let audio = try rows.first?.bytes("audio"), !audio.isEmpty else {
            throw DeliveryError("the recording of message \(message.id) is neither in \(message.file) nor in the database")
        }
        return audio
    }

    /// A box's messages in `folder` (`new`, `saved`), oldest first.
    func messages(tenant: String, extensionNumber: String, folder: String) async throws -> [Message] {
        try await store.query(
            "SELECT \(Self.messageColumns) FROM pbx_voicemail_messages WHERE tenant = $1 AND extension = $2 AND folder = $3 ORDER BY received_at, id",
            [.text(tenant), .text(extensionNumber), .text(folder)]
        ).map(Self.message)
    }

    /// The number of new and saved messages of a box.
    func counts(tenant: String, extensionNumber: String) async throws -> (new: Int, saved: Int) {
        let rows = try await store.query(
            "SELECT folder, COUNT(*) AS n FROM pbx_voicemail_messages WHERE tenant = $1 AND extension = $2 GROUP BY folder",
            [.text(tenant), .text(extensionNumber)])
        var counts = (new: 0, saved: 0)
        for row in rows {
            switch try row.string("folder") {
            case "new": counts.new = Int(try row.int("n"))
            case "saved": counts.saved = Int(try row.int("n"))
            default: break
            }
        }
        return counts
    }

    /// Moves a message to the saved folder.
    func markSaved(_ id: String) async throws {
        try await store.execute("UPDATE pbx_voicemail_messages SET folder = 'saved' WHERE id = $1", [.text(id)])
    }

    /// Deletes a message: its row goes to the `deleted` folder (its deliveries' history stays visible) and its file is
    /// removed; a delivery still waiting is given up.
    func delete(_ id: String) async throws {
        let rows = try await store.query("SELECT file FROM pbx_voicemail_messages WHERE id = $1", [.text(id)])
        try await store.transaction { transaction in
            // The recording goes (the database's copy too); the row stays, with its deliveries' history.
            try await transaction.execute("UPDATE pbx_voicemail_messages SET folder = 'deleted', audio = $2 WHERE id = $1", [.text(id), .blob([])])
            try await transaction.execute(
                """
                UPDATE pbx_voicemail_deliveries SET status = 'failed', last_error = 'the message was deleted before it was delivered',
                next_attempt_at = NULL WHERE message_id = $1 AND status IN ('pending', 'retrying')
                """, [.text(id)])
        }
        if let file = try rows.first?.string("file") { try? FileManager.default.removeItem(atPath: file) }
    }

    // MARK: - Boxes

    static func pinHash(tenant: String, extensionNumber: String, pin: String) -> String {
        SHA256.hash(data: Array("troncal-voicemail-pin|\(tenant)|\(extensionNumber)|\(pin)".utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `pin` opens the box: the PIN its owner set by phone, else the catalog's.
    func checkPIN(tenant: String, extensionNumber: String, pin: String, catalogPIN: String) async throws -> Bool {
        let rows = try await store.query(
            "SELECT pin_hash FROM pbx_voicemail_boxes WHERE tenant = $1 AND extension = $2", [.text(tenant), .text(extensionNumber)])
        if let stored = try rows.first?.string("pin_hash"), !stored.isEmpty {
            return stored == Self.pinHash(tenant: tenant, extensionNumber: extensionNumber, pin: pin)
        }
        return !catalogPIN.isEmpty && pin == catalogPIN
    }

    /// Whether the box asks for a PIN: one its owner set by phone, or the catalog's.
    func asksPIN(tenant: String, extensionNumber: String, catalogPIN: String) async throws -> Bool {
        guard catalogPIN.isEmpty else { return true }
        let rows = try await store.query(
            "SELECT pin_hash FROM pbx_voicemail_boxes WHERE tenant = $1 AND extension = $2", [.text(tenant), .text(extensionNumber)])
        return !((try rows.first?.string("pin_hash")) ?? "").isEmpty
    }

    func setPIN(tenant: String, extensionNumber: String, pin: String) async throws {
        try await store.execute(
            """
            INSERT INTO pbx_voicemail_boxes (tenant, extension, pin_hash, greeting) VALUES ($1, $2, $3, '')
            ON CONFLICT (tenant, extension) DO UPDATE SET pin_hash = excluded.pin_hash
            """, [.text(tenant), .text(extensionNumber), .text(Self.pinHash(tenant: tenant, extensionNumber: extensionNumber, pin: pin))])
    }

    /// The greeting the owner recorded, when there is one on this instance.
    func greeting(tenant: String, extensionNumber: String) async throws -> [Int16]? {
        let rows = try await store.query(
            "SELECT greeting FROM pbx_voicemail_boxes WHERE tenant = $1 AND extension = $2", [.text(tenant), .text(extensionNumber)])
        guard let path = try rows.first?.string("greeting"), !path.isEmpty else { return nil }
        return try? WAVFile(contentsOf: URL(fileURLWithPath: path)).samples
    }

    func setGreeting(tenant: String, extensionNumber: String, samples: [Int16]) async throws {
        let folder = boxDirectory(tenant: tenant, extensionNumber: extensionNumber)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("greeting.wav")
        try WAVFile(samples: samples).write(to: file)
        try await store.execute(
            """
            INSERT INTO pbx_voicemail_boxes (tenant, extension, pin_hash, greeting) VALUES ($1, $2, '', $3)
            ON CONFLICT (tenant, extension) DO UPDATE SET greeting = excluded.greeting
            """, [.text(tenant), .text(extensionNumber), .text(file.path)])
    }

    // MARK: - Outbox

    static let deliveryColumns = "message_id, channel, target, status, attempts, last_error, next_attempt_at, delivered_at"

    static func delivery(_ row: SQLRow) throws -> Delivery {
        Delivery(
            messageID: try row.string("message_id"), channel: try row.string("channel"), target: try row.string("target"),
            status: try row.string("status"), attempts: try row.int("attempts"), lastError: try row.string("last_error"),
            nextAttemptAt: try row.optionalInt("next_attempt_at"), deliveredAt: try row.optionalInt("delivered_at"))
    }

    /// This instance's deliveries due at `now` (the instance holding the file delivers it).
    func dueDeliveries(now: Int64, limit: Int = 20) async throws -> [(Delivery, Message)] {
        let deliveries = try await store.query(
            """
            SELECT \(Self.deliveryColumns) FROM pbx_voicemail_deliveries
            WHERE instance = $1 AND status IN ('pending', 'retrying') AND next_attempt_at <= $2 ORDER BY next_attempt_at LIMIT \(limit)
            """, [.text(instance), .integer(now)]
        ).map(Self.delivery)
        var out: [(Delivery, Message)] = []
        for delivery in deliveries {
            let rows = try await store.query(
                "SELECT \(Self.messageColumns) FROM pbx_voicemail_messages WHERE id = $1", [.text(delivery.messageID)])
            if let row = rows.first { out.append((delivery, try Self.message(row))) }
        }
        return out
    }

    /// Records an attempt: delivered, or failed with the reason and the next attempt (nil: given up).
    func recordAttempt(_ delivery: Delivery, error: String?, nextAttemptAt: Int64?, now: Int64) async throws {
        let status = error == nil ? "delivered" : nextAttemptAt == nil ? "failed" : "retrying"
        try await store.execute(
            """
            UPDATE pbx_voicemail_deliveries SET status = $1, attempts = attempts + 1, last_error = CASE WHEN $2 = '' THEN last_error ELSE $2 END, next_attempt_at = $3, delivered_at = $4,
            updated_at = $7 WHERE message_id = $5 AND channel = $6
            """,
            [.text(status), .text(error ?? ""), nextAttemptAt.map { .integer($0) } ?? .null, error == nil ? .integer(now) : .null,
             .text(delivery.messageID), .text(delivery.channel), .integer(now)])
    }

    /// This instance's deliveries being retried now, and those given up in the last 24 h (the monitor's alarms).
    func deliveryHealth(now: Int64) async throws -> (retrying: Int, failedLastDay: Int) {
        let rows = try await store.query(
            """
            SELECT status, COUNT(*) AS n FROM pbx_voicemail_deliveries
            WHERE instance = $1 AND (status = 'retrying' OR (status = 'failed' AND updated_at > $2)) GROUP BY status
            """, [.text(instance), .integer(now - 86_400)])
        var health = (retrying: 0, failedLastDay: 0)
        for row in rows {
            if try row.string("status") == "retrying" { health.retrying = Int(try row.int("n")) } else { health.failedLastDay = Int(try row.int("n")) }
        }
        return health
    }

    /// Every message (deleted ones too) with its deliveries, for `troncal pbx voicemail list`.
    func list(tenant: String?, extensionNumber: String?) async throws -> PBXVoicemailList {
        let messages = try await store.query(
            """
            SELECT \(Self.messageColumns) FROM pbx_voicemail_messages WHERE ($1 = '' OR tenant = $1) AND ($2 = '' OR extension = $2)
            ORDER BY received_at, id
            """, [.text(tenant ?? ""), .text(extensionNumber ?? "")]
        ).map(Self.message)
        let deliveries = try await store.query("SELECT \(Self.deliveryColumns) FROM pbx_voicemail_deliveries", []).map(Self.delivery)
        let byMessage = Dictionary(grouping: deliveries, by: \.messageID)
        func date(_ seconds: Int64?) -> Date? { seconds.map { Date(timeIntervalSince1970: TimeInterval($0)) } }
        return PBXVoicemailList(
            messages: messages.map { message in
                PBXVoicemailList.Message(
                    id: message.id, tenant: message.tenant, extensionNumber: message.extensionNumber, caller: message.caller,
                    receivedAt: Date(timeIntervalSince1970: TimeInterval(message.receivedAt)), durationMilliseconds: Int(message.durationMilliseconds),
                    folder: message.folder, file: message.file, instance: message.instance,
                    deliveries: (byMessage[message.id] ?? []).sorted { $0.channel < $1.channel }.map {
                        .init(
                            channel: $0.channel, target: $0.target, status: $0.status, attempts: Int($0.attempts), lastError: $0.lastError,
                            nextAttemptAt: $0.status == "delivered" || $0.status == "failed" ? nil : date($0.nextAttemptAt),
                            deliveredAt: date($0.deliveredAt))
                    })
            })
    }
}
