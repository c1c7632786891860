import Crypto

#if canImport(FoundationEssentials)
    public import FoundationEssentials
#else
    public import Foundation
#endif

/// Issues and checks digest nonces without server state: a nonce is hex(issue time ‖ 16 random bytes ‖
/// HMAC-SHA256(secret, issue time ‖ random ‖ realm) truncated to 16 bytes), so any instance holding the secret can
/// tell a genuine nonce, its realm and its age. Time is passed in.
public struct DigestNonceAuthority: Sendable {
    /// What a nonce turned out to be.
    public enum Status: Hashable, Sendable {
        /// Issued by us for this realm and within its lifetime; `issuedAt` is Unix seconds.
        case valid(issuedAt: UInt64)
        /// Genuine but older than the lifetime: answer with `stale=true` if the response was right.
        case expired(issuedAt: UInt64)
        /// Not ours, not for this realm, or malformed.
        case invalid
    }

    /// The HMAC key bytes (kept as bytes: `SymmetricKey` is not Sendable).
    private let secret: [UInt8]
    /// How long a nonce stays valid.
    public let lifetime: Duration
    /// Tolerated clock difference between instances for nonces dated in the future.
    public let clockSkew: Duration

    /// nil when the secret is shorter than 32 bytes.
    public init?(secret: [UInt8], lifetime: Duration = .seconds(300), clockSkew: Duration = .seconds(30)) {
        guard secret.count >= 32 else { return nil }
        self.secret = secret
        self.lifetime = lifetime
        self.clockSkew = clockSkew
    }

    /// A fresh nonce for `realm`, dated `now`.
    public func makeNonce(realm: String, now: Date, using generator: inout some RandomNumberGenerator) -> String {
        var payload: [UInt8] = []
        payload.reserveCapacity(40)
        let issuedAt = Self.seconds(now)
        for shift in stride(from: 56, through: 0, by: -8) {
            payload.append(UInt8(truncatingIfNeeded: issuedAt >> UInt64(shift)))
        }
        for _ in 0..<2 {
            let random = generator.next()
            for shift in stride(from: 56, through: 0, by: -8) {
                payload.append(UInt8(truncatingIfNeeded: random >> UInt64(shift)))
            }
        }
        payload.append(contentsOf: mac(payload, realm: realm))
        return DigestAlgorithm.hex(payload)
    }

    /// A fresh nonce using the system random number generator.
    public func makeNonce(realm: String, now: Date) -> String {
        var generator = SystemRandomNumberGenerator()
        return makeNonce(realm: realm, now: now, using: &generator)
    }

    /// Checks a nonce's MAC (in constant time), realm and age.
    public func check(_ nonce: String, realm: String, now: Date) -> Status {
        let hex = Array(nonce.utf8)
        guard hex.count == 80 else { return .invalid }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(40)
        var index = 0
        while index < 80 {
            guard let high = hex[index].hexValue, let low = hex[index + 1].hexValue else { return .invalid }
            bytes.append(high << 4 | low)
            index += 2
        }
        let payload = Array(bytes[0..<24])
        guard DigestCalculator.constantTimeEquals(mac(payload, realm: realm), bytes[24..<40]) else { return .invalid }
        var issuedAt: UInt64 = 0
        for byte in bytes[0..<8] { issuedAt = issuedAt << 8 | UInt64(byte) }
        let nowSeconds = Self.seconds(now)
        if issuedAt > nowSeconds, issuedAt - nowSeconds > UInt64(clockSkew.components.seconds) { return .invalid }
        if nowSeconds > issuedAt, nowSeconds - issuedAt > UInt64(lifetime.components.seconds) {
            return .expired(issuedAt: issuedAt)
        }
        return .valid(issuedAt: issuedAt)
    }

    private func mac(_ payload: [UInt8], realm: String) -> [UInt8] {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret))
        hmac.update(data: payload)
        hmac.update(data: Array(realm.utf8))
        return Array(Array(hmac.finalize()).prefix(16))
    }

    static func seconds(_ date: Date) -> UInt64 {
        let interval = date.timeIntervalSince1970
        return interval > 0 ? UInt64(interval) : 0
    }
}
