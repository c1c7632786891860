import Foundation
import Logging
import Testing
import TestSupport
import TroncalStore
@testable import TroncalPBX

/// The registrar's bindings on both stores: several contacts per extension, expiry, removal, RFC 5626 keys, the
/// CSeq order rule and the contact limit.
@Suite struct BindingStoreTests {
    static func binding(_ key: String, contact: String, callID: String = "c1", cseq: Int64 = 1, expiresAt: Int64, instance: String = "pbx-1") -> Binding {
        Binding(
            tenant: "acme", extensionNumber: "101", key: key, contact: contact, path: "<sip:flow@sbc;lr;ob>", callID: callID, cseq: cseq,
            expiresAt: expiresAt, registeredAt: 1_000, userAgent: "test", instance: instance)
    }

    static func update(_ bindings: [Binding], callID: String = "c1", cseq: Int64 = 1, removeAll: Bool = false, limit: Int = 3) -> BindingStore.Update {
        .init(tenant: "acme", extensionNumber: "101", callID: callID, cseq: cseq, removeAll: removeAll, bindings: bindings, maximumContacts: limit)
    }

    @Test(arguments: TestBackend.allCases)
    func contactsAreAddedReplacedExpiredAndRemovedAndOrderAndLimitAreKept(backend: TestBackend) async throws {
        try await withMigratedDatabase(backend, service: "pbx", migrations: PBXService.migrations ?? []) { store in
            let bindings = BindingStore(store: store)
            // A desk phone and a softphone (different Call-IDs), seen by every reader of the store.
            _ = try await bindings.apply(Self.update([Self.binding("sip:101@10.0.0.5", contact: "<sip:101@10.0.0.5>", expiresAt: 1_600)]), now: 1_000)
            let two = try await bindings.apply(
                Self.update([Self.binding("sip:101@10.0.0.9", contact: "<sip:101@10.0.0.9>", callID: "c2", expiresAt: 1_300)], callID: "c2"), now: 1_000)
            #expect(two.map(\.contact) == ["<sip:101@10.0.0.5>", "<sip:101@10.0.0.9>"])
            #expect(try await bindings.bindings(tenant: "acme", extensionNumber: "101", now: 1_000).count == 2)
            // The same Call-ID with a CSeq not above the stored one: out of order, nothing changes.
            await #expect(throws: BindingStore.Refusal.outOfOrder) {
                _ = try await bindings.apply(Self.update([Self.binding("sip:101@10.0.0.5", contact: "<sip:101@10.0.0.5>", expiresAt: 1_900)]), now: 1_001)
            }
            // An RFC 5626 flow: the instance and reg-id are the key, so the phone's new address replaces its binding.
            let flowKey = "\"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>\";reg-id=1"
            _ = try await bindings.apply(
                Self.update([Self.binding(flowKey, contact: "<sip:101@192.0.2.1:5062>", callID: "c3", expiresAt: 1_500)], callID: "c3"), now: 1_000)
            let moved = try await bindings.apply(
                Self.update([Self.binding(flowKey, contact: "<sip:101@192.0.2.1:6000>", callID: "c3", cseq: 2, expiresAt: 1_500)], callID: "c3", cseq: 2),
                now: 1_010)
            #expect(moved.count == 3)
            #expect(moved.contains { $0.contact == "<sip:101@192.0.2.1:6000>" } && !moved.contains { $0.contact == "<sip:101@192.0.2.1:5062>" })
            // A fourth contact passes the limit of 3.
            await #expect(throws: BindingStore.Refusal.tooManyContacts(3)) {
                _ = try await bindings.apply(
                    Self.update([Self.binding("sip:101@10.0.0.77", contact: "<sip:101@10.0.0.77>", callID: "c4", expiresAt: 1_900)], callID: "c4"),
                    now: 1_010)
            }
            // Expiry: past 1,300 the softphone is gone without anyone removing it; the sweep deletes it in bulk.
            #expect(try await bindings.bindings(tenant: "acme", extensionNumber: "101", now: 1_400).count == 2)
            #expect(try await bindings.sweep(now: 1_400) == 1)
            // Expires 0 removes one contact; `*` removes them all.
            let left = try await bindings.apply(
                Self.update([Self.binding("sip:101@10.0.0.5", contact: "<sip:101@10.0.0.5>", cseq: 5, expiresAt: 1_400)], cseq: 5), now: 1_400)
            #expect(left.map(\.contact) == ["<sip:101@192.0.2.1:6000>"])
            let none = try await bindings.apply(Self.update([], callID: "c9", cseq: 1, removeAll: true), now: 1_401)
            #expect(none.isEmpty)
            #expect(try await bindings.all(now: 1_401).isEmpty)
            // The nonce secret is made once and shared.
            let secret = try await bindings.sharedSecret("digest-nonce")
            #expect(secret.count == 32)
            #expect(try await bindings.sharedSecret("digest-nonce") == secret)
        }
    }
}
