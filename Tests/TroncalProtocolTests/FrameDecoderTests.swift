import NIOCore
import NIOEmbedded
import Testing
import TroncalProtocol

@Suite("Frame codec")
struct FrameDecoderTests {
    func channel(limit: Int = 64) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maximumFrameLength: limit)))
        return channel
    }

    func frame(_ text: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(text.utf8.count))
        buffer.writeString(text)
        return buffer
    }

    @Test func framesArriveWholeWhateverTheChunking() throws {
        let channel = try channel()
        var bytes = frame(#"{"a":1}"#)
        var second = frame(#"{"b":2}"#)
        bytes.writeBuffer(&second)
        while let byte = bytes.readSlice(length: 1) { try channel.writeInbound(byte) }
        #expect(try channel.readInbound(as: Frame.self) == .json(ByteBuffer(string: #"{"a":1}"#)))
        #expect(try channel.readInbound(as: Frame.self) == .json(ByteBuffer(string: #"{"b":2}"#)))
        #expect(try channel.readInbound(as: Frame.self) == nil)
    }

    @Test func frameOverTheLimitIsReportedOnceAndTheRestIgnored() throws {
        let channel = try channel(limit: 16)
        try channel.writeInbound(frame(String(repeating: "x", count: 17)))
        try channel.writeInbound(frame("{}"))
        #expect(try channel.readInbound(as: Frame.self) == .tooLarge(length: 17))
        #expect(try channel.readInbound(as: Frame.self) == nil)
    }

    @Test func connectionClosedInsideAFrameIsAnError() throws {
        let channel = try channel()
        var partial = frame(#"{"abc":1}"#)
        partial.moveWriterIndex(to: 7)
        try channel.writeInbound(partial)
        #expect(throws: (any Error).self) { try channel.finish() }
    }

    @Test func encoderWritesTheLengthPrefix() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(FrameEncoder()))
        try channel.writeOutbound(ByteBuffer(string: "{}"))
        var written = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(written.readInteger(as: UInt32.self) == 2)
        #expect(written.readString(length: 2) == "{}")
    }
}
