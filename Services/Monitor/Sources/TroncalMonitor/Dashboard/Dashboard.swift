internal import Foundation
internal import HTTPTypes
internal import Hummingbird
public import Logging
internal import Mustache
internal import NIOCore
public import ServiceLifecycle
internal import TroncalProtocol
public import TroncalLink
public import TroncalRuntime

/// The NOC dashboard: server-rendered HTML (Mustache templates, escaped by default), no JavaScript; charts are inline
/// SVG. Pages: `/` sites and instances, `/alarms` (firing, with ack), `/alarms/history`, `/carriers` (ASR, ACD, NER,
/// PDD, MOS, calls now), `/customers` (calls and MOS, worst first), `/links` (latency, jitter, loss, with the last
/// hour's latency as a chart), `/calls?q=` (a call by number or Call-ID with its media quality). Operators log in with a
/// name and password (`/login`) or a one-time link (`/login/link/<token>`, made by `troncal monitor login-link`);
/// the session cookie is signed with the site's key, so any monitor instance of the site accepts it.
public struct Dashboard: Service {
    let desk: AlarmDesk
    let store: MonitorStore
    let operators: Operators
    let quality: QualityStore
    let samples: SampleStore
    /// Links to the site's routing instances, asked for carrier figures (`routing.inspect`).
    let routing: [LinkClient]
    let settings: MonitorSettings
    let site: String
    let logger: Logger

    static let cookie = "troncal_session"

    public init(
        desk: AlarmDesk, store: MonitorStore, operators: Operators, quality: QualityStore, samples: SampleStore, routing: [LinkClient],
        settings: MonitorSettings, site: String, logger: Logger
    ) {
        self.desk = desk
        self.store = store
        self.operators = operators
        self.quality = quality
        self.samples = samples
        self.routing = routing
        self.settings = settings
        self.site = site
        self.logger = logger
    }

    public func run() async throws {
        let library = try Self.templates()
        let router = Router()
        let desk = desk
        let store = store
        let operators = operators
        let site = site
        let sessionHours = settings.sessionHours
        let quality = quality
        let samples = samples
        let routing = routing
        let voice = settings.voice

        @Sendable func page(_ name: String, _ object: [String: Any]) -> Response {
            var context = object
            context["site"] = site
            let body = library.render(context, withTemplate: name) ?? "template \(name) failed"
            return Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        @Sendable func redirect(_ location: String, cookie: String? = nil) -> Response {
            var headers: HTTPFields = [.location: location]
            if let cookie { headers[.setCookie] = cookie }
            return Response(status: .seeOther, headers: headers)
        }
        /// The operator of a valid session cookie whose account still has the password it logged in under (a removed
        /// operator, or one with a new password, is logged out).
        @Sendable func signedIn(_ request: Request) async -> String? {
            guard let value = request.cookies[Self.cookie]?.value else { return nil }
            return (try? await operators.operatorName(ofSession: value, at: Date())) ?? nil
        }
        @Sendable func sessionCookie(_ name: String) async throws -> String {
            let value = try await operators.session(for: name, until: Date().addingTimeInterval(Double(sessionHours) * 3600))
            return "\(Self.cookie)=\(value); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(sessionHours * 3600)"
        }

        router.get("/login") { _, _ in page("login", [:]) }
        router.post("/login") { request, _ -> Response in
            let form = try await Self.form(request)
            let name = form["name"] ?? ""
            if try await operators.verify(name, password: form["password"] ?? "") {
                logger.notice("operator logged in", metadata: ["operator": "\(name)"])
                return redirect("/", cookie: try await sessionCookie(name))
            }
            logger.warning("dashboard login refused", metadata: ["operator": "\(name)"])
            return page("login", ["error": "Wrong name or password."])
        }
        router.get("/login/link/:token") { request, context -> Response in
            let token = context.parameters.get("token") ?? ""
            guard let name = try await operators.redeem(token, at: Date()) else {
                return page("login", ["error": "That login link is unknown, used or expired."])
            }
            logger.notice("operator logged in with a one-time link", metadata: ["operator": "\(name)"])
            // `?to=/alarms`: a page of this dashboard only (a path, never another site).
            let to = request.uri.queryParameters.get("to") ?? "/"
            // Printable ASCII only: a tab or newline that browsers drop could turn "/\t/host" into "//host".
            let printable = to.unicodeScalars.allSatisfy { (0x21...0x7E).contains($0.value) }
            let target = printable && to.hasPrefix("/") && !to.hasPrefix("//") && !to.contains("\\") ? to : "/"
            return redirect(target, cookie: try await sessionCookie(name))
        }
        router.post("/logout") { _, _ in redirect("/login", cookie: "\(Self.cookie)=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0") }

        router.get("/") { request, _ -> Response in
            guard let user = await signedIn(request) else { return redirect("/login") }
            let series = await desk.latest
            let firing = await desk.firing
            return page("instances", Self.instancesPage(series: series, firing: firing, user: user))
        }
        router.get("/alarms") { request, _ -> Response in
            guard let user = await signedIn(request) else { return redirect("/login") }
            let firing = await desk.firing
            return page("alarms", ["user": user, "alarms": firing.map(Self.alarmRow), "none": firing.isEmpty])
        }
        router.post("/alarms/:fingerprint/ack") { request, context -> Response in
            guard let user = await signedIn(request) else { return redirect("/login") }
            let fingerprint = context.parameters.get("fingerprint") ?? ""
            let form = try await Self.form(request)
            _ = try? await desk.acknowledge(fingerprint, by: user, comment: form["comment"] ?? "", at: Date())
            return redirect("/alarms")
        }
        router.get("/alarms/history") { request, _ -> Response in
            guard let user = await signedIn(request) else { return redirect("/login") }
            let events = try await store.history(fingerprint: nil, limit: 500)
            return page("history", [
                "user": user,
                "events": events.map { event in
                    ["at": Self.time(event.at), "fingerprint": event.fingerprint, "event": event.event, "actor": event.actor, "detail": event.detail]
                },
            ])
        }

        router.get("/customers") { request, _ -> Response in
            guard let user = await signedIn(request) else { return redirect("/login") }
            let series = await desk.latest
            let firing = await desk.firing
            return page("customers", Self.customersPage(series: series, firing: firing, voice: voice, user: user))
        }
        router.get("/carriers") { request, _ -> Response in
            guard let user = await signedIn(request) else { return redirect("/login") }
            let series = await desk.latest
            let now = Date()
            let durations = (try? await quality.averageDurations(from: now.addingTimeInterval(-Double(voice.carrierWindowSeconds)), to: now)) ?? [:]
            var inspection: RoutingInspection?
            for client in routing {
                if let reply = try? await client.request(RoutingInspect(), timeout: .seconds(2)) {
                    inspection = reply
                    break
                }
            }
            return page("carriers", Self.carriersPage(series: series, inspection: inspection, durations: durations, voice: voice, user: user))
        }
        router.get("/links") { request, _ -> Response in
            guard let user = await signedIn(request) else { return redirect("/login") }
            let series = await desk.latest
            let now = Date()
            var history: [String: [SeriesPoint]] = [:]
            for sample in series where sample.name == "troncal_link_latency_milliseconds" {
                history[sample.seriesKey] = try? await samples.points(series: sample.seriesKey, from: now.addingTimeInterval(-3600), to: now, resolution: "raw")
            }
            return page("links", Self.linksPage(series: series, history: history, user: user))
        }
        router.get("/calls") { request, _ -> Response in
            guard let user = await signedIn(request) else { return redirect("/login") }
            let query = String((request.uri.queryParameters.get("q") ?? "").prefix(200))
            let calls = query.isEmpty ? [] : ((try? await quality.search(query)) ?? [])
            return page("calls", Self.callsPage(query: query, calls: calls, user: user))
        }

        let address = "http://\(settings.webHost):\(settings.webPort)/"
        let application = Application(
            router: router, configuration: .init(address: .hostname(settings.webHost, port: settings.webPort), serverName: "troncal-monitor"),
            onServerRunning: { _ in logger.info("NOC dashboard listening", metadata: ["address": "\(address)"]) }, logger: logger)
        do {
            try await application.run()
        } catch {
            // A port taken by something else must not take the alarms down with the dashboard.
            logger.error(
                "NOC dashboard cannot run; collection, alarms and notifications go on",
                metadata: ["address": "\(settings.webHost):\(settings.webPort)", "reason": "\(error)"])
            try? await gracefulShutdown()
        }
    }

    static func form(_ request: Request) async throws -> [String: String] {
        let body = try await request.body.collect(upTo: 64 * 1024)
        var fields: [String: String] = [:]
        for pair in String(buffer: body).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { part in
                String(part).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            if let key = parts.first { fields[key] = parts.count > 1 ? parts[1] : "" }
        }
        return fields
    }

    static func time(_ date: Date) -> String { date.formatted(.iso8601) }

    static func alarmRow(_ alarm: Alarm) -> [String: Any] {
        [
            "fingerprint": alarm.fingerprint, "rule": alarm.rule, "severity": alarm.severity.rawValue, "category": alarm.category.rawValue,
            "level": alarm.level.rawValue, "summary": alarm.summary, "since": time(alarm.startsAt), "acked": alarm.acknowledgedBy ?? "",
            "instance": alarm.labels["instance"] ?? alarm.labels["host"] ?? alarm.labels["carrier"] ?? alarm.labels["customer"] ?? "",
        ]
    }

    /// One row per instance: up, health, uptime, and its host's CPU, memory and disk with SVG bars.
    static func instancesPage(series: [MetricSample], firing: [Alarm], user: String) -> [String: Any] {
        // One pass over the series: per-instance values by (name, instance), host figures by (name, host); a page of
        // 1,000 instances must not scan every series for every cell.
        var byInstance: [String: Double] = [:]
        var byHost: [String: Double] = [:]
        for sample in series {
            if let instance = sample.labels["instance"], byInstance[sample.name + "|" + instance] == nil { byInstance[sample.name + "|" + instance] = sample.value }
            if let host = sample.labels["host"], sample.name.hasPrefix("troncal_host_"), byHost[sample.name + "|" + host] == nil {
                byHost[sample.name + "|" + host] = sample.value
            }
        }
        let instances = series.filter { $0.name == "troncal_instance_up" }.sorted { ($0.labels["instance"] ?? "") < ($1.labels["instance"] ?? "") }
        let rows: [[String: Any]] = instances.map { sample in
            let instance = sample.labels["instance"] ?? ""
            let up = sample.value >= 1
            let health = byInstance["troncal_instance_healthy|" + instance].map { $0 >= 1 ? "healthy" : $0 > 0 ? "degraded" : "unhealthy" } ?? "down"
            let host = sample.labels["host"] ?? ""
            let cpu = byHost["troncal_host_cpu_percent|" + host]
            let memory = byHost["troncal_host_memory_percent|" + host]
            let disk = byHost["troncal_host_disk_percent|" + host]
            let alarms = firing.filter { $0.labels["instance"] == instance }.count
            return [
                "instance": instance, "role": sample.labels["role"] ?? "", "state": up ? health : "down", "ok": up && health == "healthy",
                "cpu": bar(cpu), "memory": bar(memory), "disk": bar(disk), "alarms": alarms,
                "scrape": byInstance["troncal_scrape_duration_seconds|" + instance].map { String(format: "%.0f ms", $0 * 1000) } ?? "—",
            ]
        }
        return ["user": user, "instances": rows, "firing": firing.count, "none": rows.isEmpty]
    }

    static func rounded(_ value: Double?, digits: Int = 2) -> String {
        guard let value, value.isFinite else { return "—" }
        return String(format: "%.\(digits)f", value)
    }

    static func percent(_ ratio: Double?) -> String {
        guard let ratio, ratio.isFinite else { return "—" }
        return String(format: "%.0f %%", ratio * 100)
    }

    /// Customers with calls in the voice window, worst MOS first, with whether a notice is open for them. A customer
    /// whose notice is still open but who has no calls in the window now (calls stopped, or the window slid past them)
    /// stays listed with the MOS the notice was raised or last updated with, and no call count.
    static func customersPage(series: [MetricSample], firing: [Alarm], voice: VoiceSettings, user: String) -> [String: Any] {
        var calls: [String: Double] = [:]
        for sample in series where sample.name == "troncal_customer_calls" { calls[sample.labels["customer"] ?? ""] = sample.value }
        var notices: [String: Alarm] = [:]
        for alarm in firing where alarm.rule == AlarmDesk.customerNotice {
            if let customer = alarm.labels["customer"] { notices[customer] = alarm }
        }
        var figures: [(customer: String, mos: Double, calls: Int?)] = series.filter { $0.name == "troncal_customer_mos" }.map { sample in
            let customer = sample.labels["customer"] ?? ""
            return (customer, sample.value, Int(calls[customer] ?? 0))
        }
        let measured = Set(figures.map(\.customer))
        for (customer, alarm) in notices where !measured.contains(customer) { figures.append((customer, alarm.value, nil)) }
        let rows: [[String: Any]] = figures.sorted { ($0.mos, $0.customer) < ($1.mos, $1.customer) }.map { figure in
            [
                "customer": figure.customer, "mos": rounded(figure.mos), "calls": figure.calls.map(String.init) ?? "—",
                "low": figure.mos < voice.customerMOS, "notice": notices[figure.customer] != nil,
            ]
        }
        return ["user": user, "customers": rows, "none": rows.isEmpty, "window": window(voice.windowSeconds), "threshold": rounded(voice.customerMOS)]
    }

    /// A window's length as the pages say it: "15 minutes", "1 hour", "20 seconds".
    static func window(_ seconds: Int) -> String {
        if seconds % 3600 == 0 { return seconds == 3600 ? "hour" : "\(seconds / 3600) hours" }
        if seconds % 60 == 0 { return seconds == 60 ? "minute" : "\(seconds / 60) minutes" }
        return "\(seconds) seconds"
    }

    /// Every trunk routing knows, with its health and load from routing and its MOS and ACD from the voice figures.
    static func carriersPage(
        series: [MetricSample], inspection: RoutingInspection?, durations: [String: (calls: Int, seconds: Double)], voice: VoiceSettings,
        user: String
    ) -> [String: Any] {
        var mos: [String: Double] = [:]
        for sample in series where sample.name == "troncal_carrier_mos" {
            mos[(sample.labels["carrier"] ?? "") + "/" + (sample.labels["trunk"] ?? "")] = sample.value
        }
        let trunks = inspection?.trunks ?? []
        let rows: [[String: Any]] = trunks.sorted { ($0.carrier, $0.trunk) < ($1.carrier, $1.trunk) }.map { trunk in
            let key = trunk.carrier + "/" + trunk.trunk
            let trunkMOS = trunk.mos ?? mos[key]
            let duration = durations[key]
            return [
                "carrier": trunk.carrier, "trunk": trunk.trunk, "state": trunk.inService ? (trunk.demoted ? "demoted" : "in service") : "out",
                "ok": trunk.inService && !trunk.demoted, "reason": trunk.reason ?? "", "now": trunk.callsInProgress,
                "asr": percent(trunk.answerSeizureRatio), "ner": percent(trunk.networkEffectivenessRatio),
                "acd": duration.map { String(format: "%.0f s", $0.seconds) } ?? "—",
                "pdd": trunk.postDialDelayMilliseconds.map { String(format: "%.0f ms", $0) } ?? "—", "mos": rounded(trunkMOS),
                "low": (trunkMOS ?? 5) < 3.6, "calls": duration?.calls ?? 0,
            ]
        }
        return [
            "user": user, "carriers": rows, "none": rows.isEmpty, "unreachable": inspection == nil, "window": window(voice.carrierWindowSeconds),
        ]
    }

    /// Every probed link: latency, jitter and loss now, and the last hour's latency as an SVG line.
    static func linksPage(series: [MetricSample], history: [String: [SeriesPoint]], user: String) -> [String: Any] {
        var byLink: [String: [String: Double]] = [:]
        for sample in series where sample.name.hasPrefix("troncal_link_") {
            let key = (sample.labels["instance"] ?? "") + "\u{1F}" + (sample.labels["target"] ?? "")
            byLink[key, default: [:]][sample.name] = sample.value
        }
        let rows: [[String: Any]] = series.filter { $0.name == "troncal_link_latency_milliseconds" }
            .sorted { ($0.labels["instance"] ?? "", $0.labels["target"] ?? "") < ($1.labels["instance"] ?? "", $1.labels["target"] ?? "") }
            .map { sample in
                let key = (sample.labels["instance"] ?? "") + "\u{1F}" + (sample.labels["target"] ?? "")
                let figures = byLink[key] ?? [:]
                let loss = figures["troncal_link_loss_percent"]
                return [
                    "from": sample.labels["instance"] ?? "", "to": sample.labels["target"] ?? "", "latency": rounded(sample.value, digits: 1),
                    "jitter": rounded(figures["troncal_link_jitter_milliseconds"], digits: 1), "loss": rounded(loss, digits: 1),
                    "bad": sample.value > 150 || (loss ?? 0) > 1, "chart": chart(history[sample.seriesKey] ?? []),
                ]
            }
        return ["user": user, "links": rows, "none": rows.isEmpty]
    }

    /// A polyline of the points in a 240×40 box (time across, value up), with the maximum as its label.
    static func chart(_ points: [SeriesPoint]) -> [String: Any] {
        guard let first = points.first?.at, let last = points.last?.at, points.count > 1 else { return ["points": "", "max": "—"] }
        let span = max(1, last.timeIntervalSince(first))
        let top = max(1, points.map(\.maximum).max() ?? 1)
        let coordinates = points.map { point in
            String(format: "%.1f,%.1f", point.at.timeIntervalSince(first) / span * 240, 40 - min(point.average, top) / top * 38)
        }
        return ["points": coordinates.joined(separator: " "), "max": String(format: "%.0f ms", top)]
    }

    /// The calls found, newest first: who, through which carrier, and each measured direction.
    static func callsPage(query: String, calls: [CallQuality], user: String) -> [String: Any] {
        let rows: [[String: Any]] = calls.map { call in
            [
                "callID": call.callID, "source": call.source.rawValue, "customer": call.customer, "carrier": call.carrier.isEmpty ? "—" : call.carrier,
                "trunk": call.trunk, "caller": call.caller, "callee": call.callee, "end": time(call.endAt),
                "duration": String(format: "%.0f s", Double(call.durationMilliseconds) / 1000), "mos": rounded(call.mos),
                "low": (call.mos ?? 5) < 3.6,
                "streams": call.streams.map { stream in
                    [
                        "direction": stream.direction.rawValue, "codec": stream.codec, "packets": stream.packets, "lost": stream.lost,
                        "loss": rounded(stream.lossPercent, digits: 1), "jitter": rounded(stream.jitterMilliseconds, digits: 1),
                        "rtt": stream.roundTripMilliseconds.map { rounded($0, digits: 0) } ?? "—", "mos": rounded(stream.mos),
                    ] as [String: Any]
                },
            ]
        }
        return ["user": user, "query": query, "calls": rows, "searched": !query.isEmpty, "none": !query.isEmpty && rows.isEmpty]
    }

    /// A percentage as text and an SVG bar (green, amber over 60 %, red over 80 %).
    static func bar(_ percent: Double?) -> [String: Any] {
        guard let percent, percent.isFinite else { return ["text": "—", "width": 0, "color": "#ccc"] }
        let clamped = max(0, min(100, percent))
        return ["text": String(format: "%.0f %%", clamped), "width": Int(clamped), "color": clamped > 80 ? "#c0392b" : clamped > 60 ? "#e67e22" : "#27ae60"]
    }

    static func templates() throws -> MustacheLibrary {
        var library = MustacheLibrary()
        try library.register(Templates.layoutHead, named: "head")
        try library.register(Templates.layoutFoot, named: "foot")
        try library.register(Templates.login, named: "login")
        try library.register(Templates.instances, named: "instances")
        try library.register(Templates.alarms, named: "alarms")
        try library.register(Templates.history, named: "history")
        try library.register(Templates.customers, named: "customers")
        try library.register(Templates.carriers, named: "carriers")
        try library.register(Templates.links, named: "links")
        try library.register(Templates.calls, named: "calls")
        return library
    }
}

/// The dashboard's templates. `{{name}}` is HTML-escaped; nothing here uses the unescaped `{{{name}}}`.
enum Templates {
    static let layoutHead = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Troncal NOC — {{site}}</title>
        <style>
        body{font-family:system-ui,sans-serif;margin:0;color:#222}
        header{background:#1f2d3d;color:#fff;padding:.6em 1em;display:flex;gap:1.5em;align-items:center}
        header a{color:#fff}
        main{padding:1em}
        table{border-collapse:collapse;width:100%}
        th,td{border-bottom:1px solid #ddd;padding:.35em .5em;text-align:left;font-size:.92em}
        .critical{color:#c0392b;font-weight:bold}.warning{color:#e67e22;font-weight:bold}
        .down,.unhealthy,.out,.low{color:#c0392b;font-weight:bold}.degraded,.demoted{color:#e67e22}.healthy{color:#27ae60}
        </style></head><body>
        <header><strong>Troncal NOC · {{site}}</strong>
        {{#user}}<a href="/">Instances</a><a href="/alarms">Alarms</a><a href="/alarms/history">History</a><a href="/carriers">Carriers</a>
        <a href="/customers">Customers</a><a href="/links">Links</a><a href="/calls">Calls</a>
        <span>{{user}}</span><form method="post" action="/logout"><button>Log out</button></form>{{/user}}</header>
        <main>
        """
    static let layoutFoot = "</main></body></html>\n"
    static let login = """
        {{> head}}
        <h1>Log in</h1>
        {{#error}}<p class="critical">{{error}}</p>{{/error}}
        <form method="post" action="/login">
        <p><label>Name <input name="name" autocomplete="username" required></label></p>
        <p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>
        <p><button>Log in</button></p></form>
        {{> foot}}
        """
    static let instances = """
        {{> head}}
        <h1>Instances</h1>
        <p>{{firing}} alarms firing. <a href="/alarms">See them</a>.</p>
        {{#none}}<p>Nothing collected yet: the first scrape comes within one interval.</p>{{/none}}
        <table id="instances"><thead><tr><th>Instance</th><th>Role</th><th>State</th><th>Scrape</th><th>CPU</th><th>Memory</th><th>Disk</th><th>Alarms</th></tr></thead><tbody>
        {{#instances}}<tr class="instance" data-instance="{{instance}}"><td>{{instance}}</td><td>{{role}}</td><td class="{{state}}">{{state}}</td><td>{{scrape}}</td>
        {{#cpu}}<td>{{text}} <svg width="100" height="8" role="img" aria-label="CPU {{text}}"><rect width="100" height="8" fill="#eee"/><rect width="{{width}}" height="8" fill="{{color}}"/></svg></td>{{/cpu}}
        {{#memory}}<td>{{text}} <svg width="100" height="8" role="img" aria-label="memory {{text}}"><rect width="100" height="8" fill="#eee"/><rect width="{{width}}" height="8" fill="{{color}}"/></svg></td>{{/memory}}
        {{#disk}}<td>{{text}} <svg width="100" height="8" role="img" aria-label="disk {{text}}"><rect width="100" height="8" fill="#eee"/><rect width="{{width}}" height="8" fill="{{color}}"/></svg></td>{{/disk}}
        <td>{{alarms}}</td></tr>{{/instances}}
        </tbody></table>
        {{> foot}}
        """
    static let alarms = """
        {{> head}}
        <h1>Alarms firing</h1>
        {{#none}}<p>No alarm is firing.</p>{{/none}}
        <table id="alarms"><thead><tr><th>Severity</th><th>Rule</th><th>About</th><th>Level</th><th>Since</th><th>Summary</th><th>Ack</th></tr></thead><tbody>
        {{#alarms}}<tr class="alarm" data-fingerprint="{{fingerprint}}"><td class="{{severity}}">{{severity}}</td><td>{{rule}} ({{category}})</td><td>{{instance}}</td>
        <td>{{level}}</td><td>{{since}}</td><td>{{summary}}</td>
        <td>{{#acked}}by {{acked}}{{/acked}}{{^acked}}<form method="post" action="/alarms/{{fingerprint}}/ack"><input name="comment" placeholder="comment"><button>Ack</button></form>{{/acked}}</td></tr>{{/alarms}}
        </tbody></table>
        {{> foot}}
        """
    static let customers = """
        {{> head}}
        <h1>Customers</h1>
        <p>Calls and mean MOS over the last {{window}}, worst first; below {{threshold}} a customer gets a notice.</p>
        {{#none}}<p>No call quality in the window yet.</p>{{/none}}
        <table id="customers"><thead><tr><th>Customer</th><th>MOS</th><th>Calls</th><th>Notice</th></tr></thead><tbody>
        {{#customers}}<tr class="customer" data-customer="{{customer}}"><td>{{customer}}</td><td class="mos{{#low}} low{{/low}}">{{mos}}</td><td>{{calls}}</td>
        <td>{{#notice}}<a href="/alarms">open</a>{{/notice}}</td></tr>{{/customers}}
        </tbody></table>
        {{> foot}}
        """
    static let carriers = """
        {{> head}}
        <h1>Carriers</h1>
        {{#unreachable}}<p class="critical">No routing instance answered: health and load are missing.</p>{{/unreachable}}
        {{#none}}<p>No trunk known.</p>{{/none}}
        <p>ASR, NER and PDD over each trunk's last 100 attempts; ACD and MOS over the last {{window}}.</p>
        <table id="carriers"><thead><tr><th>Carrier</th><th>Trunk</th><th>State</th><th>Calls now</th><th>ASR</th><th>ACD</th><th>NER</th><th>PDD</th><th>MOS</th><th>Calls</th></tr></thead><tbody>
        {{#carriers}}<tr class="carrier" data-carrier="{{carrier}}" data-trunk="{{trunk}}"><td>{{carrier}}</td><td>{{trunk}}</td>
        <td class="{{state}}" title="{{reason}}">{{state}}</td><td>{{now}}</td><td>{{asr}}</td><td>{{acd}}</td><td>{{ner}}</td><td>{{pdd}}</td>
        <td class="mos{{#low}} low{{/low}}">{{mos}}</td><td>{{calls}}</td></tr>{{/carriers}}
        </tbody></table>
        {{> foot}}
        """
    static let links = """
        {{> head}}
        <h1>Links</h1>
        {{#none}}<p>No link probed yet.</p>{{/none}}
        <table id="links"><thead><tr><th>From</th><th>To</th><th>Latency ms</th><th>Jitter ms</th><th>Loss %</th><th>Last hour</th></tr></thead><tbody>
        {{#links}}<tr class="link" data-from="{{from}}" data-to="{{to}}"><td>{{from}}</td><td>{{to}}</td><td{{#bad}} class="low"{{/bad}}>{{latency}}</td>
        <td>{{jitter}}</td><td>{{loss}}</td>
        {{#chart}}<td><svg width="240" height="40" role="img" aria-label="latency, up to {{max}}"><rect width="240" height="40" fill="#f6f6f6"/>
        <polyline fill="none" stroke="#2c7be5" stroke-width="1.5" points="{{points}}"/></svg> {{max}}</td>{{/chart}}</tr>{{/links}}
        </tbody></table>
        {{> foot}}
        """
    static let calls = """
        {{> head}}
        <h1>Call search</h1>
        <form method="get" action="/calls"><input name="q" value="{{query}}" placeholder="number or Call-ID" size="40"><button>Search</button></form>
        {{#none}}<p>No call found for {{query}}.</p>{{/none}}
        {{#calls}}<section class="call" data-call-id="{{callID}}"><h2>{{callID}} <small>({{source}})</small></h2>
        <p>{{caller}} → {{callee}} · customer {{customer}} · carrier {{carrier}} {{trunk}} · ended {{end}} · {{duration}} ·
        MOS <span class="mos{{#low}} low{{/low}}">{{mos}}</span></p>
        <table><thead><tr><th>Direction</th><th>Codec</th><th>Packets</th><th>Lost</th><th>Loss %</th><th>Jitter ms</th><th>RTT ms</th><th>MOS</th></tr></thead><tbody>
        {{#streams}}<tr><td>{{direction}}</td><td>{{codec}}</td><td>{{packets}}</td><td>{{lost}}</td><td>{{loss}}</td><td>{{jitter}}</td><td>{{rtt}}</td><td>{{mos}}</td></tr>{{/streams}}
        </tbody></table></section>{{/calls}}
        {{> foot}}
        """
    static let history = """
        {{> head}}
        <h1>Alarm history</h1>
        <table id="history"><thead><tr><th>When</th><th>Alarm</th><th>Event</th><th>By</th><th>Detail</th></tr></thead><tbody>
        {{#events}}<tr><td>{{at}}</td><td>{{fingerprint}}</td><td>{{event}}</td><td>{{actor}}</td><td>{{detail}}</td></tr>{{/events}}
        </tbody></table>
        {{> foot}}
        """
}
