internal import Logging
import NIOCore

/// UDP: one message per datagram, validated; accepted ones go up, rejected requests are answered to the
/// datagram's source, the rest dropped. Runs on the socket's event loop, so datagrams from one socket are
/// delivered in arrival order.
final class SIPDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let processor: SIPInboundProcessor
    let deliver: @Sendable (SIPInbound) -> Void
    let metrics: SIPTransportMetrics
    let logger: Logger

    init(processor: SIPInboundProcessor, metrics: SIPTransportMetrics, logger: Logger, deliver: @escaping @Sendable (SIPInbound) -> Void) {
        self.processor = processor
        self.metrics = metrics
        self.logger = logger
        self.deliver = deliver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let bytes = Array(envelope.data.readableBytesView)
        // RFC 5626 keep-alives over UDP are a lone CRLF (or STUN); not SIP messages.
        if bytes.allSatisfy({ $0 == 13 || $0 == 10 }) { return }
        metrics.received(.udp)
        switch processor.process(bytes, transport: .datagram, remote: envelope.remoteAddress) {
        case .deliver(let message):
            deliver(SIPInbound(message: message, source: SIPSource(
                transport: .udp, remote: envelope.remoteAddress, local: context.channel.localAddress, connection: nil)))
        case .answer(let response, let status):
            metrics.rejected(.udp, status: status)
            logger.debug("SIP request rejected", metadata: [
                "source": "\(envelope.remoteAddress)", "code": "\(status)",
                "call-id": "\(((try? response.headers.callID()) ?? nil) ?? "-")",
            ])
            var buffer = context.channel.allocator.buffer(capacity: 512)
            SIPMessage.response(response).write(into: &buffer)
            context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: buffer)), promise: nil)
        case .drop(let error):
            metrics.dropped(.udp)
            logger.debug("SIP datagram dropped", metadata: ["source": "\(envelope.remoteAddress)", "reason": "\(error)"])
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP errors on an unconnected UDP socket must not stop the listener.
        logger.debug("UDP socket error", metadata: ["reason": "\(error)"])
    }
}
