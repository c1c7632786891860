public import Foundation
public import Logging
internal import Metrics
public import TroncalSIP
import Synchronization

/// The SBC's border for every SIP message that passed the stack's strictness rules: source allow/deny
/// lists, then the flood guard (requests only). What passes goes to the call engine (`process`).
public final class SIPFrontDoor: Sendable {
    public enum RefusedSources: String, Sendable { case drop, refuse }

    public enum Decision: Sendable, Equatable {
        case respond(SIPResponse)
        case ignore
        /// Passed the border: hand it to the call engine.
        case process
    }

    let accessList: AccessList
    let refusedSources: RefusedSources
    let logger: Logger
    private let guardian: Mutex<FloodGuard>
    private let clock: @Sendable () -> Double
    private let blocked = Counter(label: "troncal_sbc_requests_blocked_total", dimensions: [("reason", "access-list")])

    public init(
        accessList: AccessList, refusedSources: RefusedSources, floodGuard: FloodGuard.Configuration, logger: Logger,
        clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.accessList = accessList
        self.refusedSources = refusedSources
        self.logger = logger
        self.guardian = Mutex(FloodGuard(configuration: floodGuard))
        self.clock = clock
    }

    public func decide(_ inbound: SIPInbound) -> Decision {
        let ip = inbound.source.remoteIP
        guard case .request(let request) = inbound.message else {
            if accessList.permits(ip) { return .process }
            blocked.increment()
            return .ignore
        }
        if !accessList.permits(ip) {
            blocked.increment()
            logger.info("SIP source refused by access list", metadata: ["source": "\(ip)"])
            return refusedSources == .refuse && request.method != .ack ? .respond(response(403, "Forbidden", to: request)) : .ignore
        }
        let userAgent = request.headers.first(named: "User-Agent")?.valueString
        // Accounts are scored only once digest authentication has verified them: a From user is anyone's to
        // claim, and scoring it would let an attacker get a real customer banned.
        let decision = guardian.withLock {
            $0.check(address: ip, port: inbound.source.remotePort, account: nil, userAgent: userAgent, now: clock())
        }
        switch decision.verdict {
        case .process:
            break
        case .drop(let reason):
            let kind = reason.replacingOccurrences(of: " ", with: "-")
            Counter(label: "troncal_sbc_requests_blocked_total", dimensions: [("reason", kind)]).increment()
            // Every drop but "banned" starts a ban (the monitor's SBCBanStorm rule reads the rate).
            if reason != "banned" { Counter(label: "troncal_sbc_bans_total", dimensions: [("reason", kind)]).increment() }
            if decision.log { logger.warning("SIP source blocked", metadata: ["source": "\(decision.subject)", "reason": "\(reason)"]) }
            return .ignore
        case .refuse(let status, let reason):
            if decision.log { logger.warning("SIP source refused", metadata: ["source": "\(decision.subject)", "reason": "\(reason)"]) }
            return .respond(response(status, "Forbidden", to: request))
        }
        return .process
    }

    /// A source answered a digest challenge correctly: it earns the higher request limit.
    public func recordAuthenticated(_ source: SIPSource, account: String) {
        guardian.withLock { $0.recordAuthenticated(address: source.remoteIP, port: source.remotePort, account: account) }
    }

    /// A source failed digest authentication; after `maximumAuthenticationFailures` it is banned.
    public func recordAuthenticationFailure(_ source: SIPSource) {
        let banned = guardian.withLock { $0.recordAuthenticationFailure(address: source.remoteIP, port: source.remotePort, now: clock()) }
        if banned {
            Counter(label: "troncal_sbc_requests_blocked_total", dimensions: [("reason", "authentication-failures")]).increment()
            Counter(label: "troncal_sbc_bans_total", dimensions: [("reason", "authentication-failures")]).increment()
            logger.warning("SIP source banned after repeated authentication failures", metadata: ["source": "\(source)"])
        }
    }

    private func response(_ status: Int, _ reason: String, to request: SIPRequest) -> SIPResponse {
        InviteServerTransaction.response(status, reason, to: request, toTag: status > 100 ? Self.tag(for: request) : nil)
    }

    /// A To tag derived from the request, so that a retransmission gets the same answer.
    static func tag(for request: SIPRequest) -> String {
        var hasher = Hasher()
        hasher.combine((try? request.headers.callID()) ?? nil)
        hasher.combine(((try? request.headers.from()) ?? nil)?.tag)
        return String(UInt64(bitPattern: Int64(hasher.finalize())), radix: 36)
    }
}
