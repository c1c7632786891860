/// Bounds the parser and framers enforce so that hostile input costs bounded memory and time.
public struct SIPParserLimits: Hashable, Sendable {
    /// Largest message (start line, headers and body) accepted, in bytes.
    public var maxMessageSize: Int
    /// Most header fields (lines, counting folded continuations as part of their field) accepted.
    public var maxHeaderCount: Int
    /// Longest start line or header field (including folded continuations), in bytes.
    public var maxLineLength: Int

    public init(maxMessageSize: Int = 65_536, maxHeaderCount: Int = 128, maxLineLength: Int = 8_192) {
        self.maxMessageSize = maxMessageSize
        self.maxHeaderCount = maxHeaderCount
        self.maxLineLength = maxLineLength
    }

    /// 64 KiB message, 128 headers, 8 KiB line.
    public static let `default` = SIPParserLimits()
}
