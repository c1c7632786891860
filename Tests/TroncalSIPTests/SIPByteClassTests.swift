import Testing

@testable import TroncalSIP

/// The literal character table matches the RFC 3261 §25.1 character sets it encodes.
@Suite struct SIPByteClassTests {
    static let alphanum = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".utf8)

    static let grammar: [(String, SIPByteClass, Set<UInt8>)] = [
        ("alphanum", .alphanum, alphanum),
        ("token", .token, alphanum.union("-.!%*_+`'~".utf8)),
        ("unreserved", .unreserved, alphanum.union("-_.!~*'()".utf8)),
        ("user-unreserved", .userUnreserved, Set("&=+$,;?/".utf8)),
        ("password extras", .passwordExtra, Set("&=+$,".utf8)),
        ("param-unreserved", .paramUnreserved, Set("[]/:&+$".utf8)),
        ("hnv-unreserved", .hnvUnreserved, Set("[]/?:+$".utf8)),
        ("word", .word, alphanum.union("-.!%*_+`'~()<>:\\\"/[]?{}".utf8)),
        ("reserved", .reserved, Set(";/?:@&=+$,".utf8)),
        ("scheme", .scheme, alphanum.union("+-.".utf8)),
        ("host", .host, alphanum.union("-.".utf8)),
        ("DIGIT", .digit, Set("0123456789".utf8)),
        ("HEXDIG", .hex, Set("0123456789abcdefABCDEF".utf8)),
        ("ALPHA", .alpha, Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)),
        ("LWS", .lws, Set(" \t\r\n".utf8)),
        ("tel digits", .telDigit, Set("0123456789abcdefABCDEF*#-.()".utf8)),
    ]

    @Test(arguments: grammar.indices)
    func tableMatchesGrammar(_ index: Int) {
        let (name, cls, members) = Self.grammar[index]
        for byte in UInt8.min...UInt8.max {
            #expect(byte.isIn(cls) == members.contains(byte), "\(name): byte \(byte)")
        }
    }
}
