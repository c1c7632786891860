/// What a number was classified as: the destination with the longest matching prefix, and the number's country.
public struct DestinationMatch: Sendable, Hashable {
    /// The destination whose prefix is the longest one that starts the number.
    public let destination: Destination
    /// The country the number belongs to, from the country table (Jamaica for +1876…, even under a "1 USA" destination);
    /// `nil` when no country code starts the number.
    public let country: Country?

    public init(destination: Destination, country: Country?) {
        self.destination = destination
        self.country = country
    }
}
