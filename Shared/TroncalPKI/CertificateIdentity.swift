public import TroncalProtocol
internal import X509
internal import SwiftASN1

/// Reads a Troncal instance certificate's identity: the site in O, the role in OU and the instance in CN.
public enum CertificateIdentity {
    /// Parses the identity from a DER-encoded certificate. Throws `PKIError` `.invalidCertificate` when the
    /// certificate is not a Troncal instance certificate (missing fields, unknown role, bad names).
    public static func identity(fromDER der: [UInt8]) throws(PKIError) -> PeerIdentity {
        let certificate: Certificate
        do {
            certificate = try Certificate(derEncoded: der)
        } catch {
            throw PKIError(.invalidCertificate, "certificate does not parse as X.509")
        }
        return try identity(of: certificate.subject)
    }

    static func identity(of subject: DistinguishedName) throws(PKIError) -> PeerIdentity {
        var site: String?
        var roleName: String?
        var instance: String?
        for rdn in subject {
            for attribute in rdn {
                let value = String(attribute.value)
                switch attribute.type {
                case .RDNAttributeType.organizationName: site = value
                case .RDNAttributeType.organizationalUnitName: roleName = value
                case .RDNAttributeType.commonName: instance = value
                default: continue
                }
            }
        }
        guard let site, PeerIdentity.isValidName(site) else {
            throw PKIError(.invalidCertificate, "certificate subject has no valid site (O)")
        }
        guard let roleName, let role = Role(rawValue: roleName) else {
            throw PKIError(.invalidCertificate, "certificate subject has no known role (OU)")
        }
        guard let instance, PeerIdentity.isValidName(instance) else {
            throw PKIError(.invalidCertificate, "certificate subject has no valid instance (CN)")
        }
        return PeerIdentity(role: role, site: site, instance: instance)
    }
}
