/// Any of the four transaction state machines, behind one set of events, so a `TransactionTable` can hold them
/// together and feed an incoming message to whichever kind matched. Each event goes to the machine that
/// understands it; an event a kind cannot take (a request given to a client transaction, a TU response given
/// to a client transaction) yields no actions.
public enum SIPTransaction: Sendable {
    case inviteClient(InviteClientTransaction)
    case nonInviteClient(NonInviteClientTransaction)
    case inviteServer(InviteServerTransaction)
    case nonInviteServer(NonInviteServerTransaction)

    /// The server transaction for a request that matched none: INVITE or non-INVITE by its method. Nil for an
    /// ACK, which never creates a transaction (§17.2.3: an ACK without a transaction belongs to the TU).
    public init?(serving request: SIPRequest, reliable: Bool, timers: TransactionTimers = TransactionTimers()) {
        switch request.method {
        case .ack: return nil
        case .invite: self = .inviteServer(InviteServerTransaction(invite: request, reliable: reliable, timers: timers))
        default:
            self = .nonInviteServer(NonInviteServerTransaction(request: request, reliable: reliable, timers: timers))
        }
    }

    /// The client transaction that sends `request`: INVITE or non-INVITE by its method. Nil for an ACK (the ACK
    /// for a 2xx is sent by the TU straight to the transport; the ACK for a non-2xx by the INVITE client
    /// transaction itself).
    public init?(sending request: SIPRequest, reliable: Bool, timers: TransactionTimers = TransactionTimers()) {
        switch request.method {
        case .ack: return nil
        case .invite: self = .inviteClient(InviteClientTransaction(invite: request, reliable: reliable, timers: timers))
        default:
            self = .nonInviteClient(NonInviteClientTransaction(request: request, reliable: reliable, timers: timers))
        }
    }

    public var side: TransactionID.Side {
        switch self {
        case .inviteClient, .nonInviteClient: .client
        case .inviteServer, .nonInviteServer: .server
        }
    }

    /// The request that created the transaction.
    public var request: SIPRequest {
        switch self {
        case .inviteClient(let transaction): transaction.request
        case .nonInviteClient(let transaction): transaction.request
        case .inviteServer(let transaction): transaction.request
        case .nonInviteServer(let transaction): transaction.request
        }
    }

    /// The identity incoming messages are matched against; nil when the request lacks the headers to build a
    /// key (no Via, or, for an RFC 2543 peer, no Call-ID or CSeq).
    public var id: TransactionID? {
        switch side {
        case .client: TransactionKey.client(for: request).map { TransactionID(side: .client, key: $0) }
        case .server: TransactionKey.server(for: request).map { TransactionID(side: .server, key: $0) }
        }
    }

    public var isTerminated: Bool {
        switch self {
        case .inviteClient(let transaction): transaction.state == .terminated
        case .nonInviteClient(let transaction): transaction.state == .terminated
        case .inviteServer(let transaction): transaction.state == .terminated
        case .nonInviteServer(let transaction): transaction.state == .terminated
        }
    }

    /// The first actions: send the request (client) or pass it to the TU (server; an INVITE one also sends
    /// 100 Trying at once).
    public mutating func start() -> [TransactionAction] {
        update(
            inviteClient: { $0.start() }, nonInviteClient: { $0.start() }, inviteServer: { $0.start() },
            nonInviteServer: { $0.start() })
    }

    /// A message from the network: responses go to client transactions, requests (retransmissions, ACK,
    /// nothing else matches a server transaction) to server ones.
    public mutating func receive(_ message: SIPMessage) -> [TransactionAction] {
        switch message {
        case .response(let response):
            update(inviteClient: { $0.receive(response) }, nonInviteClient: { $0.receive(response) })
        case .request(let request):
            update(inviteServer: { $0.receive(request) }, nonInviteServer: { $0.receive(request) })
        }
    }

    /// A response from the TU, for server transactions.
    public mutating func send(_ response: SIPResponse) -> [TransactionAction] {
        update(inviteServer: { $0.send(response) }, nonInviteServer: { $0.send(response) })
    }

    public mutating func timerFired(_ timer: TransactionTimer) -> [TransactionAction] {
        update(
            inviteClient: { $0.timerFired(timer) }, nonInviteClient: { $0.timerFired(timer) },
            inviteServer: { $0.timerFired(timer) }, nonInviteServer: { $0.timerFired(timer) })
    }

    public mutating func transportError() -> [TransactionAction] {
        update(
            inviteClient: { $0.transportError() }, nonInviteClient: { $0.transportError() },
            inviteServer: { $0.transportError() }, nonInviteServer: { $0.transportError() })
    }

    /// Runs the closure for the wrapped kind on a copy and stores the copy back; kinds without a closure ignore
    /// the event.
    private mutating func update(
        inviteClient: (inout InviteClientTransaction) -> [TransactionAction] = { _ in [] },
        nonInviteClient: (inout NonInviteClientTransaction) -> [TransactionAction] = { _ in [] },
        inviteServer: (inout InviteServerTransaction) -> [TransactionAction] = { _ in [] },
        nonInviteServer: (inout NonInviteServerTransaction) -> [TransactionAction] = { _ in [] }
    ) -> [TransactionAction] {
        switch self {
        case .inviteClient(var transaction):
            let actions = inviteClient(&transaction)
            self = .inviteClient(transaction)
            return actions
        case .nonInviteClient(var transaction):
            let actions = nonInviteClient(&transaction)
            self = .nonInviteClient(transaction)
            return actions
        case .inviteServer(var transaction):
            let actions = inviteServer(&transaction)
            self = .inviteServer(transaction)
            return actions
        case .nonInviteServer(var transaction):
            let actions = nonInviteServer(&transaction)
            self = .nonInviteServer(transaction)
            return actions
        }
    }
}
