import Foundation
import Testing
import TestSupport
import TroncalPKI
import TroncalProtocol

@Suite("Site PKI")
struct SiteCATests {
    @Test func issuedCertificateCarriesRoleSiteAndInstance() throws {
        let pki = try TemporaryPKI(site: "lisbon-2")
        defer { pki.remove() }
        let credentials = try pki.credentials(.billing, "billing-3")
        let pem = try String(contentsOfFile: credentials.certificatePath, encoding: .utf8)
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        let der = try #require(Data(base64Encoded: body))
        let identity = try CertificateIdentity.identity(fromDER: Array(der))
        #expect(identity == PeerIdentity(role: .billing, site: "lisbon-2", instance: "billing-3"))
        let attributes = try FileManager.default.attributesOfItem(atPath: credentials.keyPath)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test func reopenedCAKnowsItsSiteAndRefusesToBeCreatedTwice() throws {
        let pki = try TemporaryPKI(site: "site-x")
        defer { pki.remove() }
        let reopened = try SiteCA.open(pki.ca.directory)
        #expect(reopened.site == "site-x")
        let error = #expect(throws: PKIError.self) { try SiteCA.create(in: pki.ca.directory, site: "site-x") }
        #expect(error?.code == .alreadyExists)
    }

    @Test func issuingTwiceNeedsReplace() throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        try pki.ca.issue(role: .sbc, instance: "sbc-2")
        #expect(throws: PKIError.self) { try pki.ca.issue(role: .sbc, instance: "sbc-2") }
        #expect(throws: Never.self) { try pki.ca.issue(role: .sbc, instance: "sbc-2", replace: true) }
    }

    @Test(arguments: ["", "SBC-1", "-sbc", "sbc_1", String(repeating: "a", count: 64)])
    func invalidInstanceNamesAreRefused(_ name: String) throws {
        let pki = try TemporaryPKI()
        defer { pki.remove() }
        let error = #expect(throws: PKIError.self) { try pki.ca.issue(role: .sbc, instance: name) }
        #expect(error?.code == .invalidName)
    }

    @Test func garbageIsNotAnInstanceCertificate() {
        #expect(throws: PKIError.self) { try CertificateIdentity.identity(fromDER: [0x30, 0x03, 0x02, 0x01, 0x00]) }
    }
}
