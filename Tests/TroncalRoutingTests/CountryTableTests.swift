import Testing

@testable import TroncalRouting

/// The built-in country table is complete, consistent and right about the countries operators care about.
@Suite struct CountryTableTests {
    let table = CountryTable.itu

    @Test func builtInTableParsesAndCoversEveryAssignedCode() throws {
        let parsed = try CountryTable(csv: CountryTableData.csv)
        #expect(parsed.countries.count == table.countries.count)
        #expect(table.countries.filter { $0.isoCode != nil }.count >= 240)
        let codes = Set(table.countries.map(\.callingCode))
        #expect(codes.count >= 210)
        for code in ["1", "7", "20", "211", "262", "290", "39", "383", "44", "590", "599", "672", "800", "882", "979", "998"] {
            #expect(codes.contains(code), "+\(code)")
        }
    }

    @Test func isoCodesAreUnique() {
        let codes = table.countries.compactMap(\.isoCode)
        #expect(Set(codes).count == codes.count)
    }

    @Test func everyIdentifyingPrefixBelongsToExactlyOneCountryAndStartsWithItsCode() {
        var owners: [String: String] = [:]
        for country in table.countries {
            for prefix in country.identifyingPrefixes {
                #expect(prefix.hasPrefix(country.callingCode), "\(country.id) \(prefix)")
                #expect(owners.updateValue(country.id, forKey: prefix) == nil, "\(prefix) claimed twice")
            }
        }
    }

    @Test func everySharedCallingCodeIsDisambiguated() {
        for (code, users) in Dictionary(grouping: table.countries, by: \.callingCode) where users.count > 1 {
            let owners = users.filter { $0.identifyingPrefixes.contains(code) }
            #expect(owners.count <= 1, "+\(code) owned by \(owners.map(\.id))")
            for country in users where !owners.contains(country) {
                if country.sharesCallingCode {
                    #expect(owners.count == 1, "\(country.id) shares +\(code), which nobody owns")
                } else {
                    #expect(country.identifyingPrefixes.allSatisfy { $0.count > code.count }, "\(country.id)")
                    #expect(!country.identifyingPrefixes.isEmpty, "\(country.id)")
                }
            }
            for country in users {
                #expect(table.country(forE164: country.identifyingPrefixes.first ?? code + "0")?.callingCode == code)
            }
        }
    }

    @Test func nationalNumberLengthsFitFifteenDigits() {
        for country in table.countries {
            #expect(country.nationalNumberLengths.lowerBound >= 4, "\(country.id)")
            #expect(country.callingCode.count + country.nationalNumberLengths.upperBound <= 15, "\(country.id)")
        }
    }

    @Test func everyGeographicCountryHasAnInternationalPrefixDistinctFromItsTrunkPrefix() {
        for country in table.countries where country.isoCode != nil {
            #expect(country.internationalPrefix != nil, "\(country.id)")
            if let trunk = country.trunkPrefix {
                for prefix in country.internationalPrefixes {
                    #expect(prefix != trunk, "\(country.id)")
                }
            }
        }
    }

    // (ISO, calling code, trunk prefix, international prefix, NSN lengths, keeps leading zero)
    static let facts: [(String, String, String?, String, ClosedRange<Int>, Bool)] = [
        ("GB", "44", "0", "00", 7...10, false),
        ("DE", "49", "0", "00", 5...13, false),
        ("FR", "33", "0", "00", 9...9, false),
        ("ES", "34", nil, "00", 9...9, false),
        ("IT", "39", nil, "00", 6...12, true),
        ("PT", "351", nil, "00", 9...9, false),
        ("DK", "45", nil, "00", 8...8, false),
        ("NO", "47", nil, "00", 8...12, false),
        ("NL", "31", "0", "00", 7...11, false),
        ("CH", "41", "0", "00", 9...12, false),
        ("PL", "48", nil, "00", 9...9, false),
        ("GR", "30", nil, "00", 10...10, false),
        ("US", "1", "1", "011", 10...10, false),
        ("CA", "1", "1", "011", 10...10, false),
        ("JM", "1", "1", "011", 10...10, false),
        ("RU", "7", "8", "810", 10...10, false),
        ("KZ", "7", "8", "810", 10...10, false),
        ("BY", "375", "80", "810", 9...10, false),
        ("HU", "36", "06", "00", 8...9, false),
        ("LT", "370", "0", "00", 8...8, false),
        ("SM", "378", nil, "00", 6...10, true),
        ("VA", "39", nil, "00", 6...12, true),
        ("AU", "61", "0", "0011", 6...10, false),
        ("JP", "81", "0", "010", 9...10, false),
        ("KR", "82", "0", "001", 8...10, false),
        ("CN", "86", "0", "00", 9...11, false),
        ("IN", "91", "0", "00", 10...10, false),
        ("BR", "55", "0", "00", 10...11, false),
        ("MX", "52", nil, "00", 10...10, false),
        ("TR", "90", "0", "00", 10...10, false),
        ("ZA", "27", "0", "00", 9...9, false),
        ("NG", "234", "0", "009", 8...10, false),
        ("KE", "254", "0", "000", 7...10, false),
        ("CU", "53", "0", "119", 6...8, false),
        ("MU", "230", nil, "020", 7...8, false),
        ("CV", "238", nil, "0", 7...7, false),
        ("SG", "65", nil, "000", 8...11, false),
        ("IL", "972", "0", "00", 8...10, false),
        ("CI", "225", nil, "00", 10...10, true),
        ("BJ", "229", nil, "00", 10...10, true),
    ]

    @Test(arguments: facts)
    func knowsTheDiallingRulesOf(
        iso: String, code: String, trunk: String?, international: String, lengths: ClosedRange<Int>, keepsZero: Bool
    ) throws {
        let country = try #require(table.country(isoCode: iso))
        #expect(country.callingCode == code)
        #expect(country.trunkPrefix == trunk)
        #expect(country.internationalPrefix == international)
        #expect(country.nationalNumberLengths == lengths)
        #expect(country.keepsLeadingZero == keepsZero)
    }

    static let classifications: [(String, String)] = [
        ("12125550100", "US"), ("14165550199", "CA"), ("16045550199", "CA"), ("18765550123", "JM"),
        ("16585550123", "JM"), ("18295550123", "DO"), ("17875550123", "PR"), ("12425550123", "BS"),
        ("74951234567", "RU"), ("77011234567", "KZ"), ("76001234567", "KZ"),
        ("390612345678", "IT"), ("390669812345", "VA"),
        ("442079460018", "GB"), ("441481123456", "GG"), ("441534123456", "JE"), ("441624123456", "IM"),
        ("447624123456", "IM"), ("447700900123", "GB"),
        ("262262123456", "RE"), ("262269123456", "YT"), ("262639123456", "YT"),
        ("590590123456", "GP"), ("59994612345", "CW"), ("5997171234", "BQ"),
        ("4722123456", "NO"), ("4779012345", "SJ"), ("358912345678", "FI"), ("358181234567", "AX"),
        ("61298765432", "AU"), ("61891641234", "CX"), ("61891621234", "CC"),
        ("212522123456", "MA"), ("212528812345", "EH"), ("29022345", "SH"), ("29081234", "TA"),
        ("80012345678", "+800"),
    ]

    @Test(arguments: classifications)
    func classifiesNumbersOfSharedCallingCodesToTheirCountry(digits: String, expected: String) {
        #expect(table.country(forE164: digits)?.id == expected)
    }

    @Test func unassignedCodesBelongToNoCountry() {
        for digits in ["281234567", "5995123456", "0441234567", "8091234567"] {
            #expect(table.country(forE164: digits) == nil, "\(digits)")
        }
    }

    @Test func listsTheOwnerOfASharedCodeFirst() {
        #expect(table.countries(callingCode: "44").map(\.id) == ["GB", "GG", "JE", "IM"])
        #expect(table.owner(ofCallingCode: "7")?.id == "RU")
        #expect(table.owner(ofCallingCode: "599") == nil)
    }

    static let malformed: [(String, String)] = [
        ("too few columns", "XA,Nowhere,999,,8,8,,00\n"),
        ("lengths reversed", "XA,Nowhere,999,,9,8,,00,,\n"),
        ("unknown flag", "XA,Nowhere,999,,8,8,,00,,sometimes\n"),
        ("ISO code repeated", "XA,Nowhere,998,,8,8,,00,,\nXA,Elsewhere,997,,8,8,,00,,\n"),
        ("prefix claimed twice", "XA,Nowhere,998,,8,8,,00,,\nXB,Elsewhere,998,,8,8,,00,,\n"),
        ("prefix outside its code", "XA,Nowhere,998,9971,8,8,,00,,\n"),
        ("longer than E.164", "XA,Nowhere,998,,8,13,,00,,\n"),
        ("shared code nobody owns", "XA,Nowhere,998,,8,8,,00,,shared\n"),
        ("non-digit trunk prefix", "XA,Nowhere,998,,8,8,O,00,,\n"),
    ]

    @Test(arguments: malformed)
    func rejectsAMalformedTable(reason: String, rows: String) {
        let error = #expect(throws: NumberingError.self, "\(reason)") {
            try CountryTable(csv: "iso,name,code,prefixes,min,max,trunk,intl,alt,flags\n" + rows)
        }
        #expect(error?.code == .invalidTable, "\(reason)")
    }
}
