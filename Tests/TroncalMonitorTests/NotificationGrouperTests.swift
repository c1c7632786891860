import Foundation
import Testing
import TroncalMonitor
import TroncalProtocol

@Suite("Monitor: notification grouping and the Alertmanager body")
struct NotificationGrouperTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    func alarm(_ instance: String, rule: String = "InstanceDown", at start: Double = 0, resolvedAt: Double? = nil) -> Alarm {
        let labels = ["alertname": rule, "site": "a", "instance": instance, "category": "service"]
        return Alarm(
            fingerprint: Alarm.fingerprint(of: labels), rule: rule, category: .service, severity: .critical, labels: labels,
            summary: "\(instance) down", action: "look", value: 0, startsAt: at(start), endsAt: resolvedAt.map(at), level: .noc1,
            levelSince: at(start))
    }

    @Test func fiftyAlarmsOfOneGroupWithinTheWaitMakeOneNotificationAndChangesWaitTheGroupInterval() {
        var grouper = NotificationGrouper(groupWait: 30, groupInterval: 300, repeatInterval: 3600, groupBy: ["alertname", "site"])
        for index in 0..<50 { grouper.add(alarm("sbc-\(index)", at: Double(index) / 5), receivers: ["noc"], at: at(Double(index) / 5)) }
        #expect(grouper.flush(at: at(29)).due.isEmpty, "nothing before group_wait")
        let first = grouper.flush(at: at(30)).due
        #expect(first.count == 1)
        #expect(first.first?.alarms.count == 50)
        // One resolves at 60 s: notified at the group interval (300 s after the first), not before.
        grouper.add(alarm("sbc-0", resolvedAt: 60), receivers: ["noc"], at: at(60))
        #expect(grouper.flush(at: at(100)).due.isEmpty)
        let second = grouper.flush(at: at(330)).due
        #expect(second.count == 1)
        let payload = AlertmanagerPayload(group: second[0], receiver: "noc", externalURL: "http://noc")
        #expect(payload.alerts.filter { $0.status == "resolved" }.count == 1)
        #expect(payload.status == "firing")
        // Unchanged and still firing: repeated after repeat_interval only.
        #expect(grouper.flush(at: at(330 + 3599)).due.isEmpty)
        #expect(grouper.flush(at: at(330 + 3600)).due.first?.alarms.count == 49)
    }

    @Test func aResolvedGroupIsNotifiedOnceAndEnds() {
        var grouper = NotificationGrouper(groupWait: 0, groupInterval: 10, repeatInterval: 100, groupBy: ["alertname"])
        grouper.add(alarm("a"), receivers: ["noc"], at: at(0))
        #expect(grouper.flush(at: at(0)).due.count == 1)
        grouper.add(alarm("a", resolvedAt: 5), receivers: ["noc"], at: at(5))
        let (due, ended) = grouper.flush(at: at(10))
        #expect(due.count == 1)
        #expect(AlertmanagerPayload(group: due[0], receiver: "noc", externalURL: "").status == "resolved")
        #expect(ended.count == 1)
        #expect(grouper.groups.isEmpty)
        // A resolution for a group that never notified it is dropped.
        grouper.add(alarm("b", resolvedAt: 20), receivers: ["noc"], at: at(20))
        #expect(grouper.groups.isEmpty)
    }

    @Test func theBodyHasEveryFieldOfAlertmanagersVersion4() throws {
        var grouper = NotificationGrouper(groupWait: 0, groupInterval: 10, repeatInterval: 100, groupBy: ["alertname", "site"])
        grouper.add(alarm("sbc-1"), receivers: ["noc"], at: at(0))
        grouper.add(alarm("sbc-2"), receivers: ["noc"], at: at(0))
        let group = try #require(grouper.flush(at: at(0)).due.first)
        let data = try JSONEncoder().encode(AlertmanagerPayload(group: group, receiver: "noc", externalURL: "http://noc.example"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for key in ["receiver", "status", "alerts", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "version", "groupKey", "truncatedAlerts"] {
            #expect(json[key] != nil, "missing \(key)")
        }
        #expect(json["version"] as? String == "4")
        #expect(json["groupLabels"] as? [String: String] == ["alertname": "InstanceDown", "site": "a"])
        #expect((json["commonLabels"] as? [String: String])?["instance"] == nil, "instances differ, so not common")
        let alerts = try #require(json["alerts"] as? [[String: Any]])
        #expect(alerts.count == 2)
        for key in ["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"] {
            #expect(alerts[0][key] != nil, "alert misses \(key)")
        }
        #expect(alerts[0]["endsAt"] as? String == "0001-01-01T00:00:00Z")
        #expect((alerts[0]["generatorURL"] as? String)?.hasPrefix("http://noc.example/alarms/") == true)
    }
}
