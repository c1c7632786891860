public import TroncalProtocol

extension AlarmRule {
    /// The rules a monitor runs unless `monitor.rules` replaces them. Series names are those the collector writes
    /// (see `SiteScraper`) and those every instance exports.
    public static let defaults: [AlarmRule] = [
        AlarmRule(
            name: "InstanceDown", category: .service, metric: "troncal_instance_up", comparison: .below, critical: 1, forSeconds: 10,
            summary: "{{instance}} ({{role}}) does not answer its admin port",
            action: "Check the process and its host; its work goes to the other instances of its role meanwhile."),
        AlarmRule(
            name: "InstanceUnhealthy", category: .service, metric: "troncal_instance_healthy", comparison: .below, warning: 1, critical: 0.5,
            forSeconds: 30, summary: "{{instance}} reports itself degraded or unhealthy",
            action: "Read its /health: a dependency it cannot reach, or it is shutting down."),
        AlarmRule(
            name: "ScrapeSlow", category: .service, metric: "troncal_scrape_duration_seconds", warning: 1, forSeconds: 60,
            summary: "{{instance}} took {{value}} s to answer its metrics", action: "The instance or its host is overloaded: look at its CPU."),
        AlarmRule(
            name: "DependencyUnreachable", category: .service, metric: "troncal_dependency_reachable", comparison: .below, warning: 1,
            forSeconds: 30, summary: "{{instance}} cannot reach any {{dependency}} instance",
            action: "Check the {{dependency}} instances and the network between them."),
        AlarmRule(
            name: "CPUHighAtPeak", category: .capacity, metric: "troncal_host_cpu_percent", warning: 60, clear: 50, forSeconds: 300,
            summary: "{{host}} CPU at {{value}} % for 5 minutes", action: "Scale out: the service on this host passed the 60 % rule."),
        AlarmRule(
            name: "CapacityScaleOutAdvised", category: .capacity, metric: "troncal_capacity_scale_out_advised", warning: 0.5, clear: 0.5,
            summary: "{{role}}: the capacity rules call for more instances",
            action: "Read `troncal capacity history --role {{role}}`: take instances from the standby pool or provision new ones."),
        AlarmRule(
            name: "CPUCritical", category: .server, metric: "troncal_host_cpu_percent", critical: 80, clear: 70, forSeconds: 60,
            summary: "{{host}} CPU at {{value}} %", action: "Move work away from this host now; add a server."),
        AlarmRule(
            name: "MemoryHigh", category: .server, metric: "troncal_host_memory_percent", warning: 80, critical: 95, clear: 75, forSeconds: 120,
            summary: "{{host}} memory at {{value}} %", action: "Find the process that grows; add memory or a server."),
        AlarmRule(
            name: "DiskFull", category: .server, metric: "troncal_host_disk_percent", warning: 80, critical: 90, clear: 78, forSeconds: 60,
            summary: "{{host}} disk at {{value}} %", action: "Free space: spools, logs and databases stop when the disk is full."),
        AlarmRule(
            name: "LinkLoss", category: .link, metric: "troncal_link_loss_percent", warning: 1, critical: 5, clear: 0.5, forSeconds: 60,
            summary: "{{instance}} → {{target}} loses {{value}} % of probes", action: "Check the link and its VPN."),
        AlarmRule(
            name: "LinkLatency", category: .link, metric: "troncal_link_latency_milliseconds", warning: 150, critical: 400, clear: 120,
            forSeconds: 60, summary: "{{instance}} → {{target}} latency {{value}} ms", action: "Check the link; voice suffers past 150 ms one way."),
        AlarmRule(
            name: "CarrierMOSLow", category: .voice, metric: "troncal_carrier_mos", comparison: .below, warning: 3.6, critical: 3.1, clear: 3.8,
            forSeconds: 60, summary: "carrier {{carrier}} trunk {{trunk}}: MOS {{value}} over the last 15 minutes",
            action: "Calls through this carrier sound bad: open a ticket with it; routing moves it down its routes."),
        AlarmRule(
            name: "SBCBanStorm", category: .security, metric: "troncal_sbc_bans_total", function: .increasePerMinute, warning: 10,
            critical: 100, clear: 2, summary: "{{instance}} banned {{value}} sources in a minute",
            action: "A flood or a scan: check the sources and the upstream filters."),
        AlarmRule(
            name: "SBCFlood", category: .security, metric: "troncal_sbc_requests_blocked_total", function: .increasePerMinute, warning: 6000,
            critical: 60000, clear: 600, forSeconds: 10, summary: "{{instance}} dropped {{value}} requests ({{reason}}) in a minute",
            action: "A flood (one banned source is enough): filter it upstream. In act mode the capacity controller drains and replaces the SBC."),
        AlarmRule(
            name: "CDRSpoolBacklog", category: .service, metric: "troncal_sbc_cdr_spool_files", warning: 100, critical: 1000, clear: 10,
            forSeconds: 300, summary: "{{instance}} holds {{value}} unshipped summary files",
            action: "Billing is not taking call summaries: check billing and the link to it."),
        AlarmRule(
            name: "BackupStale", category: .service, metric: "troncal_backup_age_seconds", warning: 93_600, critical: 172_800, forSeconds: 60,
            summary: "the newest backup of {{source}} is {{value}} s old (over 26 h)",
            action: "Read troncal-backup's log for the reason (keys, the source's link, disk of the store); run it again once fixed."),
        AlarmRule(
            name: "BackupDrillStale", category: .service, metric: "troncal_backup_drill_age_seconds", warning: 691_200, forSeconds: 60,
            summary: "the last passed restore drill of {{source}} is {{value}} s old (over 8 days)",
            action: "Run `troncal backup drill` with the private restore key (or set backup.drillPrivateKeyFile on the drill host)."),
        AlarmRule(
            name: "BackupDrillFailed", category: .service, metric: "troncal_backup_drill_passed", comparison: .below, critical: 1,
            summary: "the last restore drill of {{source}} failed",
            action: "The backup does not restore to what was recorded: read the drill log (backup-work/drills.jsonl), keep older backups, fix the cause."),
        AlarmRule(
            name: "VoicemailDeliveryRetrying", category: .service, metric: "troncal_pbx_voicemail_deliveries_retrying", warning: 1, forSeconds: 600,
            summary: "{{instance}} has {{value}} voicemail deliveries failing and being retried",
            action: "Run troncal pbx voicemail list: the last error says why (the mail command or relay, the webhook)."),
        AlarmRule(
            name: "VoicemailDeliveryFailed", category: .service, metric: "troncal_pbx_voicemail_deliveries_failed_last_day", critical: 1,
            summary: "{{instance}} gave up {{value}} voicemail deliveries in the last 24 h",
            action: "Those messages were not e-mailed or posted: read troncal pbx voicemail list, fix the cause, tell the owners."),
    ]
}
