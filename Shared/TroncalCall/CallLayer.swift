public import TroncalSIP

/// The transaction-user layer every B2BUA and PBX call sits on, as a pure value: network messages, timers and the
/// application's commands in; messages to send and events for the application out (`takeEffects`).
///
/// It owns the SIP transactions of one event loop's calls and does the work RFC 3261 leaves to the transaction user:
/// matching requests to legs by Call-ID and answering unknown dialogs 481, keeping the server transactions of
/// in-dialog requests until the application answers them, retransmitting a 2xx to an INVITE until its ACK on UDP
/// (§13.3.1.4), answering CANCEL and holding one back until the INVITE got a provisional answer (§9.1), hanging up a
/// 2xx that arrives after the application gave up on its INVITE (ACK and BYE), and running every timer on one wheel.
///
/// Time (`now`, monotonic nanoseconds) and identifiers are passed in: no clock, no randomness and no lock inside,
/// so every path is a unit test. One layer belongs to one event loop; a shell (`CallLoop`) performs its effects.
public struct CallLayer {
    public struct Configuration: Sendable {
        public var timers: TransactionTimers
        /// SIP transactions held at once; beyond it new requests get 503 and new requests out fail locally.
        public var maximumTransactions: Int
        /// `host:port` written into the Via of each request sent, per transport (the SBC's advertised address and
        /// its listener's port).
        public var sentBy: [SIPTransportProtocol: String]
        /// This layer's loop and how many loops share the work: Call-IDs made here hash to this loop.
        public var loopIndex: Int
        public var loopCount: Int

        public init(
            timers: TransactionTimers = TransactionTimers(), maximumTransactions: Int = 262_144,
            sentBy: [SIPTransportProtocol: String] = [:], loopIndex: Int = 0, loopCount: Int = 1
        ) {
            self.timers = timers
            self.maximumTransactions = maximumTransactions
            self.sentBy = sentBy
            self.loopIndex = loopIndex
            self.loopCount = max(1, loopCount)
        }
    }

    struct ServerRecord {
        var source: SIPSource
        var leg: LegReference?
        var method: SIPMethod
        var cseq: CSeqKey?
        /// The leg's initial INVITE (a CANCEL of it ends the call).
        var initialInvite: Bool
    }

    struct ClientRecord {
        var destination: SIPDestination
        var leg: LegReference?
        var purpose: RequestPurpose
        /// The application gave up on this INVITE: its answers are the layer's to close.
        var abandoned = false
        /// A CANCEL waits for the first provisional answer (§9.1).
        var cancelWhenProvisional = false
        /// The late 2xx was hung up already (a retransmission only gets its ACK again).
        var lateAnswerClosed = false
    }

    struct PendingAnswer {
        var response: SIPResponse
        var source: SIPSource
        var cseq: UInt32
        var interval: Duration
        var deadline: Int64
    }

    struct LegRecord {
        var callID: String
        /// Server transactions of the leg's in-dialog requests not answered yet, by CSeq.
        var unanswered: [CSeqKey: TransactionID] = [:]
        /// The leg's initial INVITE server transaction, while it lives.
        var initialInvite: TransactionID?
        /// Live INVITE client transactions of the leg.
        var invites: Set<TransactionID> = []
        var answer: PendingAnswer?
    }

    public var configuration: Configuration
    public internal(set) var transactions: TransactionTable
    var identifiers: any IdentifierSource
    var servers: [TransactionID: ServerRecord] = [:]
    var clients: [TransactionID: ClientRecord] = [:]
    var legs: [LegReference: LegRecord] = [:]
    var legsByCallID: [String: LegReference] = [:]
    var legsOfCall: [Int: [Int]] = [:]
    var timersOfCall: [Int: Set<Int>] = [:]
    var wheel: TimerWheel<CallLayerTimer>
    var effects: [CallLayerEffect] = []
    /// The time of the event being handled.
    public private(set) var now: Int64

    public init(configuration: Configuration, identifiers: any IdentifierSource = RandomIdentifiers(), now: Int64) {
        self.configuration = configuration
        self.transactions = TransactionTable(capacity: configuration.maximumTransactions)
        self.identifiers = identifiers
        self.wheel = TimerWheel(now: now)
        self.now = now
    }

    /// What to do now: messages to send and events for the application, in order. Handling an event may add more.
    public mutating func takeEffects() -> [CallLayerEffect] {
        guard !effects.isEmpty else { return [] }
        var taken: [CallLayerEffect] = []
        swap(&taken, &effects)
        return taken
    }

    public var hasEffects: Bool { !effects.isEmpty }
    /// Timers pending (transactions', 2xx retransmissions', the application's).
    public var pendingTimers: Int { wheel.count }
    public var legCount: Int { legs.count }

    /// The leg a Call-ID belongs to, if any.
    public func leg(forCallID callID: String) -> LegReference? { legsByCallID[callID] }

    // MARK: - Identifiers

    public mutating func identifier(length: Int) -> String { identifiers.identifier(length: length) }

    /// A tag for From or To (§19.3).
    public mutating func makeTag() -> String { identifiers.identifier(length: 12) }

    /// A Call-ID that `CallLoopRouting` maps to this layer's loop, so that every message of a dialog this loop
    /// starts comes back to it.
    public mutating func makeCallID() -> String {
        let routing = CallLoopRouting(loopCount: configuration.loopCount)
        while true {
            let callID = identifiers.identifier(length: 24)
            if routing.loopIndex(forCallID: callID) == configuration.loopIndex { return callID }
        }
    }

    // MARK: - Time

    /// Fires every timer due at `now`.
    public mutating func advance(to now: Int64) {
        self.now = max(self.now, now)
        for key in wheel.expire(upTo: self.now) { fire(key) }
    }

    private mutating func fire(_ key: CallLayerTimer) {
        switch key {
        case .transaction(let id, let timer):
            run(id, transactions.timerFired(timer, on: id))
        case .answer(let leg):
            retransmitAnswer(on: leg)
        case .application(let call, let timer):
            timersOfCall[call]?.remove(timer)
            effects.append(.event(.timer(call: call, timer: timer)))
        }
    }

    mutating func schedule(_ key: CallLayerTimer, after delay: Duration) {
        wheel.schedule(key, at: now &+ delay.nanoseconds)
    }

    /// Starts (or restarts) an application timer of `call`.
    public mutating func startTimer(call: Int, timer: Int, after delay: Duration) {
        timersOfCall[call, default: []].insert(timer)
        schedule(.application(call: call, timer: timer), after: delay)
    }

    public mutating func cancelTimer(call: Int, timer: Int) {
        timersOfCall[call]?.remove(timer)
        wheel.cancel(.application(call: call, timer: timer))
    }

    // MARK: - From the network

    /// A message from the transport (after the border let it through).
    public mutating func receive(_ message: SIPMessage, from source: SIPSource, now: Int64) {
        advance(to: now)
        switch transactions.receive(message) {
        case .matched(let id, let actions):
            run(id, actions)
        case .newRequest(let id):
            guard case .request(let request) = message else { return }
            newRequest(request, id: id, source: source)
        case .ackForTransactionUser:
            guard case .request(let ack) = message else { return }
            acknowledged(ack)
        case .unmatchedResponse:
            // A 2xx retransmitted after its INVITE transaction ended: the dialog's owner ACKs it again.
            guard case .response(let response) = message, (200..<300).contains(response.statusCode),
                let callID = (try? response.headers.callID()) ?? nil, let leg = legsByCallID[callID],
                CSeqKey(response.headers)?.method == .invite
            else { return }
            effects.append(.event(.response(leg, response, nil, .dialogSetup)))
        case .unmatchable:
            return
        }
    }

    /// The transport could not send a message of this transaction.
    public mutating func transportFailed(_ id: TransactionID, now: Int64) {
        advance(to: now)
        run(id, transactions.transportError(on: id))
    }

    private mutating func newRequest(_ request: SIPRequest, id: TransactionID, source: SIPSource) {
        if request.method == .cancel { return cancelReceived(request, id: id, source: source) }
        let toTag = ((try? request.headers.to()) ?? nil)?.tag
        guard toTag != nil else {
            effects.append(.event(.newRequest(request, id, source)))
            return
        }
        guard let callID = (try? request.headers.callID()) ?? nil, let leg = legsByCallID[callID] else {
            answer(request, id: id, source: source, status: 481, reason: "Call/Transaction Does Not Exist")
            return
        }
        guard serve(request, id: id, source: source, leg: leg) else { return }
        effects.append(.event(.inDialogRequest(leg, request, id)))
    }

    private mutating func cancelReceived(_ cancel: SIPRequest, id: TransactionID, source: SIPSource) {
        guard let inviteID = transactions.inviteTransaction(cancelledBy: cancel) else {
            answer(cancel, id: id, source: source, status: 481, reason: "Call/Transaction Does Not Exist")
            return
        }
        answer(cancel, id: id, source: source, status: 200, reason: "OK")
        guard !isAnswered(inviteID), let record = servers[inviteID] else { return }
        if record.initialInvite, let leg = record.leg {
            effects.append(.event(.cancelled(leg, invite: inviteID)))
        } else if let invite = transactions[inviteID]?.request {
            respond(InviteServerTransaction.response(487, "Request Terminated", to: invite, toTag: makeTag()), on: inviteID)
        }
    }

    /// The ACK of a 2xx (it has no transaction of its own, §17.2.3).
    private mutating func acknowledged(_ ack: SIPRequest) {
        guard let callID = (try? ack.headers.callID()) ?? nil, let leg = legsByCallID[callID] else { return }
        if let answer = legs[leg]?.answer, answer.cseq == CSeqKey(ack.headers)?.number {
            legs[leg]?.answer = nil
            wheel.cancel(.answer(leg))
        }
        effects.append(.event(.ack(leg, ack)))
    }

    // MARK: - Transactions

    /// Carries out a transaction's actions.
    mutating func run(_ id: TransactionID, _ actions: [TransactionAction]) {
        for action in actions {
            switch action {
            case .send(let message):
                if id.side == .server {
                    if let source = servers[id]?.source { effects.append(.send(message, .source(source), id)) }
                } else if let destination = clients[id]?.destination {
                    effects.append(.send(message, destination, id))
                }
            case .startTimer(let timer, let delay):
                schedule(.transaction(id, timer), after: delay)
            case .cancelTimer(let timer):
                wheel.cancel(.transaction(id, timer))
            case .deliver(let message):
                switch message {
                case .request(let request):
                    // The request that started a server transaction was handed up already; after a 2xx the INVITE
                    // server transaction passes the ACK up (RFC 6026 Accepted).
                    if request.method == .ack { acknowledged(request) }
                case .response(let response):
                    clientResponse(response, id: id)
                }
            case .timedOut, .transportFailed:
                guard let record = clients[id], !record.abandoned, record.purpose != .layer else { continue }
                effects.append(.event(.requestFailed(record.leg, id, record.purpose, action == .timedOut ? .timeout : .transport)))
            case .terminated:
                forget(id)
            }
        }
    }

    private mutating func forget(_ id: TransactionID) {
        for timer in TransactionTimer.allCases { wheel.cancel(.transaction(id, timer)) }
        if let record = servers.removeValue(forKey: id), let leg = record.leg {
            if let cseq = record.cseq, legs[leg]?.unanswered[cseq] == id { legs[leg]?.unanswered[cseq] = nil }
            if legs[leg]?.initialInvite == id { legs[leg]?.initialInvite = nil }
        }
        if let record = clients.removeValue(forKey: id), let leg = record.leg {
            legs[leg]?.invites.remove(id)
        }
    }

    private mutating func clientResponse(_ response: SIPResponse, id: TransactionID) {
        guard var record = clients[id] else { return }
        let status = response.statusCode
        if record.abandoned {
            if status > 100, status < 200, record.cancelWhenProvisional {
                record.cancelWhenProvisional = false
                clients[id] = record
                sendCancel(for: id)
            } else if (200..<300).contains(status), record.purpose == .dialogSetup || record.purpose == .inDialog {
                closeLateAnswer(response, id: id, hangUp: !record.lateAnswerClosed)
                clients[id]?.lateAnswerClosed = true
            }
            return
        }
        guard record.purpose != .layer else { return }
        effects.append(.event(.response(record.leg, response, id, record.purpose)))
    }

    /// A 2xx to an INVITE nobody waits for any more (cancelled, timed out, or its call ended): ACK it and, the first
    /// time, send BYE, so the far end does not keep a call nobody is on.
    private mutating func closeLateAnswer(_ response: SIPResponse, id: TransactionID, hangUp: Bool) {
        guard case .inviteClient(let transaction)? = transactions[id], let destination = clients[id]?.destination else { return }
        let invite = transaction.request
        var headers = SIPHeaders()
        for field in invite.headers where field.name == .from || field.name == .callID || field.name == .maxForwards { headers.append(field) }
        for field in response.headers where field.name == .to { headers.append(field) }
        let routes = ((try? response.headers.recordRoute()) ?? []).reversed()
        for route in routes { headers.append(.route, route.description) }
        let target = Self.firstContact(response.headers) ?? invite.uri
        let number = ((try? invite.headers.cseq()) ?? nil)?.sequenceNumber ?? 1
        var ack = SIPRequest(method: .ack, uri: target, headers: headers)
        ack.headers.append(.cseq, "\(number) ACK")
        ack.headers.append(.contentLength, "0")
        send(ack, on: nil, to: destination, purpose: .layer)
        guard hangUp else { return }
        var bye = SIPRequest(method: .bye, uri: target, headers: headers)
        bye.headers.append(.cseq, "\(number &+ 1) BYE")
        bye.headers.append(.contentLength, "0")
        send(bye, on: nil, to: destination, purpose: .layer)
    }

    static func firstContact(_ headers: SIPHeaders) -> SIPURI? {
        guard case .addresses(let addresses)? = try? headers.contacts() else { return nil }
        return addresses.first?.uri
    }

    // MARK: - 2xx retransmission

    private mutating func retransmitAnswer(on leg: LegReference) {
        guard var answer = legs[leg]?.answer else { return }
        if now >= answer.deadline {
            legs[leg]?.answer = nil
            effects.append(.event(.answerUnacknowledged(leg)))
            return
        }
        effects.append(.send(.response(answer.response), .source(answer.source), nil))
        answer.interval = min(answer.interval * 2, configuration.timers.t2)
        legs[leg]?.answer = answer
        // The last wait ends at the deadline, where the missing ACK is reported.
        wheel.schedule(.answer(leg), at: min(now &+ answer.interval.nanoseconds, answer.deadline))
    }
}
