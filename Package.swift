// swift-tools-version:6.2
import PackageDescription

// MARK: - External products, declared once

let nio = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let nioTLS = Target.Dependency.product(name: "NIOTLS", package: "swift-nio")
let nioSSL = Target.Dependency.product(name: "NIOSSL", package: "swift-nio-ssl")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let metrics = Target.Dependency.product(name: "Metrics", package: "swift-metrics")
let prometheus = Target.Dependency.product(name: "Prometheus", package: "swift-prometheus")
let lifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let unixSignals = Target.Dependency.product(name: "UnixSignals", package: "swift-service-lifecycle")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let hummingbird = Target.Dependency.product(name: "Hummingbird", package: "hummingbird")
let postgres = Target.Dependency.product(name: "PostgresNIO", package: "postgres-nio")
let sqlite = Target.Dependency.product(name: "SQLiteNIO", package: "sqlite-nio")
let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")
let x509 = Target.Dependency.product(name: "X509", package: "swift-certificates")
let asn1 = Target.Dependency.product(name: "SwiftASN1", package: "swift-asn1")
let mustache = Target.Dependency.product(name: "Mustache", package: "swift-mustache")
let cryptoExtras = Target.Dependency.product(name: "_CryptoExtras", package: "swift-crypto")
let nioHTTP1 = Target.Dependency.product(name: "NIOHTTP1", package: "swift-nio")
let httpClient = Target.Dependency.product(name: "AsyncHTTPClient", package: "async-http-client")

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

// MARK: - Shared modules (the bottom layer)

let sharedTargets: [Target] = [
    .target(name: "TroncalProtocol", dependencies: [nio], path: "Shared/TroncalProtocol", swiftSettings: swiftSettings),
    .target(name: "TroncalSIP", dependencies: [nio, nioPosix, nioSSL, logging, metrics, lifecycle, crypto], path: "Shared/TroncalSIP", swiftSettings: swiftSettings),
    .target(name: "TroncalMedia", dependencies: [nio, nioPosix, logging, metrics], path: "Shared/TroncalMedia", swiftSettings: swiftSettings),
    .target(
        name: "TroncalCall", dependencies: ["TroncalSIP", "TroncalMedia", "TroncalProtocol", nio, nioPosix, logging], path: "Shared/TroncalCall", swiftSettings: swiftSettings),
    .target(name: "TroncalCatalog", path: "Shared/TroncalCatalog", swiftSettings: swiftSettings),
    // The control rules (size for 40 % at the peak, add at 60 %, never fewer than 2): applied by the monitor's capacity
    // controller and by `troncal capacity plan`.
    .target(name: "TroncalControl", dependencies: ["TroncalProtocol"], path: "Shared/TroncalControl", swiftSettings: swiftSettings),
    .target(name: "TroncalPKI", dependencies: ["TroncalProtocol", crypto, x509, asn1], path: "Shared/TroncalPKI", swiftSettings: swiftSettings),
    // The backup store's format (chunks encrypted to an offline restore key, signed manifests): written by the backup
    // service, verified and restored by the operator CLI.
    .target(name: "TroncalVault", dependencies: [crypto], path: "Shared/TroncalVault", swiftSettings: swiftSettings),
    .target(
        name: "TroncalLink",
        dependencies: ["TroncalProtocol", "TroncalPKI", nio, nioPosix, nioTLS, nioSSL, logging, metrics, lifecycle, x509],
        path: "Shared/TroncalLink", swiftSettings: swiftSettings),
    .target(
        name: "TroncalStore", dependencies: ["TroncalProtocol", nio, nioPosix, logging, postgres, sqlite, lifecycle],
        path: "Shared/TroncalStore", swiftSettings: swiftSettings),
    .target(
        name: "TroncalRuntime",
        dependencies: [
            "TroncalProtocol", "TroncalLink", "TroncalStore", "TroncalPKI", "TroncalVault", nio, nioPosix, logging, metrics,
            prometheus, lifecycle, unixSignals, hummingbird, argumentParser, crypto,
        ],
        path: "Shared/TroncalRuntime", swiftSettings: swiftSettings),
]

// MARK: - Services: a library (the logic) + a thin executable + a test target, from one list

struct ServiceSpec {
    let directory: String  // Services/<directory>
    let library: String  // library target with the logic
    let executable: String  // the process name
}

let services: [ServiceSpec] = [
    .init(directory: "SBC", library: "TroncalSBC", executable: "troncal-sbc"),
    .init(directory: "Routing", library: "TroncalRouting", executable: "troncal-routing"),
    .init(directory: "Billing", library: "TroncalBilling", executable: "troncal-billing"),
    .init(directory: "PBX", library: "TroncalPBX", executable: "troncal-pbx"),
    .init(directory: "Backup", library: "TroncalBackup", executable: "troncal-backup"),
    .init(directory: "Monitor", library: "TroncalMonitor", executable: "troncal-monitor"),
]
let serviceLibraryDependencies: [Target.Dependency] = [
    "TroncalProtocol", "TroncalLink", "TroncalStore", "TroncalRuntime", "TroncalSIP", "TroncalCall", "TroncalMedia", "TroncalPKI",
    "TroncalCatalog", "TroncalVault", "TroncalControl", logging, metrics, lifecycle,
]

var serviceTargets: [Target] = []
for service in services {
    serviceTargets.append(
        .target(
            name: service.library, dependencies: serviceLibraryDependencies + (service.library == "TroncalMonitor" ? [httpClient, nioHTTP1, hummingbird, mustache, crypto, cryptoExtras] : [])
                + (service.library == "TroncalPBX" ? [httpClient, nioHTTP1, crypto] : []),
            path: "Services/\(service.directory)/Sources/\(service.library)", swiftSettings: swiftSettings))
    serviceTargets.append(
        .executableTarget(
            name: service.executable, dependencies: [.target(name: service.library), "TroncalRuntime"],
            path: "Services/\(service.directory)/Sources/\(service.executable)", swiftSettings: swiftSettings))
    serviceTargets.append(
        .testTarget(
            name: "\(service.library)Tests", dependencies: [.target(name: service.library), "TestSupport"],
            path: "Tests/\(service.library)Tests", swiftSettings: swiftSettings))
}

// The operator CLI sits beside the services: it speaks to them only over the wire.
let cliTargets: [Target] = [
    .target(
        name: "TroncalCLI",
        dependencies: [
            "TroncalProtocol", "TroncalLink", "TroncalPKI", "TroncalRuntime", "TroncalCatalog", "TroncalVault", "TroncalStore", "TroncalControl", argumentParser, logging, nioPosix,
            lifecycle, unixSignals, crypto,
        ],
        path: "Services/Troncal/Sources/TroncalCLI", swiftSettings: swiftSettings),
    .executableTarget(
        name: "troncal", dependencies: ["TroncalCLI", logging, argumentParser], path: "Services/Troncal/Sources/troncal",
        swiftSettings: swiftSettings),
]

// `scripts/bench billing` and `scripts/bench monitor` (built in release by that script only).
let benchTargets: [Target] = [
    .executableTarget(
        name: "BillingBench", dependencies: ["TroncalProtocol", "TroncalLink", "TroncalPKI", "TroncalStore", logging],
        path: "Benchmarks/BillingBench", swiftSettings: swiftSettings),
    .executableTarget(
        name: "MonitorBench", dependencies: ["TroncalMonitor", "TroncalProtocol", "TroncalRuntime", "TroncalStore", logging, nio, nioHTTP1, httpClient],
        path: "Benchmarks/MonitorBench", swiftSettings: swiftSettings),
]

let testTargets: [Target] = [
    .target(
        name: "TestSupport",
        dependencies: ["TroncalProtocol", "TroncalLink", "TroncalPKI", "TroncalStore", "TroncalRuntime", logging, nio, nioPosix, nioSSL],
        path: "Tests/TestSupport", swiftSettings: swiftSettings),
    .testTarget(name: "TroncalProtocolTests", dependencies: ["TroncalProtocol", nio, .product(name: "NIOEmbedded", package: "swift-nio")], path: "Tests/TroncalProtocolTests", swiftSettings: swiftSettings),
    .testTarget(name: "TroncalSIPTests", dependencies: ["TroncalSIP", "TestSupport", "TroncalPKI", "TroncalProtocol", nio, nioPosix, nioSSL, logging, .product(name: "NIOEmbedded", package: "swift-nio")], path: "Tests/TroncalSIPTests", swiftSettings: swiftSettings),
    .testTarget(name: "TroncalMediaTests", dependencies: ["TroncalMedia", "TestSupport", nio, nioPosix, logging], path: "Tests/TroncalMediaTests", swiftSettings: swiftSettings),
    .testTarget(name: "TroncalCallTests", dependencies: ["TroncalCall", "TroncalSIP", "TroncalMedia", "TroncalProtocol", "TestSupport", nio, nioPosix, logging], path: "Tests/TroncalCallTests", swiftSettings: swiftSettings),
    .testTarget(name: "TroncalPKITests", dependencies: ["TroncalPKI", "TestSupport"], path: "Tests/TroncalPKITests", swiftSettings: swiftSettings),
    .testTarget(name: "TroncalVaultTests", dependencies: ["TroncalVault", "TestSupport"], path: "Tests/TroncalVaultTests", swiftSettings: swiftSettings),
    .testTarget(name: "TroncalLinkTests", dependencies: ["TroncalLink", "TroncalStore", "TestSupport", nio, nioPosix, nioSSL, logging], path: "Tests/TroncalLinkTests", swiftSettings: swiftSettings),
    .testTarget(name: "TroncalStoreTests", dependencies: ["TroncalStore", "TroncalProtocol", "TestSupport", logging], path: "Tests/TroncalStoreTests", swiftSettings: swiftSettings),
    .testTarget(name: "TroncalRuntimeTests", dependencies: ["TroncalRuntime", "TestSupport", logging, metrics, prometheus, lifecycle, nio], path: "Tests/TroncalRuntimeTests", swiftSettings: swiftSettings),
    .testTarget(name: "TroncalCLITests", dependencies: ["TroncalCLI", "TroncalRuntime", "TroncalVault", "TestSupport", logging], path: "Tests/TroncalCLITests", swiftSettings: swiftSettings),
]

let package = Package(
    name: "troncal",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "troncal", targets: ["troncal"])
    ] + services.map { .executable(name: $0.executable, targets: [$0.executable]) },
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio", from: "1.13.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: sharedTargets + serviceTargets + cliTargets + benchTargets + testTargets
)

// MARK: - Layering guard: no service library may depend on another service library.

let serviceLibraries = Set(services.map(\.library))
for target in package.targets where serviceLibraries.contains(target.name) {
    for dependency in target.dependencies {
        if case .targetItem(let name, _) = dependency, serviceLibraries.contains(name) {
            fatalError("layering: service \(target.name) must not depend on service \(name); meet in Shared/ instead")
        }
        if case .byNameItem(let name, _) = dependency, serviceLibraries.contains(name) {
            fatalError("layering: service \(target.name) must not depend on service \(name); meet in Shared/ instead")
        }
    }
}
