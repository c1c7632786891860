/// The live transactions of one SIP element, bounded in number. It routes each incoming message to the
/// transaction it matches (responses against client transactions, RFC 3261 §17.1.3; requests against server
/// transactions, §17.2.3, with the RFC 2543 fallback of `TransactionKey`) or says what else the message is,
/// and forgets a transaction the instant it terminates. A plain value owned by one event loop or actor; the
/// shell keeps the timers, keyed by `TransactionID` and `TransactionTimer`, and drops all of a transaction's
/// timers when it sees `.terminated`.
///
/// When full, the table refuses new transactions instead of evicting live ones: evicting would turn the next
/// retransmission into a new request (a duplicate call), whereas a refusal is a clean 503 to one caller.
public struct TransactionTable: Sendable {
    /// What an incoming message turned out to be.
    public enum Route: Sendable, Hashable {
        /// It matched this transaction, which returned these actions (an absorbed retransmission returns none).
        case matched(TransactionID, [TransactionAction])
        /// A request matching no transaction: build its server transaction with `SIPTransaction(serving:)` and
        /// `start` it. For a CANCEL (always its own transaction) the INVITE it targets is
        /// `inviteTransaction(cancelledBy:)`; if there is none the TU answers the CANCEL 481.
        case newRequest(TransactionID)
        /// An ACK matching no INVITE server transaction: the ACK for a 2xx, which is end to end and belongs to
        /// the TU's dialog, not to a transaction (§17.2.3, §13.3.1.4).
        case ackForTransactionUser
        /// A response matching no client transaction: for a UAC core, a 2xx retransmission arriving after
        /// Timer M (match it to the dialog and ACK again); anything else is stray and dropped — RFC 6026 stops
        /// proxies forwarding such responses.
        case unmatchedResponse
        /// The message lacks what matching needs (a Via; from an RFC 2543 peer also Call-ID and CSeq; for a
        /// response a branch and CSeq): drop it. `SIPValidator` rejects such requests before they get here.
        case unmatchable
    }

    /// The outcome of `start`.
    public enum Admission: Sendable, Hashable {
        /// The transaction is in the table; perform these first actions.
        case started(TransactionID, [TransactionAction])
        /// The table holds `capacity` transactions: refuse the work (answer a new request 503 statelessly,
        /// fail the TU's outgoing request locally).
        case full
        /// A live transaction already has this identity: a request retransmission that should have gone
        /// through `receive`, or an outgoing request that reuses a branch.
        case duplicate(TransactionID)
        /// The request lacks what a key needs (see `Route.unmatchable`).
        case unmatchable
    }

    /// The most transactions the table holds at once.
    public let capacity: Int
    private var transactions: [TransactionID: SIPTransaction] = [:]

    /// A table holding at most `capacity` transactions (a negative capacity counts as zero).
    public init(capacity: Int = 65_536) {
        self.capacity = max(0, capacity)
    }

    public var count: Int { transactions.count }
    public var isEmpty: Bool { transactions.isEmpty }
    public var isFull: Bool { transactions.count >= capacity }

    /// Client transactions still waiting for their final answer (an INVITE calling or proceeding, a CANCEL or BYE
    /// trying or proceeding): what must still reach this element before it closes its transport.
    public var clientsAwaitingAnswer: Int {
        transactions.values.reduce(0) { count, transaction in
            switch transaction {
            case .inviteClient(let invite): count + ([.calling, .proceeding].contains(invite.state) ? 1 : 0)
            case .nonInviteClient(let request): count + ([.trying, .proceeding].contains(request.state) ? 1 : 0)
            case .inviteServer, .nonInviteServer: count
            }
        }
    }

    public subscript(id: TransactionID) -> SIPTransaction? { transactions[id] }

    /// Adds a new transaction and starts it: a client transaction for a request the TU sends, or the server
    /// transaction for a `Route.newRequest`.
    public mutating func start(_ transaction: SIPTransaction) -> Admission {
        guard let id = transaction.id else { return .unmatchable }
        guard transactions[id] == nil else { return .duplicate(id) }
        guard !isFull else { return .full }
        var transaction = transaction
        let actions = transaction.start()
        if !transaction.isTerminated { transactions[id] = transaction }
        return .started(id, actions)
    }

    /// Routes a message from the network and, when it matches a transaction, feeds it in.
    public mutating func receive(_ message: SIPMessage) -> Route {
        guard let id = Self.id(matching: message) else { return .unmatchable }
        if let actions = update(id, { $0.receive(message) }) { return .matched(id, actions) }
        switch message {
        case .response: return .unmatchedResponse
        case .request(let request): return request.method == .ack ? .ackForTransactionUser : .newRequest(id)
        }
    }

    /// A response from the TU on a server transaction; no actions when that transaction is gone.
    public mutating func send(_ response: SIPResponse, on id: TransactionID) -> [TransactionAction] {
        update(id) { $0.send(response) } ?? []
    }

    /// A timer of the shell fired; no actions when its transaction is gone (a timer racing termination).
    public mutating func timerFired(_ timer: TransactionTimer, on id: TransactionID) -> [TransactionAction] {
        update(id) { $0.timerFired(timer) } ?? []
    }

    /// The transport could not send for this transaction.
    public mutating func transportError(on id: TransactionID) -> [TransactionAction] {
        update(id) { $0.transportError() } ?? []
    }

    /// The live INVITE server transaction a CANCEL targets (§9.2), if any.
    public func inviteTransaction(cancelledBy cancel: SIPRequest) -> TransactionID? {
        guard let key = TransactionKey.invite(cancelledBy: cancel) else { return nil }
        let id = TransactionID(side: .server, key: key)
        return transactions[id] == nil ? nil : id
    }

    /// Drops a transaction without terminating it (its TU has gone away); the shell cancels its timers.
    @discardableResult
    public mutating func remove(_ id: TransactionID) -> SIPTransaction? {
        transactions.removeValue(forKey: id)
    }

    /// The identity an incoming message would match: the client side for a response, the server side for a
    /// request (an ACK shares its INVITE's identity).
    public static func id(matching message: SIPMessage) -> TransactionID? {
        switch message {
        case .response(let response):
            TransactionKey.client(for: response).map { TransactionID(side: .client, key: $0) }
        case .request(let request):
            TransactionKey.server(for: request).map { TransactionID(side: .server, key: $0) }
        }
    }

    /// Runs an event on the transaction in place and removes it once terminated; nil when there is none.
    private mutating func update(
        _ id: TransactionID, _ event: (inout SIPTransaction) -> [TransactionAction]
    ) -> [TransactionAction]? {
        guard let index = transactions.index(forKey: id) else { return nil }
        let actions = event(&transactions.values[index])
        if transactions.values[index].isTerminated { transactions.remove(at: index) }
        return actions
    }
}
