/// Turns Troncal's portable SQL into what SQLite expects: `$N` placeholders become `?N`, outside string literals,
/// quoted identifiers and comments. It also finds the highest placeholder used and refuses a second statement in
/// the same string (SQLite would silently ignore it; PostgreSQL refuses it too).
struct SQLiteStatementRewriter {
    struct Rewritten: Equatable {
        var sql: String
        /// The highest `$N` used, 0 when none.
        var parameterCount: Int
    }

    static func rewrite(_ sql: String) throws -> Rewritten {
        let scalars = Array(sql.unicodeScalars)
        var output = String.UnicodeScalarView()
        output.reserveCapacity(scalars.count)
        var highest = 0
        var index = 0
        var sawTerminator = false

        func copy(until end: Int) {
            output.append(contentsOf: scalars[index..<end])
            index = end
        }

        while index < scalars.count {
            let scalar = scalars[index]
            let next: Unicode.Scalar? = index + 1 < scalars.count ? scalars[index + 1] : nil

            if sawTerminator, !scalar.properties.isWhitespace, !(scalar == "-" && next == "-"),
                !(scalar == "/" && next == "*")
            {
                throw StoreError(
                    .queryFailed, "more than one statement in one call; pass one statement per call", backend: .sqlite,
                    sql: sql)
            }

            switch scalar {
            case "'", "\"", "`":
                // A quoted literal or identifier; a doubled quote inside it is an escaped quote.
                var end = index + 1
                while end < scalars.count {
                    if scalars[end] == scalar {
                        if end + 1 < scalars.count, scalars[end + 1] == scalar {
                            end += 2
                            continue
                        }
                        break
                    }
                    end += 1
                }
                copy(until: min(end + 1, scalars.count))
            case "[":
                let end = scalars[index...].firstIndex(of: "]") ?? (scalars.count - 1)
                copy(until: end + 1)
            case "-" where next == "-":
                let end = scalars[index...].firstIndex(of: "\n") ?? scalars.count
                copy(until: end)
            case "/" where next == "*":
                var end = index + 2
                while end + 1 < scalars.count, !(scalars[end] == "*" && scalars[end + 1] == "/") { end += 1 }
                copy(until: min(end + 2, scalars.count))
            case "$" where next.map(Self.isDigit) ?? false:
                var end = index + 1
                var number = 0
                while end < scalars.count, Self.isDigit(scalars[end]) {
                    number = number * 10 + Int(scalars[end].value - 48)
                    guard number <= 250_000 else {
                        throw StoreError(.queryFailed, "placeholder number too large", backend: .sqlite, sql: sql)
                    }
                    end += 1
                }
                guard number >= 1 else {
                    throw StoreError(.queryFailed, "placeholders start at $1", backend: .sqlite, sql: sql)
                }
                highest = max(highest, number)
                output.append("?")
                output.append(contentsOf: scalars[(index + 1)..<end])
                index = end
            case ";":
                sawTerminator = true
                copy(until: index + 1)
            default:
                copy(until: index + 1)
            }
        }
        return Rewritten(sql: String(output), parameterCount: highest)
    }

    private static func isDigit(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value >= 48 && scalar.value <= 57
    }
}
