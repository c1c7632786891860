internal import Foundation
public import Logging
internal import Metrics
public import ServiceLifecycle

/// Publishes the host's figures on the service's `/metrics` every `interval`, so that the monitor reads CPU, load,
/// memory, disk and network from every instance it scrapes (a host's figures appear once per instance on it).
///
/// | metric | kind | meaning |
/// |---|---|---|
/// | `troncal_host_cpu_percent` | gauge | busy CPU over the last interval, all CPUs together (0–100) |
/// | `troncal_host_cpus` | gauge | online CPUs |
/// | `troncal_host_load{period="1m"\|"5m"\|"15m"}` | gauge | load averages |
/// | `troncal_host_memory_total_bytes`, `troncal_host_memory_used_bytes` | gauge | MemTotal and MemTotal − MemAvailable |
/// | `troncal_host_disk_total_bytes`, `troncal_host_disk_used_bytes`, `troncal_host_disk_available_bytes` | gauge | the file system of the data directory (available: what is left for unprivileged writers, as `df` shows) |
/// | `troncal_host_network_receive_bytes{interface}`, `troncal_host_network_transmit_bytes{interface}` | gauge | since boot |
/// | `troncal_host_sample_failures_total` | counter | readings that failed (logged with the reason) |
/// | `troncal_process_cpu_percent` | gauge | this instance's own CPU over the last interval, as a share of all the host's CPUs (0–100): the per-instance figure of the capacity controller |
public struct HostMetrics: Service {
    let dataDirectory: String
    let interval: Duration
    let logger: Logger

    public init(dataDirectory: String, interval: Duration = .seconds(5), logger: Logger) {
        self.dataDirectory = dataDirectory
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        var previous: HostFigures?
        var previousProcess: (seconds: Double, at: ContinuousClock.Instant)?
        var failing = false
        while !Task.isCancelledOrShuttingDown {
            do {
                let figures = try HostFigures.read(dataDirectory: dataDirectory)
                Self.record(figures, previous: previous)
                previous = figures
                if let seconds = Self.processCPUSeconds() {
                    let now = ContinuousClock.now
                    if let before = previousProcess {
                        let wall = (now - before.at) / .seconds(1)
                        if wall > 0, figures.cpuCount > 0 {
                            let share = (seconds - before.seconds) / wall / Double(figures.cpuCount) * 100
                            Gauge(label: "troncal_process_cpu_percent").record(min(100, max(0, share)))
                        }
                    }
                    previousProcess = (seconds, now)
                }
                if failing { logger.info("host figures readable again") }
                failing = false
            } catch {
                Counter(label: "troncal_host_sample_failures_total").increment()
                if !failing { logger.warning("host figures could not be read", metadata: ["reason": "\(error)"]) }
                failing = true
            }
            await Task.sleepUnlessShuttingDown(for: interval)
        }
    }

    /// This process's user + system CPU time in seconds (`/proc/self/stat`), nil where it cannot be read.
    static func processCPUSeconds(stat path: String = "/proc/self/stat") -> Double? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), let close = text.lastIndex(of: ")") else { return nil }
        // After "pid (comm) ": state is field 3, utime 14 and stime 15 (1-based), so 11 and 12 after the comm.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return ticks > 0 ? (user + system) / ticks : nil
    }

    static func record(_ figures: HostFigures, previous: HostFigures?) {
        if let previous, let busy = figures.cpuPercent(since: previous) {
            Gauge(label: "troncal_host_cpu_percent").record(busy)
        }
        Gauge(label: "troncal_host_cpus").record(figures.cpuCount)
        for (period, value) in [("1m", figures.load.one), ("5m", figures.load.five), ("15m", figures.load.fifteen)] {
            Gauge(label: "troncal_host_load", dimensions: [("period", period)]).record(value)
        }
        Gauge(label: "troncal_host_memory_total_bytes").record(Double(figures.memoryTotalBytes))
        Gauge(label: "troncal_host_memory_used_bytes").record(Double(figures.memoryUsedBytes))
        Gauge(label: "troncal_host_disk_total_bytes").record(Double(figures.diskTotalBytes))
        Gauge(label: "troncal_host_disk_used_bytes").record(Double(figures.diskUsedBytes))
        Gauge(label: "troncal_host_disk_available_bytes").record(Double(figures.diskAvailableBytes))
        for (interface, bytes) in figures.network {
            Gauge(label: "troncal_host_network_receive_bytes", dimensions: [("interface", interface)]).record(Double(bytes.received))
            Gauge(label: "troncal_host_network_transmit_bytes", dimensions: [("interface", interface)]).record(Double(bytes.sent))
        }
    }
}

extension Task where Success == Never, Failure == Never {
    /// Cancelled, or the service group began its graceful shutdown.
    public static var isCancelledOrShuttingDown: Bool { Task.isCancelled || Task.isShuttingDownGracefully }

    /// Sleeps for `duration`, or until the graceful shutdown begins (or the task is cancelled): a service's loop
    /// that waits between rounds stops at once instead of after its wait (a minute, for some).
    public static func sleepUnlessShuttingDown(for duration: Duration) async {
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
    }
}
