internal import Foundation

/// One reading of the host a service runs on, from Linux's `/proc` and `statvfs`: what the monitor's server rules
/// (CPU, memory, disk) and link figures (bytes per interface) are computed from. Parsing is separate from reading so
/// that every format is a unit test.
public struct HostFigures: Sendable {
    /// Jiffies since boot from the `cpu` line of `/proc/stat`: all of them, and those idle (idle + iowait).
    public var cpuTotal: UInt64
    public var cpuIdle: UInt64
    /// Online CPUs (`cpuN` lines).
    public var cpuCount: Int
    /// 1, 5 and 15 minute load averages.
    public var load: (one: Double, five: Double, fifteen: Double)
    /// `MemTotal` and `MemTotal - MemAvailable`, in bytes.
    public var memoryTotalBytes: UInt64
    public var memoryUsedBytes: UInt64
    /// The file system holding the data directory: size and used (size − free), in bytes.
    public var diskTotalBytes: UInt64
    public var diskUsedBytes: UInt64
    /// What unprivileged processes may still write (`df`'s "Avail": the free space less the root reserve).
    public var diskAvailableBytes: UInt64 = 0
    /// Bytes received and sent per network interface since boot.
    public var network: [String: (received: UInt64, sent: UInt64)]

    /// CPU busy percentage (0…100, all CPUs together) between an earlier reading and this one; nil when no jiffy
    /// passed.
    public func cpuPercent(since earlier: HostFigures) -> Double? {
        guard cpuTotal > earlier.cpuTotal else { return nil }
        let total = Double(cpuTotal - earlier.cpuTotal)
        let idle = Double(cpuIdle >= earlier.cpuIdle ? cpuIdle - earlier.cpuIdle : 0)
        return min(100, max(0, (total - idle) * 100 / total))
    }
}

/// What went wrong reading the host's figures: the file and why.
public struct HostFiguresError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension HostFigures {
    /// Reads the figures now; the disk figures are those of the file system holding `dataDirectory`.
    public static func read(dataDirectory: String, proc: String = "/proc") throws(HostFiguresError) -> HostFigures {
        let stat = try Self.file("\(proc)/stat")
        let (total, idle, count) = try parseStat(stat)
        let load = try parseLoadAverage(try Self.file("\(proc)/loadavg"))
        let (memoryTotal, memoryUsed) = try parseMemoryInfo(try Self.file("\(proc)/meminfo"))
        let network = try parseNetworkDevices(try Self.file("\(proc)/net/dev"))
        var fs = statvfs()
        guard statvfs(dataDirectory, &fs) == 0 else {
            throw HostFiguresError("statvfs \(dataDirectory): \(String(cString: strerror(errno)))")
        }
        let blockSize = UInt64(fs.f_frsize)
        let diskTotal = UInt64(fs.f_blocks) * blockSize
        let diskUsed = diskTotal - min(diskTotal, UInt64(fs.f_bfree) * blockSize)
        let diskAvailable = UInt64(fs.f_bavail) * blockSize
        return HostFigures(
            cpuTotal: total, cpuIdle: idle, cpuCount: count, load: load, memoryTotalBytes: memoryTotal, memoryUsedBytes: memoryUsed,
            diskTotalBytes: diskTotal, diskUsedBytes: diskUsed, diskAvailableBytes: diskAvailable, network: network)
    }

    static func file(_ path: String) throws(HostFiguresError) -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw HostFiguresError("\(path): \(error.localizedDescription)")
        }
    }

    /// `/proc/stat`: the aggregate `cpu` line (user nice system idle iowait irq softirq steal …) and the `cpuN` lines.
    /// Guest time is already inside user and nice, so it is not added again.
    public static func parseStat(_ text: String) throws(HostFiguresError) -> (total: UInt64, idle: UInt64, cpus: Int) {
        var total: UInt64?
        var idle: UInt64 = 0
        var cpus = 0
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let name = fields.first, name.hasPrefix("cpu") else { continue }
            if name == "cpu" {
                let values = fields.dropFirst().prefix(8).compactMap { UInt64($0) }
                guard values.count >= 4 else { throw HostFiguresError("/proc/stat: cpu line has \(values.count) numbers") }
                total = values.reduce(0, +)
                idle = values[3] + (values.count > 4 ? values[4] : 0)
            } else if name.dropFirst(3).allSatisfy(\.isNumber) {
                cpus += 1
            }
        }
        guard let total else { throw HostFiguresError("/proc/stat: no cpu line") }
        return (total, idle, max(1, cpus))
    }

    /// `/proc/loadavg`: `0.52 0.58 0.59 2/1046 12345`.
    public static func parseLoadAverage(_ text: String) throws(HostFiguresError) -> (one: Double, five: Double, fifteen: Double) {
        let fields = text.split(separator: " ").prefix(3).compactMap { Double($0) }
        guard fields.count == 3 else { throw HostFiguresError("/proc/loadavg: expected three load averages in '\(text.prefix(60))'") }
        return (fields[0], fields[1], fields[2])
    }

    /// `/proc/meminfo`: `MemTotal` and `MemAvailable` (kB); used is total − available.
    public static func parseMemoryInfo(_ text: String) throws(HostFiguresError) -> (total: UInt64, used: UInt64) {
        var values: [Substring: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let key = fields.first?.dropLast(), let value = UInt64(fields[1]) else { continue }
            if key == "MemTotal" || key == "MemAvailable" { values[key] = value * 1024 }
        }
        guard let total = values["MemTotal"], let available = values["MemAvailable"] else {
            throw HostFiguresError("/proc/meminfo: MemTotal or MemAvailable missing")
        }
        return (total, total - min(total, available))
    }

    /// `/proc/net/dev`: two header lines, then `iface: rx_bytes rx_packets … (8 receive fields) tx_bytes …`.
    public static func parseNetworkDevices(_ text: String) throws(HostFiguresError) -> [String: (received: UInt64, sent: UInt64)] {
        var result: [String: (received: UInt64, sent: UInt64)] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces)
            let fields = line[line.index(after: colon)...].split(separator: " ", omittingEmptySubsequences: true).compactMap { UInt64($0) }
            guard !name.isEmpty, fields.count >= 16 else {
                throw HostFiguresError("/proc/net/dev: interface line '\(line.prefix(60))' has \(fields.count) numbers, expected 16")
            }
            result[name] = (fields[0], fields[8])
        }
        return result
    }
}
