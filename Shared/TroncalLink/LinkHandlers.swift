public import Foundation
public import TroncalProtocol

/// The message types a service accepts, who may send each, and the code that answers them.
///
/// A service builds one at start-up (`on(_:from:)` per type) and hands it to its `LinkServer`. The
/// dispatch decides, in this order: JSON and envelope validity, known type, schema version, sender's
/// role, body validity; only then does a handler run.
public struct LinkHandlers: Sendable {
    typealias Handler = @Sendable (InboundEnvelope, PeerIdentity) async throws -> (head: EnvelopeHead, json: Data)?

    struct Entry: Sendable {
        var version: Int
        var senders: Set<Role>?
        var expectsReply: Bool
        var handler: Handler
    }

    private(set) var entries: [String: Entry] = [:]
    /// Written into the `from` field of replies.
    public var localIdentity: PeerIdentity

    public init(localIdentity: PeerIdentity) {
        self.localIdentity = localIdentity
    }

    /// The message types registered, with the roles allowed to send each (`nil`: any authenticated role).
    public var policy: [String: Set<Role>?] { entries.mapValues(\.senders) }

    /// Answers requests of type `R` from peers whose role is in `senders` (`nil`: any role).
    public mutating func on<R: LinkRequest>(
        _ type: R.Type, from senders: Set<Role>?, _ handler: @escaping @Sendable (R, PeerIdentity) async throws -> R.Reply
    ) {
        let from = localIdentity.description
        entries[R.messageType] = Entry(version: R.version, senders: senders, expectsReply: true) { inbound, peer in
            let request = try inbound.body(as: R.self)
            let reply = try await handler(request, peer)
            let head = EnvelopeHead(v: R.Reply.version, id: RandomID.uuidString(), type: R.Reply.messageType, from: from, re: inbound.head.id)
            return (head, try EnvelopeEncoder.encode(Envelope(head: head, body: reply)))
        }
    }

    /// Accepts one-way messages of type `M` (no reply is sent, not even an error).
    public mutating func onMessage<M: LinkMessage>(
        _ type: M.Type, from senders: Set<Role>?, _ handler: @escaping @Sendable (M, PeerIdentity) async throws -> Void
    ) {
        entries[M.messageType] = Entry(version: M.version, senders: senders, expectsReply: false) { inbound, peer in
            try await handler(try inbound.body(as: M.self), peer)
            return nil
        }
    }

    /// The outcome of one inbound frame.
    public enum Outcome: Sendable {
        /// Send this frame back.
        case reply(Data)
        /// Nothing to send (a one-way message was handled).
        case none
    }

    /// What a handled (or refused) frame produced, with the error if there was one, for logging.
    public struct Result: Sendable {
        public var outcome: Outcome
        public var type: String?
        public var error: ProtocolError?
    }

    /// Runs one inbound frame's JSON through validation and its handler, returning what to send back.
    public func dispatch(json: Data, from peer: PeerIdentity) async -> Result {
        let inbound: InboundEnvelope
        do {
            inbound = try InboundEnvelope(json: json)
        } catch {
            return errorResult(error, replyTo: nil, type: nil)
        }
        let head = inbound.head
        if head.re != nil {
            return errorResult(ProtocolError(.badEnvelope, "unexpected reply \(head.re ?? "") on a server link"), replyTo: nil, type: head.type)
        }
        guard let entry = entries[head.type] else {
            return errorResult(ProtocolError(.unknownType, "unknown message type '\(head.type)'"), replyTo: head.id, type: head.type)
        }
        func refuse(_ error: ProtocolError) -> Result {
            entry.expectsReply ? errorResult(error, replyTo: head.id, type: head.type) : Result(outcome: .none, type: head.type, error: error)
        }
        guard head.v <= entry.version, head.v >= 1 else {
            return refuse(ProtocolError(.unsupportedVersion, "\(head.type) version \(head.v) is not supported (this build knows up to \(entry.version))"))
        }
        if let senders = entry.senders, !senders.contains(peer.role) {
            return refuse(ProtocolError(.forbidden, "role \(peer.role) may not send \(head.type)"))
        }
        // The sender waits `ttl` ms: work that would start later is refused, not done (RequestDeadline).
        let deadline = head.ttl.map { ContinuousClock.now + .milliseconds(max(0, $0)) }
        var late: Bool { deadline.map { ContinuousClock.now >= $0 } ?? false }
        let expired = ProtocolError(
            .timeout, "\(head.type) not handled: its sender stopped waiting after \(head.ttl ?? 0) ms, before the work could start")
        if late { return refuse(expired) }
        do {
            guard let reply = try await RequestDeadline.$current.withValue(deadline, operation: { try await entry.handler(inbound, peer) }) else {
                return Result(outcome: .none, type: head.type, error: nil)
            }
            return Result(outcome: .reply(reply.json), type: head.type, error: nil)
        } catch let error as ProtocolError {
            // Whatever the handler made of it (a store refusing to start late work), a failure after the deadline is
            // the deadline's.
            return refuse(late ? expired : error)
        } catch is CancellationError {
            return refuse(ProtocolError(.unavailable, "\(localIdentity) is shutting down"))
        } catch {
            return refuse(late ? expired : ProtocolError(.internal, "\(head.type) failed: \(error)"))
        }
    }

    private func errorResult(_ error: ProtocolError, replyTo id: String?, type: String?) -> Result {
        let head = EnvelopeHead(v: 1, id: RandomID.uuidString(), type: ProtocolError.messageType, from: localIdentity.description, re: id)
        guard let json = try? EnvelopeEncoder.encode(Envelope(head: head, body: error)) else {
            return Result(outcome: .none, type: type, error: error)
        }
        return Result(outcome: .reply(json), type: type, error: error)
    }
}
