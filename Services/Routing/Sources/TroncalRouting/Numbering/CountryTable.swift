/// The countries of the E.164 numbering plan, found by ISO code or by the longest identifying prefix of a number.
///
/// `CountryTable.itu` is the built-in table (every assigned country calling code; see `CountryTableData`),
/// parsed once on first use. A table is an immutable value, safe to share between threads.
public struct CountryTable: Sendable {
    /// The countries, in table order.
    public let countries: [Country]
    private let indexByISO: [String: Int]
    private let indexByPrefix: PrefixTrie<Int>

    /// The built-in table of every ITU-T country calling code.
    public static let itu: CountryTable = {
        do {
            return try CountryTable(csv: CountryTableData.csv)
        } catch {
            // The built-in data is a constant checked by the tests, not input: a failure here is a programming error.
            preconditionFailure("the built-in country table is malformed: \(error)")
        }
    }()

    /// A table of the given countries. Throws `invalidTable` when ISO codes repeat, when two countries claim the same
    /// identifying prefix, or when a prefix or length range is impossible.
    public init(countries: [Country]) throws(NumberingError) {
        var indexByISO: [String: Int] = [:]
        var indexByPrefix = PrefixTrie<Int>(minimumCapacity: countries.count * 2)
        for (index, country) in countries.enumerated() {
            try Self.validate(country)
            if let iso = country.isoCode {
                guard indexByISO.updateValue(index, forKey: iso) == nil else {
                    throw NumberingError(.invalidTable, "ISO code \(iso) appears twice")
                }
            }
            for prefix in country.identifyingPrefixes {
                let previous = try indexByPrefix.insert(prefix, index)
                if let previous {
                    throw NumberingError(
                        .invalidTable, "prefix \(prefix) identifies both \(countries[previous].id) and \(country.id)")
                }
            }
        }
        for country in countries where country.sharesCallingCode {
            guard indexByPrefix.value(forPrefix: country.callingCode) != nil else {
                throw NumberingError(.invalidTable, "\(country.id) shares +\(country.callingCode) but no country owns it")
            }
        }
        self.countries = countries
        self.indexByISO = indexByISO
        indexByPrefix.compact()
        self.indexByPrefix = indexByPrefix
    }

    /// A table read from comma-separated rows in the format of `CountryTableData` (a header line first; `;` separates
    /// the items of list columns).
    public init(csv: String) throws(NumberingError) {
        var countries: [Country] = []
        for (number, line) in csv.split(separator: "\n", omittingEmptySubsequences: false).enumerated().dropFirst() {
            let trimmed = line.drop(while: { $0 == " " })
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            countries.append(try Self.country(fromRow: trimmed, line: number + 1))
        }
        try self.init(countries: countries)
    }

    /// The country with this ISO 3166-1 alpha-2 code (any letter case).
    public func country(isoCode: String) -> Country? {
        indexByISO[isoCode.uppercased()].map { countries[$0] }
    }

    /// The country an E.164 number (digits without `+`) belongs to, by its longest identifying prefix.
    public func country(forE164 digits: String) -> Country? {
        indexByPrefix.longestMatch(utf8: digits.utf8).map { countries[$0.value] }
    }

    /// The countries that use a calling code, the one that owns the bare code first.
    public func countries(callingCode: String) -> [Country] {
        let owner = indexByPrefix.value(forPrefix: callingCode)
        let users = countries.indices.filter { countries[$0].callingCode == callingCode }
        return (users.filter { $0 == owner } + users.filter { $0 != owner }).map { countries[$0] }
    }

    /// The country that owns the bare calling code (the United States for `1`, Russia for `7`), if any.
    public func owner(ofCallingCode callingCode: String) -> Country? {
        indexByPrefix.value(forPrefix: callingCode).map { countries[$0] }
    }

    private static func validate(_ country: Country) throws(NumberingError) {
        let id = country.id
        guard isDigits(country.callingCode), (1...3).contains(country.callingCode.count),
            country.callingCode.first != "0"
        else {
            throw NumberingError(.invalidTable, "\(id): calling code must be 1 to 3 digits, not starting with 0")
        }
        if let iso = country.isoCode {
            guard iso.count == 2, iso.allSatisfy({ $0.isASCII && $0.isUppercase }) else {
                throw NumberingError(.invalidTable, "\(id): ISO code must be two capital letters")
            }
        }
        guard country.nationalNumberLengths.lowerBound >= 1,
            country.callingCode.count + country.nationalNumberLengths.upperBound <= 15
        else {
            throw NumberingError(.invalidTable, "\(id): national number lengths must fit E.164's 15 digits")
        }
        for prefix in country.identifyingPrefixes {
            guard isDigits(prefix), prefix.hasPrefix(country.callingCode) else {
                throw NumberingError(.invalidTable, "\(id): prefix \(prefix) must be digits starting with +\(country.callingCode)")
            }
        }
        let dialPrefixes = country.internationalPrefixes + (country.trunkPrefix.map { [$0] } ?? [])
        for prefix in dialPrefixes where !isDigits(prefix) || prefix.isEmpty {
            throw NumberingError(.invalidTable, "\(id): dialling prefixes must be digits")
        }
        if country.keepsLeadingZero, country.trunkPrefix == "0" {
            throw NumberingError(.invalidTable, "\(id): a country that keeps its leading 0 cannot use 0 as trunk prefix")
        }
    }

    private static func country(fromRow row: Substring, line: Int) throws(NumberingError) -> Country {
        let columns = row.split(separator: ",", omittingEmptySubsequences: false).map { String($0) }
        guard columns.count == 10 else {
            throw NumberingError(.invalidTable, "line \(line): expected 10 columns, found \(columns.count)")
        }
        let list = { (column: String) -> [String] in column.split(separator: ";").map { String($0) } }
        guard let minimum = Int(columns[4]), let maximum = Int(columns[5]), minimum <= maximum else {
            throw NumberingError(.invalidTable, "line \(line): lengths must be two integers, min <= max")
        }
        let flags = Set(list(columns[9]))
        let known: Set<String> = ["keeps0", "trunkopt", "shared"]
        guard flags.isSubset(of: known) else {
            throw NumberingError(.invalidTable, "line \(line): unknown flag (allowed: keeps0, trunkopt, shared)")
        }
        let nonEmpty = { (column: String) -> String? in column.isEmpty ? nil : column }
        return Country(
            isoCode: nonEmpty(columns[0]), name: columns[1], callingCode: columns[2], identifyingPrefixes: list(columns[3]),
            nationalNumberLengths: minimum...maximum, trunkPrefix: nonEmpty(columns[6]),
            isTrunkPrefixOptional: flags.contains("trunkopt"), internationalPrefix: nonEmpty(columns[7]),
            alternativeInternationalPrefixes: list(columns[8]), keepsLeadingZero: flags.contains("keeps0"),
            sharesCallingCode: flags.contains("shared"))
    }

    private static func isDigits(_ string: String) -> Bool {
        string.utf8.allSatisfy { $0 >= 48 && $0 <= 57 }
    }
}
