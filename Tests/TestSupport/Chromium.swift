import Foundation
import TroncalRuntime

/// Debian's headless Chromium, for tests of the web pages.
public enum Chromium {
    /// Chromium's restricted ports (net/base/port_util.cc) at or above 1024, where a test may put an HTTP server.
    static let unsafePortsTestsMayUse = [1719, 1720, 1723, 2049, 3659, 4045, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6697, 10080]

    public static let path = "/usr/bin/chromium"
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: path) }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Chromium's DOM of `url` (`--headless --dump-dom`), with a fresh profile in `directory`; stopped by PID after
    /// 60 s. (JavaScript cannot be switched off for `--dump-dom`, which needs it; the pages are checked to hold no
    /// script instead.) Throws with Chromium's log when it fails or prints nothing.
    public static func dom(_ url: String, in directory: TemporaryDirectory) async throws -> String {
        let name = "chromium-\(UUID().uuidString)"
        let profile = directory.url.appendingPathComponent(name).path
        // The DOM comes on standard output, kept apart from Chromium's log (on one shared file it is lost).
        let dom = directory.url.appendingPathComponent(name + ".html")
        let log = directory.url.appendingPathComponent(name + ".log")
        FileManager.default.createFile(atPath: dom.path, contents: nil)
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage", "--no-proxy-server", "--user-data-dir=\(profile)",
            // Chromium refuses its "unsafe" ports (net::ERR_UNSAFE_PORT); a test site's dashboard (8080 + the site's port
            // offset) may land on one, 10080 among them.
            "--explicitly-allowed-ports=\(Self.unsafePortsTestsMayUse.map(String.init).joined(separator: ","))",
            "--dump-dom", url,
        ]
        process.standardOutput = try FileHandle(forWritingTo: dom)
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardInput = FileHandle.nullDevice
        try process.runWithDefaultSignals()
        let finished = await eventually(timeout: .seconds(60), interval: .milliseconds(50)) { !process.isRunning }
        if !finished { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let output = (try? String(contentsOf: dom, encoding: .utf8)) ?? ""
        let logText = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0, !output.isEmpty else {
            throw Failure(description: "chromium (\(url)) exit \(process.terminationStatus): \(logText.suffix(3000))")
        }
        return output
    }
}
