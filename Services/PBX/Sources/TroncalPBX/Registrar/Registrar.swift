internal import Foundation
internal import Logging
internal import Metrics
internal import NIOCore
internal import TroncalCall
internal import TroncalProtocol
internal import TroncalRuntime
internal import TroncalSIP

/// The PBX's registrar on its SIP port, behind the site's SBCs: REGISTER with digest (SHA-256 and MD5) against the
/// extension's password, one realm per tenant (its domain), bindings with expiry kept in the store so that every PBX
/// instance sees them, RFC 5626 flows (`+sip.instance` and `reg-id` identify a binding) and the SBC's Path (RFC 3327)
/// stored with each binding. Runs on one event loop; the store is written off the loop and the answer sent when the
/// write is done (at most `pbx.maximumPendingRegistrations` at once: more get 503 with Retry-After).
final class Registrar: CallApplication {
    struct Settings: Sendable {
        var minimumExpires: Int
        var maximumExpires: Int
        var defaultExpires: Int
        var maximumContacts: Int
        var maximumPending: Int
        var algorithms: [DigestAlgorithm]
        var instance: String
    }

    let loop: CallLoop
    let catalogs: PBXCatalogManager
    let bindings: BindingStore
    let settings: Settings
    let nonces: DigestNonceAuthority
    let logger: Logger
    private var nonceCounts = DigestNonceCountTracker()
    private var pending = 0
    private var layerReady = false
    private let results: [String: Counter]

    static let resultNames = ["registered", "unregistered", "fetched", "challenged", "forbidden", "refused", "busy", "failed"]

    init(loop: CallLoop, catalogs: PBXCatalogManager, bindings: BindingStore, settings: Settings, nonces: DigestNonceAuthority, logger: Logger) {
        self.loop = loop
        self.catalogs = catalogs
        self.bindings = bindings
        self.settings = settings
        self.nonces = nonces
        self.logger = logger
        var results: [String: Counter] = [:]
        for name in Self.resultNames { results[name] = Counter(label: "troncal_pbx_registrations_total", dimensions: [("result", name)]) }
        self.results = results
    }

    func handle(_ event: CallLayerEvent, in loop: CallLoop) {
        guard case .newRequest(let request, let id, let source) = event else { return }
        prepareLayer()
        switch request.method {
        case .register:
            register(request, id: id, source: source)
        case .options:
            guard loop.layer.serve(request, id: id, source: source, leg: nil) else { return }
            var ok = InviteServerTransaction.response(200, "OK", to: request, toTag: loop.layer.makeTag())
            ok.headers.insert(SIPHeaderField(.allow, value: "REGISTER, OPTIONS"), at: ok.headers.count - 1)
            loop.layer.respond(ok, on: id)
        case .ack:
            return
        default:
            loop.layer.answer(request, id: id, source: source, status: 501, reason: "Not Implemented")
        }
    }

    /// The Via sent-by (and Contact) of what the PBX sends: its SIP host and ports, once the transport listens. Called
    /// for every new request, REGISTER or INVITE (a call may be the first thing a restarted PBX hears).
    func prepareLayer() {
        guard !layerReady else { return }
        let host = loop.transport.configuration.host
        let address = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
        let shown = address.contains(":") ? "[\(address)]" : address
        for kind in [SIPTransportProtocol.udp, .tcp] { loop.layer.configuration.sentBy[kind] = "\(shown):\(loop.transport.port(of: kind))" }
        layerReady = true
    }

    private func count(_ result: String) { results[result]?.increment() }

    // MARK: - REGISTER

    private func register(_ request: SIPRequest, id: TransactionID, source: SIPSource) {
        guard loop.layer.serve(request, id: id, source: source, leg: nil) else { return }
        let toTag = loop.layer.makeTag()
        func reply(_ status: Int, _ reason: String, _ extra: [SIPHeaderField] = []) {
            answer(request, id: id, toTag: toTag, status, reason, extra)
        }
        guard let to = (try? request.headers.to()) ?? nil, let user = to.uri.unescapedUser.map({ String(decoding: $0, as: UTF8.self) }),
            let callID = (try? request.headers.callID()) ?? nil, let cseq = (try? request.headers.cseq()) ?? nil
        else {
            count("refused")
            return reply(400, "Bad Request", [SIPHeaderField(.warning, value: "399 troncal \"To with a user, Call-ID and CSeq needed\"")])
        }
        let catalog = catalogs.catalog
        let tenant = catalog.tenant(domain: to.uri.host)
        let known = tenant.flatMap { catalog.extension(user, of: $0.name) }
        let realm = tenant?.domain ?? to.uri.host.lowercased()
        let authenticator = DigestAuthenticator(realm: realm, nonces: nonces, algorithms: settings.algorithms)
        let now = Date()
        let challenge: (Bool) -> Void = { stale in
            self.count("challenged")
            reply(401, "Unauthorized", authenticator.challenges(now: now, stale: stale).map { SIPHeaderField(.wwwAuthenticate, value: $0.description) })
        }
        guard let header = request.headers.first(.authorization), let credentials = try? DigestCredentials(headerValue: header.valueString),
            credentials.realm == realm
        else { return challenge(false) }
        // The same work and the same answer whether the extension exists or not: no enumeration of extensions.
        let secret = known?.password ?? RandomID.uuidString()
        let verification = authenticator.verify(
            credentials, method: "REGISTER", requestURI: request.uri, username: user, secret: .password(secret), now: now, nonceCounts: &nonceCounts)
        switch verification {
        case .authenticated where known != nil:
            break
        case .stale:
            return challenge(true)
        default:
            count("forbidden")
            logger.info("registration refused: digest authentication failed", metadata: [
                "source": "\(source)", "aor": "\(user)@\(realm)", "reason": "\(verification)", "digest-uri": "\(credentials.uri)",
                "request-uri": "\(request.uri)",
            ])
            return reply(403, "Forbidden")
        }
        guard let tenant, let known else { return reply(403, "Forbidden") }
        let log: Logger.Metadata = ["tenant": "\(tenant.name)", "extension": "\(known.number)", "call-id": "\(callID)", "source": "\(source)"]

        // Contacts and their expiry.
        let nowSeconds = Int64(now.timeIntervalSince1970)
        let headerExpires = (try? request.headers.expires()) ?? nil
        let userAgent = request.headers.first(named: "User-Agent")?.valueString ?? ""
        let path = request.headers.fields(.path).map(\.valueString).joined(separator: ", ")
        var update = BindingStore.Update(
            tenant: tenant.name, extensionNumber: known.number, callID: callID, cseq: Int64(cseq.sequenceNumber), removeAll: false, bindings: [],
            maximumContacts: settings.maximumContacts)
        var outbound = false
        switch (try? request.headers.contacts()) ?? .addresses([]) {
        case .wildcard:
            guard headerExpires == 0, request.headers.count(of: .contact) == 1 else {
                count("refused")
                return reply(400, "Bad Request", [SIPHeaderField(.warning, value: "399 troncal \"Contact: * needs Expires: 0 and no other contact\"")])
            }
            update.removeAll = true
        case .addresses(let addresses):
            for address in addresses {
                let asked = address.parameters["expires"].flatMap { Int($0) } ?? headerExpires.map(Int.init) ?? settings.defaultExpires
                if asked > 0, asked < settings.minimumExpires {
                    count("refused")
                    return reply(423, "Interval Too Brief", [SIPHeaderField(.minExpires, value: "\(settings.minimumExpires)")])
                }
                let granted = min(asked, settings.maximumExpires)
                var stored = address
                stored.parameters.remove("expires")
                let key: String
                if let instance = address.parameters["+sip.instance"], let regID = address.parameters["reg-id"] {
                    key = "\(instance);reg-id=\(regID)"
                    outbound = outbound || path.contains(";ob")
                } else {
                    var uri = address.uri
                    uri.host = uri.host.lowercased()
                    key = uri.description
                }
                update.bindings.append(
                    Binding(
                        tenant: tenant.name, extensionNumber: known.number, key: key, contact: stored.description, path: path, callID: callID,
                        cseq: Int64(cseq.sequenceNumber), expiresAt: nowSeconds + Int64(granted), registeredAt: nowSeconds, userAgent: userAgent,
                        instance: settings.instance))
            }
        }
        guard pending < settings.maximumPending else {
            count("busy")
            return reply(503, "Service Unavailable", [SIPHeaderField(.retryAfter, value: "\(Int.random(in: 2...6))")])
        }
        pending += 1
        let fetchOnly = update.bindings.isEmpty && !update.removeAll
        let waiting = Waiting(
            request: request, id: id, toTag: toTag, path: path, outbound: outbound, fetchOnly: fetchOnly,
            removing: update.removeAll || (!update.bindings.isEmpty && update.bindings.allSatisfy { $0.expiresAt <= nowSeconds }), now: now,
            nowSeconds: nowSeconds, log: log)
        write(update, waiting)
    }

    /// Writes the bindings off the loop; the answer is sent on the loop when the store has answered.
    private func write(_ change: BindingStore.Update, _ waiting: Waiting) {
        let bound = NIOLoopBound(self, eventLoop: loop.eventLoop)
        Self.spawn(change, waiting, store: bindings) { outcome in bound.eventLoop.execute { bound.value.finish(waiting, outcome) } }
    }

    private static func spawn(
        _ change: BindingStore.Update, _ waiting: Waiting, store: BindingStore, then done: @escaping @Sendable (Result<[Binding], any Error>) -> Void
    ) {
        Task {
            done(await perform(change, fetchOnly: waiting.fetchOnly, on: store, now: waiting.nowSeconds))
        }
    }

    /// A REGISTER whose bindings are being written.
    struct Waiting: Sendable {
        var request: SIPRequest
        var id: TransactionID
        var toTag: String
        var path: String
        var outbound: Bool
        var fetchOnly: Bool
        var removing: Bool
        var now: Date
        var nowSeconds: Int64
        var log: Logger.Metadata
    }

    static func perform(_ change: BindingStore.Update, fetchOnly: Bool, on store: BindingStore, now: Int64) async -> Result<[Binding], any Error> {
        do {
            if fetchOnly { return .success(try await store.bindings(tenant: change.tenant, extensionNumber: change.extensionNumber, now: now)) }
            return .success(try await store.apply(change, now: now))
        } catch {
            return .failure(error)
        }
    }

    /// The store has answered: the phone gets its 200 with every binding, or why not.
    private func finish(_ waiting: Waiting, _ outcome: Result<[Binding], any Error>) {
        pending -= 1
        func reply(_ status: Int, _ reason: String, _ extra: [SIPHeaderField] = []) {
            answer(waiting.request, id: waiting.id, toTag: waiting.toTag, status, reason, extra)
        }
        let log = waiting.log
        switch outcome {
        case .success(let current):
            var fields = current.map { SIPHeaderField(.contact, value: "\($0.contact);expires=\($0.expires(now: waiting.nowSeconds))") }
            if !waiting.path.isEmpty { fields.append(SIPHeaderField(.path, value: waiting.path)) }
            fields.append(SIPHeaderField(.supported, value: "path, outbound"))
            if waiting.outbound { fields.append(SIPHeaderField(.require, value: "outbound")) }
            fields.append(SIPHeaderField(.date, value: dateFormatter.string(from: waiting.now)))
            let result = waiting.fetchOnly ? "fetched" : waiting.removing ? "unregistered" : "registered"
            count(result)
            logger.info(
                waiting.fetchOnly ? "registrations asked for" : waiting.removing ? "unregistered" : "registered",
                metadata: log.merging(["contacts": "\(current.count)"]) { $1 })
            reply(200, "OK", fields)
        case .failure(let refusal as BindingStore.Refusal):
            count("refused")
            logger.info("registration refused", metadata: log.merging(["reason": "\(refusal)"]) { $1 })
            switch refusal {
            case .outOfOrder: reply(500, "Server Internal Error", [SIPHeaderField(.retryAfter, value: "1")])
            case .tooManyContacts: reply(403, "Forbidden", [SIPHeaderField(.warning, value: "399 troncal \"\(refusal)\"")])
            }
        case .failure(let error):
            count("failed")
            logger.error("registration not stored", metadata: log.merging(["reason": "\(error)"]) { $1 })
            reply(503, "Service Unavailable", [SIPHeaderField(.retryAfter, value: "5")])
        }
        loop.flush()
    }

    private func answer(_ request: SIPRequest, id: TransactionID, toTag: String, _ status: Int, _ reason: String, _ extra: [SIPHeaderField]) {
        var response = InviteServerTransaction.response(status, reason, to: request, toTag: toTag)
        for field in extra { response.headers.insert(field, at: response.headers.count - 1) }
        loop.layer.respond(response, on: id)
    }

    /// RFC 1123 dates for the Date header; one formatter per registrar (it lives on its loop).
    private let dateFormatter: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter
    }()
}
