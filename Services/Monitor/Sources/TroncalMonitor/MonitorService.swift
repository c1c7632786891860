internal import AsyncHTTPClient
internal import NIOHTTP1
public import Foundation
public import Logging
internal import Metrics
internal import NIOCore
public import ServiceLifecycle
public import TroncalLink
internal import TroncalCatalog
internal import TroncalControl
public import TroncalProtocol
public import TroncalRuntime
public import TroncalStore

/// The `monitor` service: scrapes every instance of the site (`/health`, `/metrics`, host figures), runs the alarm
/// rules over what it collected, stores alarms and their history, escalates them NOC 1 → NOC 2 → SOC and notifies
/// receivers with Alertmanager-compatible webhooks through a durable outbox. See `docs/monitoring.md`.
public struct MonitorService: TroncalService {
    public static let role = Role.monitor
    public static let dependencies: [Role] = []
    public static let migrations: [Migration]? = MonitorStore.migrations

    let context: ServiceContext
    let desk: AlarmDesk
    let store: MonitorStore
    let operators: Operators
    let samples: SampleStore
    let quality: QualityStore
    let capacity: CapacityHistoryStore
    let states: InstanceStateStore
    /// One link per routing instance of the site: each is told the trunks' quality (`routing.trunkQuality`).
    let routing: [LinkClient]

    public init(context: ServiceContext) async throws {
        self.context = context
        guard let sqlStore = context.store else { throw MonitorError("the monitor needs its database") }
        store = MonitorStore(store: sqlStore)
        samples = SampleStore(store: sqlStore)
        quality = QualityStore(store: sqlStore)
        capacity = CapacityHistoryStore(store: sqlStore, site: context.config.site)
        states = InstanceStateStore(store: sqlStore, site: context.config.site, instances: context.config.instances)
        routing = try context.config.instances(of: .routing).map { instance in
            try LinkClient(
                role: .routing, endpoints: [LinkEndpoint(host: instance.host, port: instance.linkPort)], credentials: context.credentials,
                logger: context.logger, maximumFrameLength: context.config.link.maximumFrameBytes)
        }
        let settings = context.config.monitor
        var fileRules: [AlarmRule] = []
        if !settings.rulesFile.isEmpty {
            let path = context.config.resolve(settings.rulesFile, relativeTo: context.configDirectory).path
            do {
                fileRules = try RulesCSV.read(try String(contentsOfFile: path, encoding: .utf8))
            } catch let error as CatalogError {
                throw ConfigError(file: path, key: "monitor.rulesFile", "\(error)")
            } catch {
                throw ConfigError(file: path, key: "monitor.rulesFile", "cannot be read: \(error)")
            }
            context.logger.info("alarm rules read from the rules file", metadata: ["file": "\(path)", "rules": "\(fileRules.count)"])
        }
        desk = try await AlarmDesk(
            store: store, settings: settings, site: context.config.site, rules: AlarmDesk.rules(settings, file: fileRules), logger: context.logger)
        operators = try await Operators(store: sqlStore)
        try await Self.ensureFirstOperator(operators, stateDirectory: context.stateDirectory, logger: context.logger)
    }

    /// With no operator yet, creates `admin` with a random password and writes both to `<state>/first-login.txt`
    /// (mode 0600): the first login of the dashboard (`troncal monitor login-link` also logs an operator in).
    static func ensureFirstOperator(_ operators: Operators, stateDirectory: URL, logger: Logger) async throws {
        guard try await operators.count() == 0 else { return }
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
        let password = String((0..<20).map { _ in alphabet.randomElement()! })
        try await operators.set("admin", password: password, at: Date())
        try FileManager.default.createDirectory(at: stateDirectory, withIntermediateDirectories: true)
        let file = stateDirectory.appendingPathComponent("first-login.txt")
        FileManager.default.createFile(atPath: file.path, contents: Data("admin \(password)\n".utf8), attributes: [.posixPermissions: 0o600])
        logger.notice("first dashboard operator created: admin, password in the file", metadata: ["file": "\(file.path)"])
    }

    public func register(_ handlers: inout LinkHandlers) {
        let desk = desk
        let store = store
        let quality = quality
        let logger = context.logger
        handlers.onMessage(QualityReports.self, from: [.sbc]) { reports, peer in
            do {
                try await quality.ingest(reports.calls)
                Counter(label: "troncal_monitor_call_quality_total").increment(by: reports.calls.count)
            } catch {
                logger.error("call quality could not be stored: these calls are missing from the voice figures", metadata: [
                    "calls": "\(reports.calls.count)", "from": "\(peer)", "reason": "\(error)",
                ])
            }
        }
        handlers.on(AlarmListRequest.self, from: [.operator]) { request, _ in
            let since = request.resolvedHours > 0 ? Date().addingTimeInterval(-request.resolvedHours * 3600) : nil
            return AlarmList(alarms: try await store.alarms(category: request.category, resolvedSince: since))
        }
        handlers.on(AlarmAcknowledge.self, from: [.operator]) { request, peer in
            do {
                let by = request.by.isEmpty ? peer.description : request.by
                return AlarmActionResult(alarm: try await desk.acknowledge(request.fingerprint, by: by, comment: request.comment, at: Date()))
            } catch let error as MonitorError {
                throw ProtocolError(.badRequest, error.description)
            }
        }
        handlers.on(AlarmSilence.self, from: [.operator]) { request, peer in
            do {
                let by = request.by.isEmpty ? peer.description : request.by
                return AlarmActionResult(alarm: try await desk.silence(request.fingerprint, until: request.until, reason: request.reason, by: by, at: Date()))
            } catch let error as MonitorError {
                throw ProtocolError(.badRequest, error.description)
            }
        }
        let operators = operators
        let web = context.config.monitor
        handlers.on(LoginLinkRequest.self, from: [.operator]) { request, _ in
            do {
                let token = try await operators.loginLink(for: request.operatorName, minutes: max(1, min(request.minutes, 1440)), at: Date())
                let host = web.webHost == "0.0.0.0" ? "127.0.0.1" : web.webHost
                let dashboard = web.externalURL.isEmpty ? "http://\(host):\(web.webPort)" : web.externalURL
                return LoginLink(path: "/login/link/\(token)", dashboard: dashboard)
            } catch let error as MonitorError {
                throw ProtocolError(.badRequest, error.description)
            }
        }
        handlers.on(OperatorRequest.self, from: [.operator]) { request, peer in
            do {
                switch request.action {
                case .list: break
                case .set:
                    try await operators.set(request.operatorName, password: request.password, at: Date())
                    logger.notice("dashboard operator set", metadata: ["operator": "\(request.operatorName)", "by": "\(peer)"])
                case .remove:
                    try await operators.remove(request.operatorName)
                    logger.notice("dashboard operator removed", metadata: ["operator": "\(request.operatorName)", "by": "\(peer)"])
                }
                return OperatorList(operators: try await operators.list().map { OperatorList.Account(name: $0.name, createdAt: $0.createdAt) })
            } catch let error as MonitorError {
                throw ProtocolError(.badRequest, error.description)
            }
        }
        let capacity = capacity
        handlers.on(CapacityHistoryRequest.self, from: [.operator]) { request, _ in
            CapacityHistory(events: try await capacity.history(role: request.role, limit: request.limit))
        }
        let controller = self.controller
        handlers.on(CapacityWithdrawRequest.self, from: [.operator]) { request, peer in
            do {
                let by = request.by.isEmpty ? peer.description : request.by
                return CapacityWithdrawal(
                    event: try await controller.withdraw(request.instance, reason: request.reason, compromised: request.compromised, by: by))
            } catch let error as CapacityError {
                throw ProtocolError(.badRequest, error.description)
            }
        }
        handlers.on(CapacityReturnRequest.self, from: [.operator]) { request, peer in
            do {
                let by = request.by.isEmpty ? peer.description : request.by
                return CapacityInstanceState(instance: request.instance, state: try await controller.returnToPool(request.instance, by: by).rawValue)
            } catch let error as CapacityError {
                throw ProtocolError(.badRequest, error.description)
            }
        }
        handlers.on(AlarmHistoryRequest.self, from: [.operator]) { request, _ in
            AlarmHistory(events: try await store.history(fingerprint: request.fingerprint, limit: request.limit))
        }
    }

    /// The site's capacity controller as this instance runs it (active or standing by).
    var controller: CapacityController {
        let settings = context.config.monitor
        return CapacityController(
            samples: samples, history: capacity, states: states, settings: settings.capacity, site: context.config.site,
            instances: context.config.instances, sbcMaximumCalls: context.config.sbc.maximumCalls, me: context.instance.name,
            scrapeIntervalSeconds: settings.scrapeIntervalSeconds,
            executor: settings.capacity.mode == "act"
                ? CapacityController.executor(
                    settings.capacity.executor, dataDirectory: context.config.resolve(context.config.dataDirectory, relativeTo: context.configDirectory))
                : nil,
            alarms: store, logger: context.logger)
    }

    public var services: [any Service] {
        let settings = context.config.monitor
        let targets = context.config.instances.map(ScrapeTarget.init)
        return [
            CollectorLoop(
                desk: desk, samples: samples, quality: quality,
                routing: Array(zip(context.config.instances(of: .routing).map(\.name), routing)), voice: settings.voice, targets: targets,
                states: states, site: context.config.site,
                interval: .seconds(settings.scrapeIntervalSeconds), timeout: .milliseconds(settings.scrapeTimeoutMilliseconds),
                linkTimeout: .milliseconds(context.config.link.requestTimeoutMilliseconds), logger: context.logger),
            SampleMaintenance(
                samples: samples, quality: quality, keepCallsDays: settings.voice.keepCallsDays,
                retention: SampleRetention(
                    rawHours: settings.retention.rawHours, minuteDays: settings.retention.minuteDays, hourMonths: settings.retention.hourMonths),
                logger: context.logger),
            NotificationSender(desk: desk, store: store, settings: settings, logger: context.logger),
            controller,

            Dashboard(
                desk: desk, store: store, operators: operators, quality: quality, samples: samples, routing: routing, settings: settings,
                site: context.config.site, logger: context.logger),
        ] + (settings.siteProbes.isEmpty ? [] : [
            // A service that returns ends the group: only with probes to run.
            SiteProber(
                probes: settings.siteProbes, interval: .milliseconds(context.config.link.probeIntervalMilliseconds),
                timeout: .milliseconds(min(context.config.link.requestTimeoutMilliseconds, 2000)), logger: context.logger)
        ])
    }
}

/// Scrapes the site every interval and hands the series to the desk; between rounds, escalations and notification
/// groups come due on their own time.
struct CollectorLoop: Service {
    let desk: AlarmDesk
    let samples: SampleStore
    let quality: QualityStore
    /// Each routing instance's name and link.
    let routing: [(name: String, client: LinkClient)]
    let voice: VoiceSettings
    let targets: [ScrapeTarget]
    /// Standby and withdrawn instances are not scraped (nor alarmed on).
    let states: InstanceStateStore
    let site: String
    let interval: Duration
    let timeout: Duration
    let linkTimeout: Duration
    let logger: Logger

    func run() async throws {
        let scraper = SiteScraper(timeout: timeout)
        var failing: Set<String> = []
        while !Task.isCancelledOrShuttingDown {
            var entries = states.configured
            do {
                entries = try await states.entries()
            } catch {
                logger.error("instance states could not be read; the configured ones are scraped", metadata: ["reason": "\(error)"])
            }
            let out = Set(entries.filter { $0.state != .service }.map(\.instance.name))
            let results = await scraper.scrape(targets.filter { !out.contains($0.instance) })
            for result in results {
                let instance = result.target.instance
                Timer(label: "troncal_monitor_scrape_seconds", dimensions: [("instance", instance)])
                    .recordNanoseconds(Int64(result.durationSeconds * 1e9))
                if let failure = result.failure {
                    if failing.insert(instance).inserted {
                        logger.warning("instance scrape failed", metadata: ["instance": "\(instance)", "reason": "\(failure)", "site": "\(site)"])
                    }
                    Counter(label: "troncal_monitor_scrape_failures_total", dimensions: [("instance", instance)]).increment()
                } else if failing.remove(instance) != nil {
                    logger.info("instance scraped again", metadata: ["instance": "\(instance)", "site": "\(site)"])
                }
            }
            let now = Date()
            var series = SiteSnapshot.series(of: results, site: site)
            let voiceRound = await voiceFigures(at: now)
            series += voiceRound.series
            do {
                try await desk.collected(series, at: now)
            } catch {
                logger.error("alarm evaluation could not be stored; tried again next round", metadata: ["reason": "\(error)"])
            }
            if let window = voiceRound.customerWindow {
                do {
                    try await desk.voiceRound(window, at: now)
                } catch {
                    logger.error("voice notices could not be stored; tried again next round", metadata: ["reason": "\(error)"])
                }
            }
            do {
                try await samples.ingest(series, at: now)
            } catch {
                logger.error("collected samples could not be stored: this round is missing from the history", metadata: ["reason": "\(error)"])
            }
            if let trunks = voiceRound.trunks { await tellRouting(trunks, at: now, skipping: out) }
            await Task.sleepUnlessShuttingDown(for: interval)
        }
        await scraper.shutdown()
        for (_, client) in routing { await client.close() }
    }

    /// The voice windows from the store: the customer window (for the notices) and the trunks' MOS over the carrier
    /// window, with their series. Nil parts when the store could not be read (logged; the next round tries again).
    func voiceFigures(at now: Date) async -> (series: [MetricSample], customerWindow: [QualityAggregate]?, trunks: [TrunkQualityReport.Trunk]?) {
        do {
            let customerWindow = try await quality.aggregates(from: now.addingTimeInterval(-Double(voice.windowSeconds)), to: now)
            let carrierWindow = voice.carrierWindowSeconds == voice.windowSeconds
                ? customerWindow : try await quality.aggregates(from: now.addingTimeInterval(-Double(voice.carrierWindowSeconds)), to: now)
            let trunks = VoiceAnalyzer.trunks(carrierWindow, minimumCalls: voice.carrierMinimumCalls)
            return (VoiceAnalyzer.series(trunks: trunks, customerWindow: customerWindow, site: site), customerWindow, trunks)
        } catch {
            logger.error("call quality windows could not be read; voice figures skipped this round", metadata: ["reason": "\(error)"])
            return ([], nil, nil)
        }
    }

    /// Every routing instance is told each trunk's MOS (all of them, so that a recovered trunk is no longer listed).
    /// The report is valid for three rounds: a monitor that stops reporting demotes nothing.
    func tellRouting(_ trunks: [TrunkQualityReport.Trunk], at now: Date, skipping out: Set<String> = []) async {
        let report = TrunkQualityReport(
            windowSeconds: voice.carrierWindowSeconds, trunks: trunks, at: now, validSeconds: max(30, 3 * Int(interval.components.seconds)))
        // Standby and withdrawn routing instances are not running: not told.
        for (name, client) in routing where !out.contains(name) {
            do {
                try await client.send(report, timeout: linkTimeout)
            } catch {
                logger.info("trunk quality not delivered to routing", metadata: ["routing-instance": "\(name)", "reason": "\(error)"])
            }
        }
    }
}

/// Sends the outbox: each due notification is POSTed to its receiver; a 2xx marks it sent, anything else is tried
/// again with capped backoff (1 s doubling to 5 min); after `fallbackAfterAttempts` failures it goes to the fallback
/// receiver instead. The outbox is in the database, so a restart neither loses a pending notification nor sends one
/// before its time. Also moves notification groups and escalations along every second.
struct NotificationSender: Service {
    let desk: AlarmDesk
    let store: MonitorStore
    let settings: MonitorSettings
    let logger: Logger

    func run() async throws {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(10))
        configuration.redirectConfiguration = .disallow
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let receivers = Dictionary(settings.receivers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        while !Task.isCancelledOrShuttingDown {
            let now = Date()
            do {
                try await desk.tick(at: now)
                try await desk.flushNotifications(at: now)
                for item in try await store.due(at: now) {
                    await deliver(item, receivers: receivers, client: client)
                }
            } catch {
                logger.error("notification outbox could not be worked; tried again in a second", metadata: ["reason": "\(error)"])
            }
            await Task.sleepUnlessShuttingDown(for: .seconds(1))
        }
        try? await client.shutdown()
    }

    /// One attempt at `now` (the sender passes the clock's time; tests pass their own).
    func deliver(_ item: OutboxNotification, receivers: [String: ReceiverSettings], client: HTTPClient, at now: Date = Date()) async {
        let attempts = item.attempts + 1
        let metadata: Logger.Metadata = ["receiver": "\(item.receiver)", "notification": "\(item.id)", "attempt": "\(attempts)"]
        var failure: String
        if let receiver = receivers[item.receiver] {
            var request = HTTPClientRequest(url: receiver.url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "troncal-monitor/\(TroncalVersion.current)")
            request.body = .bytes(ByteBuffer(string: item.payload))
            do {
                let response = try await client.execute(request, timeout: .seconds(10))
                _ = try? await response.body.collect(upTo: 1 << 20)
                if (200..<300).contains(response.status.code) {
                    try? await store.markSent(item.id, attempts: attempts, at: now)
                    Counter(label: "troncal_monitor_notifications_total", dimensions: [("receiver", item.receiver), ("outcome", "sent")]).increment()
                    logger.info("notification sent", metadata: metadata)
                    for fingerprint in item.fingerprints {
                        try? await store.note(fingerprint: fingerprint, startsAt: .distantPast, at: now, event: "notified", detail: item.receiver)
                    }
                    return
                }
                failure = "\(receiver.url) answered \(response.status.code)"
            } catch {
                failure = "\(receiver.url): \(error)"
            }
        } else {
            failure = "receiver '\(item.receiver)' is no longer configured"
        }
        Counter(label: "troncal_monitor_notifications_total", dimensions: [("receiver", item.receiver), ("outcome", "failed")]).increment()
        let fallback = settings.fallbackReceiver
        if attempts >= settings.fallbackAfterAttempts, !fallback.isEmpty, fallback != item.receiver {
            logger.error("notification failed; sent to the fallback receiver", metadata: metadata.merging(["reason": "\(failure)", "fallback": "\(fallback)"]) { $1 })
            let rerouted = OutboxNotification(
                id: RandomID.uuidString(), receiver: fallback, groupKey: item.groupKey, payload: item.payload, createdAt: now,
                fingerprints: item.fingerprints)
            try? await store.enqueue([rerouted])
            try? await store.markFailed(item.id, attempts: attempts, error: failure + " (handed to \(fallback))", next: nil, at: now)
            return
        }
        // Without a fallback, keep trying (capped at 5 minutes apart) for a day.
        let giveUp = attempts >= max(settings.fallbackAfterAttempts, 300)
        let delay = min(300, pow(2, Double(min(attempts - 1, 16))))
        logger.warning("notification failed; tried again later", metadata: metadata.merging(["reason": "\(failure)", "retry-seconds": "\(Int(delay))"]) { $1 })
        try? await store.markFailed(item.id, attempts: attempts, error: failure, next: giveUp ? nil : now.addingTimeInterval(delay), at: now)
    }
}

/// Rolls raw samples up into minutes and hours every minute, and drops what is past the retention every hour.
struct SampleMaintenance: Service {
    let samples: SampleStore
    let quality: QualityStore
    let keepCallsDays: Int
    let retention: SampleRetention
    let logger: Logger

    func run() async throws {
        var lastPrune = Date.distantPast
        while !Task.isCancelledOrShuttingDown {
            let now = Date()
            do {
                try await samples.rollUp(until: now)
                if now.timeIntervalSince(lastPrune) >= 3600 {
                    let removed = try await samples.prune(retention, at: now) + quality.prune(keepDays: keepCallsDays, at: now)
                    lastPrune = now
                    if removed > 0 { logger.info("old samples removed", metadata: ["rows": "\(removed)"]) }
                }
            } catch {
                logger.error("sample rollup or pruning failed; tried again in a minute", metadata: ["reason": "\(error)"])
            }
            await Task.sleepUnlessShuttingDown(for: .seconds(60))
        }
    }
}
