/// Splits raw bytes into start line, header fields and body without interpreting header values. On a lexical
/// error the fields lexed so far are kept, so that a 400 can still copy Via, From, To, Call-ID and CSeq.
struct SIPMessageLexer {
    struct Result {
        /// Range of the start line, without CRLF.
        var startLine: Range<Int>?
        var headers: [SIPHeaderField] = []
        var body: Range<Int>?
        var contentLength: Int?
        var error: SIPParseError?
    }

    private enum LineEnd {
        /// Index of the CR of a CRLF.
        case crlf(Int)
        /// A CR not followed by LF, or an LF not preceded by CR.
        case bare(Int)
        /// Input ended before a line end.
        case none
    }

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")

    private static func findLineEnd(_ buffer: UnsafeBufferPointer<UInt8>, from start: Int) -> LineEnd {
        var index = start
        let count = buffer.count
        while index < count {
            let b = buffer[index]
            if b == cr {
                if index + 1 < count {
                    return buffer[index + 1] == lf ? .crlf(index) : .bare(index)
                }
                return .none
            }
            if b == lf { return .bare(index) }
            index += 1
        }
        return .none
    }

    /// Lexes one message occupying `bytes` (a datagram or a framed stream message). With Content-Length the body
    /// is exactly that many octets and anything after it is ignored; without it the body is the rest of the input.
    static func lex(_ bytes: [UInt8], limits: SIPParserLimits) -> Result {
        var result = Result()
        guard bytes.count <= limits.maxMessageSize else {
            result.error = SIPParseError(.messageTooLarge)
            return result
        }
        let headerEnd: Int? = bytes.withUnsafeBufferPointer { buffer -> Int? in
            let count = buffer.count
            var position = 0
            while position + 1 < count, buffer[position] == cr, buffer[position + 1] == lf { position += 2 }
            guard position < count else {
                result.error = SIPParseError(.emptyMessage)
                return nil
            }
            switch findLineEnd(buffer, from: position) {
            case .crlf(let end):
                guard end - position <= limits.maxLineLength else {
                    result.error = SIPParseError(.lineTooLong, offset: position)
                    return nil
                }
                result.startLine = position..<end
                position = end + 2
            case .bare(let index):
                result.error = SIPParseError(.invalidLineEnding, offset: index)
                return nil
            case .none:
                result.error = SIPParseError(
                    count - position > limits.maxLineLength ? .lineTooLong : .unterminatedHeaderSection,
                    offset: position)
                return nil
            }

            var fieldStart = -1
            var nameEnd = 0
            var colon = 0
            var fieldEnd = 0
            func flush() {
                guard fieldStart >= 0 else { return }
                var valueStart = colon + 1
                while valueStart < fieldEnd, buffer[valueStart].isSIPLWS { valueStart += 1 }
                var valueEnd = fieldEnd
                while valueEnd > valueStart, buffer[valueEnd - 1].isSIPLWS { valueEnd -= 1 }
                let name = SIPHeaderName(bytes: bytes[fieldStart..<nameEnd])
                result.headers.append(
                    SIPHeaderField(
                        name: name, raw: bytes[fieldStart..<fieldEnd], nameLength: nameEnd - fieldStart,
                        valueOffset: valueStart - fieldStart, valueLength: valueEnd - valueStart))
                fieldStart = -1
            }

            while true {
                guard position < count else {
                    flush()
                    result.error = SIPParseError(.unterminatedHeaderSection, offset: position)
                    return nil
                }
                let first = buffer[position]
                if first == cr, position + 1 < count, buffer[position + 1] == lf {
                    flush()
                    return position + 2
                }
                let end: Int
                switch findLineEnd(buffer, from: position) {
                case .crlf(let index):
                    end = index
                case .bare(let index):
                    flush()
                    result.error = SIPParseError(.invalidLineEnding, offset: index)
                    return nil
                case .none:
                    flush()
                    result.error = SIPParseError(.unterminatedHeaderSection, offset: position)
                    return nil
                }
                if first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
                    guard fieldStart >= 0 else {
                        result.error = SIPParseError(.invalidFolding, offset: position)
                        return nil
                    }
                    fieldEnd = end
                    guard fieldEnd - fieldStart <= limits.maxLineLength else {
                        result.error = SIPParseError(.lineTooLong, offset: fieldStart)
                        return nil
                    }
                } else {
                    flush()
                    guard result.headers.count < limits.maxHeaderCount else {
                        result.error = SIPParseError(.tooManyHeaders, offset: position)
                        return nil
                    }
                    var index = position
                    while index < end, buffer[index].isSIPTokenChar { index += 1 }
                    let tokenEnd = index
                    while index < end, buffer[index] == UInt8(ascii: " ") || buffer[index] == UInt8(ascii: "\t") {
                        index += 1
                    }
                    guard tokenEnd > position, index < end, buffer[index] == UInt8(ascii: ":") else {
                        result.error = SIPParseError(.invalidHeaderLine, offset: position)
                        return nil
                    }
                    guard end - position <= limits.maxLineLength else {
                        result.error = SIPParseError(.lineTooLong, offset: position)
                        return nil
                    }
                    fieldStart = position
                    nameEnd = tokenEnd
                    colon = index
                    fieldEnd = end
                }
                position = end + 2
            }
        }
        guard let headerEnd else { return result }

        var contentLength: Int?
        for field in result.headers where field.name == .contentLength {
            guard case .value(let length) = SIPDecimal<UInt32>(field.value) else {
                result.error = SIPParseError(.invalidContentLength, header: .contentLength)
                return result
            }
            if let contentLength, contentLength != Int(length) {
                result.error = SIPParseError(.conflictingContentLength, header: .contentLength)
                return result
            }
            contentLength = Int(length)
        }
        result.contentLength = contentLength
        if let contentLength {
            guard contentLength <= bytes.count - headerEnd else {
                result.error = SIPParseError(.contentLengthExceedsDatagram, header: .contentLength)
                return result
            }
            result.body = headerEnd..<(headerEnd + contentLength)
        } else {
            result.body = headerEnd..<bytes.count
        }
        return result
    }
}
