/// Which event loop a dialog's messages are handled on: a hash of the Call-ID, so that every message of a call (its
/// requests, responses, retransmissions, CANCEL) reaches the one loop that holds the call, in arrival order.
///
/// FNV-1a over the Call-ID's bytes: stable across processes and runs (the SBC makes the Call-IDs of the legs it starts
/// hash to the loop of the call, `CallLayer.makeCallID`), cheap, and spread evenly enough for random Call-IDs.
public struct CallLoopRouting: Sendable, Hashable {
    public let loopCount: Int

    public init(loopCount: Int) { self.loopCount = max(1, loopCount) }

    public func loopIndex(forCallID callID: String) -> Int {
        guard loopCount > 1 else { return 0 }
        return Int(Self.hash(callID) % UInt64(loopCount))
    }

    public static func hash(_ callID: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in callID.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}
