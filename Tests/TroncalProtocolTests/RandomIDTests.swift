import Foundation
import Testing
import TroncalProtocol

@Suite struct RandomIDTests {
    @Test func idsAreVersionFourUUIDsAndDoNotRepeat() {
        var seen = Set<String>()
        for _ in 0..<10_000 {
            let id = RandomID.uuidString()
            #expect(UUID(uuidString: id) != nil)
            #expect(id == id.lowercased())
            let characters = Array(id)
            #expect(characters.count == 36 && characters[14] == "4" && "89ab".contains(characters[19]))
            seen.insert(id)
        }
        #expect(seen.count == 10_000)
    }
}
