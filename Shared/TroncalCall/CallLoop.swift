public import Logging
public import NIOCore
public import TroncalSIP

/// The application above the call layer on one loop (the SBC's calls, the PBX's): it gets the layer's events and
/// answers them through `loop.layer`, then the loop performs what the layer asks.
public protocol CallApplication: AnyObject {
    func handle(_ event: CallLayerEvent, in loop: CallLoop)
}

/// The shell of one event loop's `CallLayer`: feeds it the messages and timers of the calls whose Call-IDs hash to
/// this loop, sends what it asks through the SIP transport (UDP from this loop's own socket, so a datagram leaves
/// without a thread hop) and hands its events to the application. Everything runs on `eventLoop`; nothing here is
/// locked and nothing hops to another thread on the way of a call.
public final class CallLoop {
    public let index: Int
    public let eventLoop: any EventLoop
    public var layer: CallLayer
    public weak var application: (any CallApplication)?
    public let transport: SIPTransport
    let logger: Logger
    private var udp: (any Channel)?
    private var tick: Scheduled<Void>?
    private var draining = false
    /// Resolution of the timer wheel's driver.
    public var tickInterval: TimeAmount = .milliseconds(10)
    private lazy var bound = NIOLoopBound(self, eventLoop: eventLoop)

    public init(index: Int, eventLoop: any EventLoop, layer: CallLayer, transport: SIPTransport, logger: Logger) {
        self.index = index
        self.eventLoop = eventLoop
        self.layer = layer
        self.transport = transport
        self.logger = logger
    }

    /// Monotonic nanoseconds, the layer's time.
    public static func now() -> Int64 { Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds) }

    /// A message for a call of this loop (on the loop).
    public func receive(_ inbound: SIPInbound) {
        layer.receive(inbound.message, from: inbound.source, now: Self.now())
        flush()
    }

    /// Performs everything the layer has to do, including what the application's answers to its events add; then
    /// makes sure the timer wheel is driven while it holds timers. Call after changing `layer` from outside an event
    /// (a routing reply, a relay that opened).
    public func flush() {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        while layer.hasEffects {
            for effect in layer.takeEffects() {
                switch effect {
                case .send(let message, let destination, let transaction):
                    send(message, to: destination, transaction: transaction)
                case .event(let event):
                    application?.handle(event, in: self)
                }
            }
        }
        if layer.pendingTimers > 0, tick == nil {
            let bound = self.bound
            tick = eventLoop.scheduleTask(in: tickInterval) { bound.value.tickFired() }
        }
    }

    private func tickFired() {
        tick = nil
        layer.advance(to: Self.now())
        flush()
    }

    // MARK: - Sending

    private func send(_ message: SIPMessage, to destination: SIPDestination, transaction: TransactionID?) {
        var buffer = ByteBufferAllocator().buffer(capacity: message.body.count + 640)
        message.write(into: &buffer)
        switch destination {
        case .source(let source):
            if let connection = source.connection {
                guard connection.isActive else { return failed(transaction, SIPTransportError("the connection to \(source) is closed")) }
                if transaction == nil {
                    connection.writeAndFlush(buffer, promise: nil)
                } else {
                    let bound = self.bound
                    let eventLoop = self.eventLoop
                    connection.writeAndFlush(buffer).whenFailure { error in
                        eventLoop.execute { bound.value.failed(transaction, error) }
                    }
                }
            } else if source.transport == .udp {
                sendDatagram(buffer, to: source.remote, transaction: transaction)
            } else {
                failed(transaction, SIPTransportError("no way back to \(source)"))
            }
        case .address(let host, let port, let kind):
            let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
            if kind == .udp, let address = try? SocketAddress(ipAddress: bare, port: port) {
                sendDatagram(buffer, to: address, transaction: transaction)
                return
            }
            let bound = self.bound
            let eventLoop = self.eventLoop
            transport.send(buffer, to: bare, port: port, transport: kind).whenFailure { error in
                eventLoop.execute { bound.value.failed(transaction, error) }
            }
        }
    }

    private func sendDatagram(_ buffer: ByteBuffer, to address: SocketAddress, transaction: TransactionID?) {
        if udp == nil { udp = transport.udpChannel(for: eventLoop) }
        guard let udp else { return failed(transaction, SIPTransportError("no UDP listener to send from")) }
        let envelope = AddressedEnvelope(remoteAddress: address, data: buffer)
        guard transaction != nil else { return udp.writeAndFlush(envelope, promise: nil) }
        let bound = self.bound
        let eventLoop = self.eventLoop
        udp.writeAndFlush(envelope).whenFailure { error in
            if eventLoop.inEventLoop { bound.value.failed(transaction, error) } else { eventLoop.execute { bound.value.failed(transaction, error) } }
        }
    }

    private func failed(_ transaction: TransactionID?, _ error: any Error) {
        logger.info("SIP message could not be sent", metadata: ["reason": "\(error)"])
        guard let transaction else { return }
        layer.transportFailed(transaction, now: Self.now())
        flush()
    }
}
