internal import Crypto
internal import _CryptoExtras
public import Foundation
public import TroncalStore

/// Operator accounts of the dashboard (PBKDF2-SHA256 password hashes), the key that signs session cookies and the
/// one-time login links, all in the monitor's database: every monitor instance of the site accepts the same logins.
public struct Operators: Sendable {
    static let migration = Migration(
        version: 2, name: "dashboard operators, session key, login links",
        sql: [
            "CREATE TABLE monitor_operators (name TEXT PRIMARY KEY, salt TEXT NOT NULL, hash TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)",
            "CREATE TABLE monitor_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
            """
            CREATE TABLE monitor_login_links (token_hash TEXT PRIMARY KEY, operator TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
            used BIGINT NOT NULL)
            """,
        ])

    static let rounds = 210_000
    let store: any SQLStore
    /// The session key's bytes (a SymmetricKey is made per use: it is not Sendable).
    let keyBytes: [UInt8]
    var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    /// Loads (or, the first time, creates) the session key.
    public init(store: any SQLStore) async throws {
        self.store = store
        let fresh = Self.hex(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        try await store.execute(
            "INSERT INTO monitor_secrets (name, value) VALUES ('session-key', $1) ON CONFLICT (name) DO NOTHING", [.text(fresh)])
        let value = try await store.query("SELECT value FROM monitor_secrets WHERE name = 'session-key'", [])[0].string("value")
        keyBytes = Self.bytes(value)
    }

    public func count() async throws -> Int {
        Int(try await store.query("SELECT count(*) AS n FROM monitor_operators", [])[0].int("n"))
    }

    /// Adds an operator, or sets a new password.
    public func set(_ name: String, password: String, at now: Date) async throws {
        guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || "._-@".contains($0) }) else {
            throw MonitorError("an operator name is 1-64 letters, digits, '.', '_', '-' or '@'")
        }
        guard password.count >= 10 else { throw MonitorError("a password needs at least 10 characters") }
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let hash = try Self.derive(password, salt: salt)
        try await store.execute(
            """
            INSERT INTO monitor_operators (name, salt, hash, created_at) VALUES ($1, $2, $3, $4)
            ON CONFLICT (name) DO UPDATE SET salt = excluded.salt, hash = excluded.hash
            """,
            [.text(name), .text(Self.hex(salt)), .text(hash), .real(now.timeIntervalSince1970)])
    }

    /// Every account, by name.
    public func list() async throws -> [(name: String, createdAt: Date)] {
        try await store.query("SELECT name, created_at FROM monitor_operators ORDER BY name", []).map { row in
            (try row.string("name"), Date(timeIntervalSince1970: try row.double("created_at")))
        }
    }

    public func exists(_ name: String) async throws -> Bool {
        try await store.query("SELECT name FROM monitor_operators WHERE name = $1", [.text(name)]).first != nil
    }

    /// Deletes an account and its unused login links; its session cookies stop working at their next request.
    public func remove(_ name: String) async throws {
        guard try await store.query("SELECT name FROM monitor_operators WHERE name = $1", [.text(name)]).first != nil else {
            throw MonitorError("no operator named '\(name)'")
        }
        // One statement decides and deletes: two removals at once cannot take the last two accounts.
        let removed = try await store.transaction { transaction in
            let rows = try await transaction.query(
                "DELETE FROM monitor_operators WHERE name = $1 AND (SELECT count(*) FROM monitor_operators) > 1 RETURNING name", [.text(name)])
            if !rows.isEmpty { try await transaction.execute("DELETE FROM monitor_login_links WHERE operator = $1", [.text(name)]) }
            return !rows.isEmpty
        }
        guard removed else { throw MonitorError("'\(name)' is the last operator: add another first") }
    }

    /// Whether `password` is the operator's (compared in constant time).
    public func verify(_ name: String, password: String) async throws -> Bool {
        guard let row = try await store.query("SELECT salt, hash FROM monitor_operators WHERE name = $1", [.text(name)]).first else {
            // Same work for an unknown name, so timing does not tell which names exist.
            _ = try? Self.derive(password, salt: [0])
            return false
        }
        let computed = try Self.derive(password, salt: Self.bytes(try row.string("salt")))
        return Self.constantTimeEqual(Array(computed.utf8), Array(try row.string("hash").utf8))
    }

    static func derive(_ password: String, salt: [UInt8]) throws -> String {
        let key = try KDF.Insecure.PBKDF2.deriveKey(from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, rounds: rounds)
        return hex(key.withUnsafeBytes { Array($0) })
    }

    // MARK: - Sessions

    /// A cookie value `name.stamp.expiry.signature` (HMAC-SHA256 with the site's session key); the stamp comes from the
    /// account's password salt, so a new password, or removing the account (even if it is added again), ends every
    /// session it had.
    public func session(for name: String, until: Date) async throws -> String {
        guard let stamp = try await stamp(of: name) else { throw MonitorError("no operator named '\(name)'") }
        let payload = "\(name).\(stamp).\(Int(until.timeIntervalSince1970))"
        return payload + "." + Self.hex(Array(HMAC<SHA256>.authenticationCode(for: Array(payload.utf8), using: key)))
    }

    /// The operator of a valid, unexpired cookie value whose account still has the password it was issued under.
    public func operatorName(ofSession value: String, at now: Date) async throws -> String? {
        let parts = value.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 4, let expiry = Int(parts[parts.count - 2]), Double(expiry) > now.timeIntervalSince1970 else { return nil }
        let payload = parts.dropLast().joined(separator: ".")
        let expected = Self.hex(Array(HMAC<SHA256>.authenticationCode(for: Array(payload.utf8), using: key)))
        guard Self.constantTimeEqual(Array(expected.utf8), Array(parts[parts.count - 1].utf8)) else { return nil }
        let name = parts.dropLast(3).joined(separator: ".")
        guard let stamp = try await stamp(of: name), stamp == parts[parts.count - 3] else { return nil }
        return name
    }

    /// The first 16 hex digits of the account's salt (new with every password); nil without such an account.
    func stamp(of name: String) async throws -> String? {
        try await store.query("SELECT salt FROM monitor_operators WHERE name = $1", [.text(name)]).first.map { String(try $0.string("salt").prefix(16)) }
    }

    // MARK: - One-time login links

    /// A token for `/login/link/<token>`, good once within `minutes`.
    public func loginLink(for name: String, minutes: Int, at now: Date) async throws -> String {
        guard try await store.query("SELECT name FROM monitor_operators WHERE name = $1", [.text(name)]).first != nil else {
            throw MonitorError("no operator '\(name)'")
        }
        let token = Self.hex((0..<24).map { _ in UInt8.random(in: 0...255) })
        try await store.execute(
            "INSERT INTO monitor_login_links (token_hash, operator, expires_at, used) VALUES ($1, $2, $3, 0)",
            [.text(Self.hex(Array(SHA256.hash(data: Array(token.utf8))))), .text(name), .real(now.timeIntervalSince1970 + Double(minutes) * 60)])
        return token
    }

    /// Uses a login link: the operator's name when the token is known, unexpired and unused.
    public func redeem(_ token: String, at now: Date) async throws -> String? {
        let hash = Self.hex(Array(SHA256.hash(data: Array(token.utf8))))
        return try await store.transaction { transaction in
            guard let row = try await transaction.query(
                "SELECT operator, expires_at, used FROM monitor_login_links WHERE token_hash = $1", [.text(hash)]
            ).first, try row.int("used") == 0, try row.double("expires_at") > now.timeIntervalSince1970
            else { return nil }
            try await transaction.execute("UPDATE monitor_login_links SET used = 1 WHERE token_hash = $1", [.text(hash)])
            return try row.string("operator")
        }
    }

    // MARK: - Helpers

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    static func bytes(_ hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var iterator = hex.utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            guard let h = Self.nibble(high), let l = Self.nibble(low) else { return [] }
            bytes.append(h << 4 | l)
        }
        return bytes
    }

    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
