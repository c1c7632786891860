public import Foundation

/// What a PBX catalog holds, one CSV format each (`docs/pbx.md` gives the columns).
public enum PBXCatalogKind: String, Codable, Sendable, Hashable, CaseIterable {
    /// Tenants: the billing customer, time zone, caller id and pickup code of each hosted PBX.
    case tenants
    /// Extensions: number, name, credentials, voicemail, forwarding, do-not-disturb, caller id withholding, pickup group.
    case extensions
    /// Ring groups: a dialable number, a strategy, members, a per-member timeout and where unanswered calls go.
    case ringGroups = "ring-groups"
    /// Time conditions: business hours and holidays in the tenant's time zone, and where calls go open or closed.
    case timeConditions = "time-conditions"
    /// DIDs: an operator number and the tenant destination its calls reach.
    case dids
    /// IVR menus: a prompt (spoken text or a WAV file), the digits callers press and where each leads, timeouts, retries
    /// and a fallback.
    case menus
}

/// `pbx.import` (operator → pbx): one part of a CSV upload that replaces a whole PBX catalog. Parts of one `upload` are
/// sent in order; the part with `final: true` makes the PBX check every row and every reference between catalogs and,
/// only when all are good, store the catalog and put it in force.
public struct PBXImport: LinkRequest, Hashable {
    public typealias Reply = PBXImportResult
    public static let messageType = "pbx.import"

    public var kind: PBXCatalogKind
    public var upload: String
    public var part: Int
    public var final: Bool
    public var csv: String

    public init(kind: PBXCatalogKind, upload: String, part: Int, final: Bool, csv: String) {
        self.kind = kind
        self.upload = upload
        self.part = part
        self.final = final
        self.csv = csv
    }
}

/// `pbx.import.reply`: the part was taken (`rows` 0 until the final part), or the catalog was replaced.
public struct PBXImportResult: LinkMessage, Hashable {
    public static let messageType = "pbx.import.reply"
    public var kind: PBXCatalogKind
    public var rows: Int
    public var generation: Int64
    public var milliseconds: Int

    public init(kind: PBXCatalogKind, rows: Int, generation: Int64, milliseconds: Int) {
        self.kind = kind
        self.rows = rows
        self.generation = generation
        self.milliseconds = milliseconds
    }
}

/// `pbx.export` (operator → pbx): one part of a catalog as CSV (the same columns an import takes).
public struct PBXExport: LinkRequest, Hashable {
    public typealias Reply = PBXExportPart
    public static let messageType = "pbx.export"
    public var kind: PBXCatalogKind
    public var part: Int

    public init(kind: PBXCatalogKind, part: Int) {
        self.kind = kind
        self.part = part
    }
}

/// `pbx.export.part`: part `part` of `parts`, all of one `generation`.
public struct PBXExportPart: LinkMessage, Hashable {
    public static let messageType = "pbx.export.part"
    public var kind: PBXCatalogKind
    public var part: Int
    public var parts: Int
    public var generation: Int64
    public var csv: String

    public init(kind: PBXCatalogKind, part: Int, parts: Int, generation: Int64, csv: String) {
        self.kind = kind
        self.part = part
        self.parts = parts
        self.generation = generation
        self.csv = csv
    }
}

/// `pbx.inspect` (operator → pbx): what the catalogs in force hold, per tenant.
public struct PBXInspect: LinkRequest, Hashable {
    public typealias Reply = PBXInspection
    public static let messageType = "pbx.inspect"
    /// Only this tenant (nil: every tenant).
    public var tenant: String?

    public init(tenant: String? = nil) {
        self.tenant = tenant
    }
}

/// `pbx.inspection`: each catalog's generation and rows, and per tenant its counts.
public struct PBXInspection: LinkMessage, Hashable {
    public static let messageType = "pbx.inspection"

    public struct Catalog: Codable, Sendable, Hashable {
        public var kind: PBXCatalogKind
        public var generation: Int64
        public var rows: Int
        public init(kind: PBXCatalogKind, generation: Int64, rows: Int) {
            self.kind = kind
            self.generation = generation
            self.rows = rows
        }
    }

    public struct Tenant: Codable, Sendable, Hashable {
        public var name: String
        public var customer: String
        public var timeZone: String
        public var extensions: Int
        public var ringGroups: Int
        public var timeConditions: Int
        public var dids: Int
        public init(name: String, customer: String, timeZone: String, extensions: Int, ringGroups: Int, timeConditions: Int, dids: Int) {
            self.name = name
            self.customer = customer
            self.timeZone = timeZone
            self.extensions = extensions
            self.ringGroups = ringGroups
            self.timeConditions = timeConditions
            self.dids = dids
        }
    }

    public var instance: String
    public var catalogs: [Catalog]
    public var tenants: [Tenant]

    public init(instance: String, catalogs: [Catalog], tenants: [Tenant]) {
        self.instance = instance
        self.catalogs = catalogs
        self.tenants = tenants
    }
}

/// `pbx.registrations` (operator, monitor → pbx): the phones registered now (bindings not expired), from the instance's
/// store (on PostgreSQL every instance's; with SQLite those the instance took).
public struct PBXRegistrationsRequest: LinkRequest, Hashable {
    public typealias Reply = PBXRegistrations
    public static let messageType = "pbx.registrations"
    /// Only this tenant / this extension of it (nil: all).
    public var tenant: String?
    public var extensionNumber: String?

    public init(tenant: String? = nil, extensionNumber: String? = nil) {
        self.tenant = tenant
        self.extensionNumber = extensionNumber
    }
}

/// `pbx.registrations.reply`: one entry per registered contact.
public struct PBXRegistrations: LinkMessage, Hashable {
    public static let messageType = "pbx.registrations.reply"

    public struct Registration: Codable, Sendable, Hashable {
        public var tenant: String
        public var extensionNumber: String
        /// The Contact as registered (URI and parameters).
        public var contact: String
        /// The SBC's Path (with the flow token) calls to this contact take.
        public var path: String
        public var expiresInSeconds: Int64
        public var registeredAt: Date
        public var userAgent: String
        /// The PBX instance that took the registration.
        public var instance: String

        public init(
            tenant: String, extensionNumber: String, contact: String, path: String, expiresInSeconds: Int64, registeredAt: Date, userAgent: String,
            instance: String
        ) {
            self.tenant = tenant
            self.extensionNumber = extensionNumber
            self.contact = contact
            self.path = path
            self.expiresInSeconds = expiresInSeconds
            self.registeredAt = registeredAt
            self.userAgent = userAgent
            self.instance = instance
        }
    }

    public var registrations: [Registration]

    public init(registrations: [Registration]) {
        self.registrations = registrations
    }
}

/// `pbx.voicemail.list` (operator, monitor → pbx): the voicemail messages the instance holds, each with where it is
/// (new, saved) and how its deliveries (e-mail, webhook) went.
public struct PBXVoicemailListRequest: LinkRequest, Hashable {
    public typealias Reply = PBXVoicemailList
    public static let messageType = "pbx.voicemail.list"
    /// Only this tenant / this extension of it (nil: all).
    public var tenant: String?
    public var extensionNumber: String?

    public init(tenant: String? = nil, extensionNumber: String? = nil) {
        self.tenant = tenant
        self.extensionNumber = extensionNumber
    }
}

/// `pbx.voicemail.list.reply`: one entry per message, oldest first.
public struct PBXVoicemailList: LinkMessage, Hashable {
    public static let messageType = "pbx.voicemail.list.reply"

    public struct Delivery: Codable, Sendable, Hashable {
        /// `email` or `webhook`.
        public var channel: String
        /// The address or URL delivered to.
        public var target: String
        /// `pending` (not tried yet), `retrying` (failed, tried again at `nextAttemptAt`), `delivered`, `failed` (gave up
        /// after the last attempt).
        public var status: String
        public var attempts: Int
        public var lastError: String
        public var nextAttemptAt: Date?
        public var deliveredAt: Date?

        public init(
            channel: String, target: String, status: String, attempts: Int, lastError: String, nextAttemptAt: Date?, deliveredAt: Date?
        ) {
            self.channel = channel
            self.target = target
            self.status = status
            self.attempts = attempts
            self.lastError = lastError
            self.nextAttemptAt = nextAttemptAt
            self.deliveredAt = deliveredAt
        }
    }

    public struct Message: Codable, Sendable, Hashable {
        public var id: String
        public var tenant: String
        public var extensionNumber: String
        /// The caller's number as the PBX saw it.
        public var caller: String
        public var receivedAt: Date
        public var durationMilliseconds: Int
        /// `new` or `saved`.
        public var folder: String
        /// The WAV file on the instance that recorded it.
        public var file: String
        public var instance: String
        public var deliveries: [Delivery]

        public init(
            id: String, tenant: String, extensionNumber: String, caller: String, receivedAt: Date, durationMilliseconds: Int, folder: String,
            file: String, instance: String, deliveries: [Delivery]
        ) {
            self.id = id
            self.tenant = tenant
            self.extensionNumber = extensionNumber
            self.caller = caller
            self.receivedAt = receivedAt
            self.durationMilliseconds = durationMilliseconds
            self.folder = folder
            self.file = file
            self.instance = instance
            self.deliveries = deliveries
        }
    }

    public var messages: [Message]

    public init(messages: [Message]) {
        self.messages = messages
    }
}
