public import Foundation
public import TroncalCatalog
public import TroncalProtocol

/// Where a PBX call goes: an extension, a ring group, a time condition, an IVR menu, an extension's voicemail box, an
/// outside number, or nowhere. Written `ext:101`, `group:sales`, `condition:office`, `menu:main`, `voicemail:101`,
/// `number:+34911234567`, `hangup`.
public enum PBXDestination: Sendable, Hashable, CustomStringConvertible {
    case extensionNumber(String)
    case group(String)
    case condition(String)
    case menu(String)
    case voicemail(String)
    case number(String)
    case hangup

    public init?(_ text: String) {
        if text == "hangup" { self = .hangup; return }
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let kind = text[..<colon]
        let value = String(text[text.index(after: colon)...])
        guard !value.isEmpty else { return nil }
        switch kind {
        case "ext":
            guard PBXCatalog.isExtensionNumber(value) else { return nil }
            self = .extensionNumber(value)
        case "group": self = .group(value)
        case "condition": self = .condition(value)
        case "menu": self = .menu(value)
        case "voicemail":
            guard PBXCatalog.isExtensionNumber(value) else { return nil }
            self = .voicemail(value)
        case "number":
            guard value.hasPrefix("+"), (8...16).contains(value.count), value.dropFirst().allSatisfy(\.isASCIIDigit) else { return nil }
            self = .number(value)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .extensionNumber(let number): "ext:\(number)"
        case .group(let name): "group:\(name)"
        case .condition(let name): "condition:\(name)"
        case .menu(let name): "menu:\(name)"
        case .voicemail(let number): "voicemail:\(number)"
        case .number(let number): "number:\(number)"
        case .hangup: "hangup"
        }
    }
}

/// The PBX catalogs in force: tenants and, per tenant, extensions, ring groups and time conditions; DIDs. Each row
/// keeps the CSV line it came from so that a broken reference names it.
public struct PBXCatalog: Sendable, Equatable {
    public struct Tenant: Sendable, Equatable {
        public var name: String
        public var customer: String
        public var timeZone: String
        public var callerID: String
        public var pickupCode: String
        /// The SIP domain its phones register in (`sip:101@DOMAIN`) and the digest realm; the tenant's name when the
        /// `domain` column is empty.
        public var domain: String
        var line = 0
    }

    public struct Extension: Sendable, Equatable {
        public var tenant: String
        public var number: String
        public var name: String
        public var password: String
        public var voicemail: Bool
        public var forwardAlways: PBXDestination?
        public var forwardBusy: PBXDestination?
        public var forwardNoAnswer: PBXDestination?
        public var noAnswerSeconds: Int
        public var doNotDisturb: Bool
        public var withholdCallerID: Bool
        public var pickupGroup: String
        /// The voicemail box's PIN as imported (4 to 8 digits; empty: none asked from the extension's own phones; a PIN
        /// the owner set by phone is kept by the PBX and asked instead).
        public var voicemailPIN: String
        /// Where new voicemail is e-mailed (empty: not e-mailed).
        public var email: String
        var line = 0
    }

    /// An IVR menu: its prompt, what each key sequence leads to, the time allowed for the first digit and between
    /// digits, how many times the prompt is repeated when nothing (or nothing valid) is pressed, and where the call goes
    /// then.
    public struct Menu: Sendable, Equatable {
        public var tenant: String
        public var name: String
        /// A number extensions dial to reach the menu (empty: reached only through DIDs, conditions and other menus).
        public var number: String
        public var prompt: PBXPrompt
        /// Key sequences (`1`, `21`, `*`, `#`) and their destinations.
        public var options: [String: PBXDestination]
        public var firstDigitSeconds: Int
        public var interDigitSeconds: Int
        public var retries: Int
        public var fallback: PBXDestination
        var line = 0
    }

    public enum Strategy: String, Sendable, Equatable, CaseIterable {
        case simultaneous, sequential
        case roundRobin = "round-robin"
    }

    public struct RingGroup: Sendable, Equatable {
        public var tenant: String
        public var name: String
        public var number: String
        public var strategy: Strategy
        public var members: [String]
        public var memberSeconds: Int
        public var fallback: PBXDestination
        var line = 0
    }

    public struct TimeCondition: Sendable, Equatable {
        public var tenant: String
        public var name: String
        public var schedule: Schedule
        public var holidays: [String]
        public var open: PBXDestination
        public var closed: PBXDestination
        var line = 0
    }

    public struct DID: Sendable, Equatable {
        public var number: String
        public var tenant: String
        public var destination: PBXDestination
        var line = 0
    }

    public var tenants: [Tenant] = []
    public var extensions: [Extension] = []
    public var ringGroups: [RingGroup] = []
    public var timeConditions: [TimeCondition] = []
    public var dids: [DID] = []
    public var menus: [Menu] = []
    /// The generation of each catalog in force (0: never imported).
    public var generations: [PBXCatalogKind: Int64] = [:]

    public init() {}

    public func rows(of kind: PBXCatalogKind) -> Int {
        switch kind {
        case .tenants: tenants.count
        case .extensions: extensions.count
        case .ringGroups: ringGroups.count
        case .timeConditions: timeConditions.count
        case .dids: dids.count
        case .menus: menus.count
        }
    }

    /// A DNS-like name: labels of letters, digits and '-', separated by dots.
    static func isDomain(_ text: String) -> Bool {
        guard (1...253).contains(text.count) else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.count) && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }

    /// The tenant whose SIP domain is `domain` (case-insensitive).
    public func tenant(domain: String) -> Tenant? {
        let wanted = domain.lowercased()
        return tenants.first { $0.domain == wanted }
    }

    /// An extension of a tenant.
    public func `extension`(_ number: String, of tenant: String) -> Extension? {
        extensions.first { $0.tenant == tenant && $0.number == number }
    }

    /// A menu of a tenant.
    public func menu(_ name: String, of tenant: String) -> Menu? {
        menus.first { $0.tenant == tenant && $0.name == name }
    }

    /// 2 to 6 digits.
    static func isExtensionNumber(_ text: String) -> Bool { (2...6).contains(text.count) && text.allSatisfy(\.isASCIIDigit) }
}

/// The CSV form of each PBX catalog: columns, reading (every field checked, with line and column), references between
/// catalogs, and rendering (an export imports back to the same catalog).
public enum PBXCatalogCSV {
    public static func columns(_ kind: PBXCatalogKind) -> (all: [String], required: [String]) {
        switch kind {
        case .tenants: (["tenant", "customer", "time_zone", "caller_id", "pickup_code", "domain"], ["tenant", "customer", "time_zone"])
        case .extensions:
            (["tenant", "extension", "name", "password", "voicemail", "forward_always", "forward_busy", "forward_no_answer", "no_answer_seconds",
              "dnd", "withhold_caller_id", "pickup_group", "voicemail_pin", "email"], ["tenant", "extension", "password"])
        case .ringGroups:
            (["tenant", "group", "number", "strategy", "members", "member_seconds", "fallback"], ["tenant", "group", "number", "strategy", "members"])
        case .timeConditions:
            (["tenant", "condition", "days", "hours", "holidays", "open", "closed"], ["tenant", "condition", "days", "hours", "open", "closed"])
        case .dids: (["number", "tenant", "destination"], ["number", "tenant", "destination"])
        case .menus:
            (["tenant", "menu", "number", "prompt", "options", "first_digit_seconds", "inter_digit_seconds", "retries", "fallback"],
             ["tenant", "menu", "prompt", "options"])
        }
    }

    /// Reads `text` as the new catalog of `kind` into `catalog` (the other kinds stay); throws at the first bad field.
    public static func read(_ kind: PBXCatalogKind, _ text: String, into catalog: inout PBXCatalog) throws(CatalogError) {
        let (all, required) = columns(kind)
        let records = try CSVRecords(parsing: text, kind: kind.rawValue, columns: all, required: required)
        switch kind {
        case .tenants:
            var seen = Set<String>()
            var domains = Set<String>()
            catalog.tenants = try records.records.map { record throws(CatalogError) in
                let name = try record.name("tenant")
                guard seen.insert(name).inserted else { throw record.fail("tenant", "tenant \(name.quotedForError) appears twice") }
                let domain = (record["domain"].isEmpty ? name : record["domain"]).lowercased()
                guard PBXCatalog.isDomain(domain) else {
                    throw record.fail("domain", "\(domain.quotedForError) is not a SIP domain (letters, digits, '-' and '.', up to 253 characters)")
                }
                guard domains.insert(domain).inserted else { throw record.fail("domain", "domain \(domain.quotedForError) is another tenant's") }
                let zone = record["time_zone"]
                guard TimeZone(identifier: zone) != nil else { throw record.fail("time_zone", "\(zone.quotedForError) is not a time zone (like Europe/Madrid)") }
                let callerID = record["caller_id"]
                if !callerID.isEmpty, PBXDestination("number:" + callerID) == nil {
                    throw record.fail("caller_id", "\(callerID.quotedForError) is not an E.164 number (+34911234567)")
                }
                let pickup = record["pickup_code"].isEmpty ? "*8" : record["pickup_code"]
                guard (2...6).contains(pickup.count), pickup.hasPrefix("*"), pickup.dropFirst().allSatisfy(\.isASCIIDigit) else {
                    throw record.fail("pickup_code", "\(pickup.quotedForError) is not a feature code (* and 1 to 5 digits)")
                }
                return .init(name: name, customer: try record.name("customer"), timeZone: zone, callerID: callerID, pickupCode: pickup, domain: domain, line: record.line)
            }
        case .extensions:
            var seen = Set<String>()
            catalog.extensions = try records.records.map { record throws(CatalogError) in
                let tenant = try record.name("tenant")
                let number = record["extension"]
                guard PBXCatalog.isExtensionNumber(number) else { throw record.fail("extension", "\(number.quotedForError) is not 2 to 6 digits") }
                guard seen.insert(tenant + "/" + number).inserted else { throw record.fail("extension", "extension \(number) of \(tenant) appears twice") }
                let password = record["password"]
                guard password.count >= 8, password.count <= 64, password.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
                    throw record.fail("password", "a password has 8 to 64 visible ASCII characters")
                }
                let name = record["name"]
                guard name.count <= 64, !name.contains(where: { $0 == "\"" || $0 == "<" || $0 == ">" || $0.isNewline }) else {
                    throw record.fail("name", "a display name has up to 64 characters, no quotes or angle brackets")
                }
                let voicemail = try record.bool("voicemail", default: false)
                let pin = record["voicemail_pin"]
                // No PIN: the box opens without one from the extension's own (digest-registered) phones.
                if !pin.isEmpty {
                    guard (4...8).contains(pin.count), pin.allSatisfy(\.isASCIIDigit) else {
                        throw record.fail("voicemail_pin", "a voicemail PIN has 4 to 8 digits")
                    }
                }
                let email = record["email"]
                if !email.isEmpty {
                    let parts = email.split(separator: "@", omittingEmptySubsequences: false)
                    guard email.count <= 254, parts.count == 2, !parts[0].isEmpty, PBXCatalog.isDomain(String(parts[1])),
                        !email.contains(where: { $0.isWhitespace || $0 == "<" || $0 == ">" || $0 == "," || $0 == "\"" })
                    else { throw record.fail("email", "\(email.quotedForError) is not an e-mail address (name@example.com)") }
                }
                return .init(
                    tenant: tenant, number: number, name: name, password: password, voicemail: voicemail,
                    forwardAlways: try destination(record, "forward_always", optional: true, allowed: .forward),
                    forwardBusy: try destination(record, "forward_busy", optional: true, allowed: .forward),
                    forwardNoAnswer: try destination(record, "forward_no_answer", optional: true, allowed: .forward),
                    noAnswerSeconds: try record.integer("no_answer_seconds", default: 20, 5...300), doNotDisturb: try record.bool("dnd", default: false),
                    withholdCallerID: try record.bool("withhold_caller_id", default: false),
                    pickupGroup: try record.name("pickup_group", optional: true), voicemailPIN: pin, email: email, line: record.line)
            }
        case .ringGroups:
            var seen = Set<String>()
            catalog.ringGroups = try records.records.map { record throws(CatalogError) in
                let tenant = try record.name("tenant")
                let name = try record.name("group")
                guard seen.insert(tenant + "/" + name).inserted else { throw record.fail("group", "group \(name.quotedForError) of \(tenant) appears twice") }
                let number = record["number"]
                guard PBXCatalog.isExtensionNumber(number) else { throw record.fail("number", "\(number.quotedForError) is not 2 to 6 digits") }
                guard let strategy = PBXCatalog.Strategy(rawValue: record["strategy"]) else {
                    throw record.fail("strategy", "\(record["strategy"].quotedForError) is not simultaneous, sequential or round-robin")
                }
                let members = record["members"].split(separator: " ").map(String.init)
                guard !members.isEmpty, members.allSatisfy(PBXCatalog.isExtensionNumber) else {
                    throw record.fail("members", "members are extension numbers separated by spaces")
                }
                guard Set(members).count == members.count else { throw record.fail("members", "a member appears twice") }
                let fallback = try destination(record, "fallback", optional: true, allowed: .any) ?? .hangup
                return .init(
                    tenant: tenant, name: name, number: number, strategy: strategy, members: members,
                    memberSeconds: try record.integer("member_seconds", default: 20, 5...300), fallback: fallback, line: record.line)
            }
        case .timeConditions:
            var seen = Set<String>()
            catalog.timeConditions = try records.records.map { record throws(CatalogError) in
                let tenant = try record.name("tenant")
                let name = try record.name("condition")
                guard seen.insert(tenant + "/" + name).inserted else {
                    throw record.fail("condition", "condition \(name.quotedForError) of \(tenant) appears twice")
                }
                let holidays = record["holidays"].split(separator: " ").map(String.init)
                for day in holidays where (try? Date(day + "T00:00:00Z", strategy: .iso8601)) == nil || day.count != 10 {
                    throw record.fail("holidays", "\(day.quotedForError) is not a date like 2026-12-25 (dates separated by spaces)")
                }
                return .init(
                    tenant: tenant, name: name, schedule: try record.schedule(), holidays: holidays,
                    open: try destination(record, "open", allowed: .notCondition)!, closed: try destination(record, "closed", allowed: .notCondition)!,
                    line: record.line)
            }
        case .dids:
            var seen = Set<String>()
            catalog.dids = try records.records.map { record throws(CatalogError) in
                let number = record["number"]
                guard PBXDestination("number:" + number) != nil else { throw record.fail("number", "\(number.quotedForError) is not an E.164 number") }
                guard seen.insert(number).inserted else { throw record.fail("number", "DID \(number) appears twice") }
                return .init(
                    number: number, tenant: try record.name("tenant"), destination: try destination(record, "destination", allowed: .inbound)!,
                    line: record.line)
            }
        case .menus:
            var seen = Set<String>()
            catalog.menus = try records.records.map { record throws(CatalogError) in
                let tenant = try record.name("tenant")
                let name = try record.name("menu")
                guard seen.insert(tenant + "/" + name).inserted else { throw record.fail("menu", "menu \(name.quotedForError) of \(tenant) appears twice") }
                let number = record["number"]
                guard number.isEmpty || PBXCatalog.isExtensionNumber(number) else { throw record.fail("number", "\(number.quotedForError) is not 2 to 6 digits") }
                guard let prompt = PBXPrompt(record["prompt"]) else {
                    throw record.fail("prompt", "a prompt is say:TEXT (spoken by espeak-ng) or file:NAME.wav (in the PBX's prompts directory)")
                }
                var options: [String: PBXDestination] = [:]
                for item in record["options"].split(separator: " ") {
                    let pair = item.split(separator: "=", maxSplits: 1).map(String.init)
                    guard pair.count == 2, (1...6).contains(pair[0].count), pair[0].allSatisfy({ "0123456789*#".contains($0) }) else {
                        throw record.fail("options", "\(String(item).quotedForError) is not KEYS=DESTINATION (1=ext:101 21=menu:sales 0=hangup)")
                    }
                    guard let target = PBXDestination(pair[1]) else {
                        throw record.fail("options", "\(pair[1].quotedForError) is not a destination (ext:101, group:sales, menu:main, voicemail:101, number:+34…, hangup)")
                    }
                    guard options.updateValue(target, forKey: pair[0]) == nil else { throw record.fail("options", "keys \(pair[0]) appear twice") }
                }
                guard !options.isEmpty else { throw record.fail("options", "a menu needs at least one option") }
                return .init(
                    tenant: tenant, name: name, number: number, prompt: prompt, options: options,
                    firstDigitSeconds: try record.integer("first_digit_seconds", default: 5, 1...60),
                    interDigitSeconds: try record.integer("inter_digit_seconds", default: 3, 1...30),
                    retries: try record.integer("retries", default: 2, 0...10),
                    fallback: try destination(record, "fallback", optional: true, allowed: .any) ?? .hangup, line: record.line)
            }
        }
    }

    enum Allowed { case any, forward, notCondition, inbound }

    static func destination(_ record: CSVRecord, _ column: String, optional: Bool = false, allowed: Allowed) throws(CatalogError) -> PBXDestination? {
        let text = record[column]
        if text.isEmpty {
            guard optional else { throw record.fail(column, "a destination is required") }
            return nil
        }
        guard let destination = PBXDestination(text) else {
            throw record.fail(column, "\(text.quotedForError) is not a destination (ext:101, group:sales, condition:office, number:+34911234567, hangup)")
        }
        switch (allowed, destination) {
        case (.forward, .extensionNumber), (.forward, .number), (.forward, .voicemail): return destination
        case (.forward, _):
            throw record.fail(column, "calls are forwarded to an extension (ext:101), a voicemail box (voicemail:101) or an outside number (number:+34…)")
        case (.notCondition, .condition): throw record.fail(column, "a time condition cannot lead to another time condition")
        case (.inbound, .number), (.inbound, .hangup):
            throw record.fail(column, "a DID leads to an extension, a ring group, a time condition, a menu or a voicemail box")
        default: return destination
        }
    }

    /// Every reference between catalogs: tenants exist, members and destinations exist in the same tenant, group
    /// numbers do not take an extension's number. Throws naming the catalog, line and column of the first broken one.
    public static func checkReferences(_ catalog: PBXCatalog) throws(CatalogError) {
        let tenants = Set(catalog.tenants.map(\.name))
        let extensions = Set(catalog.extensions.map { $0.tenant + "/" + $0.number })
        let groups = Set(catalog.ringGroups.map { $0.tenant + "/" + $0.name })
        let conditions = Set(catalog.timeConditions.map { $0.tenant + "/" + $0.name })
        let menus = Set(catalog.menus.map { $0.tenant + "/" + $0.name })
        let boxes = Set(catalog.extensions.filter(\.voicemail).map { $0.tenant + "/" + $0.number })
        func fail(_ kind: PBXCatalogKind, _ line: Int, _ column: String, _ detail: String) -> CatalogError {
            CatalogError("\(kind.rawValue) line \(line), column '\(column)': \(detail)")
        }
        func check(_ destination: PBXDestination?, _ tenant: String, _ kind: PBXCatalogKind, _ line: Int, _ column: String) throws(CatalogError) {
            switch destination {
            case .extensionNumber(let number) where !extensions.contains(tenant + "/" + number):
                throw fail(kind, line, column, "no extension \(number) in tenant \(tenant)")
            case .group(let name) where !groups.contains(tenant + "/" + name):
                throw fail(kind, line, column, "no ring group \(name.quotedForError) in tenant \(tenant)")
            case .condition(let name) where !conditions.contains(tenant + "/" + name):
                throw fail(kind, line, column, "no time condition \(name.quotedForError) in tenant \(tenant)")
            case .menu(let name) where !menus.contains(tenant + "/" + name):
                throw fail(kind, line, column, "no menu \(name.quotedForError) in tenant \(tenant)")
            case .voicemail(let number) where !boxes.contains(tenant + "/" + number):
                throw fail(kind, line, column, "extension \(number) of tenant \(tenant) has no voicemail box (voicemail=yes)")
            default: break
            }
        }
        for item in catalog.extensions {
            guard tenants.contains(item.tenant) else { throw fail(.extensions, item.line, "tenant", "no tenant \(item.tenant.quotedForError)") }
            try check(item.forwardAlways, item.tenant, .extensions, item.line, "forward_always")
            try check(item.forwardBusy, item.tenant, .extensions, item.line, "forward_busy")
            try check(item.forwardNoAnswer, item.tenant, .extensions, item.line, "forward_no_answer")
        }
        for group in catalog.ringGroups {
            guard tenants.contains(group.tenant) else { throw fail(.ringGroups, group.line, "tenant", "no tenant \(group.tenant.quotedForError)") }
            for member in group.members where !extensions.contains(group.tenant + "/" + member) {
                throw fail(.ringGroups, group.line, "members", "no extension \(member) in tenant \(group.tenant)")
            }
            if extensions.contains(group.tenant + "/" + group.number) {
                throw fail(.ringGroups, group.line, "number", "\(group.number) is an extension's number in tenant \(group.tenant)")
            }
            try check(group.fallback, group.tenant, .ringGroups, group.line, "fallback")
        }
        for condition in catalog.timeConditions {
            guard tenants.contains(condition.tenant) else {
                throw fail(.timeConditions, condition.line, "tenant", "no tenant \(condition.tenant.quotedForError)")
            }
            try check(condition.open, condition.tenant, .timeConditions, condition.line, "open")
            try check(condition.closed, condition.tenant, .timeConditions, condition.line, "closed")
        }
        var numbers = Set(catalog.extensions.map { $0.tenant + "/" + $0.number } + catalog.ringGroups.map { $0.tenant + "/" + $0.number })
        for menu in catalog.menus {
            guard tenants.contains(menu.tenant) else { throw fail(.menus, menu.line, "tenant", "no tenant \(menu.tenant.quotedForError)") }
            if !menu.number.isEmpty, !numbers.insert(menu.tenant + "/" + menu.number).inserted {
                throw fail(.menus, menu.line, "number", "\(menu.number) is an extension's or another group's or menu's number in tenant \(menu.tenant)")
            }
            for key in menu.options.keys.sorted() { try check(menu.options[key], menu.tenant, .menus, menu.line, "options") }
            try check(menu.fallback, menu.tenant, .menus, menu.line, "fallback")
        }
        for did in catalog.dids {
            guard tenants.contains(did.tenant) else { throw fail(.dids, did.line, "tenant", "no tenant \(did.tenant.quotedForError)") }
            try check(did.destination, did.tenant, .dids, did.line, "destination")
        }
    }

    /// The catalog of `kind` as CSV with every column, in its order; imports back to the same catalog.
    public static func render(_ kind: PBXCatalogKind, _ catalog: PBXCatalog) -> String {
        var rows: [[String]] = []
        func text(_ destination: PBXDestination?) -> String { destination?.description ?? "" }
        func flag(_ value: Bool) -> String { value ? "yes" : "no" }
        switch kind {
        case .tenants:
            for item in catalog.tenants {
                rows.append([item.name, item.customer, item.timeZone, item.callerID, item.pickupCode, item.domain == item.name ? "" : item.domain])
            }
        case .extensions:
            for item in catalog.extensions {
                rows.append([
                    item.tenant, item.number, item.name, item.password, flag(item.voicemail), text(item.forwardAlways), text(item.forwardBusy),
                    text(item.forwardNoAnswer), "\(item.noAnswerSeconds)", flag(item.doNotDisturb), flag(item.withholdCallerID), item.pickupGroup,
                    item.voicemailPIN, item.email,
                ])
            }
        case .ringGroups:
            for item in catalog.ringGroups {
                rows.append([
                    item.tenant, item.name, item.number, item.strategy.rawValue, item.members.joined(separator: " "), "\(item.memberSeconds)",
                    text(item.fallback),
                ])
            }
        case .timeConditions:
            for item in catalog.timeConditions {
                rows.append([
                    item.tenant, item.name, item.schedule.daysText, item.schedule.hoursText, item.holidays.joined(separator: " "), text(item.open),
                    text(item.closed),
                ])
            }
        case .dids:
            for item in catalog.dids { rows.append([item.number, item.tenant, text(item.destination)]) }
        case .menus:
            for item in catalog.menus {
                rows.append([
                    item.tenant, item.name, item.number, item.prompt.description,
                    item.options.keys.sorted().map { "\($0)=\(item.options[$0]!)" }.joined(separator: " "), "\(item.firstDigitSeconds)",
                    "\(item.interDigitSeconds)", "\(item.retries)", text(item.fallback),
                ])
            }
        }
        return CSVTable(header: columns(kind).all, rows: rows.enumerated().map { (line: $0.offset + 2, fields: $0.element) }).render()
    }
}

/// An IVR prompt: text spoken by Debian's `espeak-ng` (rendered once, at import and at start), or a WAV file (mono
/// 8 kHz: 16-bit PCM, µ-law or A-law) in the PBX's prompts directory. Written `say:Welcome to Acme` or `file:welcome.wav`.
public enum PBXPrompt: Sendable, Hashable, CustomStringConvertible {
    case say(String)
    case file(String)

    public init?(_ text: String) {
        if text.hasPrefix("say:") {
            let words = String(text.dropFirst(4)).trimmingCharacters(in: .whitespaces)
            guard !words.isEmpty, words.count <= 1000, !words.contains(where: \.isNewline) else { return nil }
            self = .say(words)
        } else if text.hasPrefix("file:") {
            let name = String(text.dropFirst(5))
            // A name in the prompts directory: no directories, nothing hidden.
            guard !name.isEmpty, name.count <= 128, !name.hasPrefix("."), !name.contains("/"), name.lowercased().hasSuffix(".wav") else { return nil }
            self = .file(name)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .say(let words): "say:\(words)"
        case .file(let name): "file:\(name)"
        }
    }
}
