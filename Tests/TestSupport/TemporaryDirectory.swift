public import Foundation

/// A directory under the system's temporary folder, removed by `remove()` (call it in a `defer`).
public struct TemporaryDirectory: Sendable {
    public let url: URL

    public init(prefix: String = "troncal-test") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    public var path: String { url.path }

    public func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}
