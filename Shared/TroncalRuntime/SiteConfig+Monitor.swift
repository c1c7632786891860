public import TroncalProtocol

/// `monitor`: what the monitor collects, its alarm rules, escalation and notifications (see `docs/monitoring.md`).
public struct MonitorSettings: Codable, Sendable, Equatable {
    /// How often every instance of the site is scraped (`/health`, `/metrics`) and the rules evaluated.
    public var scrapeIntervalSeconds: Int = 10
    /// A scrape slower than this counts as the instance being down.
    public var scrapeTimeoutMilliseconds: Int = 5000
    /// Rules that replace the shipped defaults of the same name, or add to them.
    public var rules: [AlarmRule] = []
    /// A CSV file of rules (see docs/monitoring.md), read at start, relative to the configuration's directory; its
    /// rules replace shipped ones of the same name, and `rules` replace its. Empty: none.
    public var rulesFile: String = ""
    /// Names of shipped rules to switch off.
    public var disabledRules: [String] = []
    public var escalation: EscalationSettings = EscalationSettings()
    /// How long collected series are kept: raw samples, 1-minute and 1-hour rollups.
    public var retention: RetentionSettings = RetentionSettings()
    /// The capacity controller: the sizing rules applied to the collected figures (docs/capacity.md).
    public var capacity: CapacitySettings = CapacitySettings()
    /// Where notifications go: Alertmanager-compatible webhooks, one or more per escalation level.
    public var receivers: [ReceiverSettings] = []
    /// The receiver that gets a notification after the receiver it was meant for failed `fallbackAfterAttempts` times.
    public var fallbackReceiver: String = ""
    public var fallbackAfterAttempts: Int = 5
    /// Alertmanager's grouping, with its meanings: wait before the first notification of a new group, wait between
    /// notifications of a group that changed, and before repeating an unchanged firing group.
    public var groupWaitSeconds: Int = 30
    public var groupIntervalSeconds: Int = 300
    public var repeatIntervalSeconds: Int = 14400
    /// The labels alarms are grouped by (Alertmanager's `group_by`).
    public var groupBy: [String] = ["alertname", "site"]
    /// The NOC dashboard: address and port of the monitor's web server (each monitor instance serves it).
    public var webHost: String = "127.0.0.1"
    public var webPort: Int = 8080
    /// How long an operator's login lasts.
    public var sessionHours: Int = 12
    /// Links in notifications (`externalURL`, `generatorURL`): the dashboard's address as operators reach it.
    public var externalURL: String = ""
    /// Voice quality: the per-customer MOS notice and the carrier trunks' MOS.
    public var voice: VoiceSettings = VoiceSettings()
    /// The links to the other sites, probed every `link.probeIntervalMilliseconds` by a TCP connection to each
    /// peer's address (its monitor's link port through the VPN).
    public var siteProbes: [SiteProbeSettings] = []
    public init() {}
}

/// One entry of `monitor.siteProbes`.
public struct SiteProbeSettings: Codable, Sendable, Equatable {
    /// The other site's name (the series' `target` is `site:<name>`).
    public var site: String = ""
    public var host: String = ""
    public var port: Int = 0
    public init() {}
    public init(site: String, host: String, port: Int) {
        self.site = site
        self.host = host
        self.port = port
    }
}

/// `monitor.voice`.
public struct VoiceSettings: Codable, Sendable, Equatable {
    /// A customer whose calls' mean MOS over `windowSeconds` is below this gets a "contact the customer" notice.
    public var customerMOS: Double = 3.6
    public var windowSeconds: Int = 3600
    /// Fewer calls than this in the window: too few to judge.
    public var minimumCalls: Int = 20
    /// The window over which each carrier trunk's MOS is computed (`troncal_carrier_mos`, and what routing is told).
    public var carrierWindowSeconds: Int = 900
    /// A trunk with fewer calls in its window gets no MOS figure (and is never demoted for quality).
    public var carrierMinimumCalls: Int = 10
    /// How long each call's quality is kept for the call search.
    public var keepCallsDays: Int = 31
    public init() {}
}

/// `monitor.retention`.
public struct RetentionSettings: Codable, Sendable, Equatable {
    public var rawHours: Int = 48
    public var minuteDays: Int = 31
    public var hourMonths: Int = 13
    public init() {}
}

/// `monitor.capacity`: the capacity controller of the site's active monitor.
public struct CapacitySettings: Codable, Sendable, Equatable {
    /// `advise`: every decision is worked out, explained and recorded (history, metrics, alarm), and nothing is
    /// started or stopped; `act`: the same, and the decisions are carried out through `executor` (standby instances
    /// started, failed ones replaced, surplus ones stopped); `off`: the controller does not run.
    public var mode: String = "advise"
    /// How often the rules are applied.
    public var intervalSeconds: Int = 60
    /// The figures looked at: the last day, whose peak the service is sized for.
    public var windowSeconds: Int = 86_400
    /// The instances' loads are summed per bucket of this many seconds; the fullest bucket is the peak.
    public var bucketSeconds: Int = 60
    public var plannedLoad: Double = 0.40
    public var scaleOutLoad: Double = 0.60
    public var minimumInstances: Int = 2
    /// How long the figures must show too many instances before one is removed (a week).
    public var scaleInWindowSeconds: Int = 604_800
    /// The standby pool of the site per role, for advice: instances ready elsewhere. Instances of `instances` marked
    /// `standby` are counted too, and are the ones `act` mode starts.
    public var standby: [String: Int] = [:]
    /// In `act` mode: an instance in service that the monitor sees down or unhealthy this long is withdrawn and a
    /// standby of its role started in its place.
    public var replaceAfterSeconds: Int = 30
    /// In `act` mode: after a role's instances changed (a scale-out, scale-in or replacement carried out, or the
    /// operator's withdraw or return), the controller leaves the role's sizing alone this long, then judges it only
    /// on figures from after that time: the load moves onto a new
    /// instance (or off a removed one) first, and the old peak does not ask for the same change again.
    public var settleSeconds: Int = 300
    /// An SBC flooded: in a bucket where it dropped at least this many requests a minute from sources it had banned,
    /// its CPU is the attack's, not demand, and does not count for sizing (its calls do). The flood is the attack
    /// rule's to handle (`SBCFlood`: drained and replaced in `act` mode), not a reason to add SBCs. The shipped
    /// `SBCFlood` warning; 0 counts a flooded SBC's CPU like any other.
    public var floodRequestsPerMinute: Int = 6000
    /// How `act` mode starts and stops instances.
    public var executor: ExecutorSettings = ExecutorSettings()
    public init() {}
}

/// `monitor.capacity.executor`: `local` (the processes `troncal up` runs on this machine, through
/// `<dataDirectory>/control/desired.json`), `systemd` (`systemctl start|stop troncal-ROLE@INSTANCE.service`) or
/// `command` (`command… start|stop ROLE INSTANCE`, for a cluster scheduler). Never a shell.
public struct ExecutorSettings: Codable, Sendable, Equatable {
    public var kind: String = "local"
    /// `command`: the program and its first arguments (an absolute path first).
    public var command: [String] = []
    /// `systemd`: where systemctl is.
    public var systemctl: String = "/usr/bin/systemctl"
    /// How long a start or stop may take (an SBC's stop includes its drain).
    public var timeoutSeconds: Int = 120
    public init() {}
}

/// `monitor.escalation`.
public struct EscalationSettings: Codable, Sendable, Equatable {
    /// Unacknowledged this long at NOC level 1, an alarm goes to NOC level 2.
    public var level2Minutes: Int = 15
    /// Unacknowledged this long, a critical alarm goes to the SOC (security alarms go there at once).
    public var level3Minutes: Int = 30
    /// The length of the escalation minute in seconds: 60, shortened by tests only.
    public var minuteSeconds: Int = 60
    public init() {}

    public var policy: EscalationPolicy {
        EscalationPolicy(
            level2Minutes: Double(level2Minutes * minuteSeconds) / 60, level3Minutes: Double(level3Minutes * minuteSeconds) / 60)
    }
}

/// One entry of `monitor.receivers`.
public struct ReceiverSettings: Codable, Sendable, Equatable {
    public var name: String = ""
    /// The webhook's URL (http or https); it receives Alertmanager's v4 JSON by POST.
    public var url: String = ""
    /// The escalation levels it serves: `noc-1`, `noc-2`, `soc`.
    public var levels: [String] = ["noc-1"]
    public init() {}
    public init(name: String, url: String, levels: [String]) {
        self.name = name
        self.url = url
        self.levels = levels
    }
}

extension ConfigLoader {
    static func validateMonitor(_ config: SiteConfig, file: String) throws(ConfigError) {
        func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(file: file, key: key, message) }
        let monitor = config.monitor
        guard (1...3600).contains(monitor.scrapeIntervalSeconds) else { throw fail("monitor.scrapeIntervalSeconds", "must be from 1 to 3600") }
        guard (100...60_000).contains(monitor.scrapeTimeoutMilliseconds) else {
            throw fail("monitor.scrapeTimeoutMilliseconds", "must be from 100 to 60000")
        }
        var names = Set<String>()
        for (index, rule) in monitor.rules.enumerated() {
            if let problem = rule.problems().first { throw fail("monitor.rules[\(index)]", "\(rule.name): \(problem)") }
            guard names.insert(rule.name).inserted else { throw fail("monitor.rules[\(index)].name", "'\(rule.name)' is used twice") }
            guard rule.name != "CustomerMOSLow" else {
                throw fail("monitor.rules[\(index)].name", "CustomerMOSLow is the voice notice, set by monitor.voice (switch it off with disabledRules)")
            }
        }
        guard monitor.escalation.level2Minutes >= 0, monitor.escalation.level3Minutes >= monitor.escalation.level2Minutes else {
            throw fail("monitor.escalation.level3Minutes", "must not be below level2Minutes, and neither negative")
        }
        guard (1...60).contains(monitor.escalation.minuteSeconds) else { throw fail("monitor.escalation.minuteSeconds", "must be from 1 to 60") }
        let capacity = monitor.capacity
        guard ["advise", "act", "off"].contains(capacity.mode) else {
            throw fail("monitor.capacity.mode", "must be advise, act or off, got '\(capacity.mode)'")
        }
        guard (2...86_400).contains(capacity.replaceAfterSeconds) else { throw fail("monitor.capacity.replaceAfterSeconds", "must be from 2 to 86400") }
        guard (0...86_400).contains(capacity.settleSeconds) else { throw fail("monitor.capacity.settleSeconds", "must be from 0 to 86400") }
        guard (0...100_000_000).contains(capacity.floodRequestsPerMinute) else {
            throw fail("monitor.capacity.floodRequestsPerMinute", "must be from 0 to 100000000")
        }
        let executor = capacity.executor
        guard ["local", "systemd", "command"].contains(executor.kind) else {
            throw fail("monitor.capacity.executor.kind", "must be local, systemd or command, got '\(executor.kind)'")
        }
        if executor.kind == "command", executor.command.first?.hasPrefix("/") != true {
            throw fail("monitor.capacity.executor.command", "must name a program by its absolute path (and its first arguments)")
        }
        guard executor.systemctl.hasPrefix("/") else { throw fail("monitor.capacity.executor.systemctl", "must be an absolute path") }
        guard (1...3600).contains(executor.timeoutSeconds) else { throw fail("monitor.capacity.executor.timeoutSeconds", "must be from 1 to 3600") }
        guard (1...86_400).contains(capacity.intervalSeconds) else { throw fail("monitor.capacity.intervalSeconds", "must be from 1 to 86400") }
        guard (60...(31 * 86_400)).contains(capacity.windowSeconds) else { throw fail("monitor.capacity.windowSeconds", "must be from 60 to 2678400") }
        guard (1...3600).contains(capacity.bucketSeconds), capacity.bucketSeconds <= capacity.windowSeconds else {
            throw fail("monitor.capacity.bucketSeconds", "must be from 1 to 3600 and within the window")
        }
        guard capacity.plannedLoad > 0, capacity.plannedLoad < capacity.scaleOutLoad, capacity.scaleOutLoad <= 1 else {
            throw fail("monitor.capacity.scaleOutLoad", "need 0 < plannedLoad < scaleOutLoad <= 1")
        }
        guard capacity.minimumInstances >= 2 else { throw fail("monitor.capacity.minimumInstances", "must be at least 2") }
        guard capacity.scaleInWindowSeconds >= 0 else { throw fail("monitor.capacity.scaleInWindowSeconds", "must not be negative") }
        for (role, count) in capacity.standby where Role(rawValue: role) == nil || count < 0 {
            throw fail("monitor.capacity.standby.\(role)", "must name a role (sbc, routing, billing, pbx, monitor) with a count of 0 or more")
        }
        var receivers = Set<String>()
        for (index, receiver) in monitor.receivers.enumerated() {
            let key = "monitor.receivers[\(index)]"
            guard !receiver.name.isEmpty, receivers.insert(receiver.name).inserted else { throw fail("\(key).name", "must be non-empty and unique") }
            guard receiver.url.hasPrefix("http://") || receiver.url.hasPrefix("https://") else {
                throw fail("\(key).url", "must be an http:// or https:// URL, got '\(receiver.url)'")
            }
            for level in receiver.levels where EscalationLevel(rawValue: level) == nil {
                throw fail("\(key).levels", "'\(level)' is not one of noc-1, noc-2, soc")
            }
        }
        if !monitor.fallbackReceiver.isEmpty, !receivers.contains(monitor.fallbackReceiver) {
            throw fail("monitor.fallbackReceiver", "'\(monitor.fallbackReceiver)' is not a receiver")
        }
        guard (1...8760).contains(monitor.retention.rawHours) else { throw fail("monitor.retention.rawHours", "must be from 1 to 8760") }
        guard (1...3660).contains(monitor.retention.minuteDays) else { throw fail("monitor.retention.minuteDays", "must be from 1 to 3660") }
        guard (1...120).contains(monitor.retention.hourMonths) else { throw fail("monitor.retention.hourMonths", "must be from 1 to 120") }
        guard (1...65535).contains(monitor.webPort) else { throw fail("monitor.webPort", "must be a port number from 1 to 65535") }
        guard (1...720).contains(monitor.sessionHours) else { throw fail("monitor.sessionHours", "must be from 1 to 720") }
        let voice = monitor.voice
        guard (1.0...4.5).contains(voice.customerMOS) else { throw fail("monitor.voice.customerMOS", "must be a MOS from 1 to 4.5") }
        guard (5...86_400 * 7).contains(voice.windowSeconds) else { throw fail("monitor.voice.windowSeconds", "must be from 5 to 604800") }
        guard (5...86_400).contains(voice.carrierWindowSeconds) else { throw fail("monitor.voice.carrierWindowSeconds", "must be from 5 to 86400") }
        guard voice.minimumCalls >= 1 else { throw fail("monitor.voice.minimumCalls", "must be at least 1") }
        guard voice.carrierMinimumCalls >= 1 else { throw fail("monitor.voice.carrierMinimumCalls", "must be at least 1") }
        guard (1...3660).contains(voice.keepCallsDays) else { throw fail("monitor.voice.keepCallsDays", "must be from 1 to 3660") }
        var probed = Set<String>()
        for (index, probe) in monitor.siteProbes.enumerated() {
            let key = "monitor.siteProbes[\(index)]"
            guard !probe.site.isEmpty, probed.insert(probe.site).inserted else { throw fail("\(key).site", "must be non-empty and unique") }
            guard !probe.host.isEmpty else { throw fail("\(key).host", "must not be empty") }
            guard (1...65535).contains(probe.port) else { throw fail("\(key).port", "must be a port number from 1 to 65535") }
        }
        guard (1...100).contains(monitor.fallbackAfterAttempts) else { throw fail("monitor.fallbackAfterAttempts", "must be from 1 to 100") }
        guard monitor.groupWaitSeconds >= 0, monitor.groupIntervalSeconds >= 1, monitor.repeatIntervalSeconds >= monitor.groupIntervalSeconds else {
            throw fail("monitor.repeatIntervalSeconds", "grouping needs groupWait ≥ 0, groupInterval ≥ 1 and repeatInterval ≥ groupInterval")
        }
    }
}

/// `backup`: where the backup service keeps the isolated store and its keys, and what it backs up when (see
/// docs/backup.md).
public struct BackupSettings: Codable, Sendable, Equatable {
    /// The backup store (relative paths from `site.json`'s directory): only the backup service writes it.
    public var storeDirectory: String = "backup-store"
    /// The backup service's keys (`troncal backup keys init`): `restore.pub`, `signing.key`.
    public var keysDirectory: String = "backup-keys"
    /// How often the site's configuration and PKI directory (the CA key included) are backed up.
    public var configIntervalMinutes: Int = 1440
    /// How often every database is backed up: each SQLite instance (routing, billing, monitor, PBX) pulled over the link
    /// with `backup.snapshot`, or the PostgreSQL database dumped with `pg_dump`.
    public var databaseIntervalMinutes: Int = 1440
    /// On PostgreSQL: stream the write-ahead log with `pg_receivewal` (a replication slot `troncal_backup`) and take a
    /// physical base backup (`pg_basebackup`) every `databaseIntervalMinutes`, for point-in-time restores.
    public var postgresWAL: Bool = true
    /// How often completed WAL segments received are moved into the store.
    public var walShipSeconds: Int = 30
    /// Where the backup service keeps its drill log and scratch files (0700; never the store).
    public var workDirectory: String = "backup-work"
    /// The private restore key for scheduled drills. Empty: no scheduled drills (the key stays offline; drills are run by
    /// hand with `troncal backup drill`, and the BackupDrillStale alarm says when the last one is too old).
    public var drillPrivateKeyFile: String = ""
    /// How often scheduled drills run (each source's newest backup), when `drillPrivateKeyFile` is set.
    public var drillIntervalDays: Int = 7
    /// Grandfather-father-son retention per source.
    public var keepDaily: Int = 7
    public var keepWeekly: Int = 4
    public var keepMonthly: Int = 12
    public init() {}
}

extension ConfigLoader {
    static func validateBackup(_ config: SiteConfig, file: String) throws(ConfigError) {
        let backup = config.backup
        guard !backup.storeDirectory.isEmpty else { throw ConfigError(file: file, key: "backup.storeDirectory", "must not be empty") }
        guard !backup.keysDirectory.isEmpty else { throw ConfigError(file: file, key: "backup.keysDirectory", "must not be empty") }
        guard (1...44_640).contains(backup.configIntervalMinutes) else {
            throw ConfigError(file: file, key: "backup.configIntervalMinutes", "must be from 1 to 44640 (a month)")
        }
        guard (1...44_640).contains(backup.databaseIntervalMinutes) else {
            throw ConfigError(file: file, key: "backup.databaseIntervalMinutes", "must be from 1 to 44640 (a month)")
        }
        guard (1...90).contains(backup.drillIntervalDays) else { throw ConfigError(file: file, key: "backup.drillIntervalDays", "must be from 1 to 90") }
        guard (1...3600).contains(backup.walShipSeconds) else { throw ConfigError(file: file, key: "backup.walShipSeconds", "must be from 1 to 3600") }
        guard !backup.workDirectory.isEmpty else { throw ConfigError(file: file, key: "backup.workDirectory", "must not be empty") }
        for (key, value) in [("keepDaily", backup.keepDaily), ("keepWeekly", backup.keepWeekly), ("keepMonthly", backup.keepMonthly)] {
            guard (0...1000).contains(value) else { throw ConfigError(file: file, key: "backup.\(key)", "must be from 0 to 1000") }
        }
    }
}
