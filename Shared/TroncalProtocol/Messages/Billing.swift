public import Foundation

/// `billing.authorize` (routing → billing): may this customer call this number now, and for how long? Billing
/// reserves the cost of the granted time against the customer's balance or credit, so parallel calls cannot
/// overspend; the SBC renews the grant (`billing.renew`) before it runs out, and the call's CDR settles it.
public struct AuthorizeRequest: LinkRequest, Hashable {
    /// Retryable: the reservation is keyed by call id, a second one replaces the first.
    public static var retryable: Bool { true }
    public typealias Reply = Authorization
    public static let messageType = "billing.authorize"

    public var customer: String
    /// E.164 digits as routing normalised them.
    public var callee: String
    /// The customer leg's Call-ID: the reservation's key.
    public var callID: String
    /// The SBC run the call is on (`instance`, `boot` of `billing.calls`), from `routing.route`: when that run is lost
    /// before the call is answered, billing releases the reservation at once instead of at its expiry.
    public var sbc: String?
    public var sbcBoot: String?

    public init(customer: String, callee: String, callID: String, sbc: String? = nil, sbcBoot: String? = nil) {
        self.customer = customer
        self.callee = callee
        self.callID = callID
        self.sbc = sbc
        self.sbcBoot = sbcBoot
    }
}

/// `billing.authorize.reply`, also the reply of `billing.renew`.
public struct Authorization: LinkMessage, Hashable {
    public static let messageType = "billing.authorize.reply"

    public var allowed: Bool
    /// When refused: the SIP status for the caller (402 no credit, 403 suspended or unknown, 404 no rate).
    public var status: Int?
    public var reason: String?
    /// The call may last this long from its answer (the whole grant so far, not the increment).
    public var maximumDurationSeconds: Int?
    /// Whether the SBC should ask for more (`billing.renew`) before the grant runs out.
    public var renewable: Bool

    public init(allowed: Bool, status: Int? = nil, reason: String? = nil, maximumDurationSeconds: Int? = nil, renewable: Bool = false) {
        self.allowed = allowed
        self.status = status
        self.reason = reason
        self.maximumDurationSeconds = maximumDurationSeconds
        self.renewable = renewable
    }
}

/// `billing.renew` (sbc → billing): the call is still up; extend its grant. The reply (`billing.authorize.reply`)
/// gives the new total; a refusal leaves the call to end at the grant it has.
public struct RenewRequest: LinkRequest, Hashable {
    /// Retryable: renews the reservation of one call id.
    public static var retryable: Bool { true }
    public typealias Reply = RenewReply
    public static let messageType = "billing.renew"

    public var customer: String
    public var callID: String
    /// Seconds since the answer.
    public var elapsedSeconds: Int

    public init(customer: String, callID: String, elapsedSeconds: Int) {
        self.customer = customer
        self.callID = callID
        self.elapsedSeconds = elapsedSeconds
    }
}

/// `billing.renew.reply`.
public struct RenewReply: LinkMessage, Hashable {
    public static let messageType = "billing.renew.reply"
    public var authorization: Authorization
    public init(_ authorization: Authorization) { self.authorization = authorization }
}

/// `billing.cdr` (sbc → billing): one call summary from the SBC's spool. Billing stores it once by `summary.id`
/// (a resent one is acknowledged again and not counted twice), rates it and charges the customer in the same
/// transaction, and replies after the commit; only then does the SBC delete it from its spool.
public struct CDRSubmission: LinkRequest, Hashable {
    /// Retryable: a CDR id is stored once.
    public static var retryable: Bool { true }
    public typealias Reply = CDRAcknowledgement
    public static let messageType = "billing.cdr"

    public var summary: CallSummary
    public init(summary: CallSummary) { self.summary = summary }
}

/// `billing.cdr.reply`: stored (or stored before).
public struct CDRAcknowledgement: LinkMessage, Hashable {
    public static let messageType = "billing.cdr.reply"
    public var id: String
    /// The CDR was already stored: nothing was charged again.
    public var duplicate: Bool
    public init(id: String, duplicate: Bool) {
        self.id = id
        self.duplicate = duplicate
    }
}

/// `billing.cdr.batch` (sbc → billing): several call summaries at once, stored in one transaction with the same
/// rules as `billing.cdr`; the reply acknowledges each (after the commit).
public struct CDRBatch: LinkRequest, Hashable {
    /// Retryable: a CDR id is stored once.
    public static var retryable: Bool { true }
    public typealias Reply = CDRBatchAcknowledgement
    public static let messageType = "billing.cdr.batch"

    public var summaries: [CallSummary]
    public init(summaries: [CallSummary]) { self.summaries = summaries }
}

/// `billing.cdr.batch.reply`: one acknowledgement per summary, in order.
public struct CDRBatchAcknowledgement: LinkMessage, Hashable {
    public static let messageType = "billing.cdr.batch.reply"
    public var acknowledgements: [CDRAcknowledgement]
    public init(acknowledgements: [CDRAcknowledgement]) { self.acknowledgements = acknowledgements }
}

/// `billing.calls` (sbc → billing): the SBC's heartbeat, with the checkpoints of its answered calls. The SBC's first
/// event loop sends one every `sbc.checkpointIntervalMilliseconds`, empty or not; its other loops when they have
/// checkpoints. `answered` holds the calls answered
/// since the last one, each as if it ended now; `ended` the final summaries of calls that ended (also shipped from the
/// spool as `billing.cdr.batch`). Billing keeps the checkpoints until the CDR of the call is stored. When an SBC's
/// run (`instance` + `boot`) falls silent for `billing.sbcSilenceSeconds`, or the instance starts again with a new
/// `boot`, billing makes the CDRs of its calls itself: a final summary as it is, an answered call ended at the last
/// heartbeat billing received from that run. Their reservations are released in the same transaction.
public struct CallCheckpoints: LinkRequest, Hashable {
    /// Retryable: checkpoints are stored by summary id, heartbeats by instance and boot.
    public static var retryable: Bool { true }
    public typealias Reply = CallCheckpointsAcknowledgement
    public static let messageType = "billing.calls"

    /// The SBC instance.
    public var instance: String
    /// This run of the SBC process (a random id chosen at start).
    public var boot: String
    /// When this run started (the SBC's clock): orders two runs of one instance.
    public var startedAt: Date
    public var answered: [CallSummary]
    public var ended: [CallSummary]

    public init(instance: String, boot: String, startedAt: Date, answered: [CallSummary] = [], ended: [CallSummary] = []) {
        self.instance = instance
        self.boot = boot
        self.startedAt = startedAt
        self.answered = answered
        self.ended = ended
    }
}

/// `billing.calls.reply`: the heartbeat and the checkpoints are committed.
public struct CallCheckpointsAcknowledgement: LinkMessage, Hashable {
    public static let messageType = "billing.calls.reply"
    /// Checkpoints stored (those of calls whose CDR is stored already are not).
    public var stored: Int
    public init(stored: Int) { self.stored = stored }
}

/// What a billing catalog holds, one CSV format each (`docs/billing.md`).
public enum BillingCatalogKind: String, Codable, Sendable, Hashable, CaseIterable {
    /// Accounts: prepaid or postpaid, currency, credit limit, rate plan, limits, status (never balances).
    case customers
    /// Sell rates per rate plan and prefix.
    case rates
    /// Buy rates per carrier and prefix (the cost side of each CDR).
    case carrierRates = "carrier-rates"
}

/// `billing.import` (operator → billing): one part of a CSV upload, as `routing.import`. Customers are added or
/// updated (balances are untouched: they change only by calls and `billing.adjust`); rate catalogs are replaced whole.
public struct BillingImport: LinkRequest, Hashable {
    public typealias Reply = BillingImportResult
    public static let messageType = "billing.import"

    public var kind: BillingCatalogKind
    public var upload: String
    public var part: Int
    public var final: Bool
    public var csv: String

    public init(kind: BillingCatalogKind, upload: String, part: Int, final: Bool, csv: String) {
        self.kind = kind
        self.upload = upload
        self.part = part
        self.final = final
        self.csv = csv
    }
}

/// `billing.import.reply`.
public struct BillingImportResult: LinkMessage, Hashable {
    public static let messageType = "billing.import.reply"
    public var kind: BillingCatalogKind
    public var rows: Int
    public var milliseconds: Int
    public init(kind: BillingCatalogKind, rows: Int, milliseconds: Int) {
        self.kind = kind
        self.rows = rows
        self.milliseconds = milliseconds
    }
}

/// `billing.export` (operator → billing): one part of a catalog as CSV (customers with their balances).
public struct BillingExport: LinkRequest, Hashable {
    public typealias Reply = BillingExportPart
    public static let messageType = "billing.export"
    public var kind: BillingCatalogKind
    public var part: Int
    public init(kind: BillingCatalogKind, part: Int) {
        self.kind = kind
        self.part = part
    }
}

/// `billing.export.reply`.
public struct BillingExportPart: LinkMessage, Hashable {
    public static let messageType = "billing.export.reply"
    public var kind: BillingCatalogKind
    public var part: Int
    public var parts: Int
    public var csv: String
    public init(kind: BillingCatalogKind, part: Int, parts: Int, csv: String) {
        self.kind = kind
        self.part = part
        self.parts = parts
        self.csv = csv
    }
}

/// `billing.adjust` (operator → billing): a top-up or an adjustment of a customer's balance, with its reason, kept
/// in the ledger (the audit trail).
public struct BalanceAdjustment: LinkRequest, Hashable {
    public typealias Reply = AccountState
    public static let messageType = "billing.adjust"

    public enum Kind: String, Codable, Sendable, Hashable { case topup, adjustment }
    public var customer: String
    public var kind: Kind
    /// Millionths of the account's currency; a top-up is positive, an adjustment either sign.
    public var amountMicros: Int64
    public var reason: String
    /// Who asked (the operator's name, for the audit trail).
    public var by: String

    public init(customer: String, kind: Kind, amountMicros: Int64, reason: String, by: String) {
        self.customer = customer
        self.kind = kind
        self.amountMicros = amountMicros
        self.reason = reason
        self.by = by
    }
}

/// `billing.account` (operator, monitor → billing): one customer's account now.
public struct AccountQuery: LinkRequest, Hashable {
    public typealias Reply = AccountState
    public static let messageType = "billing.account"
    public var customer: String
    public init(customer: String) { self.customer = customer }
}

/// `billing.account.reply`: the account, its balance and what calls in progress hold of it.
public struct AccountState: LinkMessage, Hashable {
    public static let messageType = "billing.account.reply"
    public var customer: String
    public var type: String
    public var currency: String
    public var status: String
    public var statusReason: String?
    public var balanceMicros: Int64
    public var creditLimitMicros: Int64
    /// Held by calls in progress (their grants).
    public var reservedMicros: Int64
    /// What new calls may spend: balance + credit limit − reserved.
    public var availableMicros: Int64
    public var callsInProgress: Int
    /// The latest ledger entries, newest first.
    public var ledger: [LedgerEntry]

    public struct LedgerEntry: Codable, Sendable, Hashable {
        public var at: String
        public var kind: String
        public var amountMicros: Int64
        public var balanceMicros: Int64
        public var reference: String
        public var by: String
        public init(at: String, kind: String, amountMicros: Int64, balanceMicros: Int64, reference: String, by: String) {
            self.at = at
            self.kind = kind
            self.amountMicros = amountMicros
            self.balanceMicros = balanceMicros
            self.reference = reference
            self.by = by
        }
    }

    public init(
        customer: String, type: String, currency: String, status: String, statusReason: String?, balanceMicros: Int64, creditLimitMicros: Int64,
        reservedMicros: Int64, availableMicros: Int64, callsInProgress: Int, ledger: [LedgerEntry]
    ) {
        self.customer = customer
        self.type = type
        self.currency = currency
        self.status = status
        self.statusReason = statusReason
        self.balanceMicros = balanceMicros
        self.creditLimitMicros = creditLimitMicros
        self.reservedMicros = reservedMicros
        self.availableMicros = availableMicros
        self.callsInProgress = callsInProgress
        self.ledger = ledger
    }
}

/// `billing.cdrs` (operator → billing): a page of rated CDRs, oldest first, by setup time.
public struct CDRQuery: LinkRequest, Hashable {
    public typealias Reply = CDRPage
    public static let messageType = "billing.cdrs"
    /// ISO 8601; setup at or after.
    public var from: String
    /// ISO 8601; setup before.
    public var to: String
    public var customer: String?
    /// The `next` of the previous page; nil for the first.
    public var after: String?
    public var limit: Int

    public init(from: String, to: String, customer: String?, after: String?, limit: Int) {
        self.from = from
        self.to = to
        self.customer = customer
        self.after = after
        self.limit = limit
    }
}

/// `billing.cdrs.reply`.
public struct CDRPage: LinkMessage, Hashable {
    public static let messageType = "billing.cdrs.reply"
    public var cdrs: [RatedCDR]
    /// Where the next page starts; nil at the end.
    public var next: String?
    public init(cdrs: [RatedCDR], next: String?) {
        self.cdrs = cdrs
        self.next = next
    }
}

/// One stored CDR with its rating.
public struct RatedCDR: Codable, Sendable, Hashable {
    public var id: String
    public var callID: String
    public var customer: String
    public var caller: String
    public var callee: String
    public var carrier: String
    public var trunk: String
    public var setupAt: String
    public var answerAt: String?
    public var endAt: String
    public var durationMilliseconds: Int
    public var billedSeconds: Int
    public var disconnectStatus: Int
    public var disconnectBy: String
    public var currency: String
    /// What the customer pays, in millionths.
    public var sellMicros: Int64
    /// What the carrier charges, in millionths.
    public var buyMicros: Int64
    public var marginMicros: Int64
    /// False when no sell rate matched: kept, flagged, charged nothing.
    public var rated: Bool
    public var ratePrefix: String
    public var note: String
    public var mos: Double?

    public init(
        id: String, callID: String, customer: String, caller: String, callee: String, carrier: String, trunk: String, setupAt: String,
        answerAt: String?, endAt: String, durationMilliseconds: Int, billedSeconds: Int, disconnectStatus: Int, disconnectBy: String,
        currency: String, sellMicros: Int64, buyMicros: Int64, marginMicros: Int64, rated: Bool, ratePrefix: String, note: String, mos: Double?
    ) {
        self.id = id
        self.callID = callID
        self.customer = customer
        self.caller = caller
        self.callee = callee
        self.carrier = carrier
        self.trunk = trunk
        self.setupAt = setupAt
        self.answerAt = answerAt
        self.endAt = endAt
        self.durationMilliseconds = durationMilliseconds
        self.billedSeconds = billedSeconds
        self.disconnectStatus = disconnectStatus
        self.disconnectBy = disconnectBy
        self.currency = currency
        self.sellMicros = sellMicros
        self.buyMicros = buyMicros
        self.marginMicros = marginMicros
        self.rated = rated
        self.ratePrefix = ratePrefix
        self.note = note
        self.mos = mos
    }
}
