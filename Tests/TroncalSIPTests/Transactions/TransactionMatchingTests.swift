import Testing
import TroncalSIP

/// Which transaction an incoming message belongs to (RFC 3261 §17.1.3, §17.2.3, §9.2), by branch and by the
/// RFC 2543 fallback that the RFC 4475 messages `inv2543` and `badbranch` call for.
@Suite("Transaction matching (RFC 3261 §17.1.3, §17.2.3, RFC 2543 fallback)")
struct TransactionMatchingTests {
    /// Where a probe must land in a table holding one INVITE server transaction and one OPTIONS client
    /// transaction.
    enum Landing: Sendable, Hashable {
        case inviteServerTransaction
        case optionsClientTransaction
        case newServerTransaction
        case ackForTransactionUser
        case unmatchedResponse
        case unmatchable
    }

    struct Probe: Sendable, CustomTestStringConvertible {
        var story: String
        var landing: Landing
        var make: @Sendable () throws -> SIPMessage
        var testDescription: String { story }
    }

    typealias F = TransactionFixtures
    static let optionsBranch = "z9hG4bKopt77"
    static let optionsSentBy = "sbc.example.net:5060"

    static func optionsRequest() throws -> SIPRequest {
        try F.request(.options, branch: optionsBranch, sentBy: optionsSentBy)
    }

    static let rfc3261Probes: [Probe] = [
        Probe(story: "a retransmitted INVITE matches its transaction", landing: .inviteServerTransaction) {
            .request(try F.request(.invite))
        },
        Probe(
            story: "the ACK for a non-2xx (same branch) matches the INVITE transaction",
            landing: .inviteServerTransaction
        ) {
            .request(try F.request(.ack, toTag: F.responseTag))
        },
        Probe(story: "the ACK for a 2xx (new branch) belongs to the TU", landing: .ackForTransactionUser) {
            .request(try F.request(.ack, branch: "z9hG4bKack2xx", toTag: F.responseTag))
        },
        Probe(story: "a CANCEL with the INVITE's branch is a transaction of its own", landing: .newServerTransaction) {
            .request(try F.request(.cancel))
        },
        Probe(story: "a BYE reusing the INVITE's branch is a transaction of its own", landing: .newServerTransaction) {
            .request(try F.request(.bye, toTag: F.responseTag))
        },
        Probe(story: "an INVITE with another branch is a new transaction", landing: .newServerTransaction) {
            .request(try F.request(.invite, branch: "z9hG4bK74bfa"))
        },
        Probe(story: "the same branch from another sent-by host is a new transaction", landing: .newServerTransaction) {
            .request(try F.request(.invite, sentBy: "pc34.atlanta.example.com:5060"))
        },
        Probe(story: "the same branch from another sent-by port is a new transaction", landing: .newServerTransaction) {
            .request(try F.request(.invite, sentBy: "pc33.atlanta.example.com:5070"))
        },
        Probe(story: "sent-by host names compare case-insensitively", landing: .inviteServerTransaction) {
            .request(try F.request(.invite, sentBy: "PC33.Atlanta.Example.COM:5060"))
        },
        Probe(story: "a request without Via cannot be matched", landing: .unmatchable) {
            .request(try F.request(.invite, withVia: false))
        },
        Probe(
            story: "our own OPTIONS looping back gets a server transaction, not our client one",
            landing: .newServerTransaction
        ) {
            .request(try optionsRequest())
        },
        Probe(
            story: "a response with our branch and CSeq method matches the client transaction",
            landing: .optionsClientTransaction
        ) {
            .response(try F.response(200, to: try optionsRequest()))
        },
        Probe(story: "a provisional response matches the client transaction too", landing: .optionsClientTransaction) {
            .response(try F.response(100, to: try optionsRequest()))
        },
        Probe(story: "a response with our branch but another CSeq method matches nothing", landing: .unmatchedResponse)
        {
            .response(try F.response(200, to: try optionsRequest(), cseqMethod: .invite))
        },
        Probe(story: "a response with an unknown branch matches nothing", landing: .unmatchedResponse) {
            .response(try F.response(200, to: try F.request(.options, branch: "z9hG4bKother", sentBy: optionsSentBy)))
        },
    ]

    /// The RFC 4475 §3.4.1 INVITE: no branch, no From tag, no Max-Forwards, no Content-Length.
    static func inv2543(_ edit: @escaping @Sendable (String) -> String = { $0 }) -> @Sendable () throws -> SIPMessage {
        { .request(try F.torture("inv2543", editing: edit)) }
    }

    /// An ACK or CANCEL for inv2543, as an RFC 2543 client builds it: same Request-URI, top Via, From, Call-ID
    /// and CSeq number; the ACK's To carries the tag of our response.
    static func inv2543(method: String, toTag: String?) -> @Sendable () throws -> SIPMessage {
        inv2543 { text in
            var text = text.replacing("INVITE sip:UserB", with: "\(method) sip:UserB")
                .replacing("CSeq: 56 INVITE", with: "CSeq: 56 \(method)")
            if let toTag { text = text.replacing("user=phone\r\nCall-ID", with: "user=phone;tag=\(toTag)\r\nCall-ID") }
            // No body.
            return String(text[..<(text.firstRange(of: "\r\n\r\n")?.upperBound ?? text.endIndex)])
        }
    }

    static let rfc2543Probes: [Probe] = [
        Probe(
            story: "inv2543 retransmitted matches its transaction", landing: .inviteServerTransaction, make: inv2543()),
        Probe(
            story: "inv2543's ACK for a non-2xx (To tag added) matches the INVITE transaction",
            landing: .inviteServerTransaction,
            make: inv2543(method: "ACK", toTag: "ss1a")),
        Probe(
            story: "inv2543's CANCEL is a transaction of its own", landing: .newServerTransaction,
            make: inv2543(method: "CANCEL", toTag: nil)),
        Probe(
            story: "inv2543 with the next CSeq is a new transaction", landing: .newServerTransaction,
            make: inv2543 { $0.replacing("CSeq: 56", with: "CSeq: 57") }),
        Probe(
            story: "inv2543 with another Call-ID is a new transaction", landing: .newServerTransaction,
            make: inv2543 { $0.replacing("inv2543.1717@", with: "inv2543.1718@") }),
        Probe(
            story: "inv2543 from another top Via is a new transaction", landing: .newServerTransaction,
            make: inv2543 { $0.replacing("UDP iftgw.example.com", with: "UDP iftgw2.example.com") }),
        Probe(
            story: "inv2543 to another Request-URI is a new transaction", landing: .newServerTransaction,
            make: inv2543 { $0.replacing("INVITE sip:UserB@", with: "INVITE sip:UserC@") }),
        Probe(
            story: "inv2543 with a From tag is a new transaction", landing: .newServerTransaction,
            make: inv2543 { $0.replacing("user=phone>\r\n", with: "user=phone>;tag=f1\r\n") }),
        Probe(
            story: "inv2543 with a magic-cookie branch is keyed by branch, a new transaction",
            landing: .newServerTransaction,
            make: inv2543 { $0.replacing("iftgw.example.com\r\n", with: "iftgw.example.com;branch=z9hG4bK2543\r\n") }),
    ]

    /// Runs a probe against a table holding the INVITE server transaction of `invite` and an OPTIONS client
    /// transaction, both over UDP.
    func land(_ probe: Probe, invite: SIPRequest) throws -> (Landing, TransactionTable) {
        var table = TransactionTable()
        let server = try #require(SIPTransaction(serving: invite, reliable: false))
        guard case .started(let inviteID, _) = table.start(server) else {
            Issue.record("INVITE server transaction not started")
            return (.unmatchable, table)
        }
        let client = try #require(SIPTransaction(sending: try Self.optionsRequest(), reliable: false))
        guard case .started(let optionsID, _) = table.start(client) else {
            Issue.record("OPTIONS client transaction not started")
            return (.unmatchable, table)
        }
        let landing: Landing =
            switch table.receive(try probe.make()) {
            case .matched(inviteID, _): .inviteServerTransaction
            case .matched(optionsID, _): .optionsClientTransaction
            case .matched(let id, _):
                // Matched something else: report it as the wrong landing.
                id.side == .server ? .inviteServerTransaction : .optionsClientTransaction
            case .newRequest(let id):
                id == inviteID || id == optionsID ? .unmatchable : .newServerTransaction
            case .ackForTransactionUser: .ackForTransactionUser
            case .unmatchedResponse: .unmatchedResponse
            case .unmatchable: .unmatchable
            }
        return (landing, table)
    }

    @Test(arguments: rfc3261Probes)
    func messageWithRFC3261BranchLandsWhereSection17Says(_ probe: Probe) throws {
        #expect(try land(probe, invite: F.request(.invite)).0 == probe.landing)
    }

    @Test(arguments: rfc2543Probes)
    func messageFromRFC2543PeerLandsByRequestURIToFromCallIDCSeqAndTopVia(_ probe: Probe) throws {
        #expect(try land(probe, invite: F.torture("inv2543")).0 == probe.landing)
    }

    @Test func inv2543IsKeyedByTheRFC2543Fallback() throws {
        let invite = try F.torture("inv2543")
        guard
            case .rfc2543(let requestURI, let fromTag, _, let callID, let cseq, _, let method)? = TransactionKey.server(
                for: invite)
        else {
            Issue.record("inv2543 not keyed by the RFC 2543 fallback")
            return
        }
        #expect(requestURI == "sip:UserB@example.com")
        #expect(fromTag == "")
        #expect(callID == "inv2543.1717@ift.client.example.com")
        #expect(cseq == 56)
        #expect(method == "INVITE")
    }

    @Test func cancelFromRFC3261PeerFindsTheInviteItCancels() throws {
        var table = TransactionTable()
        let invite = try F.request(.invite)
        guard
            case .started(let inviteID, _) = table.start(try #require(SIPTransaction(serving: invite, reliable: false)))
        else {
            Issue.record("not started")
            return
        }
        let cancel = try F.request(.cancel)
        #expect(table.inviteTransaction(cancelledBy: cancel) == inviteID)
        #expect(table.inviteTransaction(cancelledBy: try F.request(.cancel, branch: "z9hG4bKelse")) == nil)
        // Only a CANCEL cancels.
        #expect(table.inviteTransaction(cancelledBy: try F.request(.bye)) == nil)
    }

    @Test func cancelFromRFC2543PeerFindsTheInviteItCancels() throws {
        var table = TransactionTable()
        let invite = try F.torture("inv2543")
        guard
            case .started(let inviteID, _) = table.start(try #require(SIPTransaction(serving: invite, reliable: false)))
        else {
            Issue.record("not started")
            return
        }
        guard case .request(let cancel) = try Self.inv2543(method: "CANCEL", toTag: nil)() else {
            Issue.record("not a request")
            return
        }
        #expect(table.inviteTransaction(cancelledBy: cancel) == inviteID)
    }

    /// `SIPValidator` answers badbranch 400 before it reaches a transaction (RFC 4475 §3.2.1 allows either);
    /// should one get through, the key still never takes the bare magic cookie for an RFC 3261 branch.
    @Test func badbranchBareMagicCookieFallsBackToRFC2543Matching() throws {
        let options = try F.torture("badbranch")
        guard case .rfc2543? = TransactionKey.server(for: options) else {
            Issue.record("a branch of only the magic cookie must not be taken as an RFC 3261 branch")
            return
        }
        var table = TransactionTable()
        guard case .started(let id, _) = table.start(try #require(SIPTransaction(serving: options, reliable: false)))
        else {
            Issue.record("not started")
            return
        }
        guard case .matched(id, _) = table.receive(.request(options)) else {
            Issue.record("the retransmitted badbranch OPTIONS must match its transaction")
            return
        }
        let next = try F.torture("badbranch") { $0.replacing("CSeq: 8", with: "CSeq: 9") }
        guard case .newRequest(let other) = table.receive(.request(next)) else {
            Issue.record("the next badbranch OPTIONS must be a new transaction")
            return
        }
        #expect(other != id)
        let cookie = try F.torture("badbranch") { $0.replacing("branch=z9hG4bK\r\n", with: "branch=z9hG4bKx\r\n") }
        guard case .rfc3261(let branch, _, _)? = TransactionKey.server(for: cookie) else {
            Issue.record("a branch longer than the magic cookie is an RFC 3261 branch")
            return
        }
        #expect(branch == "z9hG4bKx")
    }
}
