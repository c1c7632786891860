/// The error of numbering: why a dialled string is not a number, or why a numbering table is malformed.
///
/// Its description never repeats the input (a SIP URI may carry a password); `detail` says what was wrong.
public struct NumberingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, for callers to switch on.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// Nothing to normalise: an empty string or one without digits.
        case empty
        /// A character that is neither a digit nor a visual separator (a letter, `*`, `#`).
        case invalidCharacters = "invalid_characters"
        /// A `tel:` or `sip:` URI that cannot be read, or a SIP URI without a user part.
        case invalidURI = "invalid_uri"
        /// Fewer digits than the country's national numbers have.
        case tooShort = "too_short"
        /// More digits than the country's national numbers have, or more than the 15 of E.164.
        case tooLong = "too_long"
        /// The digits after `+` or the international prefix start with no assigned country code.
        case unknownCountryCode = "unknown_country_code"
        /// A national number dialled without the trunk prefix its country requires, and no area code to complete it.
        case missingTrunkPrefix = "missing_trunk_prefix"
        /// An ISO code that is not in the country table.
        case unknownCountry = "unknown_country"
        /// A prefix or area code that is not a string of decimal digits.
        case invalidPrefix = "invalid_prefix"
        /// A country table whose rows are malformed or contradict each other.
        case invalidTable = "invalid_table"
    }

    public var code: Code
    /// What was wrong, without the input itself.
    public var detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "\(code.rawValue): \(detail)" }
}
