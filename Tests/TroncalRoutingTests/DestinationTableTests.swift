import Testing

@testable import TroncalRouting

/// A destination table classifies E.164 numbers to the longest destination prefix and the number's own country.
@Suite struct DestinationTableTests {
    static let destinations = [
        Destination(prefix: "34", name: "Spain"),
        Destination(prefix: "346", name: "Spain-Mobile"),
        Destination(prefix: "3491", name: "Spain-Madrid"),
        Destination(prefix: "1", name: "USA-Canada"),
        Destination(prefix: "44", name: "United Kingdom"),
        Destination(prefix: "447", name: "United Kingdom-Mobile"),
    ]

    // (E.164 digits, destination prefix, country)
    static let cases: [(String, String, String)] = [
        ("34912345678", "3491", "ES"),
        ("34612345678", "346", "ES"),
        ("34812345678", "34", "ES"),
        ("12125550100", "1", "US"),
        ("18765550123", "1", "JM"),
        ("447700900123", "447", "GB"),
        ("447797712345", "447", "JE"),
        ("441481123456", "44", "GG"),
    ]

    @Test(arguments: cases)
    func classifiesToTheLongestDestinationAndTheNumbersCountry(digits: String, prefix: String, country: String) throws {
        let table = try DestinationTable(Self.destinations)
        let match = try #require(table.classify(digits: digits))
        #expect(match.destination.prefix == prefix)
        #expect(match.country?.id == country)
    }

    @Test func classifiesANormalisedNumber() throws {
        let table = try DestinationTable(Self.destinations)
        let number = try #require(try NumberNormalizer(country: "ES").normalize("91 234 56 78").e164)
        let match = try #require(table.classify(number))
        #expect(match.destination == Destination(prefix: "3491", name: "Spain-Madrid"))
        #expect(match.country?.isoCode == "ES")
    }

    @Test func aNumberOutsideEveryDestinationHasNoMatch() throws {
        let table = try DestinationTable(Self.destinations)
        #expect(table.classify(digits: "33123456789") == nil)
        #expect(table.count == Self.destinations.count)
        #expect(table.destinations == Self.destinations)
    }

    @Test func refusesAnEmptyOrNonDigitPrefix() {
        for bad in ["", "34a", "+34", "1234567890123456"] {
            let error = #expect(throws: NumberingError.self) {
                try DestinationTable([Destination(prefix: bad, name: "bad")])
            }
            #expect(error?.code == .invalidPrefix)
        }
    }
}
