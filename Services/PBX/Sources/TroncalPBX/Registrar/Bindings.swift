import Foundation
public import TroncalStore

/// One registered contact of an extension: where calls to it go (through `path`, the SBC that holds the phone's flow).
public struct Binding: Sendable, Equatable {
    public var tenant: String
    public var extensionNumber: String
    /// What identifies the binding: `+sip.instance` and `reg-id` for an RFC 5626 flow, otherwise the contact URI.
    public var key: String
    /// The Contact address as registered (URI and parameters, without `expires`).
    public var contact: String
    /// The Path vector the SBC added (RFC 3327), comma-separated name-addrs; empty when registered directly.
    public var path: String
    public var callID: String
    public var cseq: Int64
    /// Unix seconds.
    public var expiresAt: Int64
    public var registeredAt: Int64
    public var userAgent: String
    /// The PBX instance that took the registration.
    public var instance: String

    public func expires(now: Int64) -> Int64 { max(0, expiresAt - now) }
}

/// The registrar's bindings in the PBX database (`pbx_bindings`), shared by every PBX instance of the site on
/// PostgreSQL. Expired rows are ignored when read and removed with the next registration of the same extension, and
/// in bulk by `sweep`.
public struct BindingStore: Sendable {
    let store: any SQLStore

    public init(store: any SQLStore) {
        self.store = store
    }

    public static let migration = Migration(
        version: 2, name: "pbx bindings",
        sql: [
            """
            CREATE TABLE pbx_bindings (tenant TEXT NOT NULL, extension TEXT NOT NULL, binding_key TEXT NOT NULL, contact TEXT NOT NULL,
            path TEXT NOT NULL, call_id TEXT NOT NULL, cseq BIGINT NOT NULL, expires_at BIGINT NOT NULL, registered_at BIGINT NOT NULL,
            user_agent TEXT NOT NULL, instance TEXT NOT NULL, PRIMARY KEY (tenant, extension, binding_key))
            """,
            "CREATE INDEX pbx_bindings_expiry ON pbx_bindings (expires_at)",
            "CREATE TABLE pbx_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ])

    /// What one REGISTER asks: contacts to bind (with their granted expiry; 0 removes), or every contact removed.
    public struct Update: Sendable {
        public var tenant: String
        public var extensionNumber: String
        public var callID: String
        public var cseq: Int64
        public var removeAll: Bool
        public var bindings: [Binding]
        public var maximumContacts: Int
    }

    public enum Refusal: Error, Equatable, CustomStringConvertible {
        /// RFC 3261 §10.3 step 7: the same Call-ID with a CSeq not above the stored one.
        case outOfOrder
        case tooManyContacts(Int)

        public var description: String {
            switch self {
            case .outOfOrder: "a registration with this Call-ID and a higher CSeq is already stored"
            case .tooManyContacts(let limit): "more than \(limit) contacts for one extension"
            }
        }
    }

    /// Applies `update` in one transaction and returns the extension's bindings in force afterwards.
    public func apply(_ update: Update, now: Int64) async throws -> [Binding] {
        try await store.transaction { transaction in
            let keys: [SQLValue] = [.text(update.tenant), .text(update.extensionNumber)]
            var current = try await Self.read(transaction, tenant: update.tenant, extensionNumber: update.extensionNumber)
                .filter { $0.expiresAt > now }
            var removed: Set<String> = []
            var written: [Binding] = []
            if update.removeAll {
                if current.contains(where: { $0.callID == update.callID && $0.cseq >= update.cseq }) { throw Refusal.outOfOrder }
                removed = Set(current.map(\.key))
                current = []
            } else {
                for binding in update.bindings {
                    if let existing = current.first(where: { $0.key == binding.key }), existing.callID == update.callID, existing.cseq >= update.cseq {
                        throw Refusal.outOfOrder
                    }
                    current.removeAll { $0.key == binding.key }
                    if binding.expiresAt > now {
                        current.append(binding)
                        written.append(binding)
                    } else {
                        removed.insert(binding.key)
                    }
                }
                if current.count > update.maximumContacts { throw Refusal.tooManyContacts(update.maximumContacts) }
            }
            try await transaction.execute(
                "DELETE FROM pbx_bindings WHERE tenant = $1 AND extension = $2 AND expires_at <= $3", keys + [.integer(now)])
            for key in removed {
                try await transaction.execute("DELETE FROM pbx_bindings WHERE tenant = $1 AND extension = $2 AND binding_key = $3", keys + [.text(key)])
            }
            for binding in written {
                try await transaction.execute(
                    """
                    INSERT INTO pbx_bindings (tenant, extension, binding_key, contact, path, call_id, cseq, expires_at, registered_at, user_agent, instance)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                    ON CONFLICT (tenant, extension, binding_key) DO UPDATE SET contact = excluded.contact, path = excluded.path,
                    call_id = excluded.call_id, cseq = excluded.cseq, expires_at = excluded.expires_at, registered_at = excluded.registered_at,
                    user_agent = excluded.user_agent, instance = excluded.instance
                    """,
                    keys + [
                        .text(binding.key), .text(binding.contact), .text(binding.path), .text(binding.callID), .integer(binding.cseq),
                        .integer(binding.expiresAt), .integer(binding.registeredAt), .text(binding.userAgent), .text(binding.instance),
                    ])
            }
            return current.sorted { $0.registeredAt < $1.registeredAt }
        }
    }

    /// The bindings in force of one extension (oldest registration first).
    public func bindings(tenant: String, extensionNumber: String, now: Int64) async throws -> [Binding] {
        try await store.transaction { transaction in
            try await Self.read(transaction, tenant: tenant, extensionNumber: extensionNumber).filter { $0.expiresAt > now }
        }
    }

    /// The bindings in force, of one tenant and one extension of it when given (`troncal pbx registrations`).
    public func all(now: Int64, tenant: String? = nil, extensionNumber: String? = nil) async throws -> [Binding] {
        try await store.query(
            """
            SELECT tenant, extension, binding_key, contact, path, call_id, cseq, expires_at, registered_at, user_agent, instance
            FROM pbx_bindings WHERE expires_at > $1 AND ($2 = '' OR tenant = $2) AND ($3 = '' OR extension = $3)
            ORDER BY tenant, extension, registered_at
            """, [.integer(now), .text(tenant ?? ""), .text(extensionNumber ?? "")]
        ).map(Self.binding)
    }

    /// How many bindings are in force (the registrations gauge), counted by the database.
    public func count(now: Int64) async throws -> Int {
        Int(try await store.query("SELECT count(*) AS n FROM pbx_bindings WHERE expires_at > $1", [.integer(now)]).first?.int("n") ?? 0)
    }

    /// Removes every expired binding in one statement; returns how many went.
    @discardableResult
    public func sweep(now: Int64) async throws -> Int {
        let rows = try await store.query("DELETE FROM pbx_bindings WHERE expires_at <= $1 RETURNING tenant", [.integer(now)])
        return rows.count
    }

    static func read(_ transaction: any SQLTransaction, tenant: String, extensionNumber: String) async throws -> [Binding] {
        try await transaction.query(
            """
            SELECT tenant, extension, binding_key, contact, path, call_id, cseq, expires_at, registered_at, user_agent, instance
            FROM pbx_bindings WHERE tenant = $1 AND extension = $2
            """, [.text(tenant), .text(extensionNumber)]
        ).map(Self.binding)
    }

    static func binding(_ row: SQLRow) throws -> Binding {
        Binding(
            tenant: try row.string("tenant"), extensionNumber: try row.string("extension"), key: try row.string("binding_key"),
            contact: try row.string("contact"), path: try row.string("path"), callID: try row.string("call_id"), cseq: try row.int("cseq"),
            expiresAt: try row.int("expires_at"), registeredAt: try row.int("registered_at"), userAgent: try row.string("user_agent"),
            instance: try row.string("instance"))
    }

    /// A secret shared by the instances of the site (made by the first to ask): the digest nonce key, so that a phone's
    /// next REGISTER may reach another instance with the nonce the first gave.
    public func sharedSecret(_ name: String) async throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255, using: &generator) }
        let fresh = bytes.map { String(format: "%02x", $0) }.joined()
        try await store.execute("INSERT INTO pbx_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", [.text(name), .text(fresh)])
        guard let text = try await store.query("SELECT value FROM pbx_secrets WHERE name = $1", [.text(name)]).first?.string("value") else {
            throw StoreError(.invalidConfiguration, "the PBX secret \(name) could not be read back")
        }
        var secret: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex, let next = text.index(index, offsetBy: 2, limitedBy: text.endIndex), let byte = UInt8(text[index..<next], radix: 16) {
            secret.append(byte)
            index = next
        }
        return secret
    }
}
