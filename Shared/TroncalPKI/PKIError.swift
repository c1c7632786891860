/// The one error type of TroncalPKI: what failed and on which file or name.
public struct PKIError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case alreadyExists = "already_exists"
        case missingCA = "missing_ca"
        case invalidName = "invalid_name"
        case unreadable
        case unwritable
        case invalidCertificate = "invalid_certificate"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "pki \(code.rawValue): \(message)" }
}
