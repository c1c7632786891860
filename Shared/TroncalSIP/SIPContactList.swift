/// The Contact header value: the `*` wildcard (REGISTER removal) or a list of addresses.
public enum SIPContactList: Hashable, Sendable {
    case wildcard
    case addresses([SIPAddress])
}
