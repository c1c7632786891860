import Testing
import TroncalSIP

/// One row of the timer table: a transaction kind on one transport, what happens to it and when, and what the
/// outside world must see and when.
struct TransactionTimeline: Sendable, CustomTestStringConvertible {
    enum Kind: String, Sendable {
        case inviteClient = "INVITE client"
        case nonInviteClient = "non-INVITE client"
        case inviteServer = "INVITE server"
        case nonInviteServer = "non-INVITE server"
    }

    /// Something that happens to the transaction.
    enum Stimulus: Sendable {
        /// A response to the transaction's request arrives (client transactions).
        case response(Int)
        /// The request arrives again (server transactions).
        case retransmission
        /// The ACK for our final response arrives, same branch (INVITE server).
        case ack
        /// The TU answers (server transactions).
        case answer(Int)
        case transportError
    }

    typealias Event = TransactionSimulator.Event

    var kind: Kind
    var transport: TestTransport
    var story: String
    var timers = TransactionTimers()
    var stimuli: [(Double, Stimulus)]
    var expected: [(Double, Event)]

    var testDescription: String { "\(kind.rawValue) over \(transport.rawValue): \(story)" }

    var method: SIPMethod { kind == .inviteClient || kind == .inviteServer ? .invite : .options }

    func makeTransaction(_ request: SIPRequest) -> SIPTransaction {
        let reliable = transport.isReliable
        return switch kind {
        case .inviteClient: .inviteClient(InviteClientTransaction(invite: request, reliable: reliable, timers: timers))
        case .nonInviteClient:
            .nonInviteClient(NonInviteClientTransaction(request: request, reliable: reliable, timers: timers))
        case .inviteServer: .inviteServer(InviteServerTransaction(invite: request, reliable: reliable, timers: timers))
        case .nonInviteServer:
            .nonInviteServer(NonInviteServerTransaction(request: request, reliable: reliable, timers: timers))
        }
    }

    /// Runs the row to 200 s (past every timer) and returns the simulator for inspection.
    func run() throws -> TransactionSimulator {
        let request = try TransactionFixtures.request(method)
        var simulator = TransactionSimulator(makeTransaction(request))
        for (seconds, stimulus) in stimuli {
            let time = Duration.at(seconds)
            switch stimulus {
            case .response(let status):
                simulator.receive(.response(try TransactionFixtures.response(status, to: request)), at: time)
            case .retransmission: simulator.receive(.request(request), at: time)
            case .ack: simulator.receive(.request(try TransactionFixtures.ack(for: request)), at: time)
            case .answer(let status): simulator.send(try TransactionFixtures.response(status, to: request), at: time)
            case .transportError: simulator.transportError(at: time)
            }
        }
        simulator.advance(to: .seconds(200))
        return simulator
    }

    var expectedLog: [TransactionSimulator.Entry] {
        expected.map { TransactionSimulator.Entry(at: .at($0.0), event: $0.1) }.sorted()
    }
}

extension TransactionTimeline {
    /// One story with its UDP outcome and its outcome on the reliable transports (TCP and TLS alike).
    static func row(
        _ kind: Kind, _ story: String, timers: TransactionTimers = TransactionTimers(),
        stimuli: [(Double, Stimulus)] = [], udp: [(Double, Event)], reliable: [(Double, Event)]
    ) -> [TransactionTimeline] {
        TestTransport.allCases.map { transport in
            TransactionTimeline(
                kind: kind, transport: transport, story: story, timers: timers, stimuli: stimuli,
                expected: transport.isReliable ? reliable : udp)
        }
    }

    static func sent(_ what: String, at times: [Double]) -> [(Double, Event)] { times.map { ($0, .sent(what)) } }

    /// Every timer and retransmission path of RFC 3261 §17 (with RFC 6026's Accepted state), with the defaults
    /// T1 = 500 ms, T2 = 4 s, T4 = 5 s unless the story says otherwise.
    static let all: [TransactionTimeline] = inviteClient + nonInviteClient + inviteServer + nonInviteServer

    static let inviteClient: [TransactionTimeline] =
        row(
            .inviteClient, "no answer: timer A retransmits at T1, 2·T1, 4·T1… until timer B times out at 64·T1",
            udp: sent("INVITE", at: [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]) + [(32, .timedOut), (32, .terminated)],
            reliable: sent("INVITE", at: [0]) + [(32, .timedOut), (32, .terminated)])
        + row(
            .inviteClient, "a T1 of 250 ms scales timers A and B", timers: TransactionTimers(t1: .milliseconds(250)),
            udp: sent("INVITE", at: [0, 0.25, 0.75, 1.75, 3.75, 7.75, 15.75]) + [(16, .timedOut), (16, .terminated)],
            reliable: sent("INVITE", at: [0]) + [(16, .timedOut), (16, .terminated)])
        + row(
            .inviteClient, "a provisional response stops timer A and timer B", stimuli: [(0.7, .response(180))],
            udp: sent("INVITE", at: [0, 0.5]) + [(0.7, .delivered("180"))],
            reliable: sent("INVITE", at: [0]) + [(0.7, .delivered("180"))])
        + row(
            .inviteClient,
            "a non-2xx final is ACKed and passed up once; its retransmissions are re-ACKed until timer D (32 s)",
            stimuli: [(0.7, .response(180)), (2, .response(486)), (2.5, .response(486)), (10, .response(486))],
            udp: sent("INVITE", at: [0, 0.5]) + [(0.7, .delivered("180")), (2, .delivered("486"))]
                + sent("ACK", at: [2, 2.5, 10]) + [(34, .terminated)],
            reliable: sent("INVITE", at: [0]) + [
                (0.7, .delivered("180")), (2, .delivered("486")), (2, .sent("ACK")),
                (2, .terminated),
            ])
        + row(
            .inviteClient, "a 3xx in Calling stops timer A; timer D stays 32 s even with a T1 of 250 ms",
            timers: TransactionTimers(t1: .milliseconds(250)), stimuli: [(0.6, .response(302))],
            udp: sent("INVITE", at: [0, 0.25]) + [(0.6, .sent("ACK")), (0.6, .delivered("302")), (32.6, .terminated)],
            reliable: sent("INVITE", at: [0]) + [(0.6, .sent("ACK")), (0.6, .delivered("302")), (0.6, .terminated)])
        + row(
            .inviteClient, "a 2xx and its retransmissions go to the TU unACKed until timer M (64·T1)",
            stimuli: [(0.7, .response(180)), (1, .response(200)), (1.5, .response(200))],
            udp: sent("INVITE", at: [0, 0.5]) + [
                (0.7, .delivered("180")), (1, .delivered("200")),
                (1.5, .delivered("200")), (33, .terminated),
            ],
            reliable: sent("INVITE", at: [0]) + [
                (0.7, .delivered("180")), (1, .delivered("200")),
                (1.5, .delivered("200")), (33, .terminated),
            ])
        + row(
            .inviteClient, "a transport error in Calling informs the TU", stimuli: [(0.2, .transportError)],
            udp: sent("INVITE", at: [0]) + [(0.2, .transportFailed), (0.2, .terminated)],
            reliable: sent("INVITE", at: [0]) + [(0.2, .transportFailed), (0.2, .terminated)])
        + row(
            .inviteClient, "a transport error in Proceeding informs the TU",
            stimuli: [(0.7, .response(183)), (1, .transportError)],
            udp: sent("INVITE", at: [0, 0.5]) + [(0.7, .delivered("183")), (1, .transportFailed), (1, .terminated)],
            reliable: sent("INVITE", at: [0]) + [(0.7, .delivered("183")), (1, .transportFailed), (1, .terminated)])

    static let nonInviteClient: [TransactionTimeline] =
        row(
            .nonInviteClient, "no answer: timer E doubles from T1 up to T2 until timer F times out at 64·T1",
            udp: sent("OPTIONS", at: [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
                + [(32, .timedOut), (32, .terminated)],
            reliable: sent("OPTIONS", at: [0]) + [(32, .timedOut), (32, .terminated)])
        + row(
            .nonInviteClient, "a T2 of 2 s caps timer E sooner", timers: TransactionTimers(t2: .seconds(2)),
            udp: sent("OPTIONS", at: [0, 0.5, 1.5] + Array(stride(from: 3.5, through: 31.5, by: 2)))
                + [(32, .timedOut), (32, .terminated)],
            reliable: sent("OPTIONS", at: [0]) + [(32, .timedOut), (32, .terminated)])
        + row(
            .nonInviteClient, "a provisional response makes timer E retransmit every T2 until timer F",
            stimuli: [(0.7, .response(100))],
            udp: sent("OPTIONS", at: [0, 0.5, 1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5])
                + [(0.7, .delivered("100")), (32, .timedOut), (32, .terminated)],
            reliable: sent("OPTIONS", at: [0]) + [(0.7, .delivered("100")), (32, .timedOut), (32, .terminated)])
        + row(
            .nonInviteClient,
            "a final in Trying stops timers E and F; retransmitted finals are absorbed until timer K (T4)",
            stimuli: [(2, .response(200)), (2.5, .response(200))],
            udp: sent("OPTIONS", at: [0, 0.5, 1.5]) + [(2, .delivered("200")), (7, .terminated)],
            reliable: sent("OPTIONS", at: [0]) + [(2, .delivered("200")), (2, .terminated)])
        + row(
            .nonInviteClient, "a final in Proceeding completes the transaction too",
            stimuli: [(0.7, .response(100)), (6, .response(481))],
            udp: sent("OPTIONS", at: [0, 0.5, 1.5, 5.5]) + [
                (0.7, .delivered("100")), (6, .delivered("481")),
                (11, .terminated),
            ],
            reliable: sent("OPTIONS", at: [0]) + [(0.7, .delivered("100")), (6, .delivered("481")), (6, .terminated)])
        + row(
            .nonInviteClient, "a T4 of 2 s shortens timer K", timers: TransactionTimers(t4: .seconds(2)),
            stimuli: [(2, .response(404))],
            udp: sent("OPTIONS", at: [0, 0.5, 1.5]) + [(2, .delivered("404")), (4, .terminated)],
            reliable: sent("OPTIONS", at: [0]) + [(2, .delivered("404")), (2, .terminated)])
        + row(
            .nonInviteClient, "a transport error in Trying informs the TU", stimuli: [(0.2, .transportError)],
            udp: sent("OPTIONS", at: [0]) + [(0.2, .transportFailed), (0.2, .terminated)],
            reliable: sent("OPTIONS", at: [0]) + [(0.2, .transportFailed), (0.2, .terminated)])
        + row(
            .nonInviteClient, "a transport error in Proceeding informs the TU",
            stimuli: [(0.7, .response(100)), (1, .transportError)],
            udp: sent("OPTIONS", at: [0, 0.5]) + [(0.7, .delivered("100")), (1, .transportFailed), (1, .terminated)],
            reliable: sent("OPTIONS", at: [0]) + [(0.7, .delivered("100")), (1, .transportFailed), (1, .terminated)])

    static let inviteServer: [TransactionTimeline] =
        row(
            .inviteServer,
            "100 Trying goes out at once, the INVITE goes up; a retransmitted INVITE resends the latest provisional",
            stimuli: [
                (0.5, .retransmission), (1, .answer(180)), (1.5, .retransmission), (2, .answer(183)),
                (2.5, .retransmission),
            ],
            udp: [
                (0, .sent("100")), (0, .delivered("INVITE")), (0.5, .sent("100")), (1, .sent("180")),
                (1.5, .sent("180")), (2, .sent("183")), (2.5, .sent("183")),
            ],
            reliable: [
                (0, .sent("100")), (0, .delivered("INVITE")), (0.5, .sent("100")), (1, .sent("180")),
                (1.5, .sent("180")), (2, .sent("183")), (2.5, .sent("183")),
            ])
        + row(
            .inviteServer,
            "without an ACK, timer G retransmits a non-2xx final doubling up to T2 until timer H times out at 64·T1",
            stimuli: [(1, .answer(486))],
            udp: [(0, .sent("100")), (0, .delivered("INVITE"))]
                + sent("486", at: [1, 1.5, 2.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5, 32.5])
                + [(33, .timedOut), (33, .terminated)],
            reliable: [
                (0, .sent("100")), (0, .delivered("INVITE")), (1, .sent("486")), (33, .timedOut),
                (33, .terminated),
            ])
        + row(
            .inviteServer,
            "in Completed a retransmitted INVITE resends the final; the ACK stops G and H; ACKs absorbed until I (T4)",
            stimuli: [(1, .answer(486)), (1.7, .retransmission), (2, .ack), (2.6, .ack)],
            udp: [(0, .sent("100")), (0, .delivered("INVITE"))] + sent("486", at: [1, 1.5, 1.7]) + [(7, .terminated)],
            reliable: [(0, .sent("100")), (0, .delivered("INVITE"))] + sent("486", at: [1, 1.7]) + [(2, .terminated)])
        + row(
            .inviteServer,
            "Accepted absorbs INVITEs, sends the TU's 2xx retransmissions, passes ACKs up until timer L (64·T1)",
            stimuli: [(1, .answer(200)), (1.2, .retransmission), (1.5, .answer(200)), (2, .ack)],
            udp: [
                (0, .sent("100")), (0, .delivered("INVITE")), (1, .sent("200")), (1.5, .sent("200")),
                (2, .delivered("ACK")), (33, .terminated),
            ],
            reliable: [
                (0, .sent("100")), (0, .delivered("INVITE")), (1, .sent("200")), (1.5, .sent("200")),
                (2, .delivered("ACK")), (33, .terminated),
            ])
        + row(
            .inviteServer, "a transport error in Proceeding informs the TU",
            stimuli: [(1, .answer(180)), (1.2, .transportError)],
            udp: [
                (0, .sent("100")), (0, .delivered("INVITE")), (1, .sent("180")), (1.2, .transportFailed),
                (1.2, .terminated),
            ],
            reliable: [
                (0, .sent("100")), (0, .delivered("INVITE")), (1, .sent("180")), (1.2, .transportFailed),
                (1.2, .terminated),
            ])
        + row(
            .inviteServer, "a transport error in Completed informs the TU",
            stimuli: [(1, .answer(503)), (1.2, .transportError)],
            udp: [
                (0, .sent("100")), (0, .delivered("INVITE")), (1, .sent("503")), (1.2, .transportFailed),
                (1.2, .terminated),
            ],
            reliable: [
                (0, .sent("100")), (0, .delivered("INVITE")), (1, .sent("503")), (1.2, .transportFailed),
                (1.2, .terminated),
            ])

    static let nonInviteServer: [TransactionTimeline] =
        row(
            .nonInviteServer,
            "retransmissions: absorbed in Trying, resend the provisional, then the final until timer J (64·T1)",
            stimuli: [
                (0.5, .retransmission), (1, .answer(100)), (1.5, .retransmission), (2, .answer(200)),
                (2.5, .retransmission),
            ],
            udp: [(0, .delivered("OPTIONS"))] + sent("100", at: [1, 1.5]) + sent("200", at: [2, 2.5]) + [
                (34, .terminated)
            ],
            reliable: [(0, .delivered("OPTIONS"))] + sent("100", at: [1, 1.5]) + sent("200", at: [2])
                + [(2, .terminated)])
        + row(
            .nonInviteServer, "a final straight from Trying completes the transaction (RFC 3261 erratum 1470)",
            stimuli: [(1, .answer(404)), (5, .retransmission)],
            udp: [(0, .delivered("OPTIONS"))] + sent("404", at: [1, 5]) + [(33, .terminated)],
            reliable: [(0, .delivered("OPTIONS")), (1, .sent("404")), (1, .terminated)])
        + row(
            .nonInviteServer, "a transport error in Proceeding informs the TU",
            stimuli: [(1, .answer(100)), (1.1, .transportError)],
            udp: [(0, .delivered("OPTIONS")), (1, .sent("100")), (1.1, .transportFailed), (1.1, .terminated)],
            reliable: [(0, .delivered("OPTIONS")), (1, .sent("100")), (1.1, .transportFailed), (1.1, .terminated)])
        + row(
            .nonInviteServer, "a transport error in Completed informs the TU",
            stimuli: [(1, .answer(200)), (1.1, .transportError)],
            udp: [(0, .delivered("OPTIONS")), (1, .sent("200")), (1.1, .transportFailed), (1.1, .terminated)],
            // On a reliable transport the transaction is already gone (timer J is zero): the shell reports a failed
            // send of the final to the TU itself.
            reliable: [(0, .delivered("OPTIONS")), (1, .sent("200")), (1, .terminated)])
}
