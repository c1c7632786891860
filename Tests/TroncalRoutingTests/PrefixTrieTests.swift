import Testing

@testable import TroncalRouting

/// The prefix trie finds the longest matching prefix, exactly as a brute-force scan would, at rate-deck scale.
@Suite struct PrefixTrieTests {
    @Test func emptyTrieMatchesNothing() {
        let trie = PrefixTrie<Int>()
        #expect(trie.longestMatch("34912345678") == nil)
        #expect(trie.isEmpty)
    }

    @Test func prefersTheLongestMatchingPrefix() throws {
        let trie = try PrefixTrie([("34", "Spain"), ("346", "Spain-Mobile"), ("3491", "Spain-Madrid")])
        #expect(trie.longestMatch("34912345678").map { [$0.prefix, $0.value] } == ["3491", "Spain-Madrid"])
        #expect(trie.longestMatch("34612345678").map { [$0.prefix, $0.value] } == ["346", "Spain-Mobile"])
        #expect(trie.longestMatch("34812345678").map { [$0.prefix, $0.value] } == ["34", "Spain"])
        #expect(trie.longestMatch("3") == nil)
        #expect(trie.longestMatch("33123456789") == nil)
        #expect(trie.longestMatch("") == nil)
        #expect(trie.longestMatch("349").map(\.prefix) == "34")
        #expect(trie.longestMatch("3491").map(\.prefix) == "3491")
        #expect(trie.longestMatch(utf8: "34912345678".utf8).map(\.length) == 4)
    }

    @Test func matchingStopsAtTheFirstCharacterThatIsNotADigit() throws {
        let trie = try PrefixTrie([("44", 1), ("4420", 2)])
        #expect(trie.longestMatch("44-20").map(\.value) == 1)
        #expect(trie.longestMatch("+4420").map(\.value) == nil)
    }

    @Test func theEmptyPrefixMatchesEveryNumber() throws {
        let trie = try PrefixTrie([("", "default"), ("1", "NANP")])
        #expect(trie.longestMatch("44").map(\.value) == "default")
        #expect(trie.longestMatch("44").map(\.prefix) == "")
        #expect(trie.longestMatch("1212").map(\.value) == "NANP")
    }

    @Test func insertingAPrefixAgainReplacesAndReturnsItsValue() throws {
        var trie = PrefixTrie<String>()
        #expect(try trie.insert("44", "UK") == nil)
        #expect(try trie.insert("44", "United Kingdom") == "UK")
        #expect(trie.count == 1)
        #expect(trie.value(forPrefix: "44") == "United Kingdom")
        #expect(trie.value(forPrefix: "4") == nil)
        #expect(trie.value(forPrefix: "441") == nil)
    }

    @Test func refusesAPrefixWithANonDigit() {
        var trie = PrefixTrie<Int>()
        for bad in ["+44", "4a", "44 20", "٤٤"] {
            let error = #expect(throws: NumberingError.self) { try trie.insert(bad, 0) }
            #expect(error?.code == .invalidPrefix)
        }
        #expect(trie.isEmpty)
    }

    @Test func copiesAreIndependentValues() throws {
        let original = try PrefixTrie([("34", 1)])
        var copy = original
        try copy.insert("346", 2)
        #expect(original.longestMatch("34612345678")?.value == 1)
        #expect(copy.longestMatch("34612345678")?.value == 2)
        let shared: any Sendable = original
        #expect(shared is PrefixTrie<Int>)
    }

    @Test func agreesWithABruteForceScanOnTenThousandRandomNumbersBeforeAndAfterCompaction() throws {
        var random = SplitMix64(seed: 0x7472_6F6E_6361_6C00)
        var reference: [String: Int] = [:]
        var trie = PrefixTrie<Int>()
        // Short prefixes over a few leading digits so that prefixes nest and numbers hit several of them.
        for value in 0..<3_000 {
            let prefix = ["3", "4", "34", "44", "1"].randomElement(using: &random)! + random.digits(Int.random(in: 0...6, using: &random))
            reference[prefix] = value
            try trie.insert(prefix, value)
        }
        #expect(trie.count == reference.count)
        var compacted = trie
        compacted.compact()
        for _ in 0..<10_000 {
            let number = ["3", "4", "1", "5"].randomElement(using: &random)! + random.digits(Int.random(in: 0...14, using: &random))
            let expected = reference.keys.filter { number.hasPrefix($0) }.max { $0.count < $1.count }
            for candidate in [trie, compacted] {
                let match = candidate.longestMatch(number)
                #expect(match?.prefix == expected, "\(number)")
                #expect(match?.value == expected.flatMap { reference[$0] }, "\(number)")
            }
        }
    }

    @Test func buildsFromTwoHundredThousandPrefixes() throws {
        var random = SplitMix64(seed: 200_000)
        let countryCodes = CountryTable.itu.countries.flatMap(\.identifyingPrefixes)
        var prefixes: [String] = []
        prefixes.reserveCapacity(200_000)
        for _ in 0..<200_000 {
            prefixes.append(countryCodes.randomElement(using: &random)! + random.digits(Int.random(in: 1...7, using: &random)))
        }
        let trie = try PrefixTrie(prefixes.enumerated().map { ($1, $0) })
        #expect(trie.count == Set(prefixes).count)
        for index in stride(from: 0, to: prefixes.count, by: 997) {
            let prefix = prefixes[index]
            #expect(trie.longestMatch(prefix + "0000")?.prefix.hasPrefix(prefix) == true)
            #expect(trie.value(forPrefix: prefix) == prefixes.lastIndex(of: prefix))
        }
    }
}
