internal import Logging
import NIOCore

/// TCP and TLS: frames the byte stream by Content-Length (`SIPStreamFramer`), validates each message,
/// answers CRLF keep-alive pings, closes an unrecoverable stream, and closes a connection whose partial
/// message stalls longer than the stall timeout. Messages of one connection are delivered in order.
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
        framer.append(unwrapInboundIn(data))
        do {
            while let frame = try framer.next() {
                switch frame {
                case .keepAlivePing:
                    context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: "\r\n")), promise: nil)
                case .message(let bytes):
                    handle(bytes, context: context)
                }
            }
        } catch {
            metrics.dropped(transport)
            logger.warning("SIP stream unrecoverable; closing", metadata: [
                "source": "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")", "reason": "\(error)",
            ])
            context.close(promise: nil)
            return
        }
        armStallTimer(context: context)
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
