/// A SIP request method: the RFC 3261 methods and common extensions by name, any other token as `.extension`.
/// Methods are case-sensitive (RFC 3261 §7.1).
public enum SIPMethod: Hashable, Sendable, CustomStringConvertible {
    case invite, ack, bye, cancel, options, register
    case prack, subscribe, notify, publish, info, refer, message, update
    /// Any other method token, exactly as received.
    case `extension`(String)

    public init?(_ text: String) {
        self.init(bytes: Array(text.utf8)[...])
    }

    /// Parses a method token; nil when the bytes are not a token.
    init?(bytes: ArraySlice<UInt8>) {
        guard !bytes.isEmpty, bytes.allSatisfy(\.isSIPTokenChar) else { return nil }
        switch bytes.count {
        case 3:
            if bytes.elementsEqual("ACK".utf8) {
                self = .ack
                return
            }
            if bytes.elementsEqual("BYE".utf8) {
                self = .bye
                return
            }
        case 4:
            if bytes.elementsEqual("INFO".utf8) {
                self = .info
                return
            }
        case 5:
            if bytes.elementsEqual("PRACK".utf8) {
                self = .prack
                return
            }
            if bytes.elementsEqual("REFER".utf8) {
                self = .refer
                return
            }
        case 6:
            if bytes.elementsEqual("INVITE".utf8) {
                self = .invite
                return
            }
            if bytes.elementsEqual("CANCEL".utf8) {
                self = .cancel
                return
            }
            if bytes.elementsEqual("NOTIFY".utf8) {
                self = .notify
                return
            }
            if bytes.elementsEqual("UPDATE".utf8) {
                self = .update
                return
            }
        case 7:
            if bytes.elementsEqual("OPTIONS".utf8) {
                self = .options
                return
            }
            if bytes.elementsEqual("PUBLISH".utf8) {
                self = .publish
                return
            }
            if bytes.elementsEqual("MESSAGE".utf8) {
                self = .message
                return
            }
        case 8:
            if bytes.elementsEqual("REGISTER".utf8) {
                self = .register
                return
            }
        case 9:
            if bytes.elementsEqual("SUBSCRIBE".utf8) {
                self = .subscribe
                return
            }
        default:
            break
        }
        self = .extension(bytes.sipString)
    }

    /// The method token as sent on the wire.
    public var name: String {
        switch self {
        case .invite: "INVITE"
        case .ack: "ACK"
        case .bye: "BYE"
        case .cancel: "CANCEL"
        case .options: "OPTIONS"
        case .register: "REGISTER"
        case .prack: "PRACK"
        case .subscribe: "SUBSCRIBE"
        case .notify: "NOTIFY"
        case .publish: "PUBLISH"
        case .info: "INFO"
        case .refer: "REFER"
        case .message: "MESSAGE"
        case .update: "UPDATE"
        case .extension(let name): name
        }
    }

    public var description: String { name }
}
