internal import Logging
import NIOCore

/// TCP and TLS: frames the byte stream by Content-Length (`SIPStreamFramer`), validates each message,
/// answers CRLF keep-alive pings, closes an unrecoverable stream (after answering the request that broke it),
/// and closes a connection whose partial message stalls longer than the stall timeout. Messages of one
/// connection are delivered in order.
final class SIPStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let transport: SIPTransportProtocol
    let processor: SIPInboundProcessor
    let deliver: @Sendable (SIPInbound) -> Void
    let metrics: SIPTransportMetrics
    let logger: Logger
    let stallTimeout: TimeAmount
    private var framer: SIPStreamFramer
    private var stallTimer: Scheduled<Void>?
    private var isClosing = false

    init(
        transport: SIPTransportProtocol, processor: SIPInboundProcessor, limits: SIPParserLimits, stallTimeout: TimeAmount,
        metrics: SIPTransportMetrics, logger: Logger, deliver: @escaping @Sendable (SIPInbound) -> Void
    ) {
        self.transport = transport
        self.processor = processor
        self.framer = SIPStreamFramer(limits: limits)
        self.stallTimeout = stallTimeout
        self.metrics = metrics
        self.logger = logger
        self.deliver = deliver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After a framing failure the connection is closing; what the peer sends meanwhile is not looked at.
        guard !isClosing else { return }
        framer.append(unwrapInboundIn(data))
        do throws(SIPParseError) {
            while let frame = try framer.next() {
                switch frame {
                case .keepAlivePing:
                    context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: "\r\n")), promise: nil)
                case .message(let bytes):
                    handle(bytes, context: context)
                }
            }
        } catch {
            closeUnrecoverableStream(error, context: context)
            return
        }
        armStallTimer(context: context)
    }

    /// A Content-Length that cannot be framed leaves no way to find the next message: a request is answered (400, or
    /// 513 when too large) and the connection closed once the answer is written (RFC 4475 §3.1.2.3, §3.3.9).
    private func closeUnrecoverableStream(_ error: SIPParseError, context: ChannelHandlerContext) {
        isClosing = true
        stallTimer?.cancel()
        stallTimer = nil
        metrics.dropped(transport)
        let channel = context.channel
        logger.warning("SIP stream unrecoverable; closing", metadata: [
            "source": "\(channel.remoteAddress.map { "\($0)" } ?? "?")", "reason": "\(error)",
        ])
        guard let remote = channel.remoteAddress,
            let (response, status) = processor.answer(brokenStream: framer.failedHeaderSection, error: error, remote: remote)
        else {
            context.close(promise: nil)
            return
        }
        metrics.rejected(transport, status: status)
        var buffer = channel.allocator.buffer(capacity: 512)
        SIPMessage.response(response).write(into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    private func handle(_ bytes: [UInt8], context: ChannelHandlerContext) {
        guard let remote = context.channel.remoteAddress else { return }
        metrics.received(transport)
        switch processor.process(bytes, transport: .stream, remote: remote) {
        case .deliver(let message):
            deliver(SIPInbound(message: message, source: SIPSource(
                transport: transport, remote: remote, local: context.channel.localAddress, connection: context.channel)))
        case .answer(let response, let status):
            metrics.rejected(transport, status: status)
            logger.debug("SIP request rejected", metadata: [
                "source": "\(remote)", "code": "\(status)", "call-id": "\(((try? response.headers.callID()) ?? nil) ?? "-")",
            ])
            var buffer = context.channel.allocator.buffer(capacity: 512)
            SIPMessage.response(response).write(into: &buffer)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        case .drop(let error):
            metrics.dropped(transport)
            logger.debug("SIP message dropped", metadata: ["source": "\(remote)", "reason": "\(error)"])
        }
    }

    private func armStallTimer(context: ChannelHandlerContext) {
        if framer.hasPartialMessage {
            guard stallTimer == nil else { return }
            let channel = context.channel
            let logger = self.logger
            stallTimer = context.eventLoop.scheduleTask(in: stallTimeout) {
                logger.info("SIP connection stalled mid-message; closing", metadata: ["source": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
                channel.close(promise: nil)
            }
        } else {
            stallTimer?.cancel()
            stallTimer = nil
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        stallTimer?.cancel()
        stallTimer = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("SIP connection error; closing", metadata: ["reason": "\(error)"])
        context.close(promise: nil)
    }
}
