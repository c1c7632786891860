/// A country or territory of the E.164 numbering plan, with the rules for dialling inside it.
///
/// The non-geographic international services (+800, +870, +882 …) are countries without an ISO code.
public struct Country: Sendable, Hashable, Identifiable, CustomStringConvertible {
    /// ISO 3166-1 alpha-2 code (`"GB"`); `nil` for a non-geographic service.
    public let isoCode: String?
    /// English short name.
    public let name: String
    /// ITU-T country calling code, without `+` (`"44"`).
    public let callingCode: String
    /// The E.164 prefixes that identify this country, each starting with `callingCode`: the calling code
    /// itself, or longer prefixes where the code is shared (`"441481"` for Guernsey, `"1876"` for Jamaica).
    /// Empty for a territory that shares another country's ranges (`sharesCallingCode`).
    public let identifyingPrefixes: [String]
    /// The lengths a national significant number may have (the digits after the calling code).
    public let nationalNumberLengths: ClosedRange<Int>
    /// The trunk prefix dialled before the national significant number inside the country (`"0"`, `"1"`, `"8"`, `"06"`).
    public let trunkPrefix: String?
    /// Whether national numbers may be dialled without the trunk prefix (the NANP's ten-digit dialling).
    public let isTrunkPrefixOptional: Bool
    /// The main international call prefix (`"00"`, `"011"`, `"0011"`, `"810"`); `nil` for a non-geographic service.
    public let internationalPrefix: String?
    /// Other international prefixes in current use, usually carrier selections (`"002"` in South Korea).
    public let alternativeInternationalPrefixes: [String]
    /// Whether the leading `0` of national numbers is part of the number and stays after the calling code
    /// (Italy's `+39 06…`): such countries have no trunk prefix to strip.
    public let keepsLeadingZero: Bool
    /// Whether the country shares its calling code and number ranges with another one and is never the result
    /// of classifying a number (Saint Barthélemy and Saint Martin inside Guadeloupe's +590).
    public let sharesCallingCode: Bool

    public init(
        isoCode: String?, name: String, callingCode: String, identifyingPrefixes: [String] = [],
        nationalNumberLengths: ClosedRange<Int>, trunkPrefix: String?, isTrunkPrefixOptional: Bool = false,
        internationalPrefix: String?, alternativeInternationalPrefixes: [String] = [], keepsLeadingZero: Bool = false,
        sharesCallingCode: Bool = false
    ) {
        self.isoCode = isoCode
        self.name = name
        self.callingCode = callingCode
        self.identifyingPrefixes = identifyingPrefixes.isEmpty && !sharesCallingCode ? [callingCode] : identifyingPrefixes
        self.nationalNumberLengths = nationalNumberLengths
        self.trunkPrefix = trunkPrefix
        self.isTrunkPrefixOptional = isTrunkPrefixOptional
        self.internationalPrefix = internationalPrefix
        self.alternativeInternationalPrefixes = alternativeInternationalPrefixes
        self.keepsLeadingZero = keepsLeadingZero
        self.sharesCallingCode = sharesCallingCode
    }

    /// The ISO code, or `+` and the calling code for a non-geographic service.
    public var id: String { isoCode ?? "+" + callingCode }

    /// Every international prefix, the main one first.
    public var internationalPrefixes: [String] {
        (internationalPrefix.map { [$0] } ?? []) + alternativeInternationalPrefixes
    }

    public var description: String { "\(id) \(name) +\(callingCode)" }
}
