internal import Foundation
internal import Logging
internal import Metrics
internal import ServiceLifecycle
internal import Synchronization
internal import TroncalProtocol
internal import TroncalRuntime
internal import TroncalSIP

/// The phones registered through this SBC, by flow (transport, address, port the REGISTER came from) and, within a
/// flow, by address of record (a phone with several lines registers each from the same flow), as the PBX's 200
/// granted them: learnt when a relayed REGISTER succeeds, dropped at unregistration or expiry. Shared by the loops (a
/// lock, off the path of trunk calls). It holds nothing that is not rebuilt by the phones' next registrations: a
/// replaced SBC learns them again.
final class PhoneFlows: Sendable {
    struct Entry: Sendable {
        var aor: String
        var expiresAt: Date
        var registeredAt: Date
    }

    private let flows = Mutex<[FlowTokens.Flow: [String: Entry]]>([:])

    /// A relayed REGISTER got `response`: the line is registered on its flow until the longest expiry the 200 gives the
    /// request's contacts, or no longer registered.
    func learn(_ request: SIPRequest, response: SIPResponse, source: SIPSource, now: Date = Date()) {
        guard (200..<300).contains(response.statusCode) else { return }
        let flow = FlowTokens.Flow(transport: source.transport, host: source.remoteIP, port: source.remotePort)
        let aor = Self.aor(of: request)
        guard case .addresses(let asked)? = try? request.headers.contacts(), !asked.isEmpty else {
            // `Contact: *` removes every contact of the line; a REGISTER without Contact only asks.
            if case .wildcard? = try? request.headers.contacts() { flows.withLock { Self.set(&$0, flow, aor, nil) } }
            return
        }
        let mine = Set(asked.map { $0.uri.description })
        var longest = 0
        if case .addresses(let granted)? = try? response.headers.contacts() {
            for contact in granted where mine.contains(contact.uri.description) {
                longest = max(longest, contact.parameters["expires"].flatMap { Int($0) } ?? 0)
            }
        }
        let entry = longest > 0 ? Entry(aor: aor, expiresAt: now.addingTimeInterval(TimeInterval(longest)), registeredAt: now) : nil
        flows.withLock { Self.set(&$0, flow, aor, entry) }
    }

    /// `user@host` of the request's To (the address of record a REGISTER is for).
    static func aor(of request: SIPRequest) -> String {
        ((try? request.headers.to()) ?? nil).map { "\($0.uri.user ?? "")@\($0.uri.host.lowercased())" } ?? ""
    }

    private static func set(_ flows: inout [FlowTokens.Flow: [String: Entry]], _ flow: FlowTokens.Flow, _ aor: String, _ entry: Entry?) {
        var lines = flows[flow] ?? [:]
        lines[aor] = entry
        flows[flow] = lines.isEmpty ? nil : lines
    }

    /// The flows with a line registered now (expired lines are forgotten on the way).
    func current(now: Date = Date()) -> [FlowTokens.Flow] {
        flows.withLock { flows in
            flows = flows.compactMapValues { lines in
                let live = lines.filter { $0.value.expiresAt > now }
                return live.isEmpty ? nil : live
            }
            return Array(flows.keys)
        }
    }

    /// The line `aor` on `flow`, when registered now.
    func entry(_ flow: FlowTokens.Flow, aor: String, now: Date = Date()) -> Entry? {
        flows.withLock { $0[flow]?[aor].flatMap { $0.expiresAt > now ? $0 : nil } }
    }

    /// The lines registered on `flow` now (none: the source is not a registered phone).
    func lines(_ flow: FlowTokens.Flow, now: Date = Date()) -> [Entry] {
        flows.withLock { $0[flow].map { $0.values.filter { $0.expiresAt > now } } ?? [] }
    }

    /// Who calls from a flow with these lines: the line the INVITE's From names when it is one of them, else the line
    /// registered last (a phone that writes something else in From still calls as one of its own lines).
    static func caller(among lines: [Entry], from: String?) -> Entry? {
        if let from, let named = lines.first(where: { $0.aor == from }) { return named }
        return lines.max { $0.registeredAt < $1.registeredAt }
    }
}

/// Keeps NAT bindings of phones registered over UDP open: every `sbc.keepAliveSeconds` an OPTIONS to each registered
/// UDP flow, from the SBC's SIP port (the address and port the phone's NAT mapped), so that an idle phone behind a NAT
/// with a short UDP timeout can still be reached by a call. TCP and TLS phones keep their connection up with RFC 5626
/// CRLF pings, which the transport answers.
struct PhoneKeepAlive: Service {
    let phones: PhoneFlows
    let transport: SIPTransport
    let interval: Duration
    let advertisedAddress: String
    let logger: Logger

    func run() async throws {
        let sent = Counter(label: "troncal_sbc_keepalives_total")
        let registered = Gauge(label: "troncal_sbc_registered_flows")
        var generator = SystemRandomNumberGenerator()
        let host = advertisedAddress.contains(":") ? "[\(advertisedAddress)]" : advertisedAddress
        while !Task.isCancelledOrShuttingDown {
            await Task.sleepUnlessShuttingDown(for: interval)
            guard !Task.isCancelledOrShuttingDown else { return }
            let flows = phones.current()
            registered.record(flows.count)
            let port = transport.port(of: .udp)
            for flow in flows where flow.transport == .udp {
                let target = flow.host.contains(":") ? "[\(flow.host)]" : flow.host
                let branch = String(UInt64.random(in: 0...UInt64.max, using: &generator), radix: 36)
                var headers = SIPHeaders()
                headers.append(.via, "SIP/2.0/UDP \(host):\(port);branch=z9hG4bK\(branch);rport")
                headers.append(.from, "<sip:keepalive@\(host)>;tag=\(branch.prefix(8))")
                headers.append(.to, "<sip:\(target):\(flow.port)>")
                headers.append(.callID, "ka-\(branch)@\(host)")
                headers.append(.cseq, "1 OPTIONS")
                headers.append(.maxForwards, "70")
                headers.append(.contentLength, "0")
                guard let uri = SIPURI("sip:\(target):\(flow.port)") else { continue }
                do {
                    try await transport.send(.request(SIPRequest(method: .options, uri: uri, headers: headers)), to: flow.host, port: flow.port, transport: .udp)
                    sent.increment()
                } catch {
                    logger.debug("keep-alive not sent", metadata: ["flow": "\(flow.host):\(flow.port)", "reason": "\(error)"])
                }
            }
        }
    }
}
