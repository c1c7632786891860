import NIOCore
import PostgresNIO

/// Turns a PostgreSQL result cell into an ``SQLValue`` according to the column's data type.
///
/// | PostgreSQL type | SQLValue |
/// |---|---|
/// | `smallint`, `integer`, `bigint`, `oid` | `.integer` |
/// | `real`, `double precision` | `.real` |
/// | `text`, `varchar`, `char(n)`, `name`, `uuid`, `json`, `jsonb`, untyped literals | `.text` |
/// | `numeric` | `.text`, exact, e.g. `"12.50"` (money never goes through a `Double`) |
/// | `timestamptz` | `.text`, ISO 8601 in UTC: `"2025-01-31T23:59:59.123456Z"` |
/// | `timestamp` | `.text`, ISO 8601 without zone: `"2025-01-31T23:59:59"` |
/// | `date` | `.text`: `"2025-01-31"` |
/// | `bytea` | `.blob` |
/// | `boolean` | `.bool` |
/// | `void` (e.g. `SELECT pg_advisory_xact_lock(…)`) | `.null` |
///
/// Any other type is refused with ``StoreError/Code/decoding``; cast it in SQL (`col::text`).
enum PostgresValueDecoding {
    static func value(of cell: PostgresCell) throws -> SQLValue {
        guard var bytes = cell.bytes else { return .null }
        do {
            if cell.format == .text {
                // Only reached for types the server sends as text; keep the server's rendering.
                return .text(String(decoding: bytes.readableBytesView, as: UTF8.self))
            }
            switch cell.dataType {
            case .int2, .int4, .int8:
                return .integer(try cell.decode(Int64.self))
            case .oid:
                guard bytes.readableBytes == 4, let oid = bytes.readInteger(as: UInt32.self) else { throw malformed(cell) }
                return .integer(Int64(oid))
            case .float4, .float8:
                return .real(try cell.decode(Double.self))
            case .bool:
                return .bool(try cell.decode(Bool.self))
            case .bytea:
                return .blob(Array(bytes.readableBytesView))
            case .text, .varchar, .bpchar, .name, .uuid, .json, .jsonb, .unknown:
                return .text(try cell.decode(String.self))
            case .numeric:
                guard let text = numericText(&bytes) else { throw malformed(cell) }
                return .text(text)
            case .timestamptz, .timestamp:
                guard bytes.readableBytes == 8, let micros = bytes.readInteger(as: Int64.self) else {
                    throw malformed(cell)
                }
                return .text(timestampText(microseconds: micros, utc: cell.dataType == .timestamptz))
            case .date:
                guard bytes.readableBytes == 4, let days = bytes.readInteger(as: Int32.self) else {
                    throw malformed(cell)
                }
                return .text(dateText(days: days))
            case .void:
                return .null
            default:
                throw StoreError(
                    .decoding,
                    "column \"\(cell.columnName)\" has PostgreSQL type \(cell.dataType), which the store does not read; cast it in SQL, e.g. \(cell.columnName)::text",
                    backend: .postgres)
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw malformed(cell)
        }
    }

    private static func malformed(_ cell: PostgresCell) -> StoreError {
        StoreError(
            .decoding, "column \"\(cell.columnName)\" holds a malformed \(cell.dataType) value", backend: .postgres)
    }

    // MARK: numeric

    /// The exact decimal text of a binary `numeric`: a header of digit count, weight (in base-10000 digits), sign and
    /// display scale, then base-10000 digits, most significant first.
    static func numericText(_ buffer: inout ByteBuffer) -> String? {
        guard let count = buffer.readInteger(as: Int16.self), let weight = buffer.readInteger(as: Int16.self),
            let sign = buffer.readInteger(as: UInt16.self), let scale = buffer.readInteger(as: Int16.self),
            count >= 0, scale >= 0
        else { return nil }
        switch sign {
        case 0xC000: return "NaN"
        case 0xD000: return "Infinity"
        case 0xF000: return "-Infinity"
        case 0x0000, 0x4000: break
        default: return nil
        }
        var digits: [Int16] = []
        digits.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let digit = buffer.readInteger(as: Int16.self), digit >= 0, digit < 10_000 else { return nil }
            digits.append(digit)
        }
        func digit(at position: Int) -> Int16 {
            position >= 0 && position < digits.count ? digits[position] : 0
        }
        func padded(_ value: Int16) -> String {
            let text = String(value)
            return String(repeating: "0", count: 4 - text.count) + text
        }

        var integer = ""
        if weight >= 0 {
            integer = String(digit(at: 0))
            if weight > 0 {
                for position in 1...Int(weight) { integer += padded(digit(at: position)) }
            }
        } else {
            integer = "0"
        }
        var fraction = ""
        if scale > 0 {
            let groups = (Int(scale) + 3) / 4
            for group in 0..<groups { fraction += padded(digit(at: Int(weight) + 1 + group)) }
            fraction = String(fraction.prefix(Int(scale)))
        }
        let isZero = digits.allSatisfy { $0 == 0 }
        let magnitude = fraction.isEmpty ? integer : integer + "." + fraction
        return sign == 0x4000 && !isZero ? "-" + magnitude : magnitude
    }

    // MARK: date and time

    /// PostgreSQL counts from 2000-01-01, which is day 10957 of the Unix epoch.
    private static let postgresEpochDay: Int64 = 10_957

    static func timestampText(microseconds: Int64, utc: Bool) -> String {
        if microseconds == .max { return "infinity" }
        if microseconds == .min { return "-infinity" }
        let perDay: Int64 = 86_400_000_000
        var days = microseconds / perDay
        var rest = microseconds % perDay
        if rest < 0 {
            rest += perDay
            days -= 1
        }
        let second = rest / 1_000_000
        let fraction = rest % 1_000_000
        var text = civilDate(unixDay: days + postgresEpochDay) + "T" + two(second / 3600) + ":"
            + two(second / 60 % 60) + ":" + two(second % 60)
        if fraction != 0 {
            let digits = String(fraction)
            text += "." + String(repeating: "0", count: 6 - digits.count) + digits
        }
        return utc ? text + "Z" : text
    }

    static func dateText(days: Int32) -> String {
        if days == .max { return "infinity" }
        if days == .min { return "-infinity" }
        return civilDate(unixDay: Int64(days) + postgresEpochDay)
    }

    /// The proleptic Gregorian `YYYY-MM-DD` of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
    private static func civilDate(unixDay: Int64) -> String {
        let z = unixDay + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        let yearText = String(abs(year))
        return (year < 0 ? "-" : "") + String(repeating: "0", count: max(0, 4 - yearText.count)) + yearText + "-"
            + two(month) + "-" + two(day)
    }

    private static func two(_ value: Int64) -> String {
        value < 10 ? "0\(value)" : String(value)
    }
}
