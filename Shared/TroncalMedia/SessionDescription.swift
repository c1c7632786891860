/// An SDP body (RFC 4566) as the SBC needs it: every line kept in order and re-serialised as it came,
/// with typed access to the session and media connection addresses, media ports and codecs, so that media
/// can be anchored by rewriting only `o=`, `c=`, `m=` ports and `a=rtcp`.
public struct SessionDescription: Sendable, Hashable {
    /// One `m=` section and the lines under it.
    public struct Media: Sendable, Hashable {
        public var type: String
        public var port: Int
        public var portCount: Int?
        public var proto: String
        public var formats: [String]
        /// Lines after `m=` (c=, a=, b=, …) as `type=value` pairs, in order.
        public var lines: [(type: Character, value: String)]

        /// The `c=` address of this section, if it has its own.
        public var connectionAddress: String? {
            lines.first { $0.type == "c" }.flatMap { SessionDescription.address(fromConnection: $0.value) }
        }

        /// Codec names by payload type, from `a=rtpmap` (static types 0 PCMU, 8 PCMA, 18 G729 … when absent).
        public var codecs: [(payloadType: String, encoding: String, clockRate: Int)] {
            formats.map { format in
                let rtpmap = lines.first { $0.type == "a" && $0.value.hasPrefix("rtpmap:\(format) ") }
                if let rtpmap {
                    let spec = rtpmap.value.split(separator: " ", maxSplits: 1).last.map(String.init) ?? ""
                    let parts = spec.split(separator: "/")
                    return (format, parts.first.map(String.init) ?? "", parts.count > 1 ? Int(parts[1]) ?? 8000 : 8000)
                }
                return (format, SessionDescription.staticPayloadTypes[format] ?? "unknown", 8000)
            }
        }

        public static func == (lhs: Media, rhs: Media) -> Bool {
            lhs.type == rhs.type && lhs.port == rhs.port && lhs.portCount == rhs.portCount && lhs.proto == rhs.proto
                && lhs.formats == rhs.formats && lhs.lines.map { "\($0.type)=\($0.value)" } == rhs.lines.map { "\($0.type)=\($0.value)" }
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(type)
            hasher.combine(port)
            hasher.combine(formats)
        }
    }

    /// Session-level lines before the first `m=`, in order.
    public var sessionLines: [(type: Character, value: String)]
    public var media: [Media]

    static let staticPayloadTypes = ["0": "PCMU", "3": "GSM", "4": "G723", "8": "PCMA", "9": "G722", "18": "G729"]

    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { "SDP line \(line): \(reason)" }
    }

    /// Parses an SDP body; CRLF or LF line ends. Throws `ParseError` for lines that are not `x=value`, a
    /// missing `v=`, or an `m=` line that does not parse.
    public init(_ text: String) throws(ParseError) {
        var session: [(Character, String)] = []
        var media: [Media] = []
        var number = 0
        for raw in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            var line = Substring(raw)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if line.isEmpty { continue }
            guard line.count >= 2, let type = line.first, type.isLetter, type.isASCII, line.dropFirst().first == "=" else {
                throw ParseError(line: number, reason: "not of the form x=value")
            }
            let value = String(line.dropFirst(2))
            if type == "m" {
                let fields = value.split(separator: " ").map(String.init)
                guard fields.count >= 3 else { throw ParseError(line: number, reason: "m= needs media, port, proto") }
                let portField = fields[1].split(separator: "/")
                guard let port = Int(portField[0]), (0...65535).contains(port) else {
                    throw ParseError(line: number, reason: "m= port is not a port")
                }
                media.append(Media(
                    type: fields[0], port: port, portCount: portField.count > 1 ? Int(portField[1]) : nil, proto: fields[2],
                    formats: Array(fields.dropFirst(3)), lines: []))
            } else if media.isEmpty {
                session.append((type, value))
            } else {
                media[media.count - 1].lines.append((type, value))
            }
        }
        guard session.first?.0 == "v" else { throw ParseError(line: 1, reason: "SDP must start with v=") }
        sessionLines = session
        self.media = media
    }

    init(sessionLines: [(type: Character, value: String)], media: [Media]) {
        self.sessionLines = sessionLines
        self.media = media
    }

    /// The session-level `c=` address.
    public var connectionAddress: String? {
        sessionLines.first { $0.type == "c" }.flatMap { Self.address(fromConnection: $0.value) }
    }

    /// The address media of section `index` is sent to: its own `c=` or the session's.
    public func destination(ofMedia index: Int) -> (address: String, port: Int)? {
        guard media.indices.contains(index), let address = media[index].connectionAddress ?? connectionAddress else { return nil }
        return (address, media[index].port)
    }

    /// Points every `c=` (session and media) and the origin's address at `address`, and media section `i`
    /// at `ports[i]` (a port of 0, a rejected stream, is kept). `a=rtcp` lines are rewritten to port + 1.
    public mutating func anchor(at address: String, ports: [Int]) {
        let family = address.contains(":") ? "IP6" : "IP4"
        func rewrite(_ lines: inout [(type: Character, value: String)]) {
            for index in lines.indices {
                switch lines[index].type {
                case "c": lines[index].value = "IN \(family) \(address)"
                case "o":
                    var fields = lines[index].value.split(separator: " ").map(String.init)
                    if fields.count == 6 {
                        fields[4] = family
                        fields[5] = address
                        lines[index].value = fields.joined(separator: " ")
                    }
                default: continue
                }
            }
        }
        rewrite(&sessionLines)
        for index in media.indices {
            rewrite(&media[index].lines)
            guard index < ports.count, media[index].port != 0 else { continue }
            media[index].port = ports[index]
            media[index].lines = media[index].lines.map { line in
                line.type == "a" && line.value.hasPrefix("rtcp:") ? ("a", "rtcp:\(ports[index] + 1)") : line
            }
        }
    }

    /// An answer (RFC 3264) to `offer` in the name of a party that made its own offer, `other`: when a B2BUA joins two
    /// parties that each sent an offer (a call pickup), each gets the other's media address as the answer to its own
    /// offer. Stream `i` of the answer is `other`'s stream `i` (its address and port; its origin line, so that its later
    /// offers in the dialog carry the next version of the same session) with the formats of `offer` that `other` also
    /// offered (same encoding and clock rate), in `offer`'s order and numbering, with their `rtpmap` and `fmtp` lines. A
    /// stream is rejected (port 0) when `other` lacks it, uses another transport profile (RTP/SAVP against RTP/AVP), or
    /// shares no codec with it beyond telephone-event and comfort noise. Its direction is what both allow (RFC 3264
    /// §6.1): sent only if the offerer receives and `other` sends, received only if the offerer sends and `other`
    /// receives. Nil when no stream is left (the parties cannot talk). Payload type numbers are the offer's: a dynamic
    /// type (e.g. `telephone-event`) numbered differently by the two parties arrives under the sender's number.
    public static func answer(to offer: SessionDescription, from other: SessionDescription, sessionID: String = "1") -> SessionDescription? {
        guard let otherAddress = other.connectionAddress ?? other.media.lazy.compactMap(\.connectionAddress).first else { return nil }
        let family = otherAddress.contains(":") ? "IP6" : "IP4"
        let origin = other.sessionLines.first { $0.type == "o" }?.value ?? "- \(sessionID) 1 IN \(family) \(otherAddress)"
        var answer = SessionDescription(
            sessionLines: [("v", "0"), ("o", origin), ("s", "-"), ("c", "IN \(family) \(otherAddress)"), ("t", "0 0")], media: [])
        let auxiliary: Set<String> = ["telephone-event", "cn", "unknown"]
        var accepted = 0
        for (index, offered) in offer.media.enumerated() {
            var section = Media(type: offered.type, port: 0, portCount: nil, proto: offered.proto, formats: [offered.formats.first ?? "0"], lines: [])
            defer { answer.media.append(section) }
            guard other.media.indices.contains(index), offered.port != 0 else { continue }
            let theirs = other.media[index]
            guard theirs.type == offered.type, theirs.port != 0, theirs.proto == offered.proto else { continue }
            let wanted = Set(theirs.codecs.map { "\($0.encoding.lowercased())/\($0.clockRate)" })
            let common = offered.codecs.filter { wanted.contains("\($0.encoding.lowercased())/\($0.clockRate)") }
            guard common.contains(where: { !auxiliary.contains($0.encoding.lowercased()) }) else { continue }
            let formats = common.map(\.payloadType)
            accepted += 1
            section.port = theirs.port
            section.formats = formats
            if let address = theirs.connectionAddress, address != otherAddress {
                section.lines.append(("c", "IN \(address.contains(":") ? "IP6" : "IP4") \(address)"))
            }
            for line in offered.lines where line.type == "a" {
                let name = line.value.prefix { $0 != ":" }
                guard name == "rtpmap" || name == "fmtp" else { continue }
                let format = line.value.dropFirst(name.count + 1).prefix { $0 != " " }
                if formats.contains(String(format)) { section.lines.append(line) }
            }
            if let ptime = theirs.lines.first(where: { $0.type == "a" && $0.value.hasPrefix("ptime:") }) { section.lines.append(ptime) }
            let offerer = offer.direction(ofMedia: index), party = other.direction(ofMedia: index)
            section.lines.append(("a", Self.direction(sends: offerer.receives && party.sends, receives: offerer.sends && party.receives)))
        }
        return accepted > 0 ? answer : nil
    }

    /// Whether stream `index` sends and receives, from its `a=` direction (or the session's; sendrecv by default).
    public func direction(ofMedia index: Int) -> (sends: Bool, receives: Bool) {
        let names: Set<String> = ["sendrecv", "sendonly", "recvonly", "inactive"]
        let value = (media.indices.contains(index) ? media[index].lines.first { $0.type == "a" && names.contains($0.value) }?.value : nil)
            ?? sessionLines.first { $0.type == "a" && names.contains($0.value) }?.value ?? "sendrecv"
        switch value {
        case "sendonly": return (true, false)
        case "recvonly": return (false, true)
        case "inactive": return (false, false)
        default: return (true, true)
        }
    }

    static func direction(sends: Bool, receives: Bool) -> String {
        switch (sends, receives) {
        case (true, true): "sendrecv"
        case (true, false): "sendonly"
        case (false, true): "recvonly"
        case (false, false): "inactive"
        }
    }

    /// The SDP text with CRLF line ends.
    public var text: String {
        var out = ""
        for line in sessionLines { out += "\(line.type)=\(line.value)\r\n" }
        for section in media {
            let port = section.portCount.map { "\(section.port)/\($0)" } ?? "\(section.port)"
            out += "m=\(([section.type, port, section.proto] + section.formats).joined(separator: " "))\r\n"
            for line in section.lines { out += "\(line.type)=\(line.value)\r\n" }
        }
        return out
    }

    static func address(fromConnection value: String) -> String? {
        let fields = value.split(separator: " ")
        guard fields.count >= 3 else { return nil }
        return fields[2].split(separator: "/").first.map(String.init)
    }

    public static func == (lhs: SessionDescription, rhs: SessionDescription) -> Bool { lhs.text == rhs.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }
}
