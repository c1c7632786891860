public import Foundation
public import TroncalPKI
public import TroncalProtocol

/// A throwaway site CA in a temporary directory, issuing instance credentials for link tests.
public struct TemporaryPKI: Sendable {
    public let directory: TemporaryDirectory
    public let ca: SiteCA

    public init(site: String = "test-site") throws {
        directory = try TemporaryDirectory(prefix: "troncal-pki")
        ca = try SiteCA.create(in: directory.url.appendingPathComponent("pki"), site: site)
    }

    /// Issues (once) and returns the credentials of an instance.
    public func credentials(_ role: Role, _ instance: String) throws -> SiteCA.Credentials {
        let existing = ca.credentials(role: role, instance: instance)
        if FileManager.default.fileExists(atPath: existing.certificatePath) { return existing }
        return try ca.issue(role: role, instance: instance)
    }

    public func remove() { directory.remove() }
}
