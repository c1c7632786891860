import Foundation

/// Network namespaces a test makes for itself (`ip netns`): made with loopback up, commands run inside them, and
/// deleted at the end (also when the test fails: `delete` is synchronous, for a `defer`).
public enum NetworkNamespaces {
    public static let ip = "/usr/sbin/ip"

    /// Whether this machine lets a test make namespaces (root and iproute2).
    public static var available: Bool { getuid() == 0 && FileManager.default.isExecutableFile(atPath: ip) }

    /// Runs `ip` with these arguments; throws with its output when it fails.
    public static func ip(_ arguments: [String]) async throws {
        let (status, output) = try await ChildProcess.run(URL(fileURLWithPath: ip), arguments)
        guard status == 0 else { throw NamespaceError("ip \(arguments.joined(separator: " ")): \(output)") }
    }

    /// Makes each namespace with its loopback up.
    public static func make(_ namespaces: [String]) async throws {
        for namespace in namespaces {
            try await ip(["netns", "add", namespace])
            try await ip(["-n", namespace, "link", "set", "lo", "up"])
        }
    }

    /// Runs `command` (an absolute path and its arguments) inside `namespace`.
    public static func run(in namespace: String, _ command: [String]) async throws -> (status: Int32, output: String) {
        try await ChildProcess.run(URL(fileURLWithPath: ip), ["netns", "exec", namespace] + command)
    }

    /// Deletes the namespaces (their interfaces go with them); what is already gone is skipped.
    public static func delete(_ namespaces: [String]) {
        for namespace in namespaces {
            let delete = Process()
            delete.executableURL = URL(fileURLWithPath: ip)
            delete.arguments = ["netns", "delete", namespace]
            delete.standardOutput = FileHandle.nullDevice
            delete.standardError = FileHandle.nullDevice
            try? delete.run()
            delete.waitUntilExit()
        }
    }
}

public struct NamespaceError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
