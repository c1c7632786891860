public import Foundation

/// The fields every frame carries besides its body: `{"v":1,"id":"…","type":"…","from":"site/instance","re":"…"}`.
public struct EnvelopeHead: Codable, Sendable, Hashable {
    /// The schema version of the body's message type.
    public var v: Int
    /// Unique per sender; a reply echoes it in `re`.
    public var id: String
    public var type: String
    /// The sender, `site/instance`. Informative only: the link trusts the certificate, not this field.
    public var from: String
    /// Set on replies: the `id` of the request answered.
    public var re: String?
    /// Set on requests: how many milliseconds the sender waits for the reply, counted from when it sent it. The
    /// receiver refuses work that would start after that (``RequestDeadline``). Absent: no limit.
    public var ttl: Int?

    public init(v: Int, id: String, type: String, from: String, re: String? = nil, ttl: Int? = nil) {
        self.v = v
        self.id = id
        self.type = type
        self.from = from
        self.re = re
        self.ttl = ttl
    }
}

/// A complete envelope with a typed body.
public struct Envelope<Body: Codable & Sendable>: Codable, Sendable {
    public var v: Int
    public var id: String
    public var type: String
    public var from: String
    public var re: String?
    public var ttl: Int?
    public var body: Body

    public init(head: EnvelopeHead, body: Body) {
        self.v = head.v
        self.id = head.id
        self.type = head.type
        self.from = head.from
        self.re = head.re
        self.ttl = head.ttl
        self.body = body
    }

    public var head: EnvelopeHead { EnvelopeHead(v: v, id: id, type: type, from: from, re: re, ttl: ttl) }
}

/// One received frame: its head decoded, the body still raw until the receiver knows which type to expect.
public struct InboundEnvelope: Sendable {
    public let head: EnvelopeHead
    public let json: Data

    /// Decodes the head of a frame's JSON. Throws `ProtocolError` `.badJSON` or `.badEnvelope`.
    public init(json: Data) throws(ProtocolError) {
        self.json = json
        do {
            self.head = try JSONDecoder().decode(EnvelopeHead.self, from: json)
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            throw ProtocolError(.badJSON, "frame is not valid JSON")
        } catch let error as DecodingError {
            throw ProtocolError(.badEnvelope, "envelope is malformed: \(error.troncalSummary)")
        } catch {
            throw ProtocolError(.badJSON, "frame is not valid JSON")
        }
    }

    /// Decodes the body as `T`. Throws `ProtocolError` `.badRequest` naming the field that failed.
    public func body<T: Codable & Sendable>(as type: T.Type) throws(ProtocolError) -> T {
        do {
            return try JSONDecoder().decode(BodyOnly<T>.self, from: json).body
        } catch let error as DecodingError {
            throw ProtocolError(.badRequest, "body of \(head.type) is malformed: \(error.troncalSummary)")
        } catch {
            throw ProtocolError(.badRequest, "body of \(head.type) is malformed")
        }
    }

    private struct BodyOnly<T: Codable & Sendable>: Codable {
        var body: T
    }
}

/// Encodes envelopes to the JSON of one frame.
public enum EnvelopeEncoder {
    public static func encode<Body: Codable & Sendable>(_ envelope: Envelope<Body>) throws(ProtocolError) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return try encoder.encode(envelope)
        } catch {
            throw ProtocolError(.internal, "cannot encode \(envelope.type): \(error)")
        }
    }
}

extension DecodingError {
    /// A one-line description naming the key path, e.g. `key 'body.callee' not found`.
    public var troncalSummary: String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
                .replacingOccurrences(of: ".[", with: "[")
        }
        switch self {
        case .keyNotFound(let key, let context):
            let full = path(context.codingPath + [key])
            return "key '\(full)' is missing"
        case .typeMismatch(let type, let context):
            return "key '\(path(context.codingPath))' has the wrong type (expected \(type))"
        case .valueNotFound(let type, let context):
            return "key '\(path(context.codingPath))' is null (expected \(type))"
        case .dataCorrupted(let context):
            let at = path(context.codingPath)
            return at.isEmpty ? context.debugDescription : "key '\(at)': \(context.debugDescription)"
        @unknown default:
            return "undecodable"
        }
    }
}
