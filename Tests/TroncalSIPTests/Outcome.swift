import TroncalSIP

/// A disposition reduced to what the torture index talks about.
enum Outcome: Hashable, Sendable, CustomStringConvertible {
    case accept
    case reject(Int)
    case drop

    var description: String {
        switch self {
        case .accept: "accept"
        case .reject(let code): "reject \(code)"
        case .drop: "drop"
        }
    }
}

extension SIPMessageDisposition {
    var outcome: Outcome {
        switch self {
        case .accept: .accept
        case .reject(let rejection): .reject(rejection.statusCode)
        case .drop: .drop
        }
    }

    var acceptedMessage: SIPMessage? {
        if case .accept(let message) = self { return message }
        return nil
    }
}
