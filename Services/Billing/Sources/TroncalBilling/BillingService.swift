public import Foundation
public import Logging
internal import Metrics
public import TroncalCatalog
public import TroncalLink
public import TroncalProtocol
public import TroncalRuntime
public import TroncalStore
public import ServiceLifecycle
import Synchronization

/// The `billing` service: rating, prepaid/postpaid authorisation and call detail records that are never lost.
///
/// Routing asks it to authorise each customer call (`billing.authorize`): it finds the sell rate of the customer's
/// plan for the number, and grants the longest time (up to `billing.grantSeconds`) whose price fits in the balance
/// (plus the credit limit, for postpaid) not already reserved by calls in progress, reserving it in the same
/// transaction. The SBC renews grants (`billing.renew`) and ships each call's summary (`billing.cdr`), which is stored
/// once by id, rated (sell and buy), charged and settled in one transaction, and acknowledged after the commit.
public struct BillingService: TroncalService {
    public static let role = Role.billing
    public static let dependencies: [Role] = []
    public static let migrations: [Migration]? = BillingStore.migrations

    let context: ServiceContext
    public let billing: Billing

    public init(context: ServiceContext) async throws {
        self.context = context
        guard let store = context.store else { throw ConfigError(file: "configuration", key: "store", "billing needs a database") }
        billing = try await Billing(store: BillingStore(store: store), settings: context.config.billing, logger: context.logger)
    }

    /// The watch over SBC runs: the calls of a lost SBC get their CDRs and their reservations back.
    public var services: [any Service] {
        [LostSBCWatch(billing: billing, silence: context.config.billing.sbcSilenceSeconds, logger: context.logger)]
    }

    public func register(_ handlers: inout LinkHandlers) {
        let billing = billing
        handlers.on(AuthorizeRequest.self, from: [.routing]) { request, _ in try await billing.authorize(request) }
        handlers.on(RenewRequest.self, from: [.sbc]) { request, _ in RenewReply(try await billing.renew(request)) }
        handlers.on(CDRSubmission.self, from: [.sbc]) { submission, _ in try await billing.ingest(submission.summary) }
        handlers.on(CDRBatch.self, from: [.sbc]) { batch, _ in CDRBatchAcknowledgement(acknowledgements: try await billing.ingest(batch.summaries)) }
        handlers.on(CallCheckpoints.self, from: [.sbc]) { report, _ in try await billing.record(report) }
        handlers.on(BillingImport.self, from: [.operator]) { part, _ in try await billing.receive(part) }
        handlers.on(BillingExport.self, from: [.operator]) { request, _ in try await billing.export(request) }
        handlers.on(BalanceAdjustment.self, from: [.operator]) { request, peer in try await billing.adjust(request) }
        handlers.on(AccountQuery.self, from: [.operator, .monitor]) { request, _ in try await billing.account(request.customer) }
        handlers.on(CDRQuery.self, from: [.operator]) { query, _ in try await billing.cdrs(query) }
    }
}

/// Billing's state: the store, the rate books in force (swapped whole on import) and the fraud guard's windows.
public final class Billing: Sendable {
    public let store: BillingStore
    let settings: BillingSettings
    let logger: Logger
    let timeZone: TimeZone
    private let books: Mutex<(sell: RateBook, buy: RateBook)>
    /// The generation of each side's book held in `books` (billing_rate_generations).
    private let generations: Mutex<[BillingStore.Side: Int64]>
    private let uploads = UploadAssembler()
    /// One import at a time: two rate imports at once would race for the same generation.
    private let importing = AsyncLock()

    public init(store: BillingStore, settings: BillingSettings, logger: Logger) async throws {
        self.store = store
        self.settings = settings
        self.logger = logger
        timeZone = TimeZone(identifier: settings.timeZone) ?? TimeZone(secondsFromGMT: 0)!
        let (sellGeneration, sellRates) = try await store.loadRatesWithGeneration(.sell)
        let (buyGeneration, buyRates) = try await store.loadRatesWithGeneration(.buy)
        let sell = RateBook(sellRates, timeZone: timeZone)
        let buy = RateBook(buyRates, timeZone: timeZone)
        books = Mutex((sell, buy))
        generations = Mutex([.sell: sellGeneration, .buy: buyGeneration])
        Self.recordBookSize(.sell, sell.count)
        Self.recordBookSize(.buy, buy.count)
        logger.info("rates loaded", metadata: ["sell": "\(sell.count)", "buy": "\(buy.count)"])
    }

    /// `troncal_billing_rates{side}`: the rates in force in this instance (an import through another instance shows
    /// here within 2 s).
    static func recordBookSize(_ side: BillingStore.Side, _ count: Int) {
        Gauge(label: "troncal_billing_rates", dimensions: [("side", side.rawValue)]).record(count)
    }

    var sell: RateBook { books.withLock { $0.sell } }
    var buy: RateBook { books.withLock { $0.buy } }

    static func unavailable(_ what: String, _ error: any Error) -> ProtocolError {
        ProtocolError(.unavailable, "\(what): the billing database failed: \(error)")
    }

    public func authorize(_ request: AuthorizeRequest, now: Date = Date()) async throws -> Authorization {
        let decision: BillingStore.Decision
        do {
            decision = try await store.authorize(request, sell: sell, grantSeconds: settings.grantSeconds, now: now)
        } catch {
            logger.error("authorisation failed", metadata: ["call-id": "\(request.callID)", "customer": "\(request.customer)", "reason": "\(error)"])
            throw Self.unavailable("billing.authorize", error)
        }
        var authorization = decision.authorization
        if authorization.allowed, let customer = decision.customer, let rate = decision.rate, customer.maximumHighCostCallsPerMinute > 0,
            customer.highCostRateMicros > 0, rate.perMinuteMicros >= customer.highCostRateMicros
        {
            // The window is in the store: every billing instance of the site counts the same calls.
            let count: Int
            do {
                count = try await store.recordHighCostCall(customer: customer.customer, callID: request.callID, now: now)
            } catch {
                logger.error("the high-cost call window could not be updated: call refused", metadata: [
                    "call-id": "\(request.callID)", "customer": "\(customer.customer)", "reason": "\(error)",
                ])
                try? await store.release(customer: customer.customer, callID: request.callID)
                throw Self.unavailable("billing.authorize", error)
            }
            if count > customer.maximumHighCostCallsPerMinute {
                let detail = "\(count) calls in a minute to high-cost destinations (limit \(customer.maximumHighCostCallsPerMinute)), last to +\(rate.prefix)"
                await suspend(customer.customer, guard: "high_cost_calls", detail: detail)
                try? await store.release(customer: customer.customer, callID: request.callID)
                authorization = Authorization(allowed: false, status: 403, reason: "the account is suspended: \(detail)")
            }
        }
        Counter(label: "troncal_billing_authorizations_total", dimensions: [("result", authorization.allowed ? "allowed" : "\(authorization.status ?? 403)")])
            .increment()
        if !authorization.allowed {
            logger.info("call not authorised", metadata: [
                "call-id": "\(request.callID)", "customer": "\(request.customer)", "status": "\(authorization.status ?? 0)",
                "reason": "\(authorization.reason ?? "")",
            ])
        }
        return authorization
    }

    public func renew(_ request: RenewRequest, now: Date = Date()) async throws -> Authorization {
        do {
            let authorization = try await store.renew(request, grantSeconds: settings.grantSeconds, now: now)
            Counter(label: "troncal_billing_renewals_total", dimensions: [("result", authorization.allowed ? "allowed" : "refused")]).increment()
            if !authorization.allowed {
                logger.info("grant not renewed", metadata: [
                    "call-id": "\(request.callID)", "customer": "\(request.customer)", "reason": "\(authorization.reason ?? "")",
                ])
            }
            return authorization
        } catch {
            throw Self.unavailable("billing.renew", error)
        }
    }

    public func ingest(_ summary: CallSummary, now: Date = Date()) async throws -> CDRAcknowledgement {
        try await ingest([summary], now: now)[0]
    }

    /// Stores summaries as CDRs in one transaction (see `BillingStore.ingest`), then runs the fraud guard's spend check
    /// for the customers charged.
    public func ingest(_ summaries: [CallSummary], now: Date = Date()) async throws -> [CDRAcknowledgement] {
        guard summaries.count <= 1000 else { throw ProtocolError(.badRequest, "at most 1000 summaries in one batch") }
        let results: [(duplicate: Bool, cdr: RatedCDR)]
        do {
            results = try await store.ingest(summaries, sell: sell, buy: buy, now: now)
        } catch {
            logger.error("CDRs not stored", metadata: [
                "call-id": "\(summaries.first?.callID ?? "")", "customer": "\(summaries.first?.customer ?? "")", "cdrs": "\(summaries.count)",
                "reason": "\(error)",
            ])
            Counter(label: "troncal_billing_cdrs_total", dimensions: [("result", "failed")]).increment(by: summaries.count)
            throw Self.unavailable("billing.cdr", error)
        }
        var charged = Set<String>()
        for (duplicate, cdr) in results {
            Counter(label: "troncal_billing_cdrs_total", dimensions: [("result", duplicate ? "duplicate" : (cdr.rated ? "rated" : "unrated"))]).increment()
            guard !duplicate else { continue }
            if !cdr.rated {
                logger.warning("CDR stored unrated", metadata: ["call-id": "\(cdr.callID)", "customer": "\(cdr.customer)", "reason": "\(cdr.note)"])
            }
            if cdr.sellMicros > 0 { charged.insert(cdr.customer) }
        }
        for customer in charged.sorted() { await checkSpend(customer, now: now) }
        return results.map { CDRAcknowledgement(id: $0.cdr.id, duplicate: $0.duplicate) }
    }

    /// `billing.calls`: an SBC run's heartbeat and its call checkpoints.
    public func record(_ report: CallCheckpoints, now: Date = Date()) async throws -> CallCheckpointsAcknowledgement {
        guard report.answered.count + report.ended.count <= 2000 else { throw ProtocolError(.badRequest, "at most 2000 checkpoints in one report") }
        do {
            let stored = try await store.record(report, now: now)
            if stored > 0 { Counter(label: "troncal_billing_checkpoints_total").increment(by: stored) }
            return CallCheckpointsAcknowledgement(stored: stored)
        } catch {
            logger.error("SBC heartbeat not stored", metadata: ["instance": "\(report.instance)", "reason": "\(error)"])
            throw Self.unavailable("billing.calls", error)
        }
    }

    /// Makes the CDRs of the calls of lost SBC runs (silent for `silence` seconds, or followed by a newer run of the
    /// same instance) and releases their reservations, in one transaction per batch. Returns how many were recorded.
    @discardableResult
    public func closeLostCalls(silence: Double, now: Date = Date()) async throws -> Int {
        var closed = 0
        while true {
            let lost = try await store.lostCalls(silentSince: now.addingTimeInterval(-silence), limit: 500)
            guard !lost.isEmpty else { break }
            let acknowledgements = try await ingest(lost.map(\.summary), now: now)
            for (call, acknowledgement) in zip(lost, acknowledgements) {
                let metadata: Logger.Metadata = [
                    "call-id": "\(call.summary.callID)", "customer": "\(call.summary.customer)", "instance": "\(call.instance)",
                    "duration-ms": "\(call.summary.durationMilliseconds)", "duplicate": "\(acknowledgement.duplicate)",
                ]
                if call.final {
                    logger.info("CDR of a lost SBC's ended call recorded from its checkpoint", metadata: metadata)
                } else {
                    logger.warning("call of a lost SBC ended at its last heartbeat: CDR recorded, reservation released", metadata: metadata)
                }
                Counter(label: "troncal_billing_lost_sbc_calls_total", dimensions: [("kind", call.final ? "ended" : "in-progress")]).increment()
            }
            closed += lost.count
            if lost.count < 500 { break }
        }
        // What is left on those runs were calls still being set up: no answer, no CDR; their money is free again now.
        for released in try await store.releaseLostReservations(silentSince: now.addingTimeInterval(-silence)) {
            logger.notice("call of a lost SBC was not answered: its reservation is released", metadata: [
                "call-id": "\(released.callID)", "customer": "\(released.customer)", "instance": "\(released.instance)",
            ])
            Counter(label: "troncal_billing_lost_sbc_calls_total", dimensions: [("kind", "unanswered")]).increment()
        }
        return closed
    }

    /// The fraud guard's spend limit: calls that ended in the last hour cost more than the customer's limit.
    func checkSpend(_ customer: String, now: Date) async {
        do {
            guard let account = try await store.customer(customer),
                account.status == .active, account.maximumSpendPerHourMicros > 0
            else { return }
            let spent = try await store.spendLastHour(customer, now: now)
            if spent > account.maximumSpendPerHourMicros {
                await suspend(
                    customer, guard: "spend_per_hour",
                    detail: "spent \(MicroAmount.format(spent)) \(account.currency) in an hour (limit \(MicroAmount.format(account.maximumSpendPerHourMicros)))")
            }
        } catch {
            logger.error("fraud guard could not read the spend", metadata: ["customer": "\(customer)", "reason": "\(error)"])
        }
    }

    func suspend(_ customer: String, guard kind: String, detail: String) async {
        do {
            try await store.suspend(customer, kind: kind, detail: detail)
        } catch {
            logger.error("fraud guard could not suspend", metadata: ["customer": "\(customer)", "reason": "\(error)"])
            return
        }
        Counter(label: "troncal_billing_fraud_suspensions_total", dimensions: [("guard", kind)]).increment()
        logger.warning("customer suspended by the fraud guard", metadata: ["customer": "\(customer)", "guard": "\(kind)", "reason": "\(detail)"])
    }

    // MARK: - Management

    public func receive(_ part: BillingImport) async throws -> BillingImportResult {
        let text: String?
        do {
            text = try uploads.add(upload: part.upload, kind: part.kind.rawValue, part: part.part, final: part.final, text: part.csv)
        } catch {
            throw ProtocolError(.badRequest, error.detail)
        }
        guard let text else { return BillingImportResult(kind: part.kind, rows: 0, milliseconds: 0) }
        return try await apply(part.kind, csv: text)
    }

    /// Picks up rates imported through another billing instance of the site (they share the database): each side whose
    /// generation in the store differs from the one held is loaded again. Returns the sides reloaded.
    @discardableResult
    public func refreshRates() async throws -> [BillingStore.Side] {
        try await importing.withLock {
            let current = try await store.rateGenerations()
            var reloaded: [BillingStore.Side] = []
            for side in [BillingStore.Side.sell, .buy] where current[side] != generations.withLock({ $0[side] }) {
                let (generation, rates) = try await store.loadRatesWithGeneration(side)
                let book = RateBook(rates, timeZone: timeZone)
                books.withLock { if side == .sell { $0.sell = book } else { $0.buy = book } }
                generations.withLock { $0[side] = generation }
                Self.recordBookSize(side, rates.count)
                logger.notice("rates reloaded: imported through another billing instance", metadata: [
                    "side": "\(side.rawValue)", "generation": "\(generation)", "rates": "\(rates.count)",
                ])
                reloaded.append(side)
            }
            return reloaded
        }
    }

    public func apply(_ kind: BillingCatalogKind, csv: String) async throws -> BillingImportResult {
        try await importing.withLock { try await applyNow(kind, csv: csv) }
    }

    private func applyNow(_ kind: BillingCatalogKind, csv: String) async throws -> BillingImportResult {
        let started = ContinuousClock.now
        var rows = 0
        do {
            switch kind {
            case .customers:
                let (customers, statusGiven) = try BillingCSV.customers(csv)
                try await store.upsert(customers, statusGiven: statusGiven)
                rows = customers.count
            case .rates, .carrierRates:
                let rates = try BillingCSV.rates(kind, csv)
                let side: BillingStore.Side = kind == .rates ? .sell : .buy
                let generation = try await store.replaceRates(side, rates)
                let book = RateBook(rates, timeZone: timeZone)
                books.withLock { if side == .sell { $0.sell = book } else { $0.buy = book } }
                generations.withLock { $0[side] = generation }
                Self.recordBookSize(side, rates.count)
                rows = rates.count
            }
        } catch let error as CatalogError {
            logger.notice("billing import refused", metadata: ["kind": "\(kind.rawValue)", "reason": "\(error)"])
            throw ProtocolError(.badRequest, "\(kind.rawValue): \(error)")
        } catch {
            logger.error("billing import not stored", metadata: ["kind": "\(kind.rawValue)", "reason": "\(error)"])
            throw Self.unavailable("billing.import", error)
        }
        let milliseconds = Int((ContinuousClock.now - started) / .milliseconds(1))
        logger.notice("billing catalog imported", metadata: ["kind": "\(kind.rawValue)", "rows": "\(rows)", "milliseconds": "\(milliseconds)"])
        return BillingImportResult(kind: kind, rows: rows, milliseconds: milliseconds)
    }

    public func export(_ request: BillingExport) async throws -> BillingExportPart {
        let text: String
        switch request.kind {
        case .customers: text = BillingCSV.render(customers: try await store.customers())
        case .rates: text = BillingCSV.render(rates: try await store.loadRates(.sell), kind: .rates)
        case .carrierRates: text = BillingCSV.render(rates: try await store.loadRates(.buy), kind: .carrierRates)
        }
        let parts = CSVParts.split(text)
        guard parts.indices.contains(request.part) else {
            throw ProtocolError(.badRequest, "\(request.kind.rawValue) has parts 0 to \(parts.count - 1), not \(request.part)")
        }
        return BillingExportPart(kind: request.kind, part: request.part, parts: parts.count, csv: parts[request.part])
    }

    public func adjust(_ request: BalanceAdjustment) async throws -> AccountState {
        guard request.kind == .adjustment || request.amountMicros > 0 else { throw ProtocolError(.badRequest, "a top-up must be positive") }
        guard !request.reason.trimmingCharacters(in: .whitespaces).isEmpty else { throw ProtocolError(.badRequest, "a reason is required") }
        guard let state = try await store.adjust(request) else {
            throw ProtocolError(.badRequest, "customer \(request.customer.prefix(64)) has no billing account")
        }
        logger.notice("balance adjusted", metadata: [
            "customer": "\(request.customer)", "kind": "\(request.kind.rawValue)", "amount": "\(SignedAmount.format(request.amountMicros))",
            "balance": "\(SignedAmount.format(state.balanceMicros))", "by": "\(request.by)", "reason": "\(request.reason)",
        ])
        return state
    }

    public func account(_ customer: String) async throws -> AccountState {
        guard let state = try await store.account(customer) else {
            throw ProtocolError(.badRequest, "customer \(customer.prefix(64)) has no billing account")
        }
        return state
    }

    public func cdrs(_ query: CDRQuery) async throws -> CDRPage {
        try await store.cdrs(query)
    }
}

/// Every half second: are there SBC runs whose heartbeats stopped? Their calls get CDRs (ended at the last heartbeat)
/// and their reservations are released. Every billing instance of a site runs it; a CDR id is stored once, so two
/// doing the same work at the same moment record each call once. Every 2 s it also picks up rates imported through
/// another instance.
struct LostSBCWatch: Service {
    let billing: Billing
    let silence: Double
    let logger: Logger

    func run() async throws {
        var lastCleanup = Date.distantPast
        // Heartbeats that came while this instance could not store them (it was starting, or its database failed) were
        // lost, not missed: judge an SBC silent only once this instance has stored for a whole silence and a heartbeat
        // more. Without it, billing coming back after its own outage would end every call still up.
        var workingSince = Date()
        var lastRateCheck = Date.distantPast
        while !Task.isCancelledOrShuttingDown {
            let now = Date()
            do {
                // Rates imported through another instance are in force here within 2 s.
                if now.timeIntervalSince(lastRateCheck) >= 2 {
                    lastRateCheck = now
                    try await billing.refreshRates()
                }
                if now.timeIntervalSince(workingSince) >= silence + 1 {
                    try await billing.closeLostCalls(silence: silence, now: now)
                } else {
                    _ = try await billing.store.ping()
                }
                if now.timeIntervalSince(lastCleanup) >= 3600 {
                    try await billing.store.forgetOldRuns(before: now.addingTimeInterval(-86_400))
                    lastCleanup = now
                }
            } catch {
                workingSince = Date()
                logger.error("the calls of lost SBCs could not be closed; tried again shortly", metadata: ["reason": "\(error)"])
            }
            await Task.sleepUnlessShuttingDown(for: .milliseconds(500))
        }
    }
}
