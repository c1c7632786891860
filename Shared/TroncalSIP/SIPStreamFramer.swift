public import NIOCore

/// Cuts SIP messages out of a TCP/TLS byte stream by Content-Length (RFC 3261 §18.3), fed in any chunks (one
/// byte at a time works). Handles pipelined messages, reports RFC 5626 CRLF keep-alive pings, and turns framing
/// that cannot be resynchronised (negative, non-numeric or conflicting Content-Length, an over-limit message)
/// into an error after which the connection must be closed. A pure value: the transport runs the stall timer,
/// asking `hasPartialMessage`.
public struct SIPStreamFramer: Sendable {
    /// What the stream yielded.
    public enum Frame: Hashable, Sendable {
        /// One complete message (start line through body), ready for `SIPValidator.disposition(forStreamMessage:)`.
        case message([UInt8])
        /// A double-CRLF keep-alive ping (RFC 5626 §3.5.1); the transport answers with a single CRLF pong.
        case keepAlivePing
    }

    public let limits: SIPParserLimits
    private var buffer: [UInt8] = []
    private var readIndex = 0
    /// Where the search for the end of the header section resumes, so byte-at-a-time input stays linear.
    private var scanIndex = 0
    /// End (exclusive, in `buffer`) of the message being assembled once its header section is known.
    private var messageEnd: Int?
    private var failure: SIPParseError?

    /// After a failure caused by the Content-Length of a message whose header section was complete (negative,
    /// non-numeric, conflicting or over the size limit): that header section, start line included, so the transport
    /// can answer the request statelessly before it closes the connection (RFC 4475 §3.1.2.3, §3.3.9).
    public private(set) var failedHeaderSection: [UInt8]?

    public init(limits: SIPParserLimits = .default) {
        self.limits = limits
    }

    /// Adds received bytes.
    public mutating func append(_ bytes: some Sequence<UInt8>) {
        guard failure == nil else { return }
        buffer.append(contentsOf: bytes)
    }

    /// Adds the readable bytes of a buffer.
    public mutating func append(_ bytes: ByteBuffer) {
        append(bytes.readableBytesView)
    }

    /// Whether bytes of an unfinished message are buffered (the transport's stall timeout applies).
    public var hasPartialMessage: Bool {
        guard failure == nil else { return false }
        var index = readIndex
        while index < buffer.count, buffer[index] == 13 || buffer[index] == 10 { index += 1 }
        return index < buffer.count
    }

    /// Bytes buffered and not yet returned.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// The next complete frame, nil when more bytes are needed. Throws, now and on every later call, when the
    /// stream cannot be framed any more.
    public mutating func next() throws(SIPParseError) -> Frame? {
        if let failure { throw failure }
        compact()
        if messageEnd == nil {
            // CRLFs before a start line: "\r\n\r\n" is a ping, a lone "\r\n" (a pong or stray) is skipped.
            while buffer.count - readIndex >= 1, buffer[readIndex] == 13 || buffer[readIndex] == 10 {
                let available = buffer.count - readIndex
                guard available >= 2 else { return nil }
                guard buffer[readIndex] == 13, buffer[readIndex + 1] == 10 else {
                    return try fail(SIPParseError(.invalidLineEnding, offset: 0))
                }
                if available >= 4, buffer[readIndex + 2] == 13, buffer[readIndex + 3] == 10 {
                    readIndex += 4
                    scanIndex = readIndex
                    return .keepAlivePing
                }
                guard available >= 3 else { return nil }
                if buffer[readIndex + 2] == 13 {
                    guard available >= 4 else { return nil }
                    // "\r\n\r" followed by something other than "\n".
                    return try fail(SIPParseError(.invalidLineEnding, offset: 2))
                }
                readIndex += 2
                scanIndex = readIndex
            }
            guard readIndex < buffer.count else { return nil }
            guard let headerEnd = findHeaderEnd() else {
                if buffer.count - readIndex > limits.maxMessageSize {
                    return try fail(SIPParseError(.messageTooLarge, detail: "header section"))
                }
                return nil
            }
            let contentLength: Int
            do {
                contentLength = try Self.contentLength(inHeaderSection: buffer[readIndex..<headerEnd]) ?? 0
            } catch {
                failedHeaderSection = Array(buffer[readIndex..<headerEnd])
                return try fail(error)
            }
            guard headerEnd - readIndex + contentLength <= limits.maxMessageSize else {
                failedHeaderSection = Array(buffer[readIndex..<headerEnd])
                return try fail(SIPParseError(.messageTooLarge, header: .contentLength))
            }
            messageEnd = headerEnd + contentLength
        }
        guard let end = messageEnd, buffer.count >= end else { return nil }
        let message = Array(buffer[readIndex..<end])
        readIndex = end
        scanIndex = end
        messageEnd = nil
        return .message(message)
    }

    private mutating func fail(_ error: SIPParseError) throws(SIPParseError) -> Frame? {
        failure = error
        buffer = []
        readIndex = 0
        scanIndex = 0
        throw error
    }

    /// Index just past the CRLFCRLF ending the header section, searching only bytes not searched before.
    private mutating func findHeaderEnd() -> Int? {
        var index = max(scanIndex, readIndex)
        let count = buffer.count
        while index + 3 < count {
            if buffer[index + 3] != 10 {
                // The pattern cannot end at index+3; skip ahead (a cheap Boyer-Moore-like step on the last byte).
                index += buffer[index + 3] == 13 ? 1 : 4
                continue
            }
            if buffer[index] == 13, buffer[index + 1] == 10, buffer[index + 2] == 13 {
                return index + 4
            }
            index += 1
        }
        scanIndex = max(readIndex, count - 3)
        return nil
    }

    /// Drops consumed bytes once they dominate the buffer.
    private mutating func compact() {
        guard readIndex > 4096, readIndex * 2 > buffer.count else { return }
        buffer.removeFirst(readIndex)
        scanIndex -= readIndex
        if let end = messageEnd { messageEnd = end - readIndex }
        readIndex = 0
    }

    /// The Content-Length of a header section (start line included), honouring the compact form `l` and folded
    /// values. Identical repeats are tolerated here (the validator refuses them); differing ones are not.
    static func contentLength(inHeaderSection section: ArraySlice<UInt8>) throws(SIPParseError) -> Int? {
        var result: Int?
        var lineStart = section.startIndex
        var first = true
        var pendingValue: [UInt8]?
        func finish(_ value: [UInt8]?) throws(SIPParseError) {
            guard let value else { return }
            let trimmed = SIPValueScanner.trimLWS(value[...])
            guard case .value(let length) = SIPDecimal<UInt32>(trimmed) else {
                throw SIPParseError(.invalidContentLength, header: .contentLength)
            }
            if let result, result != Int(length) {
                throw SIPParseError(.conflictingContentLength, header: .contentLength)
            }
            result = Int(length)
        }
        while lineStart < section.endIndex {
            var lineEnd = lineStart
            while lineEnd < section.endIndex, section[lineEnd] != 13, section[lineEnd] != 10 { lineEnd += 1 }
            let line = section[lineStart..<lineEnd]
            var next = lineEnd
            while next < section.endIndex, next < lineEnd + 2, section[next] == 13 || section[next] == 10 { next += 1 }
            defer { lineStart = next }
            if first {
                first = false
                continue
            }
            if line.isEmpty { break }
            if let firstByte = line.first, firstByte == 32 || firstByte == 9 {
                pendingValue?.append(32)
                pendingValue?.append(contentsOf: line)
                continue
            }
            try finish(pendingValue)
            pendingValue = nil
            var index = line.startIndex
            while index < line.endIndex, line[index].isSIPTokenChar { index += 1 }
            let name = line[line.startIndex..<index]
            while index < line.endIndex, line[index] == 32 || line[index] == 9 { index += 1 }
            guard index < line.endIndex, line[index] == UInt8(ascii: ":") else { continue }
            if SIPHeaderName(bytes: name) == .contentLength {
                pendingValue = Array(line[(index + 1)...])
            }
        }
        try finish(pendingValue)
        return result
    }
}
