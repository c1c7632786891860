/// What the PBX's own media applications need to know: the voicemail code, recording limits, where new voicemail is
/// announced besides e-mail.
struct PBXApplicationSettings: Sendable {
    /// Dialled by an extension: its own voicemail box.
    var voicemailCode = "*97"
    /// A voicemail message (or greeting) is cut at this length.
    var maximumMessageSeconds = 120
    /// Recording stops after this much silence (the caller left without hanging up).
    var silenceSeconds = 5
    /// Every new voicemail is POSTed here too (empty: no webhook).
    var webhook = ""
}

/// One caller in an IVR menu, as a pure state machine: the prompt plays (a key pressed stops it), then the caller has
/// `firstDigitSeconds` for the first key and `interDigitSeconds` for each next one. Keys go to the option they name as
/// soon as no longer option starts with them (`2` with options `2` and `21` waits for the next key or the inter-digit
/// timeout); `#` ends the entry. Nothing pressed, or keys that name no option, play the prompt again, `retries` times,
/// then the call goes to the menu's fallback.
struct PBXMenuRun: Sendable, Equatable {
    enum Step: Sendable, Equatable {
        case playPrompt
        case stopPrompt
        /// Wait this long for a key (replacing any earlier wait).
        case wait(seconds: Int)
        /// The call goes to a destination: the one the keys chose, or the menu's fallback.
        case go(PBXDestination, fallback: Bool)
    }

    let menu: PBXCatalog.Menu
    private(set) var collected = ""
    /// Times the prompt started.
    private(set) var plays = 0
    private var prompting = false

    init(menu: PBXCatalog.Menu) { self.menu = menu }

    mutating func start() -> [Step] {
        plays = 1
        prompting = true
        return [.playPrompt]
    }

    mutating func promptFinished() -> [Step] {
        prompting = false
        return collected.isEmpty ? [.wait(seconds: menu.firstDigitSeconds)] : []
    }

    mutating func digit(_ key: Character) -> [Step] {
        var steps: [Step] = []
        if prompting {
            prompting = false
            steps.append(.stopPrompt)
        }
        if key == "#", menu.options["#"] == nil || !collected.isEmpty {
            // The end of the entry.
            return steps + decide(final: true)
        }
        collected.append(key)
        return steps + decide(final: false)
    }

    mutating func timedOut() -> [Step] {
        if collected.isEmpty { return again() }
        return decide(final: true)
    }

    private mutating func decide(final: Bool) -> [Step] {
        let exact = menu.options[collected]
        let longer = menu.options.keys.contains { $0.count > collected.count && $0.hasPrefix(collected) }
        if let exact, final || !longer { return [.go(exact, fallback: false)] }
        if !final, longer { return [.wait(seconds: menu.interDigitSeconds)] }
        return again()
    }

    /// Nothing (valid) pressed: the prompt again, or the fallback once the retries are spent.
    private mutating func again() -> [Step] {
        collected = ""
        guard plays <= menu.retries else { return [.go(menu.fallback, fallback: true)] }
        plays += 1
        prompting = true
        return [.playPrompt]
    }
}
