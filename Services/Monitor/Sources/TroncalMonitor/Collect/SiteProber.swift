internal import Foundation
public import Logging
internal import Metrics
internal import NIOCore
internal import NIOPosix
public import ServiceLifecycle
public import TroncalRuntime

/// Probes the links to the other sites (`monitor.siteProbes`): every `interval`, a TCP connection to each peer's
/// address (its monitor's link port, through the VPN), timed from the SYN to the SYN-ACK and closed at once — the
/// network's round trip without TLS or any service in it. Over the last ten probes: latency, jitter and loss, as
/// `troncal_link_latency_milliseconds`, `troncal_link_jitter_milliseconds` and `troncal_link_loss_percent` with
/// `target="site:<name>"`, beside the dependency links every instance probes; the monitor collects them from its own
/// `/metrics` like every series, so `LinkLatency` and `LinkLoss` apply to them.
struct SiteProber: Service {
    let probes: [SiteProbeSettings]
    let interval: Duration
    let timeout: Duration
    let logger: Logger

    func run() async throws {
        var windows: [String: ProbeWindow] = [:]
        var failing: Set<String> = []
        while !Task.isCancelledOrShuttingDown {
            for probe in probes {
                let roundTrip = await Self.connect(host: probe.host, port: probe.port, timeout: timeout)
                var window = windows[probe.site] ?? ProbeWindow(size: 10)
                window.record(roundTrip.value)
                windows[probe.site] = window
                let dimensions = [("target", "site:\(probe.site)")]
                Counter(label: "troncal_monitor_site_probes_total", dimensions: dimensions).increment()
                // With every probe of the window lost there is no latency: NaN, not the last figure (the rules skip NaN).
                Gauge(label: "troncal_link_latency_milliseconds", dimensions: dimensions).record(window.latencyMilliseconds ?? .nan)
                Gauge(label: "troncal_link_jitter_milliseconds", dimensions: dimensions).record(window.jitterMilliseconds ?? .nan)
                if let loss = window.lossPercent { Gauge(label: "troncal_link_loss_percent", dimensions: dimensions).record(loss) }
                if let failure = roundTrip.failure {
                    if failing.insert(probe.site).inserted {
                        logger.warning("site link probe failed", metadata: ["site": "\(probe.site)", "target": "\(probe.host):\(probe.port)", "reason": "\(failure)"])
                    }
                } else if failing.remove(probe.site) != nil {
                    logger.notice("site link answers again", metadata: ["site": "\(probe.site)", "target": "\(probe.host):\(probe.port)"])
                }
            }
            await Task.sleepUnlessShuttingDown(for: interval)
        }
    }

    /// The time a TCP connection to `host:port` takes to be established, in milliseconds; nil with the reason when it
    /// is refused, unreachable or slower than `timeout`.
    static func connect(host: String, port: Int, timeout: Duration) async -> (value: Double?, failure: String?) {
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(TimeAmount(timeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: port).get()
            let elapsed = clock.now - start
            try? await channel.close()
            let (seconds, attoseconds) = elapsed.components
            return (Double(seconds) * 1000 + Double(attoseconds) / 1e15, nil)
        } catch {
            return (nil, "\(error)")
        }
    }
}
