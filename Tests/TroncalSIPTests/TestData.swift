import Foundation

/// Locates `../shared/testdata` from this file's path, so tests run from any working directory.
enum TestData {
    /// `<package root>/../shared/testdata`.
    static let root: URL = {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        // Walk up to the package root (the directory holding Package.swift).
        while directory.path != "/" {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) { break }
            directory.deleteLastPathComponent()
        }
        return directory.deletingLastPathComponent().appendingPathComponent("shared/testdata")
    }()

    static var torture: URL { root.appendingPathComponent("sip/rfc4475") }

    /// The file's bytes, exactly (they hold NUL and non-UTF-8 octets).
    static func bytes(_ url: URL) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url))
    }

    static func tortureMessage(_ name: String) throws -> [UInt8] {
        try bytes(torture.appendingPathComponent(name + ".sip"))
    }

    /// RFC 4180 CSV: quoted fields may hold commas, doubled quotes and newlines.
    static func parseCSV(_ text: String) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var inQuotes = false
        var iterator = Array(text).makeIterator()
        var pending: Character? = nil
        while let character = pending ?? iterator.next() {
            pending = nil
            if inQuotes {
                if character == "\"" {
                    if let next = iterator.next() {
                        if next == "\"" {
                            field.append("\"")
                        } else {
                            inQuotes = false
                            pending = next
                        }
                    } else {
                        inQuotes = false
                    }
                } else {
                    field.append(character)
                }
                continue
            }
            switch character {
            case "\"": inQuotes = true
            case ",":
                row.append(field)
                field = ""
            case "\n", "\r\n":
                row.append(field)
                rows.append(row)
                row = []
                field = ""
            case "\r": break
            default: field.append(character)
            }
        }
        if !field.isEmpty || !row.isEmpty {
            row.append(field)
            rows.append(row)
        }
        return rows
    }

    /// The torture index as dictionaries keyed by the header row.
    static func tortureIndex() throws -> [[String: String]] {
        let text = try String(contentsOf: torture.appendingPathComponent("index.csv"), encoding: .utf8)
        let rows = parseCSV(text)
        guard let header = rows.first else { return [] }
        return rows.dropFirst().filter { $0.count == header.count }.map { row in
            Dictionary(uniqueKeysWithValues: zip(header, row))
        }
    }
}
