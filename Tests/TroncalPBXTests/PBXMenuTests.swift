import Foundation
import Logging
import Testing
import TroncalCatalog
import TroncalMedia
import TroncalProtocol
@testable import TroncalPBX

/// IVR menus: the catalog (prompts, options, timeouts, references), digit collection (prefixes, `#`, timeouts,
/// retries, fallback), prompts spoken by espeak-ng, and where voicemail takes busy and unanswered calls.
@Suite struct PBXMenuTests {
    static let menus = """
        tenant,menu,number,prompt,options,first_digit_seconds,inter_digit_seconds,retries,fallback
        acme,main,500,say:Welcome to Acme,1=ext:101 2=ext:102 21=group:sales 3=voicemail:101 4=menu:sub 0=hangup,,,,ext:102
        acme,sub,,file:sub.wav,1=number:+34911000200 #=menu:main,3,2,0,
        """

    static func catalog() throws -> PBXCatalog {
        var catalog = try PBXCatalogTests.full()
        try PBXCatalogCSV.read(.menus, menus, into: &catalog)
        try PBXCatalogCSV.checkReferences(catalog)
        return catalog
    }

    @Test func menusReadTheirPromptsOptionsTimeoutsAndFallback() throws {
        let catalog = try Self.catalog()
        let main = try #require(catalog.menu("main", of: "acme"))
        #expect(main.prompt == .say("Welcome to Acme") && main.number == "500")
        #expect(main.options["21"] == .group("sales") && main.options["3"] == .voicemail("101") && main.options["0"] == .hangup)
        #expect(main.firstDigitSeconds == 5 && main.interDigitSeconds == 3 && main.retries == 2 && main.fallback == .extensionNumber("102"))
        let sub = try #require(catalog.menu("sub", of: "acme"))
        #expect(sub.prompt == .file("sub.wav") && sub.options["#"] == .menu("main") && sub.retries == 0 && sub.fallback == .hangup)
        // An export imports back to the same menus.
        var again = try PBXCatalogTests.full()
        try PBXCatalogCSV.read(.menus, PBXCatalogCSV.render(.menus, catalog), into: &again)
        #expect(again.menus == catalog.menus)
        // Dialled by an extension, the menu's number reaches it.
        let tenant = try #require(catalog.tenants.first)
        #expect(PBXDialPlan(catalog: catalog, tenant: tenant).dialled("500", now: Date()) == .menu("main"))
    }

    @Test(arguments: [
        ("acme,m,,say:Hi,1=ext:101,,,,\nacme,m,,say:Hi,1=ext:101,,,,", "menu 'm' of acme appears twice"),
        ("acme,m,,speak:Hi,1=ext:101,,,,", "column 'prompt'"),
        ("acme,m,,file:../etc/passwd.wav,1=ext:101,,,,", "column 'prompt'"),
        ("acme,m,,say:Hi,,,,,", "a menu needs at least one option"),
        ("acme,m,,say:Hi,1=ext:101 1=ext:102,,,,", "keys 1 appear twice"),
        ("acme,m,,say:Hi,A=ext:101,,,,", "is not KEYS=DESTINATION"),
        ("acme,m,,say:Hi,1=room:5,,,,", "is not a destination"),
        ("acme,m,,say:Hi,1=ext:101,0,,,", "column 'first_digit_seconds'"),
        ("acme,m,5,say:Hi,1=ext:101,,,,", "column 'number'"),
    ])
    func aBadMenuRowIsRefusedWithItsColumn(row: String, expected: String) throws {
        var catalog = try PBXCatalogTests.full()
        do {
            try PBXCatalogCSV.read(.menus, "tenant,menu,number,prompt,options,first_digit_seconds,inter_digit_seconds,retries,fallback\n" + row, into: &catalog)
            Issue.record("accepted: \(row)")
        } catch {
            #expect(error.description.contains(expected), "\(error)")
        }
    }

    @Test(arguments: [
        ("acme,m,,say:Hi,1=ext:109,,,,", "no extension 109 in tenant acme"),
        ("acme,m,,say:Hi,1=menu:nowhere,,,,", "no menu 'nowhere' in tenant acme"),
        ("acme,m,,say:Hi,1=voicemail:102,,,,", "extension 102 of tenant acme has no voicemail box"),
        ("acme,m,101,say:Hi,1=ext:101,,,,", "101 is an extension's or another group's or menu's number"),
        ("globex,m,,say:Hi,1=group:sales,,,,", "no ring group 'sales' in tenant globex"),
    ])
    func aMenuWithABrokenReferenceIsRefusedNamingTheRow(row: String, expected: String) throws {
        var catalog = try PBXCatalogTests.full()
        try PBXCatalogCSV.read(.menus, "tenant,menu,number,prompt,options,first_digit_seconds,inter_digit_seconds,retries,fallback\n" + row, into: &catalog)
        do {
            try PBXCatalogCSV.checkReferences(catalog)
            Issue.record("accepted: \(row)")
        } catch {
            #expect(error.description.contains("menus line 2") && error.description.contains(expected), "\(error)")
        }
    }

    @Test func keysGoToTheOptionTheyNameAsSoonAsNoLongerOptionStartsWithThem() throws {
        let main = try #require(try Self.catalog().menu("main", of: "acme"))
        var run = PBXMenuRun(menu: main)
        #expect(run.start() == [.playPrompt])
        // `1` names an option and no longer one starts with it: chosen at once, the prompt stopped.
        #expect(run.digit("1") == [.stopPrompt, .go(.extensionNumber("101"), fallback: false)])
        // `2` could be 2 or 21: it waits for the next key, and `1` makes it 21.
        run = PBXMenuRun(menu: main)
        _ = run.start()
        #expect(run.digit("2") == [.stopPrompt, .wait(seconds: 3)])
        #expect(run.digit("1") == [.go(.group("sales"), fallback: false)])
        // `2` then nothing: the inter-digit timeout takes 2.
        run = PBXMenuRun(menu: main)
        _ = run.start()
        _ = run.digit("2")
        #expect(run.timedOut() == [.go(.extensionNumber("102"), fallback: false)])
        // `2#`: the entry ends at once.
        run = PBXMenuRun(menu: main)
        _ = run.start()
        _ = run.digit("2")
        #expect(run.digit("#") == [.go(.extensionNumber("102"), fallback: false)])
    }

    @Test func nothingOrAWrongKeyRepeatsThePromptThenTheFallback() throws {
        let main = try #require(try Self.catalog().menu("main", of: "acme"))
        var run = PBXMenuRun(menu: main)
        _ = run.start()
        // The first-digit timeout starts when the prompt has played.
        #expect(run.promptFinished() == [.wait(seconds: 5)])
        #expect(run.timedOut() == [.playPrompt])
        _ = run.promptFinished()
        // A key that names nothing counts as a try too.
        #expect(run.digit("9") == [.playPrompt])
        _ = run.promptFinished()
        // Two retries spent: the fallback.
        #expect(run.timedOut() == [.go(.extensionNumber("102"), fallback: true)])
        #expect(run.plays == 3)
    }

    @Test func busyAndUnansweredCallsGoToTheExtensionsVoicemailWhenItHasNoForward() throws {
        var catalog = try PBXCatalogTests.full()
        try PBXCatalogCSV.read(
            .extensions,
            "tenant,extension,password,voicemail,voicemail_pin,email,forward_busy\nacme,101,secret-101-pw,yes,2468,ana@example.com,\nacme,102,secret-102-pw,yes,,,ext:101\nacme,103,secret-103-pw,no,,,\nglobex,101,secret-g101-pw,,,,\n",
            into: &catalog)
        let tenant = try #require(catalog.tenants.first)
        let plan = PBXDialPlan(catalog: catalog, tenant: tenant)
        for status in [486, 480, 408, 603] {
            #expect(plan.afterFailure(of: .extensionNumber("101"), status: status, now: Date(), hops: 0) == .voicemail("101"))
        }
        // A forward comes first; no box, no voicemail.
        #expect(plan.afterFailure(of: .extensionNumber("102"), status: 486, now: Date(), hops: 0) == .extensionNumber("101"))
        #expect(plan.afterFailure(of: .extensionNumber("102"), status: 480, now: Date(), hops: 0) == .voicemail("102"))
        #expect(plan.afterFailure(of: .extensionNumber("103"), status: 486, now: Date(), hops: 0) == nil)
        #expect(catalog.extension("101", of: "acme")?.voicemailPIN == "2468" && catalog.extension("101", of: "acme")?.email == "ana@example.com")
        #expect(throws: CatalogError.self) {
            try PBXCatalogCSV.read(.extensions, "tenant,extension,password,voicemail,voicemail_pin\nacme,101,secret-101-pw,yes,12\n", into: &catalog)
        }
        #expect(throws: CatalogError.self) {
            try PBXCatalogCSV.read(.extensions, "tenant,extension,password,email\nacme,101,secret-101-pw,not-an-address\n", into: &catalog)
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/espeak-ng"), "espeak-ng is not installed"))
    func aSayPromptIsSpokenByEspeakAt8kHzAndAMissingFileIsRefusedWithItsPath() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("troncal-prompts-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let prompts = PBXPrompts(directory: directory, logger: Logger(label: "test"))
        let speech = try await prompts.audio(.say("Press one for sales."))
        // About a second and a half of speech at 8 kHz, not silence.
        #expect(speech.count > 8000 && speech.count < 8000 * 5, "\(speech.count) samples")
        #expect(speech.contains { abs(Int($0)) > 2000 })
        #expect(prompts.cached(.say("Press one for sales.")) == speech)
        do {
            _ = try await prompts.audio(.file("missing.wav"))
            Issue.record("a missing prompt file was accepted")
        } catch {
            #expect("\(error)".contains(directory.appendingPathComponent("missing.wav").path), "\(error)")
        }
        // A WAV of another rate is refused with the reason.
        try WAVFile(sampleRate: 16000, samples: [Int16](repeating: 0, count: 1600)).write(to: directory.appendingPathComponent("wide.wav"))
        do {
            _ = try await prompts.audio(.file("wide.wav"))
            Issue.record("a 16 kHz prompt was accepted")
        } catch {
            #expect("\(error)".contains("16000 Hz"), "\(error)")
        }
    }
}
