public import Foundation
public import Logging
internal import Metrics
public import NIOCore
public import TroncalProtocol
internal import TroncalRuntime
public import TroncalSIP
import Synchronization

/// The SBC's call handling: the shell around the pure `B2BUACall` machines and the SIP transaction layer.
///
/// Every message the border lets through comes here, on the event loop of its socket. It is matched to a
/// transaction (absorbing retransmissions), then to a call by Call-ID, and handed to that call's machine while
/// a single lock is held, so that the messages of one dialog are handled strictly in arrival order. What the
/// machines ask for is collected and done after the lock is released: SIP messages out through the transport,
/// timers on the event loop, and, in tasks, the routing question, the media relay and the call summary.
///
/// New calls: the source address names the customer (`sbc.customers`); an unknown source gets 403 or nothing
/// (`sip.refusedSources`); a customer with credentials must answer a 407 digest challenge (MD5 or SHA-256), and
/// every failure gets the same 403 whether the user exists or not. Concurrent calls are limited per customer and
/// per SBC.
public final class CallEngine: Sendable {
    public struct Configuration: Sendable {
        /// The address written into Via, Contact and SDP.
        public var advertisedAddress: String
        public var site: String
        public var instance: String
        public var realm: String
        /// Offered in this order in a 407.
        public var digestAlgorithms: [DigestAlgorithm]
        public var maximumCalls: Int
        public var maximumCallsPerCustomer: Int
        public var maximumCallDuration: Duration
        public var refuseUnknownSources: Bool
        /// SIP transactions held at once (`sbc.maximumTransactions`).
        public var maximumTransactions: Int = 262_144
        public var timers: TransactionTimers

        public init(
            advertisedAddress: String, site: String, instance: String, realm: String = "troncal",
            digestAlgorithms: [DigestAlgorithm] = [.sha256, .md5], maximumCalls: Int = 10000,
            maximumCallsPerCustomer: Int = 100, maximumCallDuration: Duration = .seconds(14400), refuseUnknownSources: Bool = false,
            timers: TransactionTimers = TransactionTimers()
        ) {
            self.advertisedAddress = advertisedAddress
            self.site = site
            self.instance = instance
            self.realm = realm
            self.digestAlgorithms = digestAlgorithms
            self.maximumCalls = maximumCalls
            self.maximumCallsPerCustomer = maximumCallsPerCustomer
            self.maximumCallDuration = maximumCallDuration
            self.refuseUnknownSources = refuseUnknownSources
            self.timers = timers
        }
    }

    let configuration: Configuration
    let customers: CustomerDirectory
    /// Carriers allowed to send calls to the operator's DIDs, as customers of their own (no credentials).
    let carriers: CustomerDirectory
    let router: any CallRouter
    let sink: any CallSummarySink
    let relay: MediaRelay
    let frontDoor: SIPFrontDoor
    let logger: Logger
    let loop: any EventLoop
    let authenticator: DigestAuthenticator
    private let transportBox = TransportReference()
    private let state: Mutex<EngineState>
    private let activeCalls = Gauge(label: "troncal_sbc_calls_active")
    private let callsStarted = Counter(label: "troncal_sbc_calls_total")

    public init(
        configuration: Configuration, customers: CustomerDirectory, carriers: CustomerDirectory = CustomerDirectory([]), router: any CallRouter, sink: any CallSummarySink, relay: MediaRelay,
        frontDoor: SIPFrontDoor, logger: Logger, loop: any EventLoop
    ) {
        self.configuration = configuration
        self.state = Mutex(EngineState(transactions: TransactionTable(capacity: configuration.maximumTransactions)))
        self.customers = customers
        self.carriers = carriers
        self.router = router
        self.sink = sink
        self.relay = relay
        self.frontDoor = frontDoor
        self.logger = logger
        self.loop = loop
        var secret = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in secret.indices { secret[index] = UInt8.random(in: 0...255, using: &generator) }
        self.authenticator = DigestAuthenticator(realm: configuration.realm, nonces: DigestNonceAuthority(secret: secret)!, algorithms: configuration.digestAlgorithms)
    }

    /// Connects the engine to the transport it answers through (set once, before the transport runs).
    public func attach(_ transport: SIPTransport) { transportBox.transport = transport }

    var transport: SIPTransport? { transportBox.transport }

    /// Calls in progress.
    public var callCount: Int { state.withLock { $0.calls.count } }

    // MARK: - Inbound

    /// A message the border let through.
    public func receive(_ inbound: SIPInbound) {
        withCore { core in
            core.receive(inbound)
        }
    }

    func timerFired(_ key: TimerKey, token: UInt64) {
        withCore { core in
            guard core.state.timerTokens[key] == token else { return }
            core.state.timerTokens[key] = nil
            core.timerFired(key)
        }
    }

    func callEvent(_ number: Int, _ event: B2BUACall.Event) {
        withCore { core in
            core.callEvent(number, event)
        }
    }

    func relayOpened(_ number: Int, _ session: MediaRelaySession?, error: String?) {
        withCore { core in
            core.relayOpened(number, session, error: error)
        }
    }

    func transportFailed(_ id: TransactionID) {
        withCore { core in
            core.runTransaction(id, core.state.transactions.transportError(on: id))
        }
    }

    /// Sends a SIP OPTIONS to a trunk for the routing core and waits for its final answer (or `timeout`).
    public func probe(host: String, port: Int, transport: SIPTransportProtocol, timeout: Duration) async -> TrunkProbeResult {
        let clock = ContinuousClock()
        let started = clock.now
        let outcome: ProbeOutcome = await withCheckedContinuation { continuation in
            withCore { core in core.startProbe(host: host, port: port, transport: transport, timeout: timeout, continuation) }
        }
        let elapsed = clock.now - started
        let milliseconds = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        switch outcome {
        case .answered(let status): return TrunkProbeResult(status: status, roundTripMilliseconds: milliseconds, failure: nil)
        case .failed(let reason): return TrunkProbeResult(status: nil, roundTripMilliseconds: nil, failure: reason)
        }
    }

    /// Runs one step under the lock, moving the state into the step and back (no copy), then performs the effects.
    private func withCore(_ body: (inout Core) -> Void) {
        let effects = state.withLock { state in
            var core = Core(engine: self, state: EngineState())
            swap(&core.state, &state)
            body(&core)
            swap(&core.state, &state)
            return core.effects
        }
        perform(effects)
    }

    // MARK: - Effects

    enum Destination: Sendable {
        case address(host: String, port: Int, transport: SIPTransportProtocol)
        case source(SIPSource)
    }

    enum Effect: Sendable {
        case respond(SIPResponse, SIPSource)
        case send(SIPMessage, Destination, TransactionID?)
        case schedule(TimerKey, UInt64, Duration)
        case task(@Sendable () async -> Void)
    }

    private func perform(_ effects: [Effect]) {
        guard let transport else { return }
        for effect in effects {
            switch effect {
            case .respond(let response, let source):
                transport.respond(response, to: source)
            case .send(let message, let destination, let transaction):
                let failed: @Sendable (any Error) -> Void = { [weak self] error in
                    self?.logger.info("SIP message could not be sent", metadata: ["reason": "\(error)"])
                    if let transaction { self?.transportFailed(transaction) }
                }
                switch destination {
                case .address(let host, let port, let kind):
                    transport.sendWithoutWaiting(message, to: host, port: port, transport: kind, onFailure: failed)
                case .source(let source):
                    transport.send(message, over: source, onFailure: failed)
                }
            case .schedule(let key, let token, let delay):
                loop.scheduleTask(in: .nanoseconds(Int64(delay.components.seconds) * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000)) {
                    [weak self] in self?.timerFired(key, token: token)
                }
            case .task(let work):
                Task { await work() }
            }
        }
    }

    fileprivate func noteCallStarted() {
        callsStarted.increment()
    }

    fileprivate func noteActive(_ count: Int) { activeCalls.record(count) }
}

enum ProbeOutcome: Sendable {
    case answered(Int)
    case failed(String)
}

enum TimerKey: Hashable, Sendable {
    /// A trunk probe's own deadline.
    case probe(TransactionID)
    case transaction(TransactionID, TransactionTimer)
    case call(Int, B2BUACall.Timer)
    /// Retransmission of the 2xx to the caller's INVITE until its ACK (RFC 3261 §13.3.1.4), unreliable transports.
    case answerRetransmit(Int)
}

/// Who a transaction belongs to.
enum TransactionOwner: Hashable, Sendable {
    /// The caller's initial INVITE.
    case callerInvite(Int)
    /// A request from the caller inside its dialog.
    case callerRequest(Int)
    /// A request from the callee inside its dialog.
    case calleeRequest(Int)
    /// An INVITE to a target.
    case calleeInvite(Int)
    /// A request the call sent in the callee's dialog (BYE, re-INVITE…) or a CANCEL.
    case calleeDialog(Int)
    case calleeCancel(Int)
    /// A request the call sent in the caller's dialog.
    case callerDialog(Int)
    /// An OPTIONS probe of a trunk for the routing core.
    case probe
}

struct CallSlot: Sendable {
    var call: B2BUACall?
    let invite: SIPRequest
    let source: SIPSource
    let inviteTransaction: TransactionID
    let customer: String
    let callerCallID: String
    let calleeCallID: String
    let fromCarrier: Bool
    var relay: MediaRelaySession?
    var currentAttempt: TransactionID?
    var currentTarget: RouteTarget?
    /// INVITEs to CANCEL as soon as they get a provisional answer (a CANCEL may not go before one, §9.1).
    /// Server transactions of in-dialog requests, by "CSeq-number method", per side.
    var callerServer: [String: TransactionID] = [:]
    var calleeServer: [String: TransactionID] = [:]
    /// The 2xx to the caller's INVITE, retransmitted until the ACK on UDP.
    var answer: SIPResponse?
    var answerInterval: Duration = .zero
    var answerDeadline: Date?
    var cancelled = false
}

struct EngineState: Sendable {
    var transactions: TransactionTable

    init(transactions: TransactionTable = TransactionTable(capacity: 0)) {
        self.transactions = transactions
    }
    var serverSources: [TransactionID: SIPSource] = [:]
    var clientDestinations: [TransactionID: CallEngine.Destination] = [:]
    var owners: [TransactionID: TransactionOwner] = [:]
    var calls: [Int: CallSlot] = [:]
    /// Both Call-IDs of each call: the caller's and the callee leg's.
    var callIDs: [String: (number: Int, leg: B2BUACall.Leg)] = [:]
    var nextCall = 1
    var callsPerCustomer: [String: Int] = [:]
    var timerTokens: [TimerKey: UInt64] = [:]
    var nextToken: UInt64 = 1
    var nonceCounts = DigestNonceCountTracker()
    /// INVITEs to CANCEL as soon as they get a provisional answer (a CANCEL may not go before one, §9.1), with
    /// their call.
    var pendingCancels: [TransactionID: Int] = [:]
    /// Trunk probes waiting for their answer.
    var probes: [TransactionID: CheckedContinuation<ProbeOutcome, Never>] = [:]
}

/// One locked step of the engine: reads and changes the state, collects effects.
struct Core {
    let engine: CallEngine
    var state: EngineState
    var effects: [CallEngine.Effect] = []

    init(engine: CallEngine, state: EngineState) {
        self.engine = engine
        self.state = state
    }

    var configuration: CallEngine.Configuration { engine.configuration }
    var logger: Logger { engine.logger }

    // MARK: Timers

    mutating func startTimer(_ key: TimerKey, _ delay: Duration) {
        let token = state.nextToken
        state.nextToken &+= 1
        state.timerTokens[key] = token
        effects.append(.schedule(key, token, delay))
    }

    mutating func cancelTimer(_ key: TimerKey) { state.timerTokens[key] = nil }

    mutating func timerFired(_ key: TimerKey) {
        switch key {
        case .transaction(let id, let timer):
            runTransaction(id, state.transactions.timerFired(timer, on: id))
        case .call(let number, let timer):
            callEvent(number, .timerFired(timer))
        case .probe(let id):
            state.probes.removeValue(forKey: id)?.resume(returning: .failed("timeout"))
        case .answerRetransmit(let number):
            guard var slot = state.calls[number], let answer = slot.answer, let deadline = slot.answerDeadline else { return }
            if Date() >= deadline {
                // No ACK in 64·T1: the caller is gone. Hang up the call (RFC 3261 §13.3.1.4).
                slot.answer = nil
                state.calls[number] = slot
                logger.info("no ACK for the answer: hanging up", metadata: ["call-id": "\(slot.callerCallID)", "customer": "\(slot.customer)"])
                callEvent(number, .timerFired(.sessionExpiry))
                return
            }
            effects.append(.respond(answer, slot.source))
            let t2 = configuration.timers.t2
            slot.answerInterval = min(slot.answerInterval * 2, t2)
            state.calls[number] = slot
            startTimer(.answerRetransmit(number), slot.answerInterval)
        }
    }

    // MARK: Transactions

    mutating func receive(_ inbound: SIPInbound) {
        let message = inbound.message
        switch state.transactions.receive(message) {
        case .matched(let id, let actions):
            runTransaction(id, actions)
        case .newRequest(let id):
            guard case .request(let request) = message else { return }
            if request.method == .invite, !configuration.refuseUnknownSources, ((try? request.headers.to()) ?? nil)?.tag == nil,
                engine.customers.customers(at: inbound.source.remoteIP).isEmpty, engine.carriers.customers(at: inbound.source.remoteIP).isEmpty
            {
                // Not a customer, and told to say nothing: not even 100 Trying.
                Counter(label: "troncal_sbc_calls_refused_total", dimensions: [("reason", "unknown-source")]).increment()
                logger.info("call from an unknown source dropped", metadata: ["source": "\(inbound.source)"])
                return
            }
            guard let transaction = SIPTransaction(serving: request, reliable: inbound.source.transport.isReliable, timers: configuration.timers)
            else { return }
            state.serverSources[id] = inbound.source
            switch state.transactions.start(transaction) {
            case .started(let id, let actions):
                runTransaction(id, actions, source: inbound.source)
            case .full:
                Counter(label: "troncal_sbc_overload_total").increment()
                effects.append(.respond(InviteServerTransaction.response(503, "Service Unavailable", to: request, toTag: Self.tag()), inbound.source))
                state.serverSources[id] = nil
            case .duplicate, .unmatchable:
                state.serverSources[id] = nil
            }
        case .ackForTransactionUser:
            guard case .request(let ack) = message, let callID = try? ack.headers.callID(), let (number, leg) = state.callIDs[callID] else {
                return
            }
            if leg == .caller, var slot = state.calls[number], slot.answer != nil {
                slot.answer = nil
                state.calls[number] = slot
                cancelTimer(.answerRetransmit(number))
            }
            callEvent(number, leg == .caller ? .callerRequest(ack) : .calleeRequest(ack))
        case .unmatchedResponse:
            // A 2xx retransmission after the INVITE transaction ended: the call ACKs it again.
            guard case .response(let response) = message, (200..<300).contains(response.statusCode),
                let callID = try? response.headers.callID(), let (number, leg) = state.callIDs[callID], leg == .callee
            else { return }
            callEvent(number, .calleeResponse(response))
        case .unmatchable:
            return
        }
    }

    /// Carries out a transaction's actions; `source` is the sender of a new server transaction's request.
    mutating func runTransaction(_ id: TransactionID, _ actions: [TransactionAction], source: SIPSource? = nil) {
        for action in actions {
            switch action {
            case .send(let message):
                if id.side == .server {
                    if case .response(let response) = message, let source = state.serverSources[id] {
                        effects.append(.respond(response, source))
                    }
                } else if let destination = state.clientDestinations[id] {
                    effects.append(.send(message, destination, id))
                }
            case .startTimer(let timer, let delay):
                startTimer(.transaction(id, timer), delay)
            case .cancelTimer(let timer):
                cancelTimer(.transaction(id, timer))
            case .deliver(let message):
                deliver(message, on: id, source: source)
            case .timedOut, .transportFailed:
                if case .calleeInvite(let number)? = state.owners[id], state.calls[number]?.currentAttempt == id {
                    callEvent(number, .attemptTransportFailed)
                }
                state.probes.removeValue(forKey: id)?.resume(returning: .failed(action == .timedOut ? "timeout" : "transport error"))
            case .terminated:
                for timer in TransactionTimer.allCases { state.timerTokens[.transaction(id, timer)] = nil }
                state.serverSources[id] = nil
                state.clientDestinations[id] = nil
                state.owners[id] = nil
                state.pendingCancels[id] = nil
                state.probes.removeValue(forKey: id)?.resume(returning: .failed("no answer"))
            }
        }
    }

    /// A message a transaction passes up.
    mutating func deliver(_ message: SIPMessage, on id: TransactionID, source: SIPSource?) {
        switch message {
        case .request(let request):
            guard let source = source ?? state.serverSources[id] else { return }
            newRequest(request, on: id, source: source)
        case .response(let response):
            guard let owner = state.owners[id] else { return }
            switch owner {
            case .calleeInvite(let number):
                if state.calls[number]?.currentAttempt == id {
                    callEvent(number, .calleeResponse(response))
                } else {
                    staleAttemptAnswered(response, on: id, call: number)
                }
                if response.statusCode > 100, response.statusCode < 200, state.pendingCancels[id] != nil {
                    sendCancel(for: id, call: number)
                }
            case .calleeDialog(let number):
                callEvent(number, .calleeDialogResponse(response))
            case .callerDialog(let number):
                callEvent(number, .callerResponse(response))
            case .probe:
                if response.statusCode >= 200 { state.probes.removeValue(forKey: id)?.resume(returning: .answered(response.statusCode)) }
            case .calleeCancel, .callerInvite, .callerRequest, .calleeRequest:
                return
            }
        }
    }

    // MARK: Requests

    mutating func newRequest(_ request: SIPRequest, on id: TransactionID, source: SIPSource) {
        let callID = (try? request.headers.callID()) ?? nil
        switch request.method {
        case .cancel:
            guard let inviteID = state.transactions.inviteTransaction(cancelledBy: request),
                case .callerInvite(let number)? = state.owners[inviteID]
            else {
                return answer(request, on: id, 481, "Call/Transaction Does Not Exist")
            }
            answer(request, on: id, 200, "OK")
            guard var slot = state.calls[number] else { return }
            if slot.call == nil {
                // Still opening the relay: the call ends before it starts.
                slot.cancelled = true
                state.calls[number] = slot
                respondOnInvite(number, InviteServerTransaction.response(487, "Request Terminated", to: slot.invite, toTag: Self.tag()))
                return
            }
            callEvent(number, .callerCancel)
        case .invite where ((try? request.headers.to()) ?? nil)?.tag == nil:
            newCall(request, on: id, source: source)
        case .options where ((try? request.headers.to()) ?? nil)?.tag == nil:
            var ok = InviteServerTransaction.response(200, "OK", to: request, toTag: Self.tag())
            ok.headers.insert(SIPHeaderField(.allow, value: "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO"), at: ok.headers.count - 1)
            ok.headers.insert(SIPHeaderField(.accept, value: "application/sdp"), at: ok.headers.count - 1)
            respond(ok, on: id)
        default:
            guard let callID, let (number, leg) = state.callIDs[callID], var slot = state.calls[number], slot.call != nil else {
                if ((try? request.headers.to()) ?? nil)?.tag == nil {
                    return answer(request, on: id, request.method == .register ? 405 : 501, request.method == .register ? "Method Not Allowed" : "Not Implemented")
                }
                return answer(request, on: id, 481, "Call/Transaction Does Not Exist")
            }
            let key = Self.cseqKey(request.headers)
            if leg == .caller {
                slot.callerServer[key] = id
                state.owners[id] = .callerRequest(number)
            } else {
                slot.calleeServer[key] = id
                state.owners[id] = .calleeRequest(number)
            }
            state.calls[number] = slot
            let handled = callEvent(number, leg == .caller ? .callerRequest(request) : .calleeRequest(request))
            // A request the call did nothing with (one outside its state) must still get a final answer.
            if handled == 0, !answeredFinally(id) {
                answer(request, on: id, 481, "Call/Transaction Does Not Exist")
            }
        }
    }

    func answeredFinally(_ id: TransactionID) -> Bool {
        switch state.transactions[id] {
        case .inviteServer(let transaction)?: transaction.state != .proceeding
        case .nonInviteServer(let transaction)?: transaction.state != .trying && transaction.state != .proceeding
        default: true
        }
    }

    mutating func answer(_ request: SIPRequest, on id: TransactionID, _ status: Int, _ reason: String) {
        respond(InviteServerTransaction.response(status, reason, to: request, toTag: Self.tag()), on: id)
    }

    mutating func respond(_ response: SIPResponse, on id: TransactionID) {
        runTransaction(id, state.transactions.send(response, on: id))
    }

    mutating func respondOnInvite(_ number: Int, _ response: SIPResponse) {
        guard let slot = state.calls[number] else { return }
        respond(response, on: slot.inviteTransaction)
        if response.statusCode >= 200 { finishSlot(number) }
    }

    // MARK: New calls

    mutating func newCall(_ invite: SIPRequest, on id: TransactionID, source: SIPSource) {
        let ip = source.remoteIP
        // A carrier's own network beats a broader customer network (say a roaming customer on 0.0.0.0/0).
        let carrierLength = engine.carriers.bestPrefixLength(at: ip) ?? -1
        let carrier = carrierLength > (engine.customers.bestPrefixLength(at: ip) ?? -1) ? engine.carriers.customers(at: ip).first : nil
        let candidates = carrier == nil ? engine.customers.customers(at: ip) : []
        guard let first = candidates.first ?? carrier else {
            Counter(label: "troncal_sbc_calls_refused_total", dimensions: [("reason", "unknown-source")]).increment()
            logger.info("call from an unknown source refused", metadata: ["source": "\(source)"])
            return answer(invite, on: id, 403, "Forbidden")
        }
        var customer = first
        if carrier != nil {
            engine.frontDoor.recordAuthenticated(source, account: "carrier:\(first.id)")
        } else if !first.username.isEmpty {
            guard let authenticated = authenticate(invite, on: id, source: source, candidates: candidates) else { return }
            customer = authenticated
        } else {
            // A trunk known by its address has proven who it is as far as the border is concerned: it earns the
            // higher request limit, so that a busy customer trunk is not taken for a flood.
            engine.frontDoor.recordAuthenticated(source, account: customer.id)
        }
        let limit = customer.maximumConcurrentCalls > 0 ? customer.maximumConcurrentCalls : configuration.maximumCallsPerCustomer
        if state.calls.count >= configuration.maximumCalls {
            Counter(label: "troncal_sbc_calls_refused_total", dimensions: [("reason", "sbc-full")]).increment()
            return answer(invite, on: id, 503, "Service Unavailable")
        }
        if state.callsPerCustomer[customer.id, default: 0] >= limit {
            Counter(label: "troncal_sbc_calls_refused_total", dimensions: [("reason", "customer-limit")]).increment()
            logger.info("call refused: customer at its concurrent call limit", metadata: ["customer": "\(customer.id)", "limit": "\(limit)"])
            return answer(invite, on: id, 403, "Forbidden")
        }
        guard let callerCallID = try? invite.headers.callID() else { return answer(invite, on: id, 400, "Bad Request") }
        if state.callIDs[callerCallID] != nil {
            // A second INVITE of a call already here (new branch, same Call-ID and no To tag): a loop or a fork.
            return answer(invite, on: id, 482, "Loop Detected")
        }
        let number = state.nextCall
        state.nextCall += 1
        let calleeCallID = Self.identifier(24)
        state.calls[number] = CallSlot(
            invite: invite, source: source, inviteTransaction: id, customer: customer.id, callerCallID: callerCallID, calleeCallID: calleeCallID,
            fromCarrier: carrier != nil)
        state.callIDs[callerCallID] = (number, .caller)
        state.callIDs[calleeCallID] = (number, .callee)
        state.owners[id] = .callerInvite(number)
        state.callsPerCustomer[customer.id, default: 0] += 1
        engine.noteCallStarted()
        engine.noteActive(state.calls.count)
        let relay = engine.relay
        let engine = engine
        effects.append(.task {
            do {
                let session = try await relay.openSession()
                engine.relayOpened(number, session, error: nil)
            } catch {
                engine.relayOpened(number, nil, error: "\(error)")
            }
        })
    }

    /// Digest authentication of a new call; nil when it was answered (407 challenge or 403).
    mutating func authenticate(_ invite: SIPRequest, on id: TransactionID, source: SIPSource, candidates: [CustomerSettings]) -> CustomerSettings? {
        let now = Date()
        let authenticator = engine.authenticator
        let challenge: (Bool) -> SIPResponse = { stale in
            var response = InviteServerTransaction.response(407, "Proxy Authentication Required", to: invite, toTag: Core.tag())
            for challenge in authenticator.challenges(now: now, stale: stale) {
                response.headers.insert(SIPHeaderField(.proxyAuthenticate, value: challenge.description), at: response.headers.count - 1)
            }
            return response
        }
        let header = invite.headers.first(.proxyAuthorization).flatMap { try? DigestCredentials(headerValue: $0.valueString) }
        guard let credentials = header, credentials.realm == configuration.realm else {
            respond(challenge(false), on: id)
            return nil
        }
        // The same work and the same answer whether or not the user exists: no extension enumeration.
        let customer = candidates.first { $0.username == credentials.username && !$0.username.isEmpty }
        // The digest-uri must name this request's host and port; its user part may be left out, as sipp and some
        // phones do (the nonce count still stops any replay).
        var requestURI = invite.uri
        if let digestURI = SIPURI(credentials.uri), digestURI.user == nil, digestURI.host == invite.uri.host, digestURI.port == invite.uri.port {
            requestURI = digestURI
        }
        let verification = engine.authenticator.verify(
            credentials, method: "INVITE", requestURI: requestURI, username: customer?.username ?? credentials.username,
            secret: .password(customer?.password ?? Self.identifier(24)), now: now, nonceCounts: &state.nonceCounts)
        switch verification {
        case .authenticated where customer != nil:
            guard let customer else { return nil }
            engine.frontDoor.recordAuthenticated(source, account: customer.id)
            return customer
        case .stale:
            respond(challenge(true), on: id)
            return nil
        default:
            Counter(label: "troncal_sbc_authentication_failures_total").increment()
            logger.info("digest authentication failed", metadata: ["source": "\(source)", "reason": "\(verification)"])
            engine.frontDoor.recordAuthenticationFailure(source)
            answer(invite, on: id, 403, "Forbidden")
            return nil
        }
    }

    mutating func relayOpened(_ number: Int, _ session: MediaRelaySession?, error: String?) {
        guard var slot = state.calls[number] else {
            if let session { let relay = engine.relay; effects.append(.task { await relay.release(session) }) }
            return
        }
        guard let session, !slot.cancelled else {
            if let session { let relay = engine.relay; effects.append(.task { await relay.release(session) }) }
            if !slot.cancelled {
                logger.warning("no media relay ports: call refused", metadata: ["call-id": "\(slot.callerCallID)", "reason": "\(error ?? "")"])
                respondOnInvite(number, InviteServerTransaction.response(503, "Service Unavailable", to: slot.invite, toTag: Self.tag()))
            }
            return
        }
        slot.relay = session
        let transport = slot.source.transport
        let port = engine.transport?.port(of: transport) ?? 5060
        let address = configuration.advertisedAddress
        let host = address.contains(":") ? "[\(address)]" : address
        let contact = transport == .udp ? "\(host):\(port)" : "\(host):\(port);transport=\(transport.rawValue)"
        let udpPort = engine.transport?.port(of: .udp) ?? 5060
        var contacts: [String: String] = [:]
        for kind in [SIPTransportProtocol.tcp, .tls] { contacts[kind.rawValue] = "\(host):\(engine.transport?.port(of: kind) ?? 5060)" }
        var callConfiguration = B2BUACall.Configuration(
            customerSideContact: contact, carrierSideContact: "\(host):\(udpPort)", customerSideMediaAddress: address,
            carrierSideMediaAddress: address, relayPorts: (session.callerPort, session.calleePort),
            maximumDuration: configuration.maximumCallDuration)
        callConfiguration.carrierSideContacts = contacts
        var call = B2BUACall(
            invite: slot.invite, customer: slot.customer, site: configuration.site, instance: configuration.instance,
            configuration: callConfiguration,
            callerLocalTag: Self.identifier(12), calleeCallID: slot.calleeCallID, calleeLocalTag: Self.identifier(12),
            summaryID: RandomID.uuidString(), now: Date())
        call.fromCarrier = slot.fromCarrier
        slot.call = call
        state.calls[number] = slot
        var machine = call
        let actions = machine.start()
        state.calls[number]?.call = machine
        perform(actions, call: number)
    }

    // MARK: Calls

    /// Feeds an event to a call's machine; returns how many actions it gave.
    @discardableResult
    mutating func callEvent(_ number: Int, _ event: B2BUACall.Event) -> Int {
        guard var call = state.calls[number]?.call else { return 0 }
        state.calls[number]?.call = nil
        let actions = call.handle(event, now: Date())
        state.calls[number]?.call = call
        perform(actions, call: number)
        return actions.count
    }

    mutating func perform(_ actions: [B2BUACall.Action], call number: Int) {
        for action in actions {
            guard let slot = state.calls[number] else { return }
            switch action {
            case .route(let request):
                let router = engine.router
                let engine = engine
                effects.append(.task {
                    do {
                        engine.callEvent(number, .routed(try await router.route(request)))
                    } catch {
                        engine.callEvent(number, .routingFailed("\(error)"))
                    }
                })
            case .respondToCaller(let response):
                respondToCaller(response, call: number)
            case .sendToCaller(let request):
                sendRequest(request, to: .source(slot.source), owner: .callerDialog(number), via: slot.source.transport)
            case .inviteCallee(let request, let target):
                let kind = SIPTransportProtocol(rawValue: target.transport) ?? .udp
                if let id = sendRequest(request, to: .address(host: target.host, port: target.port, transport: kind), owner: .calleeInvite(number), via: kind) {
                    state.calls[number]?.currentAttempt = id
                    state.calls[number]?.currentTarget = target
                    let router = engine.router
                    let usage = TrunkUsage(event: .seized, carrier: target.carrier, trunk: target.trunk, callID: slot.callerCallID)
                    effects.append(.task { await router.usage(usage) })
                } else {
                    callEvent(number, .attemptTransportFailed)
                }
            case .cancelCallee:
                guard let id = slot.currentAttempt else { continue }
                state.calls[number]?.currentAttempt = nil
                if case .inviteClient(let transaction)? = state.transactions[id] {
                    if transaction.acceptsCancel {
                        sendCancel(for: id, call: number)
                    } else if transaction.state == .calling {
                        state.pendingCancels[id] = number
                    }
                }
            case .sendToCallee(let request, let target):
                let kind = SIPTransportProtocol(rawValue: target.transport) ?? .udp
                sendRequest(request, to: .address(host: target.host, port: target.port, transport: kind), owner: .calleeDialog(number), via: kind)
            case .respondToCallee(let response):
                if let id = state.calls[number]?.calleeServer.removeValue(forKey: Self.cseqKey(response.headers)) {
                    respond(response, on: id)
                }
            case .mediaDestination(let leg, let address, let port):
                slot.relay?.setDestination(leg, host: address, port: port)
            case .mediaCodec(let codec):
                slot.relay?.setCodec(codec)
            case .startTimer(let timer, let delay):
                startTimer(.call(number, timer), delay)
            case .cancelTimer(let timer):
                cancelTimer(.call(number, timer))
            case .renewGrant(let request):
                let router = engine.router
                let engine = engine
                let logger = logger
                effects.append(.task {
                    do {
                        engine.callEvent(number, .grantRenewed(try await router.renew(request)))
                    } catch {
                        logger.warning("billing could not renew the grant: the call ends when it runs out", metadata: [
                            "call-id": "\(request.callID)", "customer": "\(request.customer)", "reason": "\(error)",
                        ])
                        engine.callEvent(number, .grantRenewed(nil))
                    }
                })
            case .reportAttempt(let report):
                let router = engine.router
                effects.append(.task { await router.report(report) })
                logger.info("call attempt", metadata: [
                    "call-id": "\(slot.callerCallID)", "customer": "\(slot.customer)", "carrier": "\(report.carrier)",
                    "result": "\(report.result.rawValue)", "status": "\(report.status.map(String.init) ?? "-")",
                ])
            case .spool(let summary):
                let session = slot.relay
                let sink = engine.sink
                let engine = engine
                effects.append(.task {
                    var summary = summary
                    if let session { summary.streams = await session.streamReports() }
                    await sink.submit(summary)
                    engine.callEvent(number, .summarySpooled)
                })
            case .finished(let finished):
                let alreadySpooled = slot.call?.summaryIsSpooled ?? false
                if let answered = finished.attempts.last(where: { $0.result == .answered }) {
                    let router = engine.router
                    let usage = TrunkUsage(event: .released, carrier: answered.carrier, trunk: answered.trunk, callID: finished.callID)
                    effects.append(.task { await router.usage(usage) })
                }
                let relay = engine.relay
                let session = slot.relay
                let sink = engine.sink
                let logger = logger
                effects.append(.task {
                    var summary = finished
                    if let session {
                        summary.streams = await session.streamReports()
                        await relay.release(session)
                    }
                    logger.info("call ended", metadata: [
                        "call-id": "\(summary.callID)", "customer": "\(summary.customer)", "status": "\(summary.disconnect.status)",
                        "duration-ms": "\(summary.durationMilliseconds)", "attempts": "\(summary.attempts.count)",
                    ])
                    if !alreadySpooled { await sink.submit(summary) }
                })
                state.calls[number]?.relay = nil
                finishSlot(number)
            }
        }
    }

    mutating func respondToCaller(_ response: SIPResponse, call number: Int) {
        guard let slot = state.calls[number] else { return }
        let cseq = (try? response.headers.cseq()) ?? nil
        let inviteCSeq = (try? slot.invite.headers.cseq()) ?? nil
        if let cseq, cseq.method == .invite, cseq.sequenceNumber == inviteCSeq?.sequenceNumber {
            runTransaction(slot.inviteTransaction, state.transactions.send(response, on: slot.inviteTransaction))
            if (200..<300).contains(response.statusCode), !slot.source.transport.isReliable {
                let timers = configuration.timers
                state.calls[number]?.answer = response
                state.calls[number]?.answerInterval = timers.t1
                state.calls[number]?.answerDeadline = Date().addingTimeInterval(Double(timers.transactionTimeout.components.seconds))
                startTimer(.answerRetransmit(number), timers.t1)
            }
            return
        }
        if let id = state.calls[number]?.callerServer.removeValue(forKey: Self.cseqKey(response.headers)) {
            respond(response, on: id)
        }
    }

    /// Sends a request the call made: with our Via, in a client transaction (an ACK goes straight out).
    @discardableResult
    mutating func sendRequest(
        _ request: SIPRequest, to destination: CallEngine.Destination, owner: TransactionOwner, via kind: SIPTransportProtocol
    ) -> TransactionID? {
        var request = request
        let address = configuration.advertisedAddress
        let host = address.contains(":") ? "[\(address)]" : address
        let port = engine.transport?.port(of: kind) ?? 5060
        request.headers.insert(
            SIPHeaderField(.via, value: "SIP/2.0/\(kind.rawValue.uppercased()) \(host):\(port);branch=z9hG4bK\(Self.identifier(16));rport"), at: 0)
        guard let transaction = SIPTransaction(sending: request, reliable: kind.isReliable, timers: configuration.timers) else {
            effects.append(.send(.request(request), destination, nil))
            return nil
        }
        guard let id = transaction.id else { return nil }
        state.clientDestinations[id] = destination
        state.owners[id] = owner
        switch state.transactions.start(transaction) {
        case .started(let id, let actions):
            runTransaction(id, actions)
            return id
        case .full, .duplicate, .unmatchable:
            state.clientDestinations[id] = nil
            state.owners[id] = nil
            logger.warning("request not sent: transaction table full", metadata: ["method": "\(request.method.name)"])
            return nil
        }
    }

    mutating func sendCancel(for id: TransactionID, call number: Int) {
        guard case .inviteClient(let transaction)? = state.transactions[id], transaction.acceptsCancel,
            let destination = state.clientDestinations[id]
        else { return }
        state.pendingCancels[id] = nil
        let cancel = transaction.cancel()
        guard let client = SIPTransaction(sending: cancel, reliable: transaction.reliable, timers: configuration.timers), let cancelID = client.id
        else { return }
        state.clientDestinations[cancelID] = destination
        state.owners[cancelID] = .calleeCancel(number)
        if case .started(let started, let actions) = state.transactions.start(client) { runTransaction(started, actions) }
    }

    /// An answer on an INVITE the call has given up on (it timed out or was cancelled): a late 2xx gets its
    /// ACK and a BYE so the carrier does not keep a call nobody is on.
    mutating func staleAttemptAnswered(_ response: SIPResponse, on id: TransactionID, call number: Int) {
        guard (200..<300).contains(response.statusCode), case .inviteClient(let transaction)? = state.transactions[id],
            let destination = state.clientDestinations[id], state.calls[number]?.currentTarget != nil || state.calls[number] == nil
        else { return }
        let invite = transaction.request
        var headers = SIPHeaders()
        for field in invite.headers where field.name == .from || field.name == .callID || field.name == .maxForwards { headers.append(field) }
        for field in response.headers where field.name == .to { headers.append(field) }
        let target = BareContact.uri(response.headers) ?? invite.uri
        var ack = SIPRequest(method: .ack, uri: target, headers: headers)
        ack.headers.append(.cseq, "1 ACK")
        ack.headers.append(.contentLength, "0")
        var bye = SIPRequest(method: .bye, uri: target, headers: headers)
        bye.headers.append(.cseq, "2 BYE")
        bye.headers.append(.contentLength, "0")
        let kind: SIPTransportProtocol
        if case .address(_, _, let transport) = destination { kind = transport } else { kind = .udp }
        logger.info("late answer from an abandoned attempt: hanging it up", metadata: ["call-id": "\(state.calls[number]?.callerCallID ?? "")"])
        sendRequest(ack, to: destination, owner: .calleeCancel(number), via: kind)
        sendRequest(bye, to: destination, owner: .calleeCancel(number), via: kind)
    }

    mutating func finishSlot(_ number: Int) {
        guard let slot = state.calls.removeValue(forKey: number) else { return }
        state.callIDs[slot.callerCallID] = nil
        state.callIDs[slot.calleeCallID] = nil
        state.callsPerCustomer[slot.customer, default: 1] -= 1
        if state.callsPerCustomer[slot.customer] ?? 0 <= 0 { state.callsPerCustomer[slot.customer] = nil }
        for timer in [B2BUACall.Timer.setup, .duration, .sessionExpiry, .teardown] { state.timerTokens[.call(number, timer)] = nil }
        state.timerTokens[.answerRetransmit(number)] = nil
        if let relay = slot.relay {
            let pool = engine.relay
            effects.append(.task { await pool.release(relay) })
        }
        engine.noteActive(state.calls.count)
    }

    // MARK: Probes

    mutating func startProbe(
        host: String, port: Int, transport: SIPTransportProtocol, timeout: Duration, _ continuation: CheckedContinuation<ProbeOutcome, Never>
    ) {
        let address = configuration.advertisedAddress
        let local = address.contains(":") ? "[\(address)]" : address
        let remote = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        let uri = transport == .udp ? "sip:\(remote):\(port)" : "sip:\(remote):\(port);transport=\(transport.rawValue)"
        var headers = SIPHeaders()
        headers.append(.from, "<sip:probe@\(local)>;tag=\(Self.tag())")
        headers.append(.to, "<\(uri)>")
        headers.append(.callID, Self.identifier(24))
        headers.append(.cseq, "1 OPTIONS")
        headers.append(.maxForwards, "70")
        headers.append(.contentLength, "0")
        guard let target = SIPURI(uri) else { return continuation.resume(returning: .failed("not a SIP address: \(uri)")) }
        let request = SIPRequest(method: .options, uri: target, headers: headers)
        guard let id = sendRequest(request, to: .address(host: host, port: port, transport: transport), owner: .probe, via: transport) else {
            return continuation.resume(returning: .failed("the transaction table is full"))
        }
        state.probes[id] = continuation
        startTimer(.probe(id), timeout)
    }

    // MARK: Helpers

    static func cseqKey(_ headers: SIPHeaders) -> String {
        guard let cseq = (try? headers.cseq()) ?? nil else { return "" }
        return "\(cseq.sequenceNumber) \(cseq.method.name)"
    }

    static func tag() -> String { identifier(10) }

    static func identifier(_ length: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
        var generator = SystemRandomNumberGenerator()
        return String(decoding: (0..<length).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }, as: UTF8.self)
    }
}

enum BareContact {
    static func uri(_ headers: SIPHeaders) -> SIPURI? {
        guard case .addresses(let addresses)? = try? headers.contacts() else { return nil }
        return addresses.first?.uri
    }
}
