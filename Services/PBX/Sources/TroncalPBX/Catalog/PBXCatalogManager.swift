public import Foundation
public import Logging
internal import Metrics
public import TroncalCatalog
public import TroncalProtocol
public import TroncalStore
import Synchronization

/// The PBX catalogs in force, kept in the PBX database as one CSV per kind (`pbx_catalogs`): an import is read and
/// checked row by row and against the other catalogs, stored in one statement, and only then put in force; a bad file
/// changes nothing. Every PBX instance loads the catalogs at start (with SQLite, `troncal pbx import` sends each
/// instance its copy; with PostgreSQL they share the table).
public final class PBXCatalogManager: Sendable {
    struct Current: Sendable {
        var catalog: PBXCatalog
        var exports: [PBXCatalogKind: (generation: Int64, parts: [String])] = [:]
    }

    let store: (any SQLStore)?
    let instance: String
    /// Renders menus' prompts at import (nil: not checked, in tests of the catalogs alone).
    let prompts: PBXPrompts?
    let logger: Logger
    private let current: Mutex<Current>
    private let uploads = UploadAssembler()
    private let importing = AsyncLock()

    public static let migrations: [Migration] = [
        Migration(
            version: 1, name: "pbx catalogs",
            sql: [
                """
                CREATE TABLE pbx_catalogs (kind TEXT PRIMARY KEY, generation BIGINT NOT NULL, row_count BIGINT NOT NULL, csv TEXT NOT NULL,
                imported_at TEXT NOT NULL)
                """
            ])
    ]

    /// Catalogs are read in this order, each checked against those before it.
    static let order: [PBXCatalogKind] = [.tenants, .extensions, .ringGroups, .menus, .timeConditions, .dids]

    public convenience init(store: (any SQLStore)?, instance: String, logger: Logger) async throws {
        try await self.init(store: store, instance: instance, prompts: nil, logger: logger)
    }

    init(store: (any SQLStore)?, instance: String, prompts: PBXPrompts?, logger: Logger) async throws {
        self.prompts = prompts
        self.store = store
        self.instance = instance
        self.logger = logger
        var catalog = PBXCatalog()
        if let store { catalog = try await Self.load(store, logger: logger) }
        current = Mutex(Current(catalog: catalog))
    }

    /// Every stored catalog, read in order (each checked against those before it).
    static func load(_ store: any SQLStore, logger: Logger) async throws -> PBXCatalog {
        var catalog = PBXCatalog()
        let rows = try await store.query("SELECT kind, generation, csv FROM pbx_catalogs")
        var texts: [PBXCatalogKind: (Int64, String)] = [:]
        for row in rows {
            guard let kind = PBXCatalogKind(rawValue: try row.string("kind")) else { continue }
            texts[kind] = (try row.int("generation"), try row.string("csv"))
        }
        for kind in Self.order {
            guard let (generation, text) = texts[kind] else { continue }
            do {
                try PBXCatalogCSV.read(kind, text, into: &catalog)
            } catch {
                logger.error("stored PBX catalog unreadable; left empty", metadata: ["kind": "\(kind.rawValue)", "reason": "\(error)"])
            }
            catalog.generations[kind] = generation
        }
        return catalog
    }

    /// Reads the stored catalogs again when another instance sharing the store (PostgreSQL) imported a newer
    /// generation. Returns whether anything changed. Cheap when nothing did (one small query).
    @discardableResult
    public func refresh() async throws -> Bool {
        try await importing.withLock { try await reload() }
    }

    /// `refresh` inside the import lock (an import's own refresh, and the timer's, never interleave with a store).
    private func reload() async throws -> Bool {
        guard let store else { return false }
        var stored: [PBXCatalogKind: Int64] = [:]
        for row in try await store.query("SELECT kind, generation FROM pbx_catalogs") {
            guard let kind = PBXCatalogKind(rawValue: try row.string("kind")) else { continue }
            stored[kind] = try row.int("generation")
        }
        let known = catalog.generations
        guard PBXCatalogKind.allCases.contains(where: { (stored[$0] ?? 0) != (known[$0] ?? 0) }) else { return false }
        let fresh = try await Self.load(store, logger: logger)
        current.withLock { current in
            current.catalog = fresh
            current.exports = [:]
        }
        logger.notice("PBX catalogs reloaded: another instance imported", metadata: [
            "generations": "\(PBXCatalogKind.allCases.map { "\($0.rawValue)=\(fresh.generations[$0] ?? 0)" }.joined(separator: " "))"
        ])
        return true
    }

    public var catalog: PBXCatalog { current.withLock { $0.catalog } }

    public func receive(_ part: PBXImport, now: Date = Date()) async throws -> PBXImportResult {
        let text: String?
        do {
            text = try uploads.add(upload: part.upload, kind: part.kind.rawValue, part: part.part, final: part.final, text: part.csv, now: now)
        } catch {
            throw ProtocolError(.badRequest, error.detail)
        }
        guard let text else { return PBXImportResult(kind: part.kind, rows: 0, generation: 0, milliseconds: 0) }
        return try await apply(part.kind, csv: text)
    }

    /// Checks `csv` as the new catalog of `kind`, stores it and puts it in force.
    public func apply(_ kind: PBXCatalogKind, csv: String) async throws -> PBXImportResult {
        try await importing.withLock {
            let started = ContinuousClock.now
            // Checked against what is stored now: another instance may have imported since this one last looked.
            do {
                _ = try await reload()
            } catch {
                throw ProtocolError(.unavailable, "\(kind.rawValue): the stored catalogs could not be read, nothing changed: \(error)")
            }
            var candidate = catalog
            do {
                try PBXCatalogCSV.read(kind, csv, into: &candidate)
                try PBXCatalogCSV.checkReferences(candidate)
                // Each menu's prompt is made now (spoken, or its file read): a prompt that cannot be is refused here,
                // not met by a caller.
                if kind == .menus, let prompts { try await prompts.render(candidate.menus) }
            } catch {
                logger.notice("PBX catalog import refused", metadata: ["kind": "\(kind.rawValue)", "reason": "\(error)"])
                Counter(label: "troncal_pbx_imports_total", dimensions: [("kind", kind.rawValue), ("result", "refused")]).increment()
                throw ProtocolError(.badRequest, "\(kind.rawValue): \(error)")
            }
            let generation = (candidate.generations[kind] ?? 0) + 1
            let rows = candidate.rows(of: kind)
            // What is stored is the catalog as rendered (canonical), so that every instance reads back the same.
            let canonical = PBXCatalogCSV.render(kind, candidate)
            if let store {
                do {
                    try await store.execute(
                        """
                        INSERT INTO pbx_catalogs (kind, generation, row_count, csv, imported_at) VALUES ($1, $2, $3, $4, $5)
                        ON CONFLICT (kind) DO UPDATE SET generation = excluded.generation, row_count = excluded.row_count, csv = excluded.csv,
                        imported_at = excluded.imported_at
                        """,
                        [.text(kind.rawValue), .integer(generation), .integer(Int64(rows)), .text(canonical), .text(Date().formatted(.iso8601))])
                } catch {
                    logger.error("PBX catalog import not stored", metadata: ["kind": "\(kind.rawValue)", "reason": "\(error)"])
                    Counter(label: "troncal_pbx_imports_total", dimensions: [("kind", kind.rawValue), ("result", "failed")]).increment()
                    throw ProtocolError(.unavailable, "\(kind.rawValue): the catalog could not be stored, nothing changed: \(error)")
                }
            }
            candidate.generations[kind] = generation
            current.withLock { current in
                current.catalog = candidate
                current.exports[kind] = nil
            }
            let milliseconds = Int((ContinuousClock.now - started) / .milliseconds(1))
            Counter(label: "troncal_pbx_imports_total", dimensions: [("kind", kind.rawValue), ("result", "applied")]).increment()
            logger.notice("PBX catalog imported", metadata: [
                "kind": "\(kind.rawValue)", "rows": "\(rows)", "generation": "\(generation)", "milliseconds": "\(milliseconds)",
            ])
            return PBXImportResult(kind: kind, rows: rows, generation: generation, milliseconds: milliseconds)
        }
    }

    public func export(_ request: PBXExport) throws(ProtocolError) -> PBXExportPart {
        let (generation, parts) = current.withLock { current in
            let generation = current.catalog.generations[request.kind] ?? 0
            if let cached = current.exports[request.kind], cached.generation == generation { return cached }
            let parts = CSVParts.split(PBXCatalogCSV.render(request.kind, current.catalog))
            current.exports[request.kind] = (generation, parts)
            return (generation, parts)
        }
        guard parts.indices.contains(request.part) else {
            throw ProtocolError(.badRequest, "\(request.kind.rawValue) has parts 0 to \(parts.count - 1), not \(request.part)")
        }
        return PBXExportPart(kind: request.kind, part: request.part, parts: parts.count, generation: generation, csv: parts[request.part])
    }

    public func inspect(_ request: PBXInspect) -> PBXInspection {
        let catalog = self.catalog
        let catalogs = PBXCatalogKind.allCases.map { PBXInspection.Catalog(kind: $0, generation: catalog.generations[$0] ?? 0, rows: catalog.rows(of: $0)) }
        let tenants = catalog.tenants.filter { request.tenant == nil || $0.name == request.tenant }.map { tenant in
            PBXInspection.Tenant(
                name: tenant.name, customer: tenant.customer, timeZone: tenant.timeZone,
                extensions: catalog.extensions.filter { $0.tenant == tenant.name }.count,
                ringGroups: catalog.ringGroups.filter { $0.tenant == tenant.name }.count,
                timeConditions: catalog.timeConditions.filter { $0.tenant == tenant.name }.count,
                dids: catalog.dids.filter { $0.tenant == tenant.name }.count)
        }
        return PBXInspection(instance: instance, catalogs: catalogs, tenants: tenants)
    }
}
