import Foundation
import RoutingCore

/// `scripts/bench routing`: builds a longest-prefix table of 500,000 prefixes and measures lookups per second
/// and memory, against a dictionary of prefixes probed from the longest length down (what a naive routing
/// table does), in one run on one core.
@main
struct RoutingBench {
    static func main() {
        let count = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 500_000
        var random = SplitMix64(seed: 0x7_2040_0001)
        let codes = Array(Set(CountryTable.itu.countries.map(\.callingCode))).sorted()
        // Prefixes as a rate deck has them: a country code, then 1-7 more digits.
        var prefixes = Set<String>()
        while prefixes.count < count {
            var prefix = codes[Int(random.next() % UInt64(codes.count))]
            for _ in 0..<(1 + Int(random.next() % 7)) { prefix.append(Character(UnicodeScalar(UInt8(48 + random.next() % 10)))) }
            prefixes.insert(prefix)
        }
        let deck = Array(prefixes)
        // Numbers to look up: half start with a prefix of the deck, half are random numbers of a random country.
        let numbers: [[UInt8]] = (0..<1_000_000).map { index in
            var number = index % 2 == 0 ? deck[Int(random.next() % UInt64(deck.count))] : codes[Int(random.next() % UInt64(codes.count))]
            while number.count < 12 { number.append(Character(UnicodeScalar(UInt8(48 + random.next() % 10)))) }
            return Array(number.utf8)
        }

        let before = residentBytes()
        let clock = ContinuousClock()
        var trie = PrefixTrie<Int32>(minimumCapacity: count)
        let buildTime = clock.measure {
            for (index, prefix) in deck.enumerated() { _ = try? trie.insert(prefix, Int32(index)) }
            trie.compact()
        }
        let trieResident = residentBytes() - before
        print("prefixes: \(trie.count), trie nodes: \(trie.nodeCount), built in \(format(buildTime))")
        print("trie memory: \(trie.memoryFootprint / 1_048_576) MiB by its arrays, \(trieResident / 1_048_576) MiB resident growth")

        var dictionary: [String: Int32] = [:]
        dictionary.reserveCapacity(count)
        let dictionaryBefore = residentBytes()
        let dictionaryBuild = clock.measure {
            for (index, prefix) in deck.enumerated() { dictionary[prefix] = Int32(index) }
        }
        let dictionaryResident = residentBytes() - dictionaryBefore
        print("dictionary: built in \(format(dictionaryBuild)), \(dictionaryResident / 1_048_576) MiB resident growth")

        // Lookups: every number, several rounds; a checksum keeps the work from being optimised away.
        let rounds = 5
        var checksum = 0
        let trieTime = clock.measure {
            for _ in 0..<rounds {
                for number in numbers {
                    if let match = trie.longestMatch(utf8: number) { checksum &+= Int(match.value) &+ match.length }
                }
            }
        }
        var checksum2 = 0
        let dictionaryTime = clock.measure {
            for _ in 0..<rounds {
                for number in numbers {
                    var length = min(number.count, 15)
                    while length > 0 {
                        if let value = dictionary[String(decoding: number[0..<length], as: UTF8.self)] {
                            checksum2 &+= Int(value) &+ length
                            break
                        }
                        length -= 1
                    }
                }
            }
        }
        guard checksum == checksum2 else {
            print("the trie and the dictionary disagree (\(checksum) vs \(checksum2))")
            exit(1)
        }
        let lookups = Double(rounds * numbers.count)
        let trieRate = lookups / seconds(trieTime)
        let dictionaryRate = lookups / seconds(dictionaryTime)
        print(String(format: "trie lookups: %.2f M/s (%.0f ns each)", trieRate / 1e6, 1e9 / trieRate))
        print(String(format: "dictionary lookups: %.2f M/s (%.0f ns each)", dictionaryRate / 1e6, 1e9 / dictionaryRate))
        print(String(format: "ratio trie/dictionary: %.1f× the lookups, %.2f× the memory", trieRate / dictionaryRate,
                     Double(max(trieResident, 1)) / Double(max(dictionaryResident, 1))))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func format(_ duration: Duration) -> String { String(format: "%.3f s", seconds(duration)) }

    /// The process's resident set size, from /proc/self/statm.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }
}

/// A small deterministic generator, so that every run measures the same table.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
