import Testing
import TroncalMonitor
import TroncalProtocol

@Suite("Monitor: Prometheus text")
struct PrometheusTextTests {
    @Test func samplesWithLabelsEscapesSpecialValuesAndTimestampsAreRead() throws {
        let text = """
            # HELP troncal_sbc_calls_active calls in progress
            # TYPE troncal_sbc_calls_active gauge
            troncal_sbc_calls_active 12
            troncal_host_load{period="1m"} 0.25
            troncal_host_network_receive_bytes{interface="eth0",kind="a\\"b\\\\c\\nd"} 1.5e+09 1700000000000
              spaced_metric{ a = "1" , b="2",} +Inf
            nan_metric NaN
            minus_metric -Inf

            """
        let samples = try PrometheusText.parse(text)
        #expect(samples.count == 6)
        #expect(samples[0] == MetricSample("troncal_sbc_calls_active", [:], 12))
        #expect(samples[1] == MetricSample("troncal_host_load", ["period": "1m"], 0.25))
        #expect(samples[2].labels == ["interface": "eth0", "kind": "a\"b\\c\nd"])
        #expect(samples[2].value == 1.5e9)
        #expect(samples[3].labels == ["a": "1", "b": "2"])
        #expect(samples[3].value == .infinity)
        #expect(samples[4].value.isNaN)
        #expect(samples[5].value == -.infinity)
        #expect(samples[1].seriesKey == "troncal_host_load{period=\"1m\"}")
    }

    @Test(arguments: [
        ("x 1\n{a=\"1\"} 2", 2, "expected a metric name"),
        ("x{a=\"1\" 2", 1, "expected ',' or '}' after label 'a'"),
        ("x{a=\"1", 1, "unterminated value of label 'a'"),
        ("x{a=1} 2", 1, "expected '\"' to open the value of 'a'"),
        ("x{a=\"1\",a=\"2\"} 2", 1, "label 'a' given twice"),
        ("x twelve", 1, "'twelve' is not a number"),
        ("x 1 2 3", 1, "unexpected '2 3' after the value"),
        ("x{a=\"\\q\"} 1", 1, "unknown escape"),
        ("x", 1, "expected a space before the value"),
    ])
    func malformedLinesAreRefusedWithTheirNumber(text: String, line: Int, reason: String) {
        #expect {
            try PrometheusText.parse(text)
        } throws: { error in
            guard let error = error as? PrometheusTextError else { return false }
            return error.line == line && error.reason.contains(reason)
        }
    }
}
