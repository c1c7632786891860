/// The CSeq header value: a sequence number (0...2^32-1) and the request method.
public struct SIPCSeq: Hashable, Sendable, CustomStringConvertible {
    public var sequenceNumber: UInt32
    public var method: SIPMethod

    public init(_ sequenceNumber: UInt32, _ method: SIPMethod) {
        self.sequenceNumber = sequenceNumber
        self.method = method
    }

    public var description: String { "\(sequenceNumber) \(method.name)" }

    /// Parses `1*DIGIT LWS Method` (leading zeros allowed).
    static func parse(_ bytes: ArraySlice<UInt8>) throws(SIPParseError) -> SIPCSeq {
        var scanner = SIPValueScanner(bytes, header: .cseq)
        scanner.skipLWS()
        let digits = scanner.scan(.digit)
        let number = try SIPDecimal<UInt32>(digits).get(header: .cseq, detail: "sequence number")
        let beforeLWS = scanner.index
        scanner.skipLWS()
        guard scanner.index > beforeLWS else { throw scanner.error("expected LWS before method") }
        let methodBytes = try scanner.requireToken("method")
        try scanner.requireEnd()
        guard let method = SIPMethod(bytes: methodBytes) else { throw scanner.error("invalid method") }
        return SIPCSeq(number, method)
    }
}
