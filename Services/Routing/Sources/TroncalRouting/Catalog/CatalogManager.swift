public import Foundation
public import Logging
internal import Metrics
public import TroncalProtocol
public import TroncalRuntime
public import TroncalStore
import Synchronization
public import TroncalCatalog

/// The route table in force and the catalogs it was built from, with imports that replace a catalog whole: parts
/// are gathered per upload, the final part is checked row by row and against the other catalogs, stored, and only
/// then is the new table swapped in. Calls routed meanwhile use the old table; a bad file changes nothing.
public final class CatalogManager: Sendable {
    struct Current: Sendable {
        var catalog: RoutingCatalog
        var table: RouteTable
        /// Export parts cached per kind and generation.
        var exports: [RoutingCatalogKind: (generation: Int64, parts: [String])] = [:]
    }

    let settings: RoutingSettings
    let store: CatalogStore?
    let logger: Logger
    private let current: Mutex<Current>
    private let uploads = UploadAssembler()
    /// One import at a time, in arrival order.
    private let importing = AsyncLock()


    public init(settings: RoutingSettings, store: (any SQLStore)?, logger: Logger) async throws {
        self.settings = settings
        self.store = store.map(CatalogStore.init)
        self.logger = logger
        let catalog = try await self.store?.load() ?? RoutingCatalog()
        let table = try RouteTable(settings, catalog: catalog)
        current = Mutex(Current(catalog: catalog, table: table))
        if table.skippedRoutes > 0 {
            logger.warning("route rows skipped: their carrier has no trunk", metadata: ["routes": "\(table.skippedRoutes)"])
        }
    }

    /// The table to route from now (a cheap copy: its storage is shared).
    public var table: RouteTable { current.withLock { $0.table } }
    public var catalog: RoutingCatalog { current.withLock { $0.catalog } }

    /// Picks up catalogs imported through another routing instance (they share the database): when the stored
    /// generations differ from the ones in force, every catalog is loaded again and the table rebuilt. Returns whether
    /// it did. A table that cannot be built keeps the old one in force (logged).
    @discardableResult
    public func refresh() async throws -> Bool {
        guard let store else { return false }
        return try await importing.withLock {
            let stored = try await store.generations()
            guard stored != catalog.generations else { return false }
            let catalog = try await store.load()
            let table: RouteTable
            do {
                table = try RouteTable(settings, catalog: catalog)
            } catch {
                logger.error("catalogs imported elsewhere cannot be built into a route table: the old one stays in force", metadata: ["reason": "\(error)"])
                return false
            }
            current.withLock { current in
                current.catalog = catalog
                current.table = table
                current.exports = [:]
            }
            logger.notice("catalogs reloaded: imported through another routing instance", metadata: [
                "generations": "\(catalog.generations.map { "\($0.key.rawValue)=\($0.value)" }.sorted().joined(separator: ","))",
                "prefixes": "\(table.count)",
            ])
            return true
        }
    }

    /// One part of an upload; the final one applies it.
    public func receive(_ part: RoutingImport, now: Date = Date()) async throws -> RoutingImportResult {
        let text: String?
        do {
            text = try uploads.add(upload: part.upload, kind: part.kind.rawValue, part: part.part, final: part.final, text: part.csv, now: now)
        } catch {
            throw ProtocolError(.badRequest, error.detail)
        }
        guard let text else { return RoutingImportResult(kind: part.kind, rows: 0, generation: 0, milliseconds: 0) }
        return try await apply(part.kind, csv: text)
    }

    /// Checks `csv` as the new catalog of `kind`, stores it and swaps the route table.
    public func apply(_ kind: RoutingCatalogKind, csv: String) async throws -> RoutingImportResult {
        try await importing.withLock {
            let started = ContinuousClock.now
            var candidate = catalog
            do {
                try CatalogCSV.read(kind, csv, into: &candidate)
                try CatalogCSV.checkReferences(candidate)
            } catch {
                logger.notice("catalog import refused", metadata: ["kind": "\(kind.rawValue)", "reason": "\(error)"])
                Counter(label: "troncal_routing_imports_total", dimensions: [("kind", kind.rawValue), ("result", "refused")]).increment()
                throw ProtocolError(.badRequest, "\(kind.rawValue): \(error)")
            }
            let table: RouteTable
            do {
                table = try RouteTable(settings, catalog: candidate)
            } catch {
                throw ProtocolError(.badRequest, "\(kind.rawValue): the route table cannot be built: \(error)")
            }
            var generation = (candidate.generations[kind] ?? 0) + 1
            if let store {
                do {
                    generation = try await store.replace(kind, from: candidate)
                } catch {
                    logger.error("catalog import not stored", metadata: ["kind": "\(kind.rawValue)", "reason": "\(error)"])
                    Counter(label: "troncal_routing_imports_total", dimensions: [("kind", kind.rawValue), ("result", "failed")]).increment()
                    throw ProtocolError(.unavailable, "\(kind.rawValue): the catalog could not be stored, nothing changed: \(error)")
                }
            }
            candidate.generations[kind] = generation
            let rows = candidate.rows(of: kind)
            current.withLock { current in
                current.catalog = candidate
                current.table = table
                current.exports[kind] = nil
            }
            let milliseconds = Int((ContinuousClock.now - started) / .milliseconds(1))
            Counter(label: "troncal_routing_imports_total", dimensions: [("kind", kind.rawValue), ("result", "applied")]).increment()
            logger.notice("catalog imported", metadata: [
                "kind": "\(kind.rawValue)", "rows": "\(rows)", "generation": "\(generation)", "milliseconds": "\(milliseconds)",
                "prefixes": "\(table.count)", "skipped-routes": "\(table.skippedRoutes)",
            ])
            return RoutingImportResult(kind: kind, rows: rows, generation: generation, milliseconds: milliseconds)
        }
    }

    /// One part of the CSV export of `kind`.
    public func export(_ request: RoutingExport) throws(ProtocolError) -> RoutingExportPart {
        let (generation, parts) = current.withLock { current in
            let generation = current.catalog.generations[request.kind] ?? 0
            if let cached = current.exports[request.kind], cached.generation == generation { return cached }
            let parts = CSVParts.split(CatalogCSV.render(request.kind, current.catalog))
            current.exports[request.kind] = (generation, parts)
            return (generation, parts)
        }
        guard parts.indices.contains(request.part) else {
            throw ProtocolError(.badRequest, "\(request.kind.rawValue) has parts 0 to \(parts.count - 1), not \(request.part)")
        }
        return RoutingExportPart(kind: request.kind, part: request.part, parts: parts.count, generation: generation, csv: parts[request.part])
    }
}
