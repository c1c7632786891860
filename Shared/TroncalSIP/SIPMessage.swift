public import NIOCore

/// A SIP message: a request or a response.
public enum SIPMessage: Hashable, Sendable {
    case request(SIPRequest)
    case response(SIPResponse)

    public var headers: SIPHeaders {
        get {
            switch self {
            case .request(let request): request.headers
            case .response(let response): response.headers
            }
        }
        set {
            switch self {
            case .request(var request):
                request.headers = newValue
                self = .request(request)
            case .response(var response):
                response.headers = newValue
                self = .response(response)
            }
        }
    }

    public var body: [UInt8] {
        switch self {
        case .request(let request): request.body
        case .response(let response): response.body
        }
    }

    public var isRequest: Bool {
        if case .request = self { return true }
        return false
    }

    /// The message on the wire: start line, each header field's raw bytes (unmodified fields are byte-exact),
    /// an empty line and the body. Content-Length is written as the headers hold it; keep it in step with the body.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(estimatedSize)
        switch self {
        case .request(let request):
            out.append(contentsOf: request.method.name.utf8)
            out.append(UInt8(ascii: " "))
            out.append(contentsOf: request.uri.description.utf8)
            out.append(UInt8(ascii: " "))
            out.append(contentsOf: request.version.description.utf8)
        case .response(let response):
            out.append(contentsOf: response.version.description.utf8)
            out.append(UInt8(ascii: " "))
            out.append(contentsOf: String(response.statusCode).utf8)
            out.append(UInt8(ascii: " "))
            out.append(contentsOf: response.reasonPhrase)
        }
        out.append(contentsOf: [13, 10])
        for field in headers {
            out.append(contentsOf: field.raw)
            out.append(contentsOf: [13, 10])
        }
        out.append(contentsOf: [13, 10])
        out.append(contentsOf: body)
        return out
    }

    /// Writes `serialized()` into a buffer.
    public func write(into buffer: inout ByteBuffer) {
        buffer.writeBytes(serialized())
    }

    private var estimatedSize: Int {
        var size = 64 + body.count
        for field in headers { size += field.raw.count + 2 }
        return size
    }
}
