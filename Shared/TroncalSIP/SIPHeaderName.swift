/// The name of a header field: the headers TroncalSIP knows by name (long and compact forms map to the same case),
/// or `.other` for an extension header, whose name stays in the field's raw bytes.
public enum SIPHeaderName: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// An extension header; its name is in `SIPHeaderField.rawName`.
    case other = 0
    case accept
    case acceptContact
    case acceptEncoding
    case acceptLanguage
    case alertInfo
    case allow
    case allowEvents
    case authenticationInfo
    case authorization
    case callID
    case callInfo
    case contact
    case contentDisposition
    case contentEncoding
    case contentLanguage
    case contentLength
    case contentType
    case cseq
    case date
    case errorInfo
    case event
    case expires
    case from
    case identity
    case identityInfo
    case inReplyTo
    case maxForwards
    case mimeVersion
    case minExpires
    case minSE
    case organization
    case pAssertedIdentity
    case pPreferredIdentity
    case path
    case priority
    case privacy
    case proxyAuthenticate
    case proxyAuthorization
    case proxyRequire
    case rack
    case reason
    case recordRoute
    case referTo
    case referredBy
    case rejectContact
    case replyTo
    case requestDisposition
    case require
    case retryAfter
    case route
    case rseq
    case server
    case serviceRoute
    case sessionExpires
    case subject
    case subscriptionState
    case supported
    case timestamp
    case to
    case unsupported
    case userAgent
    case via
    case warning
    case wwwAuthenticate

    /// The name as RFC 3261 and its extensions spell it.
    public var canonicalName: String {
        switch self {
        case .other: "(extension)"
        case .accept: "Accept"
        case .acceptContact: "Accept-Contact"
        case .acceptEncoding: "Accept-Encoding"
        case .acceptLanguage: "Accept-Language"
        case .alertInfo: "Alert-Info"
        case .allow: "Allow"
        case .allowEvents: "Allow-Events"
        case .authenticationInfo: "Authentication-Info"
        case .authorization: "Authorization"
        case .callID: "Call-ID"
        case .callInfo: "Call-Info"
        case .contact: "Contact"
        case .contentDisposition: "Content-Disposition"
        case .contentEncoding: "Content-Encoding"
        case .contentLanguage: "Content-Language"
        case .contentLength: "Content-Length"
        case .contentType: "Content-Type"
        case .cseq: "CSeq"
        case .date: "Date"
        case .errorInfo: "Error-Info"
        case .event: "Event"
        case .expires: "Expires"
        case .from: "From"
        case .identity: "Identity"
        case .identityInfo: "Identity-Info"
        case .inReplyTo: "In-Reply-To"
        case .maxForwards: "Max-Forwards"
        case .mimeVersion: "MIME-Version"
        case .minExpires: "Min-Expires"
        case .minSE: "Min-SE"
        case .organization: "Organization"
        case .pAssertedIdentity: "P-Asserted-Identity"
        case .pPreferredIdentity: "P-Preferred-Identity"
        case .path: "Path"
        case .priority: "Priority"
        case .privacy: "Privacy"
        case .proxyAuthenticate: "Proxy-Authenticate"
        case .proxyAuthorization: "Proxy-Authorization"
        case .proxyRequire: "Proxy-Require"
        case .rack: "RAck"
        case .reason: "Reason"
        case .recordRoute: "Record-Route"
        case .referTo: "Refer-To"
        case .referredBy: "Referred-By"
        case .rejectContact: "Reject-Contact"
        case .replyTo: "Reply-To"
        case .requestDisposition: "Request-Disposition"
        case .require: "Require"
        case .retryAfter: "Retry-After"
        case .route: "Route"
        case .rseq: "RSeq"
        case .server: "Server"
        case .serviceRoute: "Service-Route"
        case .sessionExpires: "Session-Expires"
        case .subject: "Subject"
        case .subscriptionState: "Subscription-State"
        case .supported: "Supported"
        case .timestamp: "Timestamp"
        case .to: "To"
        case .unsupported: "Unsupported"
        case .userAgent: "User-Agent"
        case .via: "Via"
        case .warning: "Warning"
        case .wwwAuthenticate: "WWW-Authenticate"
        }
    }

    /// The one-letter compact form (RFC 3261 §7.3.3 and the IANA registry), if the header has one.
    public var compactForm: Character? {
        switch self {
        case .acceptContact: "a"
        case .allowEvents: "u"
        case .callID: "i"
        case .contact: "m"
        case .contentEncoding: "e"
        case .contentLength: "l"
        case .contentType: "c"
        case .event: "o"
        case .from: "f"
        case .identity: "y"
        case .identityInfo: "n"
        case .referTo: "r"
        case .referredBy: "b"
        case .rejectContact: "j"
        case .requestDisposition: "d"
        case .sessionExpires: "x"
        case .subject: "s"
        case .supported: "k"
        case .to: "t"
        case .via: "v"
        default: nil
        }
    }

    /// Whether several values may be joined with commas in one field (RFC 3261 §7.3.1); such fields are split
    /// outside quoted strings and angle brackets. Authorization, WWW-Authenticate, Date and the like are not.
    public var isCommaSeparatedList: Bool {
        switch self {
        case .accept, .acceptContact, .acceptEncoding, .acceptLanguage, .alertInfo, .allow, .allowEvents, .callInfo, .contact, .contentEncoding, .contentLanguage, .errorInfo, .inReplyTo, .pAssertedIdentity, .pPreferredIdentity, .path, .proxyRequire, .reason, .recordRoute, .rejectContact, .requestDisposition, .require, .route, .serviceRoute, .supported, .unsupported, .via, .warning:
            true
        default:
            false
        }
    }

    public var description: String { canonicalName }

    /// Recognises a header name (case-insensitive, long or compact form); `.other` when it is not known.
    init(bytes: ArraySlice<UInt8>) {
        if bytes.count == 1, let first = bytes.first {
            switch first.asciiLowercased {
            case UInt8(ascii: "a"): self = .acceptContact
            case UInt8(ascii: "u"): self = .allowEvents
            case UInt8(ascii: "i"): self = .callID
            case UInt8(ascii: "m"): self = .contact
            case UInt8(ascii: "e"): self = .contentEncoding
            case UInt8(ascii: "l"): self = .contentLength
            case UInt8(ascii: "c"): self = .contentType
            case UInt8(ascii: "o"): self = .event
            case UInt8(ascii: "f"): self = .from
            case UInt8(ascii: "y"): self = .identity
            case UInt8(ascii: "n"): self = .identityInfo
            case UInt8(ascii: "r"): self = .referTo
            case UInt8(ascii: "b"): self = .referredBy
            case UInt8(ascii: "j"): self = .rejectContact
            case UInt8(ascii: "d"): self = .requestDisposition
            case UInt8(ascii: "x"): self = .sessionExpires
            case UInt8(ascii: "s"): self = .subject
            case UInt8(ascii: "k"): self = .supported
            case UInt8(ascii: "t"): self = .to
            case UInt8(ascii: "v"): self = .via
            default: self = .other
            }
            return
        }
        guard bytes.count < Self.namesByLength.count else {
            self = .other
            return
        }
        for (lowercased, name) in Self.namesByLength[bytes.count] where bytes.equalsCaseInsensitive(bytes: lowercased) {
            self = name
            return
        }
        self = .other
    }

    /// Known names grouped by length, lower-cased, for a lookup without allocation.
    private static let namesByLength: [[([UInt8], SIPHeaderName)]] = {
        var table = [[([UInt8], SIPHeaderName)]](repeating: [], count: 24)
        for name in SIPHeaderName.allCases where name != .other {
            let lowered = Array(name.canonicalName.lowercased().utf8)
            table[lowered.count].append((lowered, name))
        }
        return table
    }()
}
