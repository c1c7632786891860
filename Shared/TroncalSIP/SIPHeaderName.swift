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
        case .accept, .acceptContact, .acceptEncoding, .acceptLanguage, .alertInfo, .allow, .allowEvents, .callInfo,
            .contact, .contentEncoding, .contentLanguage, .errorInfo, .inReplyTo, .pAssertedIdentity,
            .pPreferredIdentity, .path, .proxyRequire, .reason, .recordRoute, .rejectContact, .requestDisposition,
            .require, .route, .serviceRoute, .supported, .unsupported, .via, .warning:
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
        switch bytes.count {
        case 2:
            if bytes.equalsCaseInsensitive("to") {
                self = .to
                return
            }
        case 3:
            if bytes.equalsCaseInsensitive("via") {
                self = .via
                return
            }
        case 4:
            if bytes.equalsCaseInsensitive("cseq") {
                self = .cseq
                return
            }
            if bytes.equalsCaseInsensitive("date") {
                self = .date
                return
            }
            if bytes.equalsCaseInsensitive("from") {
                self = .from
                return
            }
            if bytes.equalsCaseInsensitive("path") {
                self = .path
                return
            }
            if bytes.equalsCaseInsensitive("rack") {
                self = .rack
                return
            }
            if bytes.equalsCaseInsensitive("rseq") {
                self = .rseq
                return
            }
        case 5:
            if bytes.equalsCaseInsensitive("allow") {
                self = .allow
                return
            }
            if bytes.equalsCaseInsensitive("event") {
                self = .event
                return
            }
            if bytes.equalsCaseInsensitive("route") {
                self = .route
                return
            }
        case 6:
            if bytes.equalsCaseInsensitive("accept") {
                self = .accept
                return
            }
            if bytes.equalsCaseInsensitive("min-se") {
                self = .minSE
                return
            }
            if bytes.equalsCaseInsensitive("reason") {
                self = .reason
                return
            }
            if bytes.equalsCaseInsensitive("server") {
                self = .server
                return
            }
        case 7:
            if bytes.equalsCaseInsensitive("call-id") {
                self = .callID
                return
            }
            if bytes.equalsCaseInsensitive("contact") {
                self = .contact
                return
            }
            if bytes.equalsCaseInsensitive("expires") {
                self = .expires
                return
            }
            if bytes.equalsCaseInsensitive("privacy") {
                self = .privacy
                return
            }
            if bytes.equalsCaseInsensitive("require") {
                self = .require
                return
            }
            if bytes.equalsCaseInsensitive("subject") {
                self = .subject
                return
            }
            if bytes.equalsCaseInsensitive("warning") {
                self = .warning
                return
            }
        case 8:
            if bytes.equalsCaseInsensitive("identity") {
                self = .identity
                return
            }
            if bytes.equalsCaseInsensitive("priority") {
                self = .priority
                return
            }
            if bytes.equalsCaseInsensitive("refer-to") {
                self = .referTo
                return
            }
            if bytes.equalsCaseInsensitive("reply-to") {
                self = .replyTo
                return
            }
        case 9:
            if bytes.equalsCaseInsensitive("call-info") {
                self = .callInfo
                return
            }
            if bytes.equalsCaseInsensitive("supported") {
                self = .supported
                return
            }
            if bytes.equalsCaseInsensitive("timestamp") {
                self = .timestamp
                return
            }
        case 10:
            if bytes.equalsCaseInsensitive("alert-info") {
                self = .alertInfo
                return
            }
            if bytes.equalsCaseInsensitive("error-info") {
                self = .errorInfo
                return
            }
            if bytes.equalsCaseInsensitive("user-agent") {
                self = .userAgent
                return
            }
        case 11:
            if bytes.equalsCaseInsensitive("in-reply-to") {
                self = .inReplyTo
                return
            }
            if bytes.equalsCaseInsensitive("min-expires") {
                self = .minExpires
                return
            }
            if bytes.equalsCaseInsensitive("referred-by") {
                self = .referredBy
                return
            }
            if bytes.equalsCaseInsensitive("retry-after") {
                self = .retryAfter
                return
            }
            if bytes.equalsCaseInsensitive("unsupported") {
                self = .unsupported
                return
            }
        case 12:
            if bytes.equalsCaseInsensitive("allow-events") {
                self = .allowEvents
                return
            }
            if bytes.equalsCaseInsensitive("content-type") {
                self = .contentType
                return
            }
            if bytes.equalsCaseInsensitive("max-forwards") {
                self = .maxForwards
                return
            }
            if bytes.equalsCaseInsensitive("mime-version") {
                self = .mimeVersion
                return
            }
            if bytes.equalsCaseInsensitive("organization") {
                self = .organization
                return
            }
            if bytes.equalsCaseInsensitive("record-route") {
                self = .recordRoute
                return
            }
        case 13:
            if bytes.equalsCaseInsensitive("authorization") {
                self = .authorization
                return
            }
            if bytes.equalsCaseInsensitive("identity-info") {
                self = .identityInfo
                return
            }
            if bytes.equalsCaseInsensitive("proxy-require") {
                self = .proxyRequire
                return
            }
            if bytes.equalsCaseInsensitive("service-route") {
                self = .serviceRoute
                return
            }
        case 14:
            if bytes.equalsCaseInsensitive("accept-contact") {
                self = .acceptContact
                return
            }
            if bytes.equalsCaseInsensitive("content-length") {
                self = .contentLength
                return
            }
            if bytes.equalsCaseInsensitive("reject-contact") {
                self = .rejectContact
                return
            }
        case 15:
            if bytes.equalsCaseInsensitive("accept-encoding") {
                self = .acceptEncoding
                return
            }
            if bytes.equalsCaseInsensitive("accept-language") {
                self = .acceptLanguage
                return
            }
            if bytes.equalsCaseInsensitive("session-expires") {
                self = .sessionExpires
                return
            }
        case 16:
            if bytes.equalsCaseInsensitive("content-encoding") {
                self = .contentEncoding
                return
            }
            if bytes.equalsCaseInsensitive("content-language") {
                self = .contentLanguage
                return
            }
            if bytes.equalsCaseInsensitive("www-authenticate") {
                self = .wwwAuthenticate
                return
            }
        case 18:
            if bytes.equalsCaseInsensitive("proxy-authenticate") {
                self = .proxyAuthenticate
                return
            }
            if bytes.equalsCaseInsensitive("subscription-state") {
                self = .subscriptionState
                return
            }
        case 19:
            if bytes.equalsCaseInsensitive("authentication-info") {
                self = .authenticationInfo
                return
            }
            if bytes.equalsCaseInsensitive("content-disposition") {
                self = .contentDisposition
                return
            }
            if bytes.equalsCaseInsensitive("p-asserted-identity") {
                self = .pAssertedIdentity
                return
            }
            if bytes.equalsCaseInsensitive("proxy-authorization") {
                self = .proxyAuthorization
                return
            }
            if bytes.equalsCaseInsensitive("request-disposition") {
                self = .requestDisposition
                return
            }
        case 20:
            if bytes.equalsCaseInsensitive("p-preferred-identity") {
                self = .pPreferredIdentity
                return
            }
        default:
            break
        }
        self = .other
    }
}
