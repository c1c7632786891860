import Testing
import TroncalSIP

/// RFC 3261 Table 4 (and RFC 6026's L and M): the duration each timer is started with, per transport, with the
/// default T1 = 500 ms, T2 = 4 s, T4 = 5 s.
@Suite("Transaction timer durations (RFC 3261 Table 4)")
struct TransactionTimerDurationTests {
    struct Rule: Sendable, CustomTestStringConvertible {
        enum Expectation: Sendable {
            case exactly(Duration)
            case atLeast(Duration)
            /// Zero: started with zero, or the transaction terminates at once without starting it.
            case zero
            case notStarted
        }

        var kind: TransactionTimeline.Kind
        var transport: TestTransport
        /// What happens before the step under test; the last element is the step (none: the start).
        var steps: [TransactionTimeline.Stimulus]
        var timer: TransactionTimer
        var expectation: Expectation

        var testDescription: String {
            let step = steps.last.map { "after \($0)" } ?? "on start"
            return "\(kind.rawValue) over \(transport.rawValue) \(step): timer \(timer.rawValue) is \(expectation)"
        }
    }

    static func rules(
        _ kind: TransactionTimeline.Kind, _ steps: [TransactionTimeline.Stimulus], _ timer: TransactionTimer,
        udp: Rule.Expectation, reliable: Rule.Expectation
    ) -> [Rule] {
        TestTransport.allCases.map {
            Rule(kind: kind, transport: $0, steps: steps, timer: timer, expectation: $0.isReliable ? reliable : udp)
        }
    }

    static let table: [Rule] = [
        rules(.inviteClient, [], .a, udp: .exactly(.milliseconds(500)), reliable: .notStarted),
        rules(.inviteClient, [], .b, udp: .exactly(.seconds(32)), reliable: .exactly(.seconds(32))),
        rules(.inviteClient, [.response(486)], .d, udp: .atLeast(.seconds(32)), reliable: .zero),
        rules(.inviteClient, [.response(200)], .m, udp: .exactly(.seconds(32)), reliable: .exactly(.seconds(32))),
        rules(.nonInviteClient, [], .e, udp: .exactly(.milliseconds(500)), reliable: .notStarted),
        rules(.nonInviteClient, [], .f, udp: .exactly(.seconds(32)), reliable: .exactly(.seconds(32))),
        rules(.nonInviteClient, [.response(200)], .k, udp: .exactly(.seconds(5)), reliable: .zero),
        rules(.inviteServer, [.answer(486)], .g, udp: .exactly(.milliseconds(500)), reliable: .notStarted),
        rules(.inviteServer, [.answer(486)], .h, udp: .exactly(.seconds(32)), reliable: .exactly(.seconds(32))),
        rules(.inviteServer, [.answer(486), .ack], .i, udp: .exactly(.seconds(5)), reliable: .zero),
        rules(.inviteServer, [.answer(200)], .l, udp: .exactly(.seconds(32)), reliable: .exactly(.seconds(32))),
        rules(.nonInviteServer, [.answer(200)], .j, udp: .exactly(.seconds(32)), reliable: .zero),
    ].flatMap { $0 }

    @Test(arguments: table)
    func timerStartsWithItsTableFourDuration(_ rule: Rule) throws {
        let timeline = TransactionTimeline(
            kind: rule.kind, transport: rule.transport, story: "", stimuli: [], expected: [])
        let request = try TransactionFixtures.request(timeline.method)
        var transaction = timeline.makeTransaction(request)
        var actions = transaction.start()
        for step in rule.steps {
            actions =
                switch step {
                case .response(let status):
                    transaction.receive(.response(try TransactionFixtures.response(status, to: request)))
                case .answer(let status): transaction.send(try TransactionFixtures.response(status, to: request))
                case .ack: transaction.receive(.request(try TransactionFixtures.ack(for: request)))
                case .retransmission: transaction.receive(.request(request))
                case .transportError: transaction.transportError()
                }
        }
        let started = actions.compactMap { action -> Duration? in
            if case .startTimer(rule.timer, let duration) = action { duration } else { nil }
        }
        switch rule.expectation {
        case .exactly(let duration): #expect(started == [duration])
        case .atLeast(let duration):
            #expect(started.count == 1)
            #expect(started.allSatisfy { $0 >= duration })
        case .zero:
            #expect(started == [.zero] || (started.isEmpty && actions.contains(.terminated)))
        case .notStarted: #expect(started.isEmpty)
        }
    }
}
