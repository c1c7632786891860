public import Foundation

/// A throwaway replicated PostgreSQL cluster on loopback for failover tests: a primary and a streaming standby
/// (synchronous, so every acknowledged commit is on both), each with its own port and socket directory under /tmp.
///
/// The servers run as the `postgres` OS user when the tests run as root (PostgreSQL refuses root). `remove()` stops
/// both at once (SIGQUIT, PostgreSQL's immediate shutdown) and deletes the directory; call it when the test ends.
public final class PostgresCluster: @unchecked Sendable {
    // @unchecked: the fields are set in init and only read after; servers are driven from the test's task.
    public struct Server: Sendable {
        public var name: String
        public var port: Int
        public var dataDirectory: String
        public var socketDirectory: String
        public var hostPort: String { "127.0.0.1:\(port)" }
    }

    public let directory: String
    public let bin: String
    public private(set) var servers: [Server] = []
    private var running: [String: ChildProcess] = [:]
    public let database = "troncal"

    /// The binaries of the newest installed PostgreSQL (`TRONCAL_PG_BIN`, else /usr/lib/postgresql/N/bin).
    public static func binaries() -> String? {
        if let bin = ProcessInfo.processInfo.environment["TRONCAL_PG_BIN"], !bin.isEmpty { return bin }
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .compactMap(Int.init).sorted(by: >)
        return versions.map { "/usr/lib/postgresql/\($0)/bin" }
            .first { FileManager.default.isExecutableFile(atPath: "\($0)/pg_ctl") }
    }

    /// Starts the primary `a`, creates the database, clones the standby `b` from it and waits until `b` streams
    /// synchronously.
    public init() async throws {
        guard let bin = Self.binaries() else { throw ClusterError("no PostgreSQL server binaries installed") }
        self.bin = bin
        directory = "/tmp/troncal-pgha-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let a = Server(
            name: "a", port: try Self.freePort(), dataDirectory: "\(directory)/a", socketDirectory: "\(directory)/sock-a")
        let b = Server(
            name: "b", port: try Self.freePort(), dataDirectory: "\(directory)/b", socketDirectory: "\(directory)/sock-b")
        servers = [a, b]
        for server in servers {
            try FileManager.default.createDirectory(atPath: server.socketDirectory, withIntermediateDirectories: true)
        }
        if getuid() == 0 { try await Self.check(ChildProcess.run(URL(fileURLWithPath: "/bin/chown"), ["-R", "postgres:postgres", directory]), "chown") }
        do {
            try await asOwner("initdb", ["-D", a.dataDirectory, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
            try await start(a, extra: [])
            try await Self.check(
                ChildProcess.run(URL(fileURLWithPath: "\(bin)/psql"), ["-X", "-q", "-h", "127.0.0.1", "-p", "\(a.port)", "-U", "postgres", "-d", "postgres", "-c", "CREATE DATABASE \(database)"]),
                "create database")
            try await asOwner("pg_basebackup", ["-h", "127.0.0.1", "-p", "\(a.port)", "-U", "postgres", "-D", b.dataDirectory, "-R", "-X", "stream", "--no-sync", "-c", "fast"])
            try await start(b, extra: [])
            // Synchronous from now on (set after the clone, so the promoted standby does not wait for a standby).
            _ = try await sql(a, "ALTER SYSTEM SET synchronous_standby_names = '*'", database: "postgres")
            _ = try await sql(a, "SELECT pg_reload_conf()", database: "postgres")
            let streaming = await eventually(timeout: .seconds(60)) {
                let answer = try? await self.sql(a, "SELECT sync_state FROM pg_stat_replication")
                return answer?.trimmingCharacters(in: .whitespacesAndNewlines) == "sync"
            }
            guard streaming else { throw ClusterError("the standby did not start streaming synchronously") }
        } catch {
            await remove()
            throw error
        }
    }

    /// Starts a server as a child process of the test (not daemonized by pg_ctl: a daemon would inherit the
    /// descriptor Foundation watches for the child's exit), and waits until it answers.
    public func start(_ server: Server, extra: [String]) async throws {
        let arguments = [
            "-D", server.dataDirectory, "-c", "listen_addresses=127.0.0.1", "-p", "\(server.port)",
            "-c", "unix_socket_directories=\(server.socketDirectory)", "-c", "fsync=off", "-c", "full_page_writes=off",
            "-c", "wal_level=replica", "-c", "max_wal_senders=5", "-c", "hot_standby=on", "-c", "wal_keep_size=64MB",
        ] + extra
        let log = URL(fileURLWithPath: "\(directory)/\(server.name).log")
        let child: ChildProcess
        if getuid() == 0 {
            child = try ChildProcess(
                URL(fileURLWithPath: "/usr/sbin/runuser"), ["-u", "postgres", "--", "\(bin)/postgres"] + arguments, output: log)
        } else {
            child = try ChildProcess(URL(fileURLWithPath: "\(bin)/postgres"), arguments, output: log)
        }
        running[server.name] = child
        let up = await eventually(timeout: .seconds(60), interval: .milliseconds(200)) {
            guard child.isRunning else { return false }
            let (status, _) = (try? await ChildProcess.run(
                URL(fileURLWithPath: "\(bin)/pg_isready"), ["-h", "127.0.0.1", "-p", "\(server.port)", "-t", "2"])) ?? (1, "")
            return status == 0
        }
        guard up else { throw ClusterError("server \(server.name) did not start: \(child.outputText.suffix(2_000))") }
    }

    /// Stops a server at once, as a crash would: SIGQUIT to the postmaster (PostgreSQL's immediate shutdown, no
    /// checkpoint), then waits for it to be gone.
    public func crash(_ server: Server) async throws {
        guard let child = running[server.name] else { return }
        if let pid = postmasterPID(server) { kill(pid, SIGQUIT) }
        let gone = await eventually(timeout: .seconds(30)) { !child.isRunning }
        if !gone { await child.stop(signal: SIGKILL) }
        running[server.name] = nil
    }

    private func postmasterPID(_ server: Server) -> Int32? {
        guard let text = try? String(contentsOfFile: "\(server.dataDirectory)/postmaster.pid", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first.flatMap { Int32($0) }
    }

    /// Promotes a standby and waits until it accepts writes.
    public func promote(_ server: Server) async throws {
        try await asOwner("pg_ctl", ["promote", "-D", server.dataDirectory, "-w", "-t", "60"])
    }

    /// Runs one statement with psql on `server` and returns its unaligned output.
    public func sql(_ server: Server, _ statement: String, database: String? = nil) async throws -> String {
        let (status, output) = try await ChildProcess.run(
            URL(fileURLWithPath: "\(bin)/psql"),
            ["-X", "-q", "-At", "-h", "127.0.0.1", "-p", "\(server.port)", "-U", "postgres", "-d", database ?? self.database, "-c", statement])
        guard status == 0 else { throw ClusterError("psql on \(server.name): \(output)") }
        return output
    }

    /// The servers' logs, for a failing test's report.
    public var logs: String {
        servers.map { "\($0.name): " + ((try? String(contentsOfFile: "\(directory)/\($0.name).log", encoding: .utf8)) ?? "").suffix(3_000) }
            .joined(separator: "\n")
    }

    public func remove() async {
        for server in servers { try? await crash(server) }
        if directory.hasPrefix("/tmp/troncal-pgha-") { try? FileManager.default.removeItem(atPath: directory) }
    }

    private func asOwner(_ tool: String, _ arguments: [String]) async throws {
        let result: (status: Int32, output: String)
        if getuid() == 0 {
            result = try await ChildProcess.run(
                URL(fileURLWithPath: "/usr/sbin/runuser"), ["-u", "postgres", "--", "\(bin)/\(tool)"] + arguments,
                timeout: .seconds(90))
        } else {
            result = try await ChildProcess.run(URL(fileURLWithPath: "\(bin)/\(tool)"), arguments, timeout: .seconds(90))
        }
        try Self.check(result, tool)
    }

    private static func check(_ result: (status: Int32, output: String), _ what: String) throws {
        guard result.status == 0 else { throw ClusterError("\(what) failed (\(result.status)): \(result.output)") }
    }

    /// A TCP port on 127.0.0.1 that nothing listens on now (the kernel picks it).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClusterError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard bound == 0 else { throw ClusterError("cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

public struct ClusterError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
