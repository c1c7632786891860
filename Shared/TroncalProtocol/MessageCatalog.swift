/// How a message type is used on the wire.
public enum MessageKind: String, Sendable {
    case request, reply, oneWay = "one-way"
}

/// One row of the message catalog: a type, its schema version, its kind and the roles allowed to send it.
public struct MessageDescriptor: Sendable {
    public var type: String
    public var version: Int
    public var kind: MessageKind
    /// Roles that may send it (for requests and one-way messages); `nil` means any authenticated role.
    public var senders: Set<Role>?
    public var summary: String

    public init(type: String, version: Int, kind: MessageKind, senders: Set<Role>?, summary: String) {
        self.type = type
        self.version = version
        self.kind = kind
        self.senders = senders
        self.summary = summary
    }

    public init<M: LinkMessage>(_ message: M.Type, kind: MessageKind, senders: Set<Role>?, summary: String) {
        self.init(type: M.messageType, version: M.version, kind: kind, senders: senders, summary: summary)
    }
}

/// Every message type of the protocol, with who may send it. `docs/protocol.md` lists the same; a test
/// keeps the two in step.
public enum MessageCatalog {
    public static let all: [MessageDescriptor] = [
        MessageDescriptor(Ping.self, kind: .request, senders: nil, summary: "liveness check; every service answers"),
        MessageDescriptor(Pong.self, kind: .reply, senders: nil, summary: "reply to ping: role, site, instance, version"),
        MessageDescriptor(
            StatusRequest.self, kind: .request, senders: [.operator, .monitor],
            summary: "health, uptime, addresses and links of a service"),
        MessageDescriptor(ServiceStatus.self, kind: .reply, senders: nil, summary: "reply to status"),
        MessageDescriptor(
            RouteRequest.self, kind: .request, senders: [.sbc],
            summary: "where should this call go: customer, caller, callee, site, call-id"),
        MessageDescriptor(RouteDecision.self, kind: .reply, senders: nil, summary: "ordered carrier targets, an on-net target, or a reject status"),
        MessageDescriptor(
            CallAttemptReport.self, kind: .oneWay, senders: [.sbc],
            summary: "outcome of one carrier attempt (answered, failed with status, no answer, transport error)"),
        MessageDescriptor(
            TrunkUsage.self, kind: .oneWay, senders: [.sbc],
            summary: "a carrier trunk seized for a call, or an answered call on it ended (capacity counting)"),
        MessageDescriptor(
            RoutingReports.self, kind: .oneWay, senders: [.sbc],
            summary: "several routing.attempt and routing.usage entries of one SBC event loop in one frame"),
        MessageDescriptor(
            RoutingImport.self, kind: .request, senders: [.operator],
            summary: "one part of a CSV upload replacing a routing catalog (carriers, plans, routes, rates, dids)"),
        MessageDescriptor(RoutingImportResult.self, kind: .reply, senders: nil, summary: "reply to routing.import: rows stored, new generation"),
        MessageDescriptor(RoutingExport.self, kind: .request, senders: [.operator], summary: "one part of a routing catalog as CSV"),
        MessageDescriptor(RoutingExportPart.self, kind: .reply, senders: nil, summary: "reply to routing.export: CSV part, part count, generation"),
        MessageDescriptor(
            RoutingInspect.self, kind: .request, senders: [.operator, .monitor],
            summary: "catalog sizes and every trunk's health and load"),
        MessageDescriptor(RoutingInspection.self, kind: .reply, senders: nil, summary: "reply to routing.inspect"),
        MessageDescriptor(
            AuthorizeRequest.self, kind: .request, senders: [.routing],
            summary: "may this customer call this number, and for how long (reserves the grant)"),
        MessageDescriptor(Authorization.self, kind: .reply, senders: nil, summary: "allowed or refused with a SIP status, the granted seconds, renewable"),
        MessageDescriptor(RenewRequest.self, kind: .request, senders: [.sbc], summary: "extend the grant of a call in progress"),
        MessageDescriptor(RenewReply.self, kind: .reply, senders: nil, summary: "reply to billing.renew: the new total grant, or a refusal"),
        MessageDescriptor(CDRSubmission.self, kind: .request, senders: [.sbc], summary: "one call summary from the SBC's spool, stored once by id"),
        MessageDescriptor(CDRAcknowledgement.self, kind: .reply, senders: nil, summary: "the CDR is committed (or was already)"),
        MessageDescriptor(CDRBatch.self, kind: .request, senders: [.sbc], summary: "several call summaries, stored in one transaction"),
        MessageDescriptor(CDRBatchAcknowledgement.self, kind: .reply, senders: nil, summary: "one acknowledgement per summary of the batch"),
        MessageDescriptor(
            CallCheckpoints.self, kind: .request, senders: [.sbc],
            summary: "an SBC run's heartbeat with its answered and ended calls: billing closes them if the run falls silent"),
        MessageDescriptor(CallCheckpointsAcknowledgement.self, kind: .reply, senders: nil, summary: "reply to billing.calls: checkpoints stored"),
        MessageDescriptor(
            BillingImport.self, kind: .request, senders: [.operator], summary: "one part of a CSV upload: customers, rates or carrier-rates"),
        MessageDescriptor(BillingImportResult.self, kind: .reply, senders: nil, summary: "reply to billing.import: rows applied"),
        MessageDescriptor(BillingExport.self, kind: .request, senders: [.operator], summary: "one part of a billing catalog as CSV"),
        MessageDescriptor(BillingExportPart.self, kind: .reply, senders: nil, summary: "reply to billing.export"),
        MessageDescriptor(BalanceAdjustment.self, kind: .request, senders: [.operator], summary: "top-up or adjustment of a balance, with its reason"),
        MessageDescriptor(AccountQuery.self, kind: .request, senders: [.operator, .monitor], summary: "one customer's account now"),
        MessageDescriptor(AccountState.self, kind: .reply, senders: nil, summary: "balance, credit, reserved, available, calls, latest ledger entries"),
        MessageDescriptor(CDRQuery.self, kind: .request, senders: [.operator], summary: "a page of CDRs by setup time, customer"),
        MessageDescriptor(CDRPage.self, kind: .reply, senders: nil, summary: "reply to billing.cdrs: CDRs and the next page's cursor"),
        MessageDescriptor(AlarmListRequest.self, kind: .request, senders: [.operator], summary: "firing alarms, optionally of one category and the recently resolved"),
        MessageDescriptor(AlarmList.self, kind: .reply, senders: nil, summary: "reply to alarms.list"),
        MessageDescriptor(AlarmAcknowledge.self, kind: .request, senders: [.operator], summary: "acknowledge a firing alarm: it stops escalating"),
        MessageDescriptor(AlarmSilence.self, kind: .request, senders: [.operator], summary: "no notifications of an alarm until a time, with a reason"),
        MessageDescriptor(AlarmActionResult.self, kind: .reply, senders: nil, summary: "reply to alarms.ack and alarms.silence: the alarm now"),
        MessageDescriptor(AlarmHistoryRequest.self, kind: .request, senders: [.operator], summary: "the events of one alarm, or the latest of all"),
        MessageDescriptor(AlarmHistory.self, kind: .reply, senders: nil, summary: "reply to alarms.history, newest first"),
        MessageDescriptor(
            CapacityHistoryRequest.self, kind: .request, senders: [.operator], summary: "the capacity controller's decisions, of one role or all"),
        MessageDescriptor(CapacityHistory.self, kind: .reply, senders: nil, summary: "reply to monitor.capacityHistory, newest first"),
        MessageDescriptor(
            CapacityWithdrawRequest.self, kind: .request, senders: [.operator],
            summary: "withdraw an instance for good (compromised, to rebuild): stopped, replaced by a standby; act mode"),
        MessageDescriptor(CapacityWithdrawal.self, kind: .reply, senders: nil, summary: "reply to monitor.capacityWithdraw: the decision recorded"),
        MessageDescriptor(
            CapacityReturnRequest.self, kind: .request, senders: [.operator], summary: "a withdrawn instance, rebuilt, back to the standby pool"),
        MessageDescriptor(CapacityInstanceState.self, kind: .reply, senders: nil, summary: "reply to monitor.capacityReturn: the instance's state"),
        MessageDescriptor(LoginLinkRequest.self, kind: .request, senders: [.operator], summary: "a one-time dashboard login link for an operator"),
        MessageDescriptor(LoginLink.self, kind: .reply, senders: nil, summary: "reply to monitor.loginLink: the link's path and the dashboard's address"),
        MessageDescriptor(
            QualityReports.self, kind: .oneWay, senders: [.sbc],
            summary: "per-call media quality (customer, carrier trunk, each direction's loss, jitter, delay, MOS), batched"),
        MessageDescriptor(
            TrunkQualityReport.self, kind: .oneWay, senders: [.monitor],
            summary: "each carrier trunk's MOS over the monitor's window: routing demotes trunks below its minimum"),
        MessageDescriptor(OperatorRequest.self, kind: .request, senders: [.operator], summary: "list, add or set the password of, or remove a dashboard operator"),
        MessageDescriptor(OperatorList.self, kind: .reply, senders: nil, summary: "reply to monitor.operators: the accounts"),
        MessageDescriptor(ProtocolError.self, kind: .reply, senders: nil, summary: "error reply: code and message"),
        MessageDescriptor(
            TrunkProbe.self, kind: .request, senders: [.routing],
            summary: "send a SIP OPTIONS to a carrier trunk: host, port, transport, timeout"),
        MessageDescriptor(TrunkProbeResult.self, kind: .reply, senders: nil, summary: "reply to sbc.probe: status and round trip, or the failure"),
    ]

    public static func descriptor(for type: String) -> MessageDescriptor? {
        all.first { $0.type == type }
    }
}
