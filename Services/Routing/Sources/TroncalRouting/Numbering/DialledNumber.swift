/// What a dialled string turned out to be: an E.164 number, or a short code that only means something in the caller's country.
public enum DialledNumber: Sendable, Hashable {
    /// An international number.
    case e164(E164Number)
    /// An emergency or service short code (`112`, `911`, `116123`): not an E.164 number, not routed by prefix.
    case shortCode(String)

    /// The E.164 number, or `nil` for a short code.
    public var e164: E164Number? {
        if case .e164(let number) = self { return number }
        return nil
    }
}
