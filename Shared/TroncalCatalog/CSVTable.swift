/// RFC 4180 CSV: comma-separated fields, `"` quoting with `""` for a quote, CRLF or LF line ends. The first
/// row is the header. Used for the routing catalogs' import and export.
public struct CSVTable: Sendable, Equatable {
    public var header: [String]
    /// Data rows with their line numbers in the file (the header is line 1).
    public var rows: [(line: Int, fields: [String])]

    public static func == (lhs: CSVTable, rhs: CSVTable) -> Bool {
        lhs.header == rhs.header && lhs.rows.map(\.line) == rhs.rows.map(\.line) && lhs.rows.map(\.fields) == rhs.rows.map(\.fields)
    }

    public init(header: [String], rows: [(line: Int, fields: [String])]) {
        self.header = header
        self.rows = rows
    }

    /// Reads CSV text. Blank lines are skipped; a field with a bare quote, an unterminated quote or a NUL is an error
    /// that names the line.
    public init(parsing text: String) throws(CatalogError) {
        var records: [(line: Int, fields: [String])] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var inQuotes = false
        var quotedField = false
        var line = 1
        var recordLine = 1
        var bytes = Array(text.utf8)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        var index = 0
        func endField() {
            fields.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
            quotedField = false
        }
        func endRecord() {
            endField()
            if !(fields.count == 1 && fields[0].isEmpty) { records.append((recordLine, fields)) }
            fields.removeAll(keepingCapacity: true)
        }
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if byte == 0 { throw CatalogError(line: line, "a NUL byte is not allowed") }
            if inQuotes {
                if byte == UInt8(ascii: "\"") {
                    if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                        field.append(byte)
                        index += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    if byte == UInt8(ascii: "\n") { line += 1 }
                    field.append(byte)
                }
                continue
            }
            switch byte {
            case UInt8(ascii: ","):
                endField()
            case UInt8(ascii: "\n"):
                endRecord()
                line += 1
                recordLine = line
            case UInt8(ascii: "\r"):
                if index < bytes.count, bytes[index] == UInt8(ascii: "\n") { continue }
                endRecord()
                line += 1
                recordLine = line
            case UInt8(ascii: "\""):
                guard field.isEmpty, !quotedField else { throw CatalogError(line: line, "a quote inside an unquoted field (quote the whole field and double the quote)") }
                inQuotes = true
                quotedField = true
            default:
                if quotedField { throw CatalogError(line: line, "text after a closing quote") }
                field.append(byte)
            }
        }
        if inQuotes { throw CatalogError(line: recordLine, "a quoted field is not closed") }
        if !field.isEmpty || !fields.isEmpty || quotedField { endRecord() }
        guard let first = records.first else { throw CatalogError(line: 1, "no header line") }
        header = first.fields.map { $0.trimmingSpaces.lowercased() }
        rows = Array(records.dropFirst())
    }

    /// The CSV text: a header line, then one line per row, LF line ends; fields quoted only when they need it.
    public func render() -> String {
        var out = ""
        out.reserveCapacity(32 * (rows.count + 1))
        Self.append(header, to: &out)
        for row in rows { Self.append(row.fields, to: &out) }
        return out
    }

    package static func append(_ fields: [String], to out: inout String) {
        var first = true
        for field in fields {
            if !first { out.append(",") }
            first = false
            if field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) || field.hasPrefix(" ") || field.hasSuffix(" ") {
                out.append("\"")
                out.append(field.replacingAll("\"", with: "\"\""))
                out.append("\"")
            } else {
                out.append(field)
            }
        }
        out.append("\n")
    }
}

/// Why a catalog file cannot be imported: the line (1 is the header) and column, and what is wrong. It never
/// repeats more than a short value.
public struct CatalogError: Error, Sendable, Hashable, CustomStringConvertible {
    public var line: Int?
    public var column: String?
    public var detail: String

    public init(line: Int? = nil, column: String? = nil, _ detail: String) {
        self.line = line
        self.column = column
        self.detail = detail
    }

    public var description: String {
        var parts: [String] = []
        if let line { parts.append("line \(line)") }
        if let column { parts.append("column '\(column)'") }
        return parts.isEmpty ? detail : parts.joined(separator: ", ") + ": " + detail
    }
}

extension String {
    package var trimmingSpaces: String {
        var view = Substring(self)
        while view.first == " " || view.first == "\t" { view.removeFirst() }
        while view.last == " " || view.last == "\t" { view.removeLast() }
        return String(view)
    }

    package func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        out.reserveCapacity(count + 4)
        for character in self {
            if character == target { out.append(replacement) } else { out.append(character) }
        }
        return out
    }

    /// A value short enough to quote in an error message.
    package var quotedForError: String {
        let short = count > 24 ? String(prefix(24)) + "…" : self
        return "'\(short)'"
    }
}

/// Splitting CSV text into parts of whole lines for the link, and putting uploaded parts back together.
public enum CSVParts {
    /// Whole lines in parts of at most about `partBytes` (256 KiB: every part fits a link frame even with JSON
    /// escaping); a longer line is a part of its own. Joined, the parts are the text.
    public static func split(_ text: String, partBytes: Int = 256 << 10) -> [String] {
        var parts: [String] = []
        var part = ""
        var size = 0
        var rest = Substring(text)
        while !rest.isEmpty {
            let end = rest.firstIndex(of: "\n").map { rest.index(after: $0) } ?? rest.endIndex
            let line = rest[..<end]
            rest = rest[end...]
            let length = line.utf8.count
            if size > 0, size + length > partBytes {
                parts.append(part)
                part = ""
                size = 0
            }
            part += line
            size += length
        }
        if !part.isEmpty || parts.isEmpty { parts.append(part) }
        return parts
    }
}
