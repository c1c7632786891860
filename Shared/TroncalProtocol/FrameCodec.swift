public import NIOCore

/// One unit read off a link: a complete frame's JSON, or the news that the next frame is over the limit.
public enum Frame: Sendable, Equatable {
    case json(ByteBuffer)
    /// The length prefix announced `length` bytes, more than the limit. Framing is lost after this:
    /// the receiver replies with `frame_too_large` and closes the connection.
    case tooLarge(length: UInt32)
}

/// Splits a byte stream into frames: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
public struct FrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = Frame

    /// The default frame limit, 1 MiB.
    public static let defaultMaximumFrameLength = 1 << 20

    public let maximumFrameLength: Int
    private var failed = false

    public init(maximumFrameLength: Int = FrameDecoder.defaultMaximumFrameLength) {
        self.maximumFrameLength = maximumFrameLength
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard !failed else {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return .needMoreData
        }
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        if Int(length) > maximumFrameLength {
            failed = true
            buffer.moveReaderIndex(to: buffer.writerIndex)
            context.fireChannelRead(Self.wrapInboundOut(.tooLarge(length: length)))
            return .needMoreData
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        guard let payload = buffer.readSlice(length: Int(length)) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(.json(payload)))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 && !failed {
            let leftover = buffer.readableBytes
            buffer.moveReaderIndex(to: buffer.writerIndex)
            throw ProtocolError(.badEnvelope, "connection closed inside a frame (\(leftover) bytes of a truncated frame)")
        }
        return .needMoreData
    }
}

/// Writes frames: the 4-byte big-endian length, then the JSON.
public struct FrameEncoder: MessageToByteEncoder, Sendable {
    public typealias OutboundIn = ByteBuffer

    public init() {}

    public func encode(data: ByteBuffer, out: inout ByteBuffer) throws {
        out.reserveCapacity(4 + data.readableBytes)
        out.writeInteger(UInt32(data.readableBytes))
        var data = data
        out.writeBuffer(&data)
    }
}
