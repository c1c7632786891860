/// Auth-params by lower-cased name, refusing repeats (a repeated realm or nonce is an attack surface).
struct DigestParameters {
    private var values: [String: String] = [:]

    init(_ parameters: SIPParameters) throws(SIPParseError) {
        for parameter in parameters {
            let name = parameter.name.lowercased()
            guard values[name] == nil else {
                throw SIPParseError(.invalidDigestParameter, detail: "repeated parameter \(name)")
            }
            values[name] = parameter.value ?? ""
        }
    }

    subscript(name: String) -> String? { values[name] }
}

extension Substring {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
