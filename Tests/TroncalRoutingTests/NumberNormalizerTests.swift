import Testing

@testable import TroncalRouting

/// Dialled forms from every region normalise to the right E.164 number; garbage is refused with a reason.
@Suite struct NumberNormalizerTests {
    // (caller's country, what was dialled, expected E.164 digits)
    static let dialled: [(String, String, String)] = [
        // United Kingdom
        ("GB", "020 7946 0018", "442079460018"),
        ("GB", "0044 20 7946 0018", "442079460018"),
        ("GB", "+44 (0)20 7946 0018", "442079460018"),
        ("GB", "+44 20 7946 0018", "442079460018"),
        ("GB", "tel:+44-20-7946-0018", "442079460018"),
        ("GB", "tel:020-7946-0018;phone-context=+44", "442079460018"),
        ("GB", "sip:+442079460018@carrier.example;user=phone", "442079460018"),
        ("GB", "\"Reception\" <sip:02079460018@pbx.example;user=phone>", "442079460018"),
        ("GB", "sip:%2B442079460018@carrier.example", "442079460018"),
        ("GB", "07700 900123", "447700900123"),
        ("GB", "01481 123456", "441481123456"),
        ("GB", "07624 123456", "447624123456"),
        // United States, Canada and the Caribbean (NANP)
        ("US", "(212) 555-0100", "12125550100"),
        ("US", "1-212-555-0100", "12125550100"),
        ("US", "212.555.0100", "12125550100"),
        ("US", "+1 212 555 0100", "12125550100"),
        ("US", "011 44 20 7946 0018", "442079460018"),
        ("US", "tel:555-0100;phone-context=+1-212", "12125550100"),
        ("US", "sip:+1-212-555-0100;ext=22@gw.example;user=phone", "12125550100"),
        ("US", "sip:+12125550100:secret@gw.example", "12125550100"),
        ("US", "sips:12125550100@gw.example", "12125550100"),
        ("CA", "416-555-0199", "14165550199"),
        ("CA", "1 604 555 0199", "16045550199"),
        ("US", "1 876 555 0123", "18765550123"),
        ("JM", "876-555-0123", "18765550123"),
        // Spain, Italy, Vatican, Portugal
        ("ES", "912 345 678", "34912345678"),
        ("ES", "0034 912 345 678", "34912345678"),
        ("ES", "+34 612 34 56 78", "34612345678"),
        ("ES", "sip:+34912345678@sbc.example.com;user=phone", "34912345678"),
        ("ES", "sips:0034912345678@sbc.example.com", "34912345678"),
        ("ES", "<sip:912345678@sbc.example.com>", "34912345678"),
        ("DE", "0034912345678", "34912345678"),
        ("IT", "06 1234 5678", "390612345678"),
        ("IT", "+39 06 1234 5678", "390612345678"),
        ("IT", "+39 (0)6 1234 5678", "390612345678"),
        ("IT", "347 123 4567", "393471234567"),
        ("FR", "00 39 06 12345678", "390612345678"),
        ("IT", "06 6981 2345", "390669812345"),
        ("PT", "213 456 789", "351213456789"),
        ("SM", "0549 123456", "3780549123456"),
        // France and its overseas departments, Benelux, Alps
        ("FR", "01 23 45 67 89", "33123456789"),
        ("FR", "06.12.34.56.78", "33612345678"),
        ("FR", "tel:+33-1-23-45-67-89", "33123456789"),
        ("FR", "+590 590 12 34 56", "590590123456"),
        ("NL", "020 123 4567", "31201234567"),
        ("NL", "+599 9 461 2345", "59994612345"),
        ("BE", "02 123 45 67", "3221234567"),
        ("CH", "044 668 18 00", "41446681800"),
        ("AT", "01 234 5678", "4312345678"),
        // Germany, Nordics, Poland, Ireland, Hungary
        ("DE", "030 1234567", "49301234567"),
        ("DE", "0049 30 1234567", "49301234567"),
        ("DE", "0151 23456789", "4915123456789"),
        ("DE", "tel:030-1234567;phone-context=example.com", "49301234567"),
        ("DK", "32 12 34 56", "4532123456"),
        ("NO", "22 12 34 56", "4722123456"),
        ("SE", "08-123 456 78", "46812345678"),
        ("FI", "09 1234 5678", "358912345678"),
        ("PL", "22 123 45 67", "48221234567"),
        ("IE", "01 234 5678", "35312345678"),
        ("HU", "06 1 234 5678", "3612345678"),
        ("LT", "0 5 212 3456", "37052123456"),
        // Russia, Kazakhstan, Belarus
        ("RU", "8 (495) 123-45-67", "74951234567"),
        ("RU", "+7 495 123 45 67", "74951234567"),
        ("RU", "810 44 20 7946 0018", "442079460018"),
        ("KZ", "8 701 123 4567", "77011234567"),
        ("BY", "8 017 123-45-67", "375171234567"),
        // Asia-Pacific
        ("AU", "(02) 9876 5432", "61298765432"),
        ("AU", "0412 345 678", "61412345678"),
        ("AU", "0011 44 20 7946 0018", "442079460018"),
        ("NZ", "09 123 4567", "6491234567"),
        ("JP", "03-1234-5678", "81312345678"),
        ("JP", "090-1234-5678", "819012345678"),
        ("JP", "010 1 212 555 0100", "12125550100"),
        ("JP", "tel:+81-3-1234-5678;ext=101", "81312345678"),
        ("KR", "02-1234-5678", "82212345678"),
        ("KR", "00700 1 212 555 0100", "12125550100"),
        ("CN", "010 1234 5678", "861012345678"),
        ("CN", "138 0013 8000", "8613800138000"),
        ("IN", "098765 43210", "919876543210"),
        ("IN", "98765 43210", "919876543210"),
        ("IN", "011 2345 6789", "911123456789"),
        ("SG", "6123 4567", "6561234567"),
        ("SG", "000 44 20 7946 0018", "442079460018"),
        ("HK", "2123 4567", "85221234567"),
        ("TW", "02 2345 6789", "886223456789"),
        // Americas
        ("MX", "55 1234 5678", "525512345678"),
        ("BR", "+55 11 91234-5678", "5511912345678"),
        ("BR", "011 3456-7890", "551134567890"),
        ("AR", "011 4321-1234", "541143211234"),
        ("AR", "+54 9 11 1234 5678", "5491112345678"),
        ("CU", "119 34 912 345 678", "34912345678"),
        // Africa and the Middle East
        ("ZA", "021 123 4567", "27211234567"),
        ("EG", "02 2345 6789", "20223456789"),
        ("NG", "0803 123 4567", "2348031234567"),
        ("NG", "009 44 20 7946 0018", "442079460018"),
        ("KE", "0712 345678", "254712345678"),
        ("KE", "000 44 20 7946 0018", "442079460018"),
        ("CI", "07 07 12 34 56", "2250707123456"),
        ("BJ", "01 97 12 34 56", "2290197123456"),
        ("CV", "0 44 20 7946 0018", "442079460018"),
        ("MU", "020 44 20 7946 0018", "442079460018"),
        ("MA", "0522 123456", "212522123456"),
        ("IL", "03-123-4567", "97231234567"),
        ("IL", "014 44 20 7946 0018", "442079460018"),
        ("AE", "04 123 4567", "97141234567"),
        ("SA", "011 234 5678", "966112345678"),
        ("TR", "0212 123 45 67", "902121234567"),
    ]

    @Test(arguments: dialled)
    func normalisesToE164(country: String, dialled: String, expected: String) throws {
        let normalizer = try NumberNormalizer(country: country)
        let number = try #require(try normalizer.normalize(dialled).e164)
        #expect(number.digits == expected)
        #expect(number.description == "+" + expected)
        #expect(number.callingCode + number.nationalNumber == expected)
    }

    @Test func coversAtLeastTwentyFiveCallerCountries() {
        #expect(Set(Self.dialled.map(\.0)).count >= 25)
    }

    @Test func resultCarriesTheCountryAndTheNationalNumber() throws {
        let london = try #require(try NumberNormalizer(country: "GB").normalize("020 7946 0018").e164)
        #expect(london.country.isoCode == "GB")
        #expect(london.nationalNumber == "2079460018")
        let guernsey = try #require(try NumberNormalizer(country: "GB").normalize("+44 1481 123456").e164)
        #expect(guernsey.country.isoCode == "GG")
        #expect(guernsey.callingCode == "44")
        let almaty = try #require(try NumberNormalizer(country: "RU").normalize("8 727 123 4567").e164)
        #expect(almaty.country.isoCode == "KZ")
        #expect(almaty.nationalNumber == "7271234567")
        let rome = try #require(try NumberNormalizer(country: "IT").normalize("06 1234 5678").e164)
        #expect(rome.nationalNumber == "0612345678")
    }

    @Test func completesLocalNumbersWithTheCallersAreaCode() throws {
        let newYork = try NumberNormalizer(country: "US", areaCode: "212")
        #expect(try newYork.normalize("555-0100").e164?.digits == "12125550100")
        #expect(try newYork.normalize("(305) 555-0100").e164?.digits == "13055550100")
        let london = try NumberNormalizer(country: "GB", areaCode: "20")
        #expect(try london.normalize("7946 0018").e164?.digits == "442079460018")
        #expect(try london.normalize("0161 496 0000").e164?.digits == "441614960000")
    }

    // (caller's country, what was dialled)
    static let shortCodes: [(String, String)] = [
        ("GB", "999"), ("GB", "112"), ("GB", "116 123"), ("GB", "sip:999@sbc.example"), ("US", "911"), ("US", "112"),
        ("US", "tel:911"), ("CA", "211"), ("DE", "110"), ("FR", "15"), ("ES", "112"), ("IT", "113"), ("RU", "112"),
        ("AU", "000"), ("NL", "112"), ("JP", "110"), ("IN", "100"), ("CN", "120"), ("BR", "190"), ("NO", "02800"),
    ]

    @Test(arguments: shortCodes)
    func classifiesShortCodesApartFromE164(country: String, dialled: String) throws {
        let result = try NumberNormalizer(country: country).normalize(dialled)
        let digits = dialled.filter(\.isWholeNumber)
        #expect(result == .shortCode(digits))
        #expect(result.e164 == nil)
    }

    // (caller's country, what was dialled, why it is refused)
    static let refused: [(String, String, NumberingError.Code)] = [
        ("GB", "", .empty),
        ("GB", "   ", .empty),
        ("GB", "+", .empty),
        ("GB", "- -", .empty),
        ("GB", "020 CALL NOW", .invalidCharacters),
        ("US", "1-800-FLOWERS", .invalidCharacters),
        ("GB", "*21#", .invalidCharacters),
        ("GB", "+44+20 7946 0018", .invalidCharacters),
        ("GB", "sip:alice@example.com", .invalidCharacters),
        ("GB", "tel:+44-20-7946-0018-ABCD", .invalidCharacters),
        ("GB", "sip:carrier.example", .invalidURI),
        ("GB", "<sip:+442079460018@carrier.example", .invalidURI),
        ("GB", "sip:%2G442079460018@carrier.example", .invalidURI),
        ("GB", "tel:1234;phone-context=+abc", .invalidURI),
        ("GB", "+44 20 7946 0018 1234 56", .tooLong),
        ("DE", "0049 30 1234 5678 9012 345", .tooLong),
        ("ES", "+34 912 345 6789", .tooLong),
        ("ES", "442079460018", .tooLong),
        ("GB", String(repeating: "1", count: 300), .tooLong),
        ("GB", "+44 20 7946", .tooShort),
        ("GB", "020 794", .tooShort),
        ("GB", "0123", .tooShort),
        ("ES", "91234567", .tooShort),
        ("IT", "06123", .tooShort),
        ("GB", "00", .tooShort),
        ("GB", "+28 1234 5678", .unknownCountryCode),
        ("GB", "00 0 123 456 789", .unknownCountryCode),
        ("GB", "+599 5 123 4567", .unknownCountryCode),
        ("DE", "30 1234567", .missingTrunkPrefix),
        ("GB", "2079460018", .missingTrunkPrefix),
    ]

    @Test(arguments: refused)
    func refusesWithATypedError(country: String, dialled: String, expected: NumberingError.Code) throws {
        let normalizer = try NumberNormalizer(country: country)
        let error = #expect(throws: NumberingError.self) { try normalizer.normalize(dialled) }
        #expect(error?.code == expected)
    }

    @Test func errorDescriptionsDoNotRepeatTheInput() throws {
        let normalizer = try NumberNormalizer(country: "GB")
        let error = #expect(throws: NumberingError.self) { try normalizer.normalize("sip:alice:hunter2@example.com") }
        #expect(error?.description.contains("hunter2") == false)
    }

    @Test func refusesAnUnknownCallerCountryOrABadAreaCode() {
        let unknown = #expect(throws: NumberingError.self) { try NumberNormalizer(country: "ZZ") }
        #expect(unknown?.code == .unknownCountry)
        let area = #expect(throws: NumberingError.self) { try NumberNormalizer(country: "GB", areaCode: "2O") }
        #expect(area?.code == .invalidPrefix)
        #expect((try? NumberNormalizer(country: "gb"))?.country.isoCode == "GB")
    }
}
