import Foundation

/// sipp scenarios of the call tests, as text (the tests write them to files with their own paths filled in).
enum SippScenarios {
    static let sdp = """
        v=0
        o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
        s=-
        c=IN IP[media_ip_type] [media_ip]
        t=0 0
        m=audio [media_port] RTP/AVP 0
        a=rtpmap:0 PCMU/8000
        """

    static func invite(credentials: (String, String)? = nil, cseq: Int = 1) -> String {
        """
          <send retrans="500">
            <![CDATA[
              INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
              Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
              From: "Customer" <sip:441632960001@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
              To: <sip:[service]@[remote_ip]:[remote_port]>
              Call-ID: [call_id]
              CSeq: \(cseq) INVITE
              Contact: <sip:441632960001@[local_ip]:[local_port]>
              Max-Forwards: 70
              User-Agent: Customer-PBX/1.0
              \(credentials.map { "[authentication username=\($0.0) password=\($0.1)]" } ?? "Subject: call")
              Content-Type: application/sdp
              Content-Length: [len]

        \(sdp.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))
            ]]>
          </send>
        """
    }

    static func request(_ method: String, cseq: Int) -> String {
        """
          <send\(method == "ACK" ? "" : " retrans=\"500\"")>
            <![CDATA[
              \(method) [next_url] SIP/2.0
              Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
              From: "Customer" <sip:441632960001@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
              [last_To:]
              Call-ID: [call_id]
              CSeq: \(cseq) \(method)
              Contact: <sip:441632960001@[local_ip]:[local_port]>
              Max-Forwards: 70
              Content-Length: 0
            ]]>
          </send>
        """
    }

    /// A customer's call: INVITE (after a 407 challenge when `authenticate`), answer, ACK, RTP from `rtpFile`
    /// while it pauses `holdMilliseconds`, then BYE (or waits for the callee's BYE).
    static func caller(
        credentials: (String, String)? = nil, holdMilliseconds: Int = 0, rtpFile: String? = nil, callerHangsUp: Bool = true,
        followsContact: Bool = false
    ) -> String {
        var steps = ""
        var cseq = 1
        if let credentials {
            steps += invite()
            steps += """
                  <recv response="100" optional="true"/>
                  <recv response="407" auth="true"/>
                  <send>
                    <![CDATA[
                      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
                      [last_Via:]
                      From: "Customer" <sip:441632960001@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
                      [last_To:]
                      Call-ID: [call_id]
                      CSeq: 1 ACK
                      Max-Forwards: 70
                      Content-Length: 0
                    ]]>
                  </send>

                """
            cseq = 2
            steps += invite(credentials: credentials, cseq: cseq)
        } else {
            steps += invite()
        }
        steps += """
              <recv response="100" optional="true"/>
              <recv response="180" optional="true"/>
              <recv response="183" optional="true"/>
              <recv response="200" rtd="true" rrs="true"/>

            """
        if followsContact {
            // As RFC 3261 has it (no Route set): the ACK and BYE go to the answer's Contact, not to the address the
            // INVITE went to (an SBC behind a floating address that advertises its own).
            steps += """
                  <nop>
                    <action>
                      <assignstr assign_to="url" value="[next_url]"/>
                      <ereg regexp="([0-9]+[.][0-9]+[.][0-9]+[.][0-9]+):([0-9]+)" search_in="var" check_it="true" assign_to="url,host,port" variable="url"/>
                      <setdest host="[$host]" port="[$port]" protocol="udp"/>
                    </action>
                  </nop>

                """
        }
        steps += request("ACK", cseq: cseq)
        if let rtpFile { steps += "\n  <nop><action><exec rtp_stream=\"\(rtpFile),1,0\"/></action></nop>\n" }
        if holdMilliseconds > 0 { steps += "\n  <pause milliseconds=\"\(holdMilliseconds)\"/>\n" }
        if callerHangsUp {
            steps += request("BYE", cseq: cseq + 1)
            steps += "\n  <recv response=\"200\" crlf=\"true\"/>\n"
        } else {
            steps += """
                  \(answerBye)

                """
        }
        return "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<scenario name=\"caller\">\n\(steps)\n</scenario>\n"
    }

    /// A caller that gives up while it rings: INVITE, 180, CANCEL, 200 for the CANCEL, 487, ACK.
    static let cancellingCaller = """
        <?xml version="1.0" encoding="ISO-8859-1" ?>
        <scenario name="cancelling caller">
        \(invite())
          <recv response="100" optional="true"/>
          <recv response="180"/>
          <send>
            <![CDATA[
              CANCEL sip:[service]@[remote_ip]:[remote_port] SIP/2.0
              [last_Via:]
              From: "Customer" <sip:441632960001@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
              To: <sip:[service]@[remote_ip]:[remote_port]>
              Call-ID: [call_id]
              CSeq: 1 CANCEL
              Max-Forwards: 70
              Content-Length: 0
            ]]>
          </send>
          <recv response="200"/>
          <recv response="487"/>
          \(ackOfFailure)
        </scenario>
        """

    /// A 200 to the request just received (a BYE, a CANCEL).
    static let okToLastRequest = """
          <send>
            <![CDATA[
              SIP/2.0 200 OK
              [last_Via:]
              [last_From:]
              [last_To:]
              [last_Call-ID:]
              [last_CSeq:]
              Content-Length: 0
            ]]>
          </send>
        """

    /// The BYE from the other side, answered 200.
    static let answerBye = """
          <recv request="BYE"/>
        \(okToLastRequest)
        """

    /// The ACK of a final failure to the INVITE of `invite()` (CSeq 1).
    static let ackOfFailure = """
          <send>
            <![CDATA[
              ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
              [last_Via:]
              From: "Customer" <sip:441632960001@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
              [last_To:]
              Call-ID: [call_id]
              CSeq: 1 ACK
              Max-Forwards: 70
              Content-Length: 0
            ]]>
          </send>
          """

    static let okHeaders = """
              [last_Via:]
              [last_From:]
              [last_To:];tag=[pid]SIPpTag01[call_number]
              [last_Call-ID:]
              [last_CSeq:]
              Contact: <sip:[local_ip]:[local_port];transport=[transport]>
        """

    /// A carrier: 180, then 200 with SDP after `answerAfterMilliseconds`; waits for the ACK; then either waits
    /// for the BYE or, after `holdMilliseconds`, hangs up itself.
    static func carrier(answerAfterMilliseconds: Int = 0, holdMilliseconds: Int = 0, calleeHangsUp: Bool = false) -> String {
        let capture = calleeHangsUp ? "<action><ereg regexp=\".*\" search_in=\"hdr\" header=\"From:\" assign_to=\"caller\"/></action>" : ""
        var steps = """
              <recv request="INVITE" crlf="true" rrs="true">\(capture)</recv>
              <send>
                <![CDATA[
                  SIP/2.0 180 Ringing
            \(okHeaders)
                  Content-Length: 0
                ]]>
              </send>

            """
        if answerAfterMilliseconds > 0 { steps += "  <pause milliseconds=\"\(answerAfterMilliseconds)\"/>\n" }
        // An INVITE retransmitted while the ACK is awaited (the SBC heard nothing within T1 on a loaded machine) gets
        // the 200 again, as RFC 3261 has a UAS do, instead of aborting the call.
        steps += """
              <label id="1"/>
              <send retrans="500">
                <![CDATA[
                  SIP/2.0 200 OK
            \(okHeaders)
                  Server: Carrier-Switch/9.9
                  Content-Type: application/sdp
                  Content-Length: [len]

            \(sdp.split(separator: "\n").map { "          " + $0 }.joined(separator: "\n"))
                ]]>
              </send>
              <recv request="INVITE" optional="true" next="1"/>
              <recv request="ACK" crlf="true"/>

            """
        if calleeHangsUp {
            steps += """
                  <pause milliseconds="\(holdMilliseconds)"/>
                  <send retrans="500">
                    <![CDATA[
                      BYE [next_url] SIP/2.0
                      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
                      From: <sip:carrier@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
                      To: [$caller]
                      Call-ID: [call_id]
                      CSeq: 2 BYE
                      Max-Forwards: 70
                      Content-Length: 0
                    ]]>
                  </send>
                  <recv response="200"/>

                """
        } else {
            steps += """
                  \(answerBye)

                """
        }
        return "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<scenario name=\"carrier\">\n\(steps)\n</scenario>\n"
    }

    /// An SDP body with a direction attribute, for the hold tests.
    static func sdp(direction: String) -> String { sdp + "\na=\(direction)" }

    /// A re-INVITE in the caller's dialog (CSeq `cseq`) with `direction`, its 200, and the ACK with the same CSeq.
    static func reInvite(cseq: Int, direction: String) -> String {
        """
          <send retrans="500">
            <![CDATA[
              INVITE [next_url] SIP/2.0
              Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
              From: "Customer" <sip:441632960001@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
              [last_To:]
              Call-ID: [call_id]
              CSeq: \(cseq) INVITE
              Contact: <sip:441632960001@[local_ip]:[local_port]>
              Max-Forwards: 70
              Content-Type: application/sdp
              Content-Length: [len]

        \(sdp(direction: direction).split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))
            ]]>
          </send>
          <recv response="100" optional="true"/>
          <recv response="200"/>
        \(request("ACK", cseq: cseq))
        """
    }

    /// A caller that holds the call (re-INVITE `sendonly`), stays on hold `holdMilliseconds`, resumes it (`sendrecv`),
    /// streams `rtpFile` for 2.5 s when given, then hangs up.
    static func holdingCaller(holdMilliseconds: Int = 0, afterResume rtpFile: String? = nil) -> String {
        let talk = rtpFile.map { "  <nop><action><exec rtp_stream=\"\($0),1,0\"/></action></nop>\n  <pause milliseconds=\"2500\"/>" } ?? ""
        return """
        <?xml version="1.0" encoding="ISO-8859-1" ?>
        <scenario name="holding caller">
        \(invite())
          <recv response="100" optional="true"/>
          <recv response="180" optional="true"/>
          <recv response="200" rrs="true"/>
        \(request("ACK", cseq: 1))
          <pause milliseconds="200"/>
        \(reInvite(cseq: 2, direction: "sendonly"))
          <pause milliseconds="\(holdMilliseconds)"/>
        \(reInvite(cseq: 3, direction: "sendrecv"))
        \(talk)
        \(request("BYE", cseq: 4))
          <recv response="200" crlf="true"/>
        </scenario>
        """
    }

    /// The 200 with SDP (`direction`) to the INVITE or re-INVITE just received, as the callee.
    static func answer(_ direction: String = "sendrecv") -> String {
        """
          <send retrans="500">
            <![CDATA[
              SIP/2.0 200 OK
        \(okHeaders)
              Content-Type: application/sdp
              Content-Length: [len]

        \(sdp(direction: direction).split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))
            ]]>
          </send>
        """
    }

    /// A carrier that answers, then answers each of two re-INVITEs (the first `recvonly`: it is being held), then the BYE.
    static let heldCarrier: String = {
        """
            <?xml version="1.0" encoding="ISO-8859-1" ?>
            <scenario name="held carrier">
              <recv request="INVITE" crlf="true" rrs="true"/>
            \(answer("sendrecv"))
              <recv request="ACK" crlf="true"/>
              <recv request="INVITE"/>
            \(answer("recvonly"))
              <recv request="ACK"/>
              <recv request="INVITE"/>
            \(answer("sendrecv"))
              <recv request="ACK"/>
              \(answerBye)
            </scenario>
            """
    }()

    /// A carrier that refuses every call with `status`.
    static func refusingCarrier(status: Int, reason: String) -> String {
        """
        <?xml version="1.0" encoding="ISO-8859-1" ?>
        <scenario name="refusing carrier">
          <recv request="INVITE" crlf="true"/>
          <send>
            <![CDATA[
              SIP/2.0 \(status) \(reason)
        \(okHeaders)
              Content-Length: 0
            ]]>
          </send>
          <recv request="ACK"/>
        </scenario>
        """
    }

    /// A source that only sends OPTIONS and never waits for answers (a flood, bounded by sipp's -m).
    static let optionsFlood = """
        <?xml version="1.0" encoding="ISO-8859-1" ?>
        <scenario name="options flood">
          <send>
            <![CDATA[
              OPTIONS sip:[service]@[remote_ip]:[remote_port] SIP/2.0
              Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
              From: <sip:flood@[local_ip]:[local_port]>;tag=[pid]F[call_number]
              To: <sip:[service]@[remote_ip]:[remote_port]>
              Call-ID: [call_id]
              CSeq: 1 OPTIONS
              Max-Forwards: 70
              Content-Length: 0
            ]]>
          </send>
        </scenario>
        """

    /// A carrier that rings and never answers, until the call is cancelled.
    static let ringingCarrier = """
        <?xml version="1.0" encoding="ISO-8859-1" ?>
        <scenario name="ringing carrier">
          <recv request="INVITE" crlf="true"/>
          <send>
            <![CDATA[
              SIP/2.0 180 Ringing
        \(okHeaders)
              Content-Length: 0
            ]]>
          </send>
          <recv request="CANCEL"/>
        \(okToLastRequest)
          <send>
            <![CDATA[
              SIP/2.0 487 Request Terminated
              [last_Via:]
              [last_From:]
              [last_To:];tag=[pid]SIPpTag01[call_number]
              [last_Call-ID:]
              CSeq: [cseq] INVITE
              Content-Length: 0
            ]]>
          </send>
          <recv request="ACK"/>
        </scenario>
        """
}
