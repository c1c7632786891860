public import ServiceLifecycle
public import TroncalLink
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import TroncalCall
import TroncalMedia
public import TroncalSIP
public import TroncalProtocol
public import TroncalRuntime
public import TroncalStore

/// The `pbx` service: the hosted multi-tenant PBX: extensions, registration, ring groups, IVR, voicemail.
///
/// Built so far: the tenant catalogs (tenants, extensions, ring groups, time conditions, DIDs) imported, exported and
/// inspected over the link (`pbx.import`, `pbx.export`, `pbx.inspect`, from the operator), stored in its database and
/// loaded at start; the registrar on the instance's `sipPort` (UDP and TCP), where the site's SBCs relay phones'
/// REGISTERs. Calls come next (docs/pbx.md).
public struct PBXService: TroncalService {
    public static let role = Role.pbx
    public static let dependencies: [Role] = []
    public static let migrations: [Migration]? = PBXCatalogManager.migrations + [BindingStore.migration, VoicemailStore.migration]

    let context: ServiceContext
    let catalogs: PBXCatalogManager
    let bindings: BindingStore
    let voicemail: VoicemailStore
    let prompts: PBXPrompts
    /// The SIP listener (its bound ports are useful with port 0).
    public let transport: SIPTransport

    public init(context: ServiceContext) async throws {
        self.context = context
        let settings = context.config.pbx
        let promptsDirectory =
            settings.promptsDirectory.isEmpty
            ? context.stateDirectory.appendingPathComponent("prompts") : context.config.resolve(settings.promptsDirectory, relativeTo: context.configDirectory)
        let prompts = PBXPrompts(directory: promptsDirectory, speech: settings.speechCommand, voice: settings.speechVoice, logger: context.logger)
        self.prompts = prompts
        catalogs = try await PBXCatalogManager(store: context.store, instance: context.instance.name, prompts: prompts, logger: context.logger)
        guard let store = context.store else { throw PBXError("the PBX needs its database (store)") }
        voicemail = VoicemailStore(store: store, directory: context.stateDirectory, instance: context.instance.name)
        bindings = BindingStore(store: store)
        let algorithms = settings.digestAlgorithms.compactMap { DigestAlgorithm(token: $0) }
        guard !algorithms.isEmpty else { throw PBXError("pbx.digestAlgorithms names no known algorithm (SHA-256, MD5)") }
        guard let nonces = DigestNonceAuthority(secret: try await bindings.sharedSecret("digest-nonce")) else {
            throw PBXError("the digest nonce secret is unusable")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let eventLoop = group.next()
        let box = RegistrarReference()
        // Only the site's SBCs (and what pbx.trustedSources adds) may speak SIP to the PBX: it is never exposed.
        let trusted = Set(context.config.instances(of: .sbc).map(\.host) + settings.trustedSources + ["127.0.0.1", "::1"])
        let refused = Counter(label: "troncal_pbx_sip_refused_total")
        let logger = context.logger
        let transport = SIPTransport(
            configuration: SIPTransportConfiguration(host: context.instance.host, udpPort: context.instance.sipPort, tcpPort: context.instance.sipPort),
            logger: context.logger, group: group
        ) { inbound in
            guard trusted.contains(inbound.source.remoteIP) else {
                refused.increment()
                logger.debug("SIP from a source that is not one of the site's SBCs dropped", metadata: ["source": "\(inbound.source)"])
                return
            }
            eventLoop.execute { box.calls?.value.loop.receive(inbound) }
        }
        self.transport = transport
        let registrarSettings = Registrar.Settings(
            minimumExpires: settings.minimumExpires, maximumExpires: settings.maximumExpires, defaultExpires: settings.defaultExpires,
            maximumContacts: settings.maximumContactsPerExtension, maximumPending: settings.maximumPendingRegistrations, algorithms: algorithms,
            instance: context.instance.name)
        let catalogs = self.catalogs
        let bindings = self.bindings
        let voicemail = self.voicemail
        let applications = PBXApplicationSettings(
            voicemailCode: settings.voicemailCode, maximumMessageSeconds: settings.voicemailMaxSeconds, silenceSeconds: settings.voicemailSilenceSeconds,
            webhook: settings.voicemailWebhook)
        let site = context.config.site
        let instance = context.instance.name
        // How long a phone (through its SBC) has to start ringing before the next contact is tried.
        let setupTimeout = Duration.seconds(8)
        // Hold music: the configured WAV (refused at start with the reason when unusable), or the built-in tune.
        var music = PBXMediaSettings.builtInTune
        if !settings.holdMusic.isEmpty {
            let url = context.config.resolve(settings.holdMusic, relativeTo: context.configDirectory)
            do {
                music = try WAVFile(contentsOf: url).samples
            } catch {
                throw PBXError("pbx.holdMusic \(url.path): \(error)")
            }
            guard !music.isEmpty else { throw PBXError("pbx.holdMusic \(url.path) holds no audio") }
        }
        let media = PBXMediaSettings(
            address: settings.mediaAddress.isEmpty ? context.instance.host : settings.mediaAddress,
            ports: settings.mediaPortMin...settings.mediaPortMax, holdMusic: music)
        box.calls = try await eventLoop.submit {
            let layer = CallLayer(configuration: .init(timers: TransactionTimers(), maximumTransactions: 65_536, loopIndex: 0, loopCount: 1), now: CallLoop.now())
            let loop = CallLoop(index: 0, eventLoop: eventLoop, layer: layer, transport: transport, logger: logger)
            let registrar = Registrar(loop: loop, catalogs: catalogs, bindings: bindings, settings: registrarSettings, nonces: nonces, logger: logger)
            let calls = PBXCalls(
                loop: loop, registrar: registrar, catalogs: catalogs, bindings: bindings, instance: instance, site: site, setupTimeout: setupTimeout,
                media: media, voicemail: voicemail, prompts: prompts, applications: applications, logger: logger)
            loop.application = calls
            return NIOLoopBound(calls, eventLoop: eventLoop)
        }.get()
    }

    public var notReadyReason: String? {
        transport.isListening ? nil : "SIP listeners not bound"
    }

    public var services: [any Service] {
        [
            CatalogRefresh(catalogs: catalogs, logger: context.logger), SIPListener(transport: transport),
            BindingSweep(bindings: bindings, logger: context.logger),
            VoicemailOutbox(
                store: voicemail,
                settings: .init(
                    mailCommand: context.config.pbx.voicemailMailCommand, mailFrom: context.config.pbx.voicemailMailFrom,
                    webhook: context.config.pbx.voicemailWebhook, retrySeconds: context.config.pbx.voicemailRetrySeconds,
                    maximumAttempts: context.config.pbx.voicemailMaxAttempts), logger: context.logger),
            PromptWarmUp(catalogs: catalogs, prompts: prompts, logger: context.logger),
        ]
    }

    public func register(_ handlers: inout LinkHandlers) {
        let catalogs = self.catalogs
        handlers.on(PBXImport.self, from: [.operator]) { request, _ in try await catalogs.receive(request) }
        handlers.on(PBXExport.self, from: [.operator]) { request, _ in try catalogs.export(request) }
        handlers.on(PBXInspect.self, from: [.operator, .monitor]) { request, _ in catalogs.inspect(request) }
        let voicemail = self.voicemail
        handlers.on(PBXVoicemailListRequest.self, from: [.operator, .monitor]) { request, _ in
            do {
                return try await voicemail.list(tenant: request.tenant, extensionNumber: request.extensionNumber)
            } catch {
                throw ProtocolError(.unavailable, "the voicemail could not be read: \(error)")
            }
        }
        let bindings = self.bindings
        handlers.on(PBXRegistrationsRequest.self, from: [.operator, .monitor]) { request, _ in
            let now = Int64(Date().timeIntervalSince1970)
            let all: [Binding]
            do {
                all = try await bindings.all(now: now, tenant: request.tenant, extensionNumber: request.extensionNumber)
            } catch {
                throw ProtocolError(.unavailable, "the registrations could not be read: \(error)")
            }
            return PBXRegistrations(
                registrations: all.map {
                        .init(
                            tenant: $0.tenant, extensionNumber: $0.extensionNumber, contact: $0.contact, path: $0.path, expiresInSeconds: $0.expires(now: now),
                            registeredAt: Date(timeIntervalSince1970: TimeInterval($0.registeredAt)), userAgent: $0.userAgent, instance: $0.instance)
                    })
        }
    }
}

/// Every 5 s, picks up catalogs another instance imported into a shared store (PostgreSQL); a failed read is logged
/// once and tried again.
struct CatalogRefresh: Service {
    let catalogs: PBXCatalogManager
    let logger: Logger

    func run() async throws {
        var failing = false
        while !Task.isCancelledOrShuttingDown {
            await Task.sleepUnlessShuttingDown(for: .seconds(5))
            do {
                try await catalogs.refresh()
                failing = false
            } catch {
                if !failing { logger.warning("PBX catalogs could not be re-read; trying again", metadata: ["reason": "\(error)"]) }
                failing = true
            }
        }
    }
}

/// Lets the transport's delivery closure reach the loop's application (calls and registrar), made after it.
final class RegistrarReference: @unchecked Sendable {
    // @unchecked: set once before the transport runs and can deliver anything; only read afterwards.
    var calls: NIOLoopBound<PBXCalls>?
}

struct SIPListener: Service {
    let transport: SIPTransport
    func run() async throws { try await transport.run() }
}

/// Every minute: expired bindings removed in one statement, and the gauge of registered contacts.
struct BindingSweep: Service {
    let bindings: BindingStore
    let logger: Logger

    func run() async throws {
        let gauge = Gauge(label: "troncal_pbx_registered_contacts")
        while !Task.isCancelledOrShuttingDown {
            do {
                let now = Int64(Date().timeIntervalSince1970)
                try await bindings.sweep(now: now)
                gauge.record(try await bindings.count(now: now))
            } catch {
                logger.warning("expired registrations not swept; tried again in a minute", metadata: ["reason": "\(error)"])
            }
            await Task.sleepUnlessShuttingDown(for: .seconds(60))
        }
    }
}

struct PBXError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Renders at start what calls will say: the menus' prompts (a `say:` prompt that cannot be spoken, or a missing file, is
/// logged here, before a caller meets it) and the PBX's own voicemail phrases.
struct PromptWarmUp: Service {
    let catalogs: PBXCatalogManager
    let prompts: PBXPrompts
    let logger: Logger

    static let phrases = [
        "Please enter your PIN, then press pound.", "That PIN is not right.", "No more messages.", "Goodbye.", "Message deleted.", "Message saved.",
        "Your message has been saved. Goodbye.", "Record your greeting after the tone, then press pound.",
    ]

    func run() async throws {
        for menu in catalogs.catalog.menus {
            do {
                _ = try await prompts.audio(menu.prompt)
            } catch {
                logger.error("IVR prompt unusable: callers hear a beep", metadata: ["tenant": "\(menu.tenant)", "menu": "\(menu.name)", "reason": "\(error)"])
            }
        }
        for phrase in Self.phrases {
            do {
                _ = try await prompts.audio(.say(phrase))
            } catch {
                logger.warning("voicemail phrases cannot be spoken: callers hear beeps", metadata: ["reason": "\(error)"])
                break
            }
        }
        // A service of the group runs until the shutdown.
        while !Task.isCancelledOrShuttingDown { await Task.sleepUnlessShuttingDown(for: .seconds(3600)) }
    }
}
