import NIOCore

/// Writes rows in the text format of PostgreSQL's `COPY … FROM STDIN`: tab-separated columns, one line per row,
/// `\N` for NULL, and backslash escapes for backslash, tab, newline and carriage return.
enum PostgresCopyEncoding {
    static func append(_ row: [SQLValue], to buffer: inout ByteBuffer) {
        for (index, value) in row.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: "\t")) }
            append(value, to: &buffer)
        }
        buffer.writeInteger(UInt8(ascii: "\n"))
    }

    private static func append(_ value: SQLValue, to buffer: inout ByteBuffer) {
        switch value {
        case .null:
            buffer.writeStaticString("\\N")
        case .integer(let value):
            buffer.writeString(String(value))
        case .real(let value):
            if value.isNaN {
                buffer.writeStaticString("NaN")
            } else if value.isInfinite {
                buffer.writeString(value < 0 ? "-Infinity" : "Infinity")
            } else {
                buffer.writeString(String(value))
            }
        case .bool(let value):
            buffer.writeStaticString(value ? "t" : "f")
        case .text(let text):
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
                case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
                case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
                default: buffer.writeInteger(byte)
                }
            }
        case .blob(let bytes):
            // bytea's hex input form `\x…`, with its backslash escaped for COPY.
            buffer.writeStaticString("\\\\x")
            let hex: [UInt8] = Array("0123456789abcdef".utf8)
            for byte in bytes {
                buffer.writeInteger(hex[Int(byte >> 4)])
                buffer.writeInteger(hex[Int(byte & 0x0f)])
            }
        }
    }
}
