internal import Foundation
import NIOCore
internal import NIOSSL
internal import NIOTLS
import TroncalProtocol

/// The client side of one link connection: matches replies to pending requests by `re`, fails them all
/// when the connection closes, and reports the TLS handshake's outcome.
final class ClientConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = Frame

    private var pending: [String: EventLoopPromise<InboundEnvelope>] = [:]
    private let handshake: EventLoopPromise<Void>
    private var closed = false
    /// Retired (no new requests are sent here): the channel closes once the last pending request is answered or expires.
    private var retiredChannel: (any Channel)?

    init(handshake: EventLoopPromise<Void>) {
        self.handshake = handshake
    }

    /// Registers a request awaiting its reply; fails at once if the connection is already closed.
    func register(id: String, promise: EventLoopPromise<InboundEnvelope>) {
        if closed {
            promise.fail(LinkError(.connectionClosed, "connection closed before the request was sent"))
            return
        }
        pending[id] = promise
    }

    /// Fails a pending request (its deadline passed). Returns false when it had already completed.
    func expire(id: String, error: LinkError) -> Bool {
        guard let promise = pending.removeValue(forKey: id) else { return false }
        promise.fail(error)
        closeIfRetiredAndIdle()
        return true
    }

    /// The client sends nothing more here (a request on it timed out): the requests still pending keep their chance
    /// of an answer, and the channel closes when none is left. Call on the channel's event loop.
    func retire(_ channel: any Channel) {
        retiredChannel = channel
        closeIfRetiredAndIdle()
    }

    private func closeIfRetiredAndIdle() {
        guard let channel = retiredChannel, pending.isEmpty else { return }
        retiredChannel = nil
        channel.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .tooLarge(let length):
            failAll(LinkError(.protocolViolation, "peer sent a frame of \(length) bytes, over the limit"))
            context.close(promise: nil)
        case .json(let buffer):
            guard let inbound = try? InboundEnvelope(json: Data(buffer.readableBytesView)) else {
                failAll(LinkError(.protocolViolation, "peer sent a frame that is not an envelope"))
                context.close(promise: nil)
                return
            }
            // An error without `re` answers something we could not have sent well: fail nothing, ignore.
            guard let re = inbound.head.re, let promise = pending.removeValue(forKey: re) else { return }
            promise.succeed(inbound)
            closeIfRetiredAndIdle()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            handshake.succeed(())
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        handshake.fail(error)
        failAll(LinkError(.connectionClosed, "connection failed: \(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshake.fail(LinkError(.connectionClosed, "connection closed during the TLS handshake"))
        failAll(LinkError(.connectionClosed, "connection closed before the reply came"))
        context.fireChannelInactive()
    }

    private func failAll(_ error: LinkError) {
        closed = true
        let waiting = pending
        pending.removeAll()
        for promise in waiting.values { promise.fail(error) }
    }
}
