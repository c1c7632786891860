public import Foundation
import Synchronization
import TroncalRuntime

/// A process started by a test, stopped by its PID in `stop()` (call it in a `defer`) even when the test fails.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched from the test's task; Process itself is thread-safe for
    // terminate/waitUntilExit/processIdentifier.
    public let process: Process
    public let output: URL

    /// Starts `executable` with `arguments`, stdout and stderr appended to `output`.
    public init(_ executable: URL, _ arguments: [String], output: URL) throws {
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        try Data().write(to: output)
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        self.output = output
        try process.runWithDefaultSignals()
    }

    /// A process the test forgot to stop (it threw first) is killed when its handle goes away.
    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// Sends `signal` and waits up to `timeout` for exit; SIGKILLs after that.
    public func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(15)) async {
        guard process.isRunning else { return }
        kill(pid, signal)
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while process.isRunning, clock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }

    public var outputText: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

    /// Runs a command to completion and returns its exit status and output.
    public static func run(_ executable: URL, _ arguments: [String], timeout: Duration = .seconds(30)) async throws -> (status: Int32, output: String) {
        let directory = try TemporaryDirectory(prefix: "troncal-run")
        defer { directory.remove() }
        let child = try ChildProcess(executable, arguments, output: directory.url.appendingPathComponent("out"))
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while child.isRunning, clock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if child.isRunning { await child.stop(signal: SIGKILL) }
        child.process.waitUntilExit()
        return (child.process.terminationStatus, child.outputText)
    }
}

/// Where the built executables are: `TRONCAL_BIN_DIR`, or `.build/debug` of this package.
public func troncalBinaryDirectory(filePath: String = #filePath) -> URL {
    if let directory = ProcessInfo.processInfo.environment["TRONCAL_BIN_DIR"], !directory.isEmpty {
        return URL(fileURLWithPath: directory)
    }
    var root = URL(fileURLWithPath: filePath)
    while root.path != "/" && !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) {
        root.deleteLastPathComponent()
    }
    return root.appendingPathComponent(".build/debug")
}

/// A port base for a test site, so that concurrent tests and a site run by hand do not collide. Every port a
/// test derives from it (default ports + offset, up to 9299 + offset) stays below 32768, where Linux starts
/// handing out ephemeral ports for outgoing connections and port-0 binds. The offset's ports are held for this test
/// process until `releasePortOffset` (or for ten minutes), and none of them is bound on the machine when it is handed out.
public func freePortOffset() async -> Int {
    await PortLeases.shared.lease()
}

/// Gives the ports of `freePortOffset()` back for other tests of this process.
public func releasePortOffset(_ offset: Int) {
    PortLeases.shared.release(offset)
}

/// Offsets handed out to the tests of this process. Sites of different offsets can still meet: 9600 + o1 is
/// 8100 + o2 when o2 = o1 + 1500; so an offset is handed out only when none of the ports it derives (its footprint,
/// per address) is held by a live lease or bound by anyone on the machine. When every offset is held, the test waits
/// for one to be given back rather than take one at random.
final class PortLeases: Sendable {
    static let shared = PortLeases()
    private struct Lease { var ports: Set<Int>; var until: ContinuousClock.Instant }
    private let leases = Mutex<[Int: Lease]>([:])
    static let services: UInt32 = 0x7f00_0001, customers: UInt32 = 0x7f00_0002, carriers: UInt32 = 0x7f00_0003

    /// Every port a test site derives from its offset, by address: on 127.0.0.1 the services' SIP (5060, 5061; PBX 5070-5079), links
    /// (7100-7110), admin and dashboard (8080-8110) and the relay tests (9500-9699); on 127.0.0.2 the customers' test
    /// slots (6100-6199); on 127.0.0.3 the carriers (9000-9299). A port is keyed `address << 16 | port`.
    static func footprint(_ offset: Int) -> Set<Int> {
        var ports: Set<Int> = []
        func add(_ address: UInt32, _ range: ClosedRange<Int>) { for port in range { ports.insert(Int(address & 0xff) << 16 | (port + offset)) } }
        add(services, 5060...5061)
        add(services, 5070...5079)
        add(services, 7100...7110)
        add(services, 8080...8110)
        add(services, 9500...9699)
        add(customers, 6100...6199)
        add(carriers, 9000...9299)
        return ports
    }

    func lease() async -> Int {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(900)
        while true {
            if let offset = tryLease() { return offset }
            // Everything is held: wait for a test to give an offset back (fall back to chance only after 15 minutes).
            if clock.now > deadline { return Int.random(in: 10...230) * 100 }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    private func tryLease() -> Int? {
        var candidates = Array(10...230).map { $0 * 100 }
        candidates.shuffle()
        for offset in candidates {
            let ports = Self.footprint(offset)
            let taken = leases.withLock { leases -> Bool in
                let now = ContinuousClock.now
                leases = leases.filter { $0.value.until > now }
                guard !leases.values.contains(where: { !$0.ports.isDisjoint(with: ports) }) else { return true }
                leases[offset] = Lease(ports: ports, until: now + .seconds(600))
                return false
            }
            if taken { continue }
            // Something outside this test's sites (another process, a leftover) may hold some: check every port.
            let free = ports.allSatisfy { key in
                Self.isFree(key & 0xffff, address: 0x7f00_0000 | UInt32(key >> 16))
            }
            if free { return offset }
            leases.withLock { _ = $0.removeValue(forKey: offset) }
        }
        return nil
    }

    func release(_ offset: Int) {
        leases.withLock { _ = $0.removeValue(forKey: offset) }
    }

    /// Whether `port` can be bound on `address` (127.0.0.1 by default) for both TCP and UDP right now.
    static func isFree(_ port: Int, address host: UInt32 = 0x7f00_0001) -> Bool {
        for kind in [Int32(SOCK_STREAM.rawValue), Int32(SOCK_DGRAM.rawValue)] {
            let fd = socket(AF_INET, kind, 0)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = host.bigEndian
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if bound != 0 { return false }
        }
        return true
    }
}

extension ChildProcess {
    /// For `defer` blocks around a supervisor (`troncal up`): SIGTERM, so that it stops what it started, up to
    /// `seconds` to exit, then SIGKILL. A SIGKILL alone would leave its children running, holding their ports.
    public func terminateNow(within seconds: Double = 15) {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(seconds)
        while isRunning && Date() < deadline { usleep(20_000) }
        if isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// A range of 400 relay ports for a test site's SBC, below every offset's ports (1100-5499, 11 ranges; 5700-6059 are
/// the `troncal up` tests'), held until `releaseMediaPorts`: two sites never share relay ports. Waits for one to be
/// given back when all are held.
public func leaseMediaPorts() async -> ClosedRange<Int> {
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(900)
    while true {
        let slot = MediaPortLeases.held.withLock { held -> Int? in
            guard let free = (0..<11).shuffled().first(where: { !held.contains($0) }) else { return nil }
            held.insert(free)
            return free
        }
        // 400 ports: at 50 calls a second each call's two port pairs are held for the call and a 1 s quarantine after
        // it, about 65 pairs on a slow machine; 200 ports (50 pairs) refused calls for want of ports.
        if let slot { return (1100 + slot * 400)...(1100 + slot * 400 + 399) }
        if clock.now > deadline { return 1100...1499 }
        try? await Task.sleep(for: .milliseconds(100))
    }
}

public func releaseMediaPorts(_ range: ClosedRange<Int>) {
    MediaPortLeases.held.withLock { _ = $0.remove((range.lowerBound - 1100) / 400) }
}

enum MediaPortLeases {
    static let held = Mutex<Set<Int>>([])
}
