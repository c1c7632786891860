internal import Crypto
internal import Foundation
internal import NIOCore
internal import TroncalCall
internal import TroncalSIP

/// Phones' REGISTERs relayed to the site's PBX instances, on one loop. The phone's request keeps its Request-URI,
/// Call-ID, From, To, CSeq, Contact and credentials (the PBX checks the digest the phone computed); the SBC adds its
/// Via and a `Path` (RFC 3327) whose user part is a flow token naming the phone's transport, address and port, signed so
/// that nobody else can make one (RFC 5626 §5.2): calls to the phone come back through this SBC, to that flow. The PBX
/// instance is chosen by the address of record (the same one each time while it answers); one that does not answer
/// within `sbc.registrationAttemptMilliseconds`, or fails, is passed over for the next. Application timers of
/// registrations use call numbers at or below `-firstToken`.
struct RegistrationRelay {
    struct Target: Sendable, Equatable {
        var host: String
        var port: Int
    }

    struct Waiting {
        /// The phone's request (its answer is made from it).
        var request: SIPRequest
        var id: TransactionID
        var source: SIPSource
        /// What goes to the PBX: Max-Forwards less one, the Path, no Via or Route of the phone's.
        var forwarded: SIPRequest
        var attempt: TransactionID?
        var tried: Int
        var first: Int
    }

    static let firstToken = 1 << 40
    private var waiting: [Int: Waiting] = [:]
    private var nextToken = RegistrationRelay.firstToken
    let targets: [Target]
    /// The first `inService` targets share the work by hash; the others (the PBX standby pool, not running until the
    /// capacity controller starts one) are tried after them, in order.
    let inService: Int
    let maximumPending: Int
    let attemptTimeout: Duration
    let flows: FlowTokens

    init(targets: [Target], inService: Int? = nil, maximumPending: Int, attemptTimeout: Duration, flows: FlowTokens) {
        self.targets = targets
        // None marked (or not told): they all share.
        let marked = inService ?? targets.count
        self.inService = marked > 0 ? min(targets.count, marked) : targets.count
        self.maximumPending = maximumPending
        self.attemptTimeout = attemptTimeout
        self.flows = flows
    }

    var count: Int { waiting.count }

    /// The index of the `tried`-th target to try: the instances in service in turn from `first` (a stable hash), then
    /// the standby ones in order.
    static func hunt(_ tried: Int, first: Int, count: Int, inService: Int) -> Int {
        let shared = inService > 0 ? min(inService, count) : count
        return tried < shared ? (first + tried) % shared : tried
    }
    static func isRegistration(_ token: Int) -> Bool { token >= firstToken && !PhoneRequestRelay.isPhoneRequest(token) }

    /// Relays a REGISTER (or answers it here: no PBX in the site, too many waiting, no hops left).
    mutating func relay(_ request: SIPRequest, id: TransactionID, source: SIPSource, sentBy: String, layer: inout CallLayer) {
        guard layer.serve(request, id: id, source: source, leg: nil) else { return }
        guard !targets.isEmpty else {
            return layer.respond(InviteServerTransaction.response(405, "Method Not Allowed", to: request, toTag: layer.makeTag()), on: id)
        }
        guard waiting.count < maximumPending else {
            var busy = InviteServerTransaction.response(503, "Service Unavailable", to: request, toTag: layer.makeTag())
            busy.headers.insert(SIPHeaderField(.retryAfter, value: "\(Int.random(in: 2...6))"), at: busy.headers.count - 1)
            return layer.respond(busy, on: id)
        }
        let aor = ((try? request.headers.to()) ?? nil).map { "\($0.uri.user ?? "")@\($0.uri.host.lowercased())" } ?? ""
        // The same stable hash that places calls on loops: the same instance for an address of record each time.
        let first = Int(CallLoopRouting.hash(aor) % UInt64(max(1, inService)))
        let token = nextToken
        nextToken += 1
        waiting[token] = Waiting(request: request, id: id, source: source, forwarded: request, attempt: nil, tried: 0, first: first)
        var forwarded = request
        let hops = ((try? request.headers.maxForwards()) ?? nil).map(Int.init) ?? 70
        guard hops > 0 else {
            waiting[token] = nil
            return layer.respond(InviteServerTransaction.response(483, "Too Many Hops", to: request, toTag: layer.makeTag()), on: id)
        }
        forwarded.headers.replace(.maxForwards, with: "\(hops - 1)")
        // The SBC answers the phone itself (from `request`): the PBX sees only the SBC's Via, never the phone's
        // addresses in Via or the route the phone used to reach the SBC.
        forwarded.headers.removeAll(.via)
        forwarded.headers.removeAll(.route)
        let transport = source.transport == .udp ? "" : ";transport=\(source.transport.rawValue)"
        forwarded.headers.insert(
            SIPHeaderField(.path, value: "<sip:\(flows.make(for: source, aor: aor))@\(sentBy)\(transport);lr;ob>"),
            at: forwarded.headers.firstIndex { $0.name == .contact } ?? forwarded.headers.count - 1)
        waiting[token]?.forwarded = forwarded
        attempt(token, layer: &layer)
    }

    /// Sends the REGISTER to the next PBX instance not tried yet, or answers 503 when all were.
    private mutating func attempt(_ token: Int, layer: inout CallLayer) {
        guard var entry = waiting[token] else { return }
        guard entry.tried < targets.count else {
            waiting[token] = nil
            var unavailable = InviteServerTransaction.response(503, "Service Unavailable", to: entry.request, toTag: layer.makeTag())
            unavailable.headers.insert(SIPHeaderField(.retryAfter, value: "\(Int.random(in: 5...15))"), at: unavailable.headers.count - 1)
            return layer.respond(unavailable, on: entry.id)
        }
        let target = targets[Self.hunt(entry.tried, first: entry.first, count: targets.count, inService: inService)]
        entry.tried += 1
        entry.attempt = layer.send(entry.forwarded, on: nil, to: .address(host: target.host, port: target.port, transport: .udp), purpose: .standalone(token))
        waiting[token] = entry
        guard entry.attempt != nil else { return attempt(token, layer: &layer) }
        layer.startTimer(call: -token, timer: entry.tried, after: attemptTimeout)
    }

    /// A PBX's answer: a final one goes back to the phone with what the phone needs of it. Returns the phone's request
    /// and source (the SBC learns the phone's flow from a 200, and its border counts a 403, a failed digest).
    @discardableResult
    mutating func answered(_ token: Int, _ response: SIPResponse, from transaction: TransactionID?, layer: inout CallLayer)
        -> (request: SIPRequest, source: SIPSource)?
    {
        guard response.statusCode >= 200, let entry = waiting[token], transaction == nil || transaction == entry.attempt else { return nil }
        waiting[token] = nil
        layer.cancelTimer(call: -token, timer: entry.tried)
        let toTag = ((try? response.headers.to()) ?? nil)?.tag ?? layer.makeTag()
        var answer = InviteServerTransaction.response(response.statusCode, response.reasonPhraseString, to: entry.request, toTag: toTag)
        // The phone's own Via stack, Call-ID, From, To and CSeq; of the PBX's answer what concerns the phone.
        for field in response.headers
        where [.contact, .expires, .minExpires, .wwwAuthenticate, .path, .require, .supported, .date, .retryAfter, .warning, .allow]
            .contains(field.name)
        {
            answer.headers.insert(field, at: answer.headers.count - 1)
        }
        layer.respond(answer, on: entry.id)
        return (entry.request, entry.source)
    }

    /// The attempt failed (transport error, or the layer's own timeout): the next instance.
    mutating func failed(_ token: Int, transaction: TransactionID, layer: inout CallLayer) {
        guard let entry = waiting[token], entry.attempt == transaction else { return }
        layer.cancelTimer(call: -token, timer: entry.tried)
        attempt(token, layer: &layer)
    }

    /// No answer in time from this instance: the next one (a late answer of this attempt is ignored).
    mutating func timedOut(_ token: Int, attempt number: Int, layer: inout CallLayer) {
        guard let entry = waiting[token], entry.tried == number else { return }
        attempt(token, layer: &layer)
    }
}

/// Flow tokens (RFC 5626 §5.2) in the Path the SBC adds to a phone's REGISTER: the transport, address and port the
/// phone's REGISTER came from, with an HMAC-SHA256 under a key made at start, so that a request naming a flow was made
/// by this SBC process. A restarted SBC refuses the old tokens: phones register again within their interval (which a
/// NAT needs anyway).
struct FlowTokens: Sendable {
    struct Flow: Sendable, Hashable {
        var transport: SIPTransportProtocol
        var host: String
        var port: Int
    }

    let secret: [UInt8]
    var key: SymmetricKey { SymmetricKey(data: secret) }

    init(secret: [UInt8] = (0..<32).map { _ in UInt8.random(in: 0...255) }) {
        self.secret = secret
    }

    /// A token for the flow `source` came from and the address of record it registered there (a phone with several
    /// lines registers each from the same flow: the token says which line a call is for).
    func make(for source: SIPSource, aor: String = "") -> String {
        make(Flow(transport: source.transport, host: source.remoteIP, port: source.remotePort), aor: aor)
    }

    func make(_ flow: Flow, aor: String = "") -> String {
        let plain = Array("\(flow.transport.rawValue)|\(flow.host)|\(flow.port)|\(aor)".utf8)
        let mac = Array(HMAC<SHA256>.authenticationCode(for: plain, using: key)).prefix(12)
        return Self.base32(plain + mac)
    }

    /// The flow a token names, or nil when it is not one of this SBC's.
    func flow(_ token: String) -> Flow? { named(token)?.flow }

    /// The flow and address of record a token names, or nil when it is not one of this SBC's.
    func named(_ token: String) -> (flow: Flow, aor: String)? {
        guard let bytes = Self.unbase32(token), bytes.count > 12 else { return nil }
        let plain = Array(bytes.dropLast(12))
        let mac = Array(HMAC<SHA256>.authenticationCode(for: plain, using: key)).prefix(12)
        guard Array(bytes.suffix(12)) == Array(mac) else { return nil }
        let parts = String(decoding: plain, as: UTF8.self).split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, let transport = SIPTransportProtocol(rawValue: String(parts[0])), let port = Int(parts[2]) else { return nil }
        return (Flow(transport: transport, host: String(parts[1]), port: port), String(parts[3]))
    }

    /// Lower-case RFC 4648 base32 without padding: safe in a SIP URI's user part, case-insensitive hosts aside.
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    static func base32(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var buffer = 0
        var bits = 0
        for byte in bytes {
            buffer = buffer << 8 | Int(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[(buffer >> (bits - 5)) & 31])
                bits -= 5
            }
            buffer &= (1 << bits) - 1
        }
        if bits > 0 { out.append(alphabet[(buffer << (5 - bits)) & 31]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func unbase32(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer = 0
        var bits = 0
        for character in text.lowercased().utf8 {
            guard let value = alphabet.firstIndex(of: character) else { return nil }
            buffer = buffer << 5 | value
            bits += 5
            if bits >= 8 {
                out.append(UInt8((buffer >> (bits - 8)) & 0xFF))
                bits -= 8
            }
            buffer &= (1 << bits) - 1
        }
        return out
    }
}

/// A PBX instance's out-of-dialog requests to a registered phone (an unsolicited message-waiting `NOTIFY`, RFC 3842),
/// relayed on one loop to the phone's flow that the flow token in the Request-URI names. The phone sees the SBC's Via
/// and Contact only (the PBX's addresses stay inside); the PBX gets the phone's final answer. Tokens from `firstToken`.
struct PhoneRequestRelay {
    struct Waiting {
        var request: SIPRequest
        var id: TransactionID
    }

    static let firstToken = 1 << 50
    private var waiting: [Int: Waiting] = [:]
    private var nextToken = PhoneRequestRelay.firstToken
    let maximumPending = 4096

    static func isPhoneRequest(_ token: Int) -> Bool { token >= firstToken }

    /// Relays `request` (already served) to the phone `aor` registered on `flow`; false when it cannot go (answer it).
    mutating func relay(_ request: SIPRequest, id: TransactionID, flow: FlowTokens.Flow, aor: String, contact: String, layer: inout CallLayer) -> Bool {
        guard waiting.count < maximumPending else { return false }
        var forwarded = request
        let hops = ((try? request.headers.maxForwards()) ?? nil).map(Int.init) ?? 70
        guard hops > 0 else { return false }
        forwarded.headers.replace(.maxForwards, with: "\(hops - 1)")
        forwarded.headers.removeAll(.via)
        forwarded.headers.removeAll(.route)
        forwarded.headers.removeAll(.contact)
        forwarded.headers.insert(SIPHeaderField(.contact, value: "<sip:\(contact)>"), at: max(0, forwarded.headers.count - 1))
        let user = String(aor.split(separator: "@", maxSplits: 1).first ?? "")
        forwarded.uri = SIPURI(user: user.isEmpty ? nil : user, host: flow.host, port: UInt16(flow.port))
        let token = nextToken
        nextToken += 1
        guard layer.send(forwarded, on: nil, to: .address(host: flow.host, port: flow.port, transport: flow.transport), purpose: .standalone(token)) != nil
        else { return false }
        waiting[token] = Waiting(request: request, id: id)
        return true
    }

    /// The phone's final answer, back to the PBX (its To tag kept).
    mutating func answered(_ token: Int, _ response: SIPResponse, layer: inout CallLayer) {
        guard response.statusCode >= 200, let entry = waiting.removeValue(forKey: token) else { return }
        let toTag = ((try? response.headers.to()) ?? nil)?.tag ?? layer.makeTag()
        layer.respond(InviteServerTransaction.response(response.statusCode, response.reasonPhraseString, to: entry.request, toTag: toTag), on: entry.id)
    }

    /// No answer from the phone (timeout, transport error): 408 to the PBX.
    mutating func failed(_ token: Int, layer: inout CallLayer) {
        guard let entry = waiting.removeValue(forKey: token) else { return }
        layer.respond(InviteServerTransaction.response(408, "Request Timeout", to: entry.request, toTag: layer.makeTag()), on: entry.id)
    }
}
