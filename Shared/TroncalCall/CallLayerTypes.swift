public import TroncalSIP

/// One leg of a call: one dialog (one Call-ID) the call holds with one party. A B2BUA call has two (the caller's
/// and the callee's); a PBX call ringing a group has one per phone rung.
public struct LegReference: Hashable, Sendable, CustomStringConvertible {
    public var call: Int
    public var leg: Int

    public init(call: Int, leg: Int) {
        self.call = call
        self.leg = leg
    }

    public var description: String { "\(call).\(leg)" }
}

/// Where a request the call layer sends goes.
public enum SIPDestination: Sendable {
    /// A host and port over a transport (a carrier's trunk, a registered contact).
    case address(host: String, port: Int, transport: SIPTransportProtocol)
    /// Back to where a message came from: its connection (TCP/TLS) or its source address (UDP); the way to a peer
    /// behind NAT.
    case source(SIPSource)

    public var transport: SIPTransportProtocol {
        switch self {
        case .address(_, _, let transport): transport
        case .source(let source): source.transport
        }
    }
}

/// What a request the layer sends is for; events about it name it.
public enum RequestPurpose: Hashable, Sendable {
    /// An INVITE that sets up the leg's dialog (a call attempt).
    case dialogSetup
    /// A request inside the leg's dialog (BYE, re-INVITE, UPDATE, INFO…).
    case inDialog
    /// A request outside any call (an OPTIONS probe), with the application's token.
    case standalone(Int)
    /// The layer's own (a CANCEL, the ACK and BYE of a late answer): no events.
    case layer
}

/// Why a request the layer sent failed without an answer.
public enum RequestFailure: String, Sendable, Hashable {
    /// No final answer in time (timer B or F).
    case timeout
    /// The transport could not send it (a refused connection, a failed handshake).
    case transport
}

/// What the call layer tells the application above it (the B2BUA, the PBX).
public enum CallLayerEvent: Sendable {
    /// A request outside any dialog (no To tag). Nothing was sent yet: the application `serve`s it (which starts
    /// its server transaction and, for an INVITE, sends 100 Trying), answers it with `answer`, or ignores it.
    case newRequest(SIPRequest, TransactionID, SIPSource)
    /// A request in a leg's dialog, in its server transaction; the application answers it (`respond`,
    /// `respondInDialog`). The ACK of a 2xx comes as `ack`.
    case inDialogRequest(LegReference, SIPRequest, TransactionID)
    /// The ACK for a 2xx the application sent on this leg: the layer stopped retransmitting the 2xx.
    case ack(LegReference, SIPRequest)
    /// The leg's initial INVITE was cancelled: the layer answered the CANCEL 200; the application answers the
    /// INVITE (487) and ends the call.
    case cancelled(LegReference, invite: TransactionID)
    /// A response to a request the application sent (nil transaction: a 2xx retransmitted after the INVITE
    /// transaction ended, matched to its leg by Call-ID).
    case response(LegReference?, SIPResponse, TransactionID?, RequestPurpose)
    /// A request the application sent got no final answer.
    case requestFailed(LegReference?, TransactionID, RequestPurpose, RequestFailure)
    /// A 2xx to an INVITE on this leg was retransmitted for 64·T1 without an ACK: the peer is gone.
    case answerUnacknowledged(LegReference)
    /// An application timer fired.
    case timer(call: Int, timer: Int)
}

/// What the call layer asks its shell to do.
public enum CallLayerEffect: Sendable {
    /// Send a message; the transaction (if any) hears of a transport failure through `transportFailed`.
    case send(SIPMessage, SIPDestination, TransactionID?)
    /// Hand an event to the application.
    case event(CallLayerEvent)
}

/// The timers the layer keeps on its wheel.
public enum CallLayerTimer: Hashable, Sendable {
    case transaction(TransactionID, TransactionTimer)
    /// Retransmission of a 2xx to an INVITE until its ACK (RFC 3261 §13.3.1.4), unreliable transports only.
    case answer(LegReference)
    /// A timer of the application's.
    case application(call: Int, timer: Int)
}

/// A CSeq number and method: how the in-dialog requests of one leg are told apart.
public struct CSeqKey: Hashable, Sendable {
    public var number: UInt32
    public var method: SIPMethod

    public init(number: UInt32, method: SIPMethod) {
        self.number = number
        self.method = method
    }

    public init?(_ headers: SIPHeaders) {
        guard let cseq = (try? headers.cseq()) ?? nil else { return nil }
        self.init(number: cseq.sequenceNumber, method: cseq.method)
    }
}
