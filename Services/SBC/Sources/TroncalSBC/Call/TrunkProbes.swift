internal import NIOCore
internal import TroncalCall
internal import TroncalProtocol
internal import TroncalSIP

/// SIP OPTIONS probes of carrier trunks, asked for by the routing core (`sbc.probe`), on one loop: each is a
/// transaction of that loop's layer (its Call-ID made to hash to the loop, so the answer comes back to it) and a
/// deadline timer. Application timers of probes use negative call numbers.
struct TrunkProbes {
    struct Waiting {
        var started: NIODeadline
        var promise: EventLoopPromise<TrunkProbeResult>
    }

    private var waiting: [Int: Waiting] = [:]
    private var nextToken = 1

    var count: Int { waiting.count }

    mutating func start(
        host: String, port: Int, transport: SIPTransportProtocol, timeout: Duration, advertisedAddress: String, layer: inout CallLayer,
        promise: EventLoopPromise<TrunkProbeResult>
    ) {
        let local = advertisedAddress.contains(":") ? "[\(advertisedAddress)]" : advertisedAddress
        let remote = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        let uri = transport == .udp ? "sip:\(remote):\(port)" : "sip:\(remote):\(port);transport=\(transport.rawValue)"
        guard let target = SIPURI(uri) else {
            return promise.succeed(TrunkProbeResult(status: nil, roundTripMilliseconds: nil, failure: "not a SIP address: \(uri)"))
        }
        var headers = SIPHeaders()
        headers.append(.from, "<sip:probe@\(local)>;tag=\(layer.makeTag())")
        headers.append(.to, "<\(uri)>")
        headers.append(.callID, layer.makeCallID())
        headers.append(.cseq, "1 OPTIONS")
        headers.append(.maxForwards, "70")
        headers.append(.contentLength, "0")
        let token = nextToken
        nextToken += 1
        let request = SIPRequest(method: .options, uri: target, headers: headers)
        waiting[token] = Waiting(started: .now(), promise: promise)
        guard layer.send(request, on: nil, to: .address(host: host, port: port, transport: transport), purpose: .standalone(token)) != nil else {
            waiting[token] = nil
            return promise.succeed(TrunkProbeResult(status: nil, roundTripMilliseconds: nil, failure: "the transaction table is full"))
        }
        layer.startTimer(call: -token, timer: 0, after: timeout)
    }

    mutating func answered(_ token: Int, status: Int, layer: inout CallLayer) {
        guard status >= 200, let probe = waiting.removeValue(forKey: token) else { return }
        layer.cancelTimer(call: -token, timer: 0)
        let milliseconds = Int((NIODeadline.now() - probe.started).nanoseconds / 1_000_000)
        probe.promise.succeed(TrunkProbeResult(status: status, roundTripMilliseconds: milliseconds, failure: nil))
    }

    mutating func failed(_ token: Int, reason: String, layer: inout CallLayer) {
        guard let probe = waiting.removeValue(forKey: token) else { return }
        layer.cancelTimer(call: -token, timer: 0)
        probe.promise.succeed(TrunkProbeResult(status: nil, roundTripMilliseconds: nil, failure: reason))
    }

    mutating func timedOut(_ token: Int, layer: inout CallLayer) {
        waiting.removeValue(forKey: token)?.promise.succeed(TrunkProbeResult(status: nil, roundTripMilliseconds: nil, failure: "timeout"))
    }
}
