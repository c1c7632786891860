/// Turns what a caller dialled into an E.164 number, read with the dialling rules of the caller's country.
///
/// Accepts `+CC…`, the country's international prefixes (`00`, `011`, `0011`, `810` …), national numbers with the
/// trunk prefix (`020 7946 0018` in GB), visual separators, `tel:` URIs (global, or local with a phone-context) and
/// `sip:`/`sips:` URIs whose user part is a number. Short codes (`112`, `911`) come back as `.shortCode`.
public struct NumberNormalizer: Sendable {
    /// The caller's country, whose prefixes and national number lengths apply.
    public let country: Country
    /// The caller's area code, if local numbers (dialled without the trunk prefix and area code) are to be completed.
    public let areaCode: String?
    /// The countries numbers are classified into.
    public let table: CountryTable
    /// The caller's international prefixes, longest first so that `00700` wins over `00`.
    private let internationalPrefixes: [String]

    /// A normalizer for callers in the country with ISO code `isoCode`. `areaCode` (digits, without the trunk prefix)
    /// completes local numbers.
    public init(country isoCode: String, areaCode: String? = nil, table: CountryTable = .itu) throws(NumberingError) {
        guard let country = table.country(isoCode: isoCode) else {
            throw NumberingError(.unknownCountry, "no country with ISO code \(isoCode.prefix(8))")
        }
        if let areaCode {
            guard !areaCode.isEmpty, areaCode.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                throw NumberingError(.invalidPrefix, "an area code is one or more decimal digits")
            }
        }
        self.country = country
        self.areaCode = areaCode
        self.table = table
        self.internationalPrefixes = country.internationalPrefixes.sorted { $0.count > $1.count }
    }

    /// The E.164 number or short code that `dialled` stands for.
    public func normalize(_ dialled: String) throws(NumberingError) -> DialledNumber {
        let dial = try DialString(parsing: dialled)
        let zero = dial.parenthesisedZeroOffset
        if dial.isGlobal {
            return .e164(try international(dial.digits, parenthesisedZeroAt: zero))
        }
        switch dial.phoneContext {
        case .global(let context):
            if let contextCountry = table.owner(ofCallingCode: context) {
                return try national(dial.digits, in: contextCountry, areaCode: nil, trunkRequired: false)
            }
            return .e164(try international(context + dial.digits, parenthesisedZeroAt: zero.map { $0 + context.count }))
        case .domain, nil:
            break
        }
        if let prefix = internationalPrefixes.first(where: { dial.digits.hasPrefix($0) }) {
            let rest = String(dial.digits.dropFirst(prefix.count))
            return .e164(try international(rest, parenthesisedZeroAt: zero.map { $0 - prefix.count }))
        }
        return try national(dial.digits, in: country, areaCode: areaCode, trunkRequired: !country.isTrunkPrefixOptional)
    }

    /// An international number: the country code first.
    private func international(_ digits: String, parenthesisedZeroAt zero: Int?) throws(NumberingError) -> E164Number {
        guard !digits.isEmpty else { throw NumberingError(.tooShort, "no digits after the international prefix") }
        var digits = digits
        // "+44 (0)20 …": the 0 in parentheses is the trunk prefix, dropped unless the country keeps its leading 0.
        if let zero, let owner = table.country(forE164: digits), zero == owner.callingCode.count, !owner.keepsLeadingZero {
            digits.remove(at: digits.index(digits.startIndex, offsetBy: zero))
        }
        guard digits.count <= 15 else {
            throw NumberingError(.tooLong, "E.164 numbers have at most 15 digits, this one has \(digits.count)")
        }
        guard let country = table.country(forE164: digits) else {
            throw NumberingError(.unknownCountryCode, "no country calling code starts the number")
        }
        let length = digits.count - country.callingCode.count
        let lengths = country.nationalNumberLengths
        guard lengths.contains(length) else {
            throw Self.wrongLength(length, in: country)
        }
        return E164Number(digits: digits, country: country)
    }

    /// A number dialled inside `country`: with its trunk prefix, without it where that is allowed, as a local number
    /// completed with the area code, or a short code.
    private func national(
        _ digits: String, in country: Country, areaCode: String?, trunkRequired: Bool
    ) throws(NumberingError) -> DialledNumber {
        let lengths = country.nationalNumberLengths
        let code = country.callingCode
        let trunk = country.trunkPrefix
        let startsWithTrunk = trunk.map { digits.hasPrefix($0) } ?? false
        if let trunk, startsWithTrunk {
            let length = digits.count - trunk.count
            if lengths.contains(length) {
                return .e164(try international(code + digits.dropFirst(trunk.count), parenthesisedZeroAt: nil))
            }
            // Three digits or fewer may still be a short code that starts like the trunk prefix (000 in Australia).
            if trunkRequired, digits.count > 3 {
                throw Self.wrongLength(length, in: country)
            }
        }
        let mayOmitTrunk = trunk == nil || !trunkRequired
        if mayOmitTrunk, lengths.contains(digits.count) {
            return .e164(try international(code + digits, parenthesisedZeroAt: nil))
        }
        if let areaCode, !startsWithTrunk, lengths.contains(areaCode.count + digits.count) {
            return .e164(try international(code + areaCode + digits, parenthesisedZeroAt: nil))
        }
        if digits.count <= 6, !(country.keepsLeadingZero && digits.hasPrefix("0")) {
            return .shortCode(digits)
        }
        if let trunk, !mayOmitTrunk, digits.count <= lengths.upperBound {
            throw NumberingError(
                .missingTrunkPrefix,
                "national numbers in \(country.id) are dialled with trunk prefix \(trunk) (or set an area code)")
        }
        throw Self.wrongLength(digits.count, in: country)
    }

    /// `tooShort` or `tooLong` for a national significant number of `length` digits.
    private static func wrongLength(_ length: Int, in country: Country) -> NumberingError {
        let lengths = country.nationalNumberLengths
        let allowed =
            lengths.count == 1 ? "\(lengths.lowerBound)" : "\(lengths.lowerBound) to \(lengths.upperBound)"
        return NumberingError(
            length < lengths.lowerBound ? .tooShort : .tooLong,
            "national numbers in \(country.id) have \(allowed) digits, not \(length)")
    }
}
