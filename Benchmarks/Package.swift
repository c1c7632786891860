// swift-tools-version:6.2
// Benchmarks of the SIP message layer and of the routing core's prefix lookup. Built only by `scripts/bench`
// (release), never by `swift build` of the root package.
import PackageDescription

let package = Package(
    name: "troncal-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3")
    ],
    targets: [
        // The message layer of TroncalSIP (Sources/SIPCore links to Shared/TroncalSIP), without the parts that
        // need I/O or cryptography.
        .target(
            name: "SIPCore", dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            exclude: ["Transports", "Transaction", "Transactions", "Transport", "DigestAlgorithm.swift", "DigestAuthenticator.swift", "DigestCalculator.swift",
                      "DigestChallenge.swift", "DigestClient.swift", "DigestCredentials.swift", "DigestNonceAuthority.swift",
                      "DigestNonceCountTracker.swift", "DigestParameters.swift", "SHA512_256.swift"]),
        .executableTarget(name: "SIPBench", dependencies: ["SIPCore", .product(name: "NIOCore", package: "swift-nio")]),
        // The routing core's numbering and prefix trie (Sources/RoutingCore links to its two folders).
        .target(name: "RoutingCore"),
        .executableTarget(name: "RoutingBench", dependencies: ["RoutingCore"]),
    ]
)
