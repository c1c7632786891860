/// A valid international number in E.164 form, with the country it belongs to.
///
/// Two numbers are equal when their digits are.
public struct E164Number: Sendable, Hashable, CustomStringConvertible {
    /// The digits, country code first, without `+` (`"442079460018"`).
    public let digits: String
    /// The country the number belongs to (Jersey for `+441534…`, not the United Kingdom).
    public let country: Country
    /// The national significant number: the digits after the country calling code (`"2079460018"`).
    public let nationalNumber: String

    init(digits: String, country: Country) {
        self.digits = digits
        self.country = country
        self.nationalNumber = String(digits.dropFirst(country.callingCode.count))
    }

    /// The country calling code (`"44"`).
    public var callingCode: String { country.callingCode }

    /// The number with a leading `+` (`"+442079460018"`).
    public var description: String { "+" + digits }

    public static func == (lhs: E164Number, rhs: E164Number) -> Bool { lhs.digits == rhs.digits }
    public func hash(into hasher: inout Hasher) { hasher.combine(digits) }
}
