public import Foundation
import Synchronization

/// Gathers the parts of CSV uploads that come over the link in pieces (`routing.import`, `billing.import`): parts
/// of one upload must come in order; an upload idle for `idleSeconds` is dropped; all uploads in progress hold at
/// most `maximumBytes`.
public final class UploadAssembler: Sendable {
    struct Upload {
        var kind: String
        var nextPart = 0
        var text = ""
        var touched: Date
    }

    private let uploads = Mutex<[String: Upload]>([:])
    public let maximumBytes: Int
    public let idleSeconds: TimeInterval

    public init(maximumBytes: Int = 256 << 20, idleSeconds: TimeInterval = 300) {
        self.maximumBytes = maximumBytes
        self.idleSeconds = idleSeconds
    }

    /// Adds one part; returns the whole text when it is the final one, nil otherwise.
    public func add(upload: String, kind: String, part: Int, final: Bool, text: String, now: Date = Date()) throws(CatalogError) -> String? {
        let idle = idleSeconds
        let limit = maximumBytes
        return try uploads.withLock { uploads throws(CatalogError) -> String? in
            uploads = uploads.filter { now.timeIntervalSince($0.value.touched) < idle }
            var current = uploads[upload] ?? Upload(kind: kind, touched: now)
            guard current.kind == kind else { throw CatalogError("upload \(upload.prefix(40)) is for \(current.kind), not \(kind)") }
            guard part == current.nextPart else {
                uploads[upload] = nil
                throw CatalogError("part \(part) came where part \(current.nextPart) was expected; the upload is dropped, send it again")
            }
            let total = uploads.values.reduce(0) { $0 + $1.text.utf8.count } + text.utf8.count
            guard total <= limit else {
                uploads[upload] = nil
                throw CatalogError("uploads in progress would exceed \(limit >> 20) MiB; the upload is dropped")
            }
            current.text += text
            current.nextPart += 1
            current.touched = now
            if final {
                uploads[upload] = nil
                return current.text
            }
            uploads[upload] = current
            return nil
        }
    }
}
