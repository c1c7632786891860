internal import Foundation
internal import TroncalCatalog

/// Where a PBX call goes, decided from the catalogs in force: an extension's registered contacts, a number outside
/// (through the SBC, billed to the tenant's customer account), or a refusal with its SIP status.
enum PBXRoute: Sendable, Equatable {
    /// An extension's contacts (its busy and no-answer forwards apply when they fail).
    case extensionNumber(String)
    /// A ring group's members, then its fallback.
    case group(String)
    case outside(String)
    case reject(Int, String)
    /// An IVR menu: the PBX answers and plays its prompt.
    case menu(String)
    /// An extension's voicemail box: the PBX answers, plays the greeting and records a message.
    case voicemail(String)
    /// The caller's own voicemail box, by the voicemail code: the PBX answers, asks the PIN, plays the messages.
    case voicemailAccess(String)
}

/// The PBX's dial plan over one tenant's catalogs: extensions (do-not-disturb, unconditional forwarding, at most
/// `maximumHops` forwards), time conditions in the tenant's time zone (holidays closed), DIDs, numbers outside.
struct PBXDialPlan {
    let catalog: PBXCatalog
    let tenant: PBXCatalog.Tenant
    var maximumHops = 5

    /// A number dialled by an extension of the tenant.
    func dialled(_ number: String, now: Date) -> PBXRoute {
        if catalog.extension(number, of: tenant.name) != nil { return follow(.extensionNumber(number), now: now, hops: 0) }
        if let group = catalog.ringGroups.first(where: { $0.tenant == tenant.name && $0.number == number }) {
            return follow(.group(group.name), now: now, hops: 0)
        }
        if let menu = catalog.menus.first(where: { $0.tenant == tenant.name && $0.number == number }) {
            return .menu(menu.name)
        }
        // Anything else that looks like a telephone number leaves the platform: `+` and digits, or 7 digits or more
        // (shorter all-digit strings are taken for extensions that do not exist).
        let digits = number.hasPrefix("+") ? number.dropFirst() : Substring(number)
        if !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit), number.hasPrefix("+") || digits.count >= 7 {
            return .outside(number)
        }
        return .reject(404, "no extension \(number) in \(tenant.name)")
    }

    /// A destination of the catalogs (a DID's, a forward's, a time condition's branch).
    func follow(_ destination: PBXDestination, now: Date, hops: Int) -> PBXRoute {
        guard hops <= maximumHops else { return .reject(482, "more than \(maximumHops) forwards") }
        switch destination {
        case .extensionNumber(let number):
            guard let target = catalog.extension(number, of: tenant.name) else { return .reject(404, "no extension \(number) in \(tenant.name)") }
            if let forward = target.forwardAlways { return follow(forward, now: now, hops: hops + 1) }
            if target.doNotDisturb {
                // Do-not-disturb is busy: the busy forward applies.
                if let forward = target.forwardBusy { return follow(forward, now: now, hops: hops + 1) }
                return .reject(486, "extension \(number) is on do-not-disturb")
            }
            return .extensionNumber(number)
        case .number(let number):
            return .outside(number)
        case .condition(let name):
            guard let condition = catalog.timeConditions.first(where: { $0.tenant == tenant.name && $0.name == name }) else {
                return .reject(404, "no time condition \(name) in \(tenant.name)")
            }
            return follow(isOpen(condition, at: now) ? condition.open : condition.closed, now: now, hops: hops + 1)
        case .group(let name):
            guard catalog.ringGroups.contains(where: { $0.tenant == tenant.name && $0.name == name }) else {
                return .reject(404, "no ring group \(name) in \(tenant.name)")
            }
            return .group(name)
        case .menu(let name):
            guard catalog.menu(name, of: tenant.name) != nil else { return .reject(404, "no menu \(name) in \(tenant.name)") }
            return .menu(name)
        case .voicemail(let number):
            guard catalog.extension(number, of: tenant.name)?.voicemail == true else {
                return .reject(404, "extension \(number) of \(tenant.name) has no voicemail box")
            }
            return .voicemail(number)
        case .hangup:
            return .reject(603, "the destination is hang up")
        }
    }

    /// Where a call goes when what its route rang failed with `status`: an extension's busy forward (486, 600, 603)
    /// or no-answer forward (408, 480), a ring group's fallback (any failure). Nil: the failure goes to the caller.
    func afterFailure(of route: PBXRoute, status: Int, now: Date, hops: Int) -> PBXRoute? {
        switch route {
        case .extensionNumber(let number):
            guard let target = catalog.extension(number, of: tenant.name) else { return nil }
            if [486, 600, 603].contains(status), let forward = target.forwardBusy { return follow(forward, now: now, hops: hops + 1) }
            if [408, 480].contains(status), let forward = target.forwardNoAnswer { return follow(forward, now: now, hops: hops + 1) }
            // Busy or not answered (or not registered): the extension's voicemail box, when it has one.
            if target.voicemail, [408, 480, 486, 600, 603].contains(status) { return .voicemail(number) }
            return nil
        case .group(let name):
            guard let group = catalog.ringGroups.first(where: { $0.tenant == tenant.name && $0.name == name }) else { return nil }
            return follow(group.fallback, now: now, hops: hops + 1)
        case .outside, .reject, .menu, .voicemail, .voicemailAccess:
            return nil
        }
    }

    /// Whether a time condition is open at `now` in the tenant's time zone: inside its schedule and not a holiday.
    func isOpen(_ condition: PBXCatalog.TimeCondition, at now: Date) -> Bool {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: tenant.timeZone) ?? TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .weekday], from: now)
        let day = String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
        if condition.holidays.contains(day) { return false }
        // Calendar weekdays run Sunday = 1 … Saturday = 7; the schedule's Monday = 0 … Sunday = 6.
        let weekday = ((parts.weekday ?? 1) + 5) % 7
        return condition.schedule.contains(weekday: weekday, minute: (parts.hour ?? 0) * 60 + (parts.minute ?? 0))
    }
}
