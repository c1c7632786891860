/// The destinations of a routing or rating table, classified by longest prefix match.
///
/// Built once from the operator's prefixes (hundreds of thousands is fine) and then only read: a value that can be
/// published to call handling by swapping one reference, so lookups never wait for a rebuild.
public struct DestinationTable: Sendable {
    /// The countries numbers are attributed to.
    public let countries: CountryTable
    private let trie: PrefixTrie<Destination>

    /// A table of `destinations`; a prefix listed twice keeps its last name. Throws `invalidPrefix` for a prefix that
    /// is empty or not all decimal digits.
    public init(_ destinations: some Sequence<Destination>, countries: CountryTable = .itu) throws(NumberingError) {
        var trie = PrefixTrie<Destination>(minimumCapacity: destinations.underestimatedCount)
        for destination in destinations {
            guard !destination.prefix.isEmpty, destination.prefix.utf8.count <= 15 else {
                throw NumberingError(.invalidPrefix, "a destination prefix has 1 to 15 digits")
            }
            try trie.insert(destination.prefix, destination)
        }
        trie.compact()
        self.trie = trie
        self.countries = countries
    }

    /// The number of destinations.
    public var count: Int { trie.count }

    /// The destinations, in the order they were given (a repeated prefix where it first appeared).
    public var destinations: [Destination] { trie.entries.map(\.value) }

    /// The destination of `number` with the longest prefix, or `nil` when none matches.
    public func classify(_ number: E164Number) -> DestinationMatch? {
        trie.longestMatch(utf8: number.digits.utf8).map { DestinationMatch(destination: $0.value, country: number.country) }
    }

    /// The destination of an E.164 number given as digits (no `+`) with the longest prefix, or `nil` when none matches.
    public func classify(digits: String) -> DestinationMatch? {
        trie.longestMatch(utf8: digits.utf8).map {
            DestinationMatch(destination: $0.value, country: countries.country(forE164: digits))
        }
    }
}
