internal import Foundation
internal import Logging
internal import Metrics
internal import NIOCore
internal import TroncalCall
internal import TroncalMedia
internal import TroncalProtocol
internal import TroncalSIP

/// A call the PBX answered itself: its media endpoint (an RTP socket of `pbx.mediaPortMin`-`Max`), and what it is doing
/// with the caller (an IVR menu, recording a voicemail, the owner listening to the box, ring-back while a destination
/// the menu chose rings). Lives on the PBX's loop.
final class PBXApp {
    enum Mode {
        case starting
        case menu(PBXMenuRun)
        case deposit(box: String)
        case access(box: String, state: AccessState)
        case connecting
        case ending
    }

    enum AccessState: Equatable {
        case pin, main, message, greeting, newPIN
    }

    let endpoint: MediaEndpoint
    /// The origin line of the PBX's SDP answer (its session id), kept for the re-INVITE that connects the caller.
    let sessionID: String
    var answer: [UInt8]
    var mode: Mode = .starting
    /// Bumped each time the application moves on: a prompt's end or a timer of an earlier step is ignored.
    var step = 0
    var timer = 0
    /// Audio recorded (voicemail, a greeting) and the silence at its end.
    var recording: [Int16]?
    var silentMilliseconds = 0
    /// Keys entered (a PIN).
    var keys = ""
    var tries = 0
    var checkingPIN = false
    /// The box's messages being listened to, and which.
    var messages: [VoicemailStore.Message] = []
    var messageIndex = 0

    init(endpoint: MediaEndpoint, sessionID: String, answer: [UInt8]) {
        self.endpoint = endpoint
        self.sessionID = sessionID
        self.answer = answer
    }
}

/// A piece of what the PBX says.
enum Speech {
    case say(String)
    case prompt(PBXPrompt)
    case audio([Int16])
    case beep
}

extension PBXCalls {
    // MARK: - Answering with the PBX's own media

    /// The call's route is an application (a menu, a voicemail box, the voicemail code): the PBX answers the caller with
    /// its own media endpoint (or, already answered, moves the application on).
    func runApplication(_ number: Int, _ route: PBXRoute) {
        guard var slot = calls[number] else { return }
        if let app = slot.app { return startApplication(number, app, route) }
        guard !slot.appStarting else { return }
        guard let offer = try? SessionDescription(String(decoding: slot.invite.body, as: UTF8.self)),
            let choice = SessionDescription.endpointAnswer(to: offer, address: media.address, port: 0),
            let remote = try? SocketAddress(ipAddress: choice.remote.address, port: choice.remote.port)
        else {
            logger.info("call to a PBX application without a G.711 offer refused", metadata: ["call-id": "\(slot.callID)", "tenant": "\(slot.tenant)"])
            return endUnanswered(number, status: 488, reason: "Not Acceptable Here")
        }
        slot.appStarting = true
        calls[number] = slot
        let bound = NIOLoopBound(self, eventLoop: loop.eventLoop)
        MediaEndpoint.open(
            host: media.address, ports: media.ports, remote: remote, codec: choice.codec, payloadType: choice.payloadType,
            eventPayloadType: choice.eventPayloadType, on: loop.eventLoop
        ).assumeIsolated().whenComplete { result in
            let calls = bound.value
            calls.calls[number]?.appStarting = false
            switch result {
            case .success(let endpoint):
                guard let slot = calls.calls[number], !slot.cancelled, slot.winner == nil,
                    let answer = SessionDescription.endpointAnswer(to: offer, address: calls.media.address, port: endpoint.port, sessionID: "\(endpoint.port)")
                else {
                    endpoint.close()
                    if calls.calls[number] != nil { calls.endUnanswered(number, status: 487, reason: "Request Terminated") }
                    return
                }
                let body = Array(answer.answer.text.utf8)
                var response = InviteServerTransaction.response(200, "OK", to: slot.invite, toTag: slot.callerLocalTag)
                response.headers.removeAll(.contentLength)
                response.headers.append(.contact, "<sip:\(calls.loop.layer.configuration.sentBy[.udp] ?? "")>")
                response.headers.append(.contentType, "application/sdp")
                response.headers.append(.contentLength, "\(body.count)")
                response.body = body
                calls.loop.layer.respond(response, on: slot.inviteTransaction)
                let app = PBXApp(endpoint: endpoint, sessionID: "\(endpoint.port)", answer: body)
                calls.calls[number]?.app = app
                calls.calls[number]?.answeredHere = true
                endpoint.onDigit = { [unowned calls] digit in calls.applicationDigit(number, digit) }
                calls.logger.info("call answered by the PBX", metadata: [
                    "call-id": "\(slot.callID)", "tenant": "\(slot.tenant)", "application": "\(route)", "media-port": "\(endpoint.port)",
                ])
                calls.startApplication(number, app, route)
            case .failure(let error):
                calls.logger.warning("no media port for a PBX application: call refused", metadata: ["reason": "\(error)"])
                calls.endUnanswered(number, status: 503, reason: "Service Unavailable")
            }
            calls.loop.flush()
        }
    }

    /// Starts (or moves to) the application `route` names on an answered call.
    func startApplication(_ number: Int, _ app: PBXApp, _ route: PBXRoute) {
        guard let slot = calls[number] else { return }
        app.step += 1
        app.endpoint.sender.stop()
        app.endpoint.onAudio = nil
        app.recording = nil
        switch route {
        case .menu(let name):
            guard let menu = catalogs.catalog.menu(name, of: slot.tenant) else { return failApplication(number, status: 404) }
            var run = PBXMenuRun(menu: menu)
            let steps = run.start()
            app.mode = .menu(run)
            menuSteps(number, app, steps)
        case .voicemail(let box):
            startDeposit(number, app, box: box)
        case .voicemailAccess(let box):
            app.tries = 0
            app.keys = ""
            app.mode = .access(box: box, state: .pin)
            let store = voicemail
            let tenant = slot.tenant
            let catalogPIN = catalogs.catalog.extension(box, of: tenant)?.voicemailPIN ?? ""
            afterwards(number, app) {
                // A read that fails asks for a PIN (never opens a box unasked).
                (try? await store.asksPIN(tenant: tenant, extensionNumber: box, catalogPIN: catalogPIN)) ?? true
            } then: { calls, app, asks in
                calls.accessState(number, app, box: box, asks ? .pin : .main)
            }
        default:
            failApplication(number, status: 500)
        }
    }

    /// A re-INVITE refresh, INFO, BYE … from a caller the PBX answered.
    func applicationRequest(_ number: Int, _ request: SIPRequest) {
        let leg = Self.caller(number)
        guard let slot = calls[number] else {
            loop.layer.respondInDialog(InviteServerTransaction.response(481, "Call/Transaction Does Not Exist", to: request), on: leg)
            return
        }
        guard let app = slot.app else {
            // Between a transfer's REFER and its destination's answer: the caller may hang up; a new offer waits.
            switch request.method {
            case .bye:
                loop.layer.respondInDialog(InviteServerTransaction.response(200, "OK", to: request), on: leg)
                transferAbandoned(number)
            case .invite:
                loop.layer.respondInDialog(InviteServerTransaction.response(491, "Request Pending", to: request), on: leg)
            default:
                loop.layer.respondInDialog(InviteServerTransaction.response(200, "OK", to: request), on: leg)
            }
            return
        }
        switch request.method {
        case .bye:
            loop.layer.respondInDialog(InviteServerTransaction.response(200, "OK", to: request), on: leg)
            callerHungUp(number, app)
        case .invite:
            // A session refresh (or a new offer): the same media answer again.
            var response = InviteServerTransaction.response(200, "OK", to: request)
            response.headers.removeAll(.contentLength)
            response.headers.append(.contact, "<sip:\(loop.layer.configuration.sentBy[.udp] ?? "")>")
            response.headers.append(.contentType, "application/sdp")
            response.headers.append(.contentLength, "\(app.answer.count)")
            response.body = app.answer
            loop.layer.respondInDialog(response, on: leg)
        case .info:
            // SIP INFO digits (application/dtmf-relay: `Signal=5`), as some phones send them.
            loop.layer.respondInDialog(InviteServerTransaction.response(200, "OK", to: request), on: leg)
            let text = String(decoding: request.body, as: UTF8.self)
            if let line = text.split(whereSeparator: \.isNewline).first(where: { $0.lowercased().hasPrefix("signal=") }),
                let key = line.dropFirst(7).trimmingCharacters(in: .whitespaces).first, "0123456789*#".contains(key)
            {
                applicationDigit(number, key)
            }
        default:
            loop.layer.respondInDialog(InviteServerTransaction.response(200, "OK", to: request), on: leg)
        }
    }

    /// The caller hung up: a recording in progress is kept, then the call ends.
    private func callerHungUp(_ number: Int, _ app: PBXApp) {
        if case .deposit(let box) = app.mode, app.recording != nil {
            finishRecording(number, app, box: box, callerLeft: true)
        }
        finishApplication(number, status: 200, reason: "caller hung up", sendBye: false)
    }

    // MARK: - Work off the loop

    /// Runs `work` off the loop (the store, espeak-ng), then `then` on the loop with its result.
    func offLoop<T: Sendable>(_ work: @escaping @Sendable () async -> T, then: @escaping (PBXCalls, T) -> Void) {
        let bound = NIOLoopBound((self, then), eventLoop: loop.eventLoop)
        Task {
            let result = await work()
            bound.eventLoop.execute {
                let (calls, then) = bound.value
                then(calls, result)
                calls.loop.flush()
            }
        }
    }

    /// `offLoop` for an application: `then` runs only while `app` is still the call's, at the step it was at (any step
    /// with `anyStep`); a caller who hung up meanwhile, or a key that moved the application on, drops it.
    func afterwards<T: Sendable>(
        _ number: Int, _ app: PBXApp, anyStep: Bool = false, _ work: @escaping @Sendable () async -> T, then: @escaping (PBXCalls, PBXApp, T) -> Void
    ) {
        let step = app.step
        let bound = NIOLoopBound(app, eventLoop: loop.eventLoop)
        offLoop(work) { calls, result in
            let app = bound.value
            guard calls.calls[number]?.app === app, anyStep || app.step == step else { return }
            then(calls, app, result)
        }
    }

    // MARK: - Timers and keys

    func startApplicationTimer(_ number: Int, _ app: PBXApp, seconds: Int) {
        if app.timer > 0 { loop.layer.cancelTimer(call: number, timer: -app.timer) }
        app.timer += 1
        loop.layer.startTimer(call: number, timer: -app.timer, after: .seconds(seconds))
    }

    func cancelApplicationTimer(_ number: Int, _ app: PBXApp) {
        if app.timer > 0 { loop.layer.cancelTimer(call: number, timer: -app.timer) }
        app.timer += 1
    }

    func applicationTimer(_ number: Int, _ timer: Int) {
        guard let app = calls[number]?.app, timer == app.timer else { return }
        switch app.mode {
        case .menu(var run):
            let steps = run.timedOut()
            app.mode = .menu(run)
            menuSteps(number, app, steps)
        case .deposit(let box):
            if app.recording != nil { finishRecording(number, app, box: box, callerLeft: false) }
        case .access(let box, let state):
            accessTimeout(number, app, box: box, state)
        case .starting, .connecting, .ending:
            return
        }
    }

    func applicationDigit(_ number: Int, _ key: Character) {
        guard let slot = calls[number], let app = slot.app else { return }
        logger.debug("key pressed", metadata: ["call-id": "\(slot.callID)", "key": "\(key)"])
        switch app.mode {
        case .menu(var run):
            let steps = run.digit(key)
            app.mode = .menu(run)
            menuSteps(number, app, steps)
        case .deposit(let box):
            if app.recording != nil {
                if key == "#" { finishRecording(number, app, box: box, callerLeft: false) }
            } else if key == "#" {
                // `#` during the greeting: straight to the tone.
                app.step += 1
                startRecording(number, app, box: box)
            }
        case .access(let box, let state):
            accessDigit(number, app, box: box, state, key)
        case .starting, .connecting, .ending:
            return
        }
    }

    // MARK: - Speaking

    /// Says `pieces` (text rendered by espeak-ng when not yet, prompts, audio, a beep), then runs `then` unless the
    /// application moved on meanwhile. A piece that cannot be rendered becomes a short beep (and is logged).
    func say(_ number: Int, _ app: PBXApp, _ pieces: [Speech], then: ((PBXCalls) -> Void)? = nil) {
        let step = app.step
        let prompts = self.prompts
        let logger = self.logger
        func samples(_ piece: Speech, rendered: [PBXPrompt: [Int16]]) -> [Int16] {
            switch piece {
            case .say(let words): rendered[.say(words)] ?? Self.beep
            case .prompt(let prompt): rendered[prompt] ?? Self.beep
            case .audio(let audio): audio
            case .beep: Self.beep
            }
        }
        let wanted: [PBXPrompt] = pieces.compactMap {
            switch $0 {
            case .say(let words): .say(words)
            case .prompt(let prompt): prompt
            default: nil
            }
        }
        var rendered: [PBXPrompt: [Int16]] = [:]
        for prompt in wanted { if let audio = prompts.cached(prompt) { rendered[prompt] = audio } }
        let play: (PBXCalls, [PBXPrompt: [Int16]]) -> Void = { calls, rendered in
            guard calls.calls[number]?.app === app, app.step == step else { return }
            let audio = pieces.flatMap { samples($0, rendered: rendered) + [Int16](repeating: 0, count: 1600) }
            app.endpoint.sender.play(audio) { [unowned calls] in
                guard calls.calls[number]?.app === app, app.step == step else { return }
                then?(calls)
                calls.loop.flush()
            }
        }
        let missing = wanted.filter { rendered[$0] == nil }
        guard !missing.isEmpty else { return play(self, rendered) }
        offLoop {
            var more: [PBXPrompt: [Int16]] = [:]
            for prompt in missing {
                do {
                    more[prompt] = try await prompts.audio(prompt)
                } catch {
                    logger.warning("prompt could not be rendered: a beep instead", metadata: ["prompt": "\(prompt)", "reason": "\(error)"])
                }
            }
            return more
        } then: { calls, more in
            play(calls, rendered.merging(more) { $1 })
        }
    }

    /// The tone before a recording: 1 kHz... no: 880 Hz, so that a 1 kHz test tone is never the PBX's own beep.
    static let beep: [Int16] = {
        var tone = ToneGenerator(frequencies: [880], amplitude: 6000)
        return tone.next(milliseconds: 400)
    }()

    /// Ring-back (425 Hz, 1 s on, 4 s off) while a destination a menu chose rings.
    static let ringBack: [Int16] = {
        var tone = ToneGenerator(frequencies: [425], amplitude: 4000)
        return tone.next(milliseconds: 1000) + [Int16](repeating: 0, count: 32000)
    }()

    // MARK: - IVR menus

    func menuSteps(_ number: Int, _ app: PBXApp, _ steps: [PBXMenuRun.Step]) {
        for step in steps {
            switch step {
            case .playPrompt:
                guard case .menu(let run) = app.mode else { return }
                Counter(label: "troncal_pbx_menu_prompts_total").increment()
                app.step += 1
                cancelApplicationTimer(number, app)
                say(number, app, [.prompt(run.menu.prompt)]) { calls in
                    guard case .menu(var run) = app.mode else { return }
                    let next = run.promptFinished()
                    app.mode = .menu(run)
                    calls.menuSteps(number, app, next)
                }
            case .stopPrompt:
                app.step += 1
                app.endpoint.sender.stop()
            case .wait(let seconds):
                startApplicationTimer(number, app, seconds: seconds)
            case .go(let destination, let fallback):
                Counter(label: "troncal_pbx_menu_outcomes_total", dimensions: [("result", fallback ? "fallback" : "chosen")]).increment()
                cancelApplicationTimer(number, app)
                goTo(number, app, destination)
                return
            }
        }
    }

    /// The menu chose `destination`: another application on the same answer, or ringing a destination (with
    /// ring-back) that is connected when it answers.
    func goTo(_ number: Int, _ app: PBXApp, _ destination: PBXDestination) {
        guard let slot = calls[number], let tenant = catalogs.catalog.tenants.first(where: { $0.name == slot.tenant }) else { return }
        let route = PBXDialPlan(catalog: catalogs.catalog, tenant: tenant).follow(destination, now: Date(), hops: slot.hops + 1)
        logger.info("menu choice", metadata: ["call-id": "\(slot.callID)", "tenant": "\(slot.tenant)", "destination": "\(destination)", "route": "\(route)"])
        calls[number]?.route = route
        calls[number]?.hops += 1
        switch route {
        case .menu, .voicemail, .voicemailAccess:
            startApplication(number, app, route)
        case .reject(let status, _):
            failApplication(number, status: status)
        case .extensionNumber, .group, .outside:
            app.step += 1
            app.mode = .connecting
            app.endpoint.sender.play(Self.ringBack, repeating: true)
            ring(number)
        }
    }

    /// The destination answered: the caller (answered by the PBX) is re-INVITEd with the destination's media, and the
    /// PBX's endpoint closes. The destination was offered the caller's own media in the INVITE, so both sides talk
    /// directly (through their SBC relays) from here on; the call goes on as any answered call.
    func connectApplication(_ number: Int, machine index: Int, answer: SIPResponse) {
        guard var slot = calls[number], slot.answeredHere else { return }
        let app = slot.app
        slot.winner = index
        slot.app = nil
        slot.answeredHere = false
        calls[number] = slot
        for other in slot.machines.keys.sorted() where other != index { callEvent(number, machine: other, .callerCancel) }
        if let app {
            app.step += 1
            cancelApplicationTimer(number, app)
            app.endpoint.close()
        }
        guard var offer = try? SessionDescription(String(decoding: answer.body, as: UTF8.self)) else {
            logger.warning("the destination answered without SDP: hung up", metadata: ["call-id": "\(slot.callID)"])
            callEvent(number, machine: index, .timerFired(.sessionExpiry))
            return
        }
        // The caller's SDP session goes on (its origin, the next version) with the destination's media: the PBX's own
        // session after a menu, the transferor's after a transfer.
        let family = media.address.contains(":") ? "IP6" : "IP4"
        let previous = slot.callerOrigin ?? "- \(app?.sessionID ?? "1") 1 IN \(family) \(media.address)"
        if let line = offer.sessionLines.firstIndex(where: { $0.type == "o" }) {
            offer.sessionLines[line].value = Self.nextVersion(of: previous)
            calls[number]?.callerOrigin = offer.sessionLines[line].value
        }
        if slot.transfer != nil {
            transferDone(number)
        } else {
            logger.info("menu destination answered: caller connected", metadata: ["call-id": "\(slot.callID)", "tenant": "\(slot.tenant)"])
        }
        callEvent(number, machine: index, own: .caller, offer: Array(offer.text.utf8))
    }

    /// The `o=` value of an SDP body, when it is one.
    static func origin(_ body: [UInt8]) -> String? {
        guard !body.isEmpty, let text = String(validating: body, as: UTF8.self), let sdp = try? SessionDescription(text) else { return nil }
        return sdp.sessionLines.first { $0.type == "o" }?.value
    }

    /// An origin line with its session version one higher (RFC 3264 §8: a changed session in the same dialog).
    static func nextVersion(of origin: String) -> String {
        var parts = origin.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard parts.count >= 6, let version = UInt64(parts[2]) else { return origin }
        parts[2] = String(version &+ 1)
        return parts.joined(separator: " ")
    }

    /// The application (or the destination it rang) failed with `status`: the caller hears a short busy tone and the
    /// PBX hangs up.
    func failApplication(_ number: Int, status: Int) {
        guard let app = calls[number]?.app else { return }
        app.step += 1
        app.mode = .ending
        var busy = ToneGenerator(frequencies: [425], amplitude: 4000)
        let tone = (0..<3).flatMap { _ in busy.next(milliseconds: 250) + [Int16](repeating: 0, count: 2000) }
        say(number, app, [.audio(tone)]) { calls in calls.finishApplication(number, status: status, reason: "destination failed") }
    }

    /// Ends a call the PBX answered: BYE to the caller (unless it hung up), the endpoint closed.
    func finishApplication(_ number: Int, status: Int, reason: String, sendBye: Bool = true) {
        guard let slot = calls.removeValue(forKey: number) else { return }
        if let app = slot.app {
            app.step += 1
            app.mode = .ending
            app.endpoint.close()
        }
        if !slot.machines.isEmpty {
            // Destinations still ringing for a menu choice stop.
            calls[number] = slot
            calls[number]?.cancelled = true
            calls[number]?.app = nil
            for machine in slot.machines.keys.sorted() { callEvent(number, machine: machine, .callerCancel) }
            calls.removeValue(forKey: number)
        }
        if sendBye { sendByeToCaller(slot) }
        outcomes["answered"]?.increment()
        logger.info("call ended", metadata: [
            "call-id": "\(slot.callID)", "tenant": "\(slot.tenant)", "caller": "\(slot.caller)", "route": "\(slot.route)", "status": "\(status)",
            "by": "\(sendBye ? "pbx" : "caller")", "reason": "\(reason)",
        ])
        loop.layer.endCall(number)
    }

    /// A BYE in the caller's dialog, from the PBX as its UAS (From its To with our tag, To its From, to its Contact,
    /// along its Record-Route as received).
    func sendByeToCaller(_ slot: Slot) {
        var headers = SIPHeaders()
        if let to = slot.invite.headers.first(.to) { headers.append(.from, "\(to.valueString);tag=\(slot.callerLocalTag)") }
        if let from = slot.invite.headers.first(.from) { headers.append(.to, from.valueString) }
        headers.append(.callID, slot.callID)
        headers.append(.cseq, "\(slot.callerCSeq + 1) BYE")
        headers.append(.maxForwards, "70")
        for route in ((try? slot.invite.headers.recordRoute()) ?? []) { headers.append(.route, route.description) }
        headers.append(.contentLength, "0")
        var target = slot.invite.uri
        if case .addresses(let contacts)? = try? slot.invite.headers.contacts(), let contact = contacts.first { target = contact.uri }
        loop.layer.send(SIPRequest(method: .bye, uri: target, headers: headers), on: nil, to: .source(slot.source), purpose: .layer)
    }

    /// Ends a call not answered yet with `status`.
    func endUnanswered(_ number: Int, status: Int, reason: String) {
        guard let slot = calls.removeValue(forKey: number) else { return }
        loop.layer.respond(InviteServerTransaction.response(status, reason, to: slot.invite, toTag: slot.callerLocalTag), on: slot.inviteTransaction)
        outcomes["failed"]?.increment()
        loop.layer.endCall(number)
    }

    // MARK: - Voicemail: leaving a message

    func startDeposit(_ number: Int, _ app: PBXApp, box: String) {
        guard let slot = calls[number] else { return }
        app.mode = .deposit(box: box)
        let store = voicemail
        let tenant = slot.tenant
        afterwards(number, app) {
            try? await store.greeting(tenant: tenant, extensionNumber: box)
        } then: { calls, app, greeting in
            let pieces: [Speech] =
                greeting.map { [.audio($0)] }
                ?? [.say("The person at extension \(box.map(String.init).joined(separator: " ")) is not available. Please leave a message after the tone. Press pound when you are done.")]
            calls.say(number, app, pieces) { calls in calls.startRecording(number, app, box: box) }
        }
    }

    func startRecording(_ number: Int, _ app: PBXApp, box: String) {
        app.step += 1
        let step = app.step
        app.endpoint.sender.play(Self.beep) { [unowned self] in
            guard self.calls[number]?.app === app, app.step == step else { return }
            app.recording = []
            app.silentMilliseconds = 0
            app.endpoint.onAudio = { [unowned self] frame in self.recorded(number, app, box: box, frame) }
            self.startApplicationTimer(number, app, seconds: self.applications.maximumMessageSeconds)
            self.loop.flush()
        }
    }

    /// A frame of the caller's audio while recording: kept; a long enough silence ends the recording.
    private func recorded(_ number: Int, _ app: PBXApp, box: String, _ frame: [Int16]) {
        guard app.recording != nil else { return }
        app.recording?.append(contentsOf: frame)
        if Self.isSilent(frame) {
            app.silentMilliseconds += frame.count / 8
            if app.silentMilliseconds >= applications.silenceSeconds * 1000 {
                finishRecording(number, app, box: box, callerLeft: false)
            }
        } else {
            app.silentMilliseconds = 0
        }
    }

    /// Below about -50 dBFS (RMS): silence, or a line's noise.
    static func isSilent(_ frame: [Int16]) -> Bool {
        guard !frame.isEmpty else { return true }
        let energy = frame.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(frame.count)
        return energy < 100 * 100
    }

    /// The recording ends (the caller pressed #, hung up, fell silent, or the maximum length): kept when it holds at
    /// least a second of sound (the silence at its end cut), its deliveries queued, the box's phones told.
    func finishRecording(_ number: Int, _ app: PBXApp, box: String, callerLeft: Bool) {
        guard var samples = app.recording, let slot = calls[number] else { return }
        app.endpoint.flushAudio()
        samples = app.recording ?? samples
        app.recording = nil
        app.endpoint.onAudio = nil
        cancelApplicationTimer(number, app)
        app.step += 1
        let trailing = min(samples.count, app.silentMilliseconds * 8)
        samples.removeLast(trailing)
        let kept = samples.count >= 8000
        let tenant = slot.tenant
        let caller = slot.caller
        if case .deposit = app.mode {
            saveMessage(tenant: tenant, box: box, caller: caller, samples: samples, kept: kept, callID: slot.callID)
            guard !callerLeft else { return }
            app.mode = .ending
            say(number, app, [.say(kept ? "Your message has been saved. Goodbye." : "No message was recorded. Goodbye.")]) { calls in
                calls.finishApplication(number, status: 200, reason: kept ? "message recorded" : "nothing recorded")
            }
        } else if case .access = app.mode {
            // A new greeting.
            let store = voicemail
            let greeting = samples
            guard kept else {
                say(number, app, [.say("No greeting was recorded.")]) { calls in calls.accessState(number, app, box: box, .main) }
                return
            }
            changeBox(number, app, box: box, "greeting", done: "Your greeting is saved.") {
                try await store.setGreeting(tenant: tenant, extensionNumber: box, samples: greeting)
            }
        }
    }

    private func saveMessage(tenant: String, box: String, caller: String, samples: [Int16], kept: Bool, callID: String) {
        guard kept else {
            logger.info("voicemail: nothing recorded", metadata: ["call-id": "\(callID)", "tenant": "\(tenant)", "extension": "\(box)"])
            return
        }
        var deliveries: [(channel: String, target: String)] = []
        if let email = catalogs.catalog.extension(box, of: tenant)?.email, !email.isEmpty { deliveries.append(("email", email)) }
        if !applications.webhook.isEmpty { deliveries.append(("webhook", applications.webhook)) }
        let store = voicemail
        let logger = self.logger
        let queued = deliveries
        offLoop {
            do {
                let message = try await store.save(
                    tenant: tenant, extensionNumber: box, caller: caller, samples: samples, deliveries: queued, now: Date())
                logger.info("voicemail recorded", metadata: [
                    "call-id": "\(callID)", "tenant": "\(tenant)", "extension": "\(box)", "message": "\(message.id)",
                    "duration-ms": "\(message.durationMilliseconds)", "file": "\(message.file)",
                ])
                return true
            } catch {
                logger.error("voicemail NOT saved", metadata: ["call-id": "\(callID)", "tenant": "\(tenant)", "extension": "\(box)", "reason": "\(error)"])
                return false
            }
        } then: { calls, saved in
            if saved { calls.notifyMessageWaiting(tenant: tenant, box: box) }
        }
    }

    // MARK: - Voicemail: the owner's box

    func accessState(_ number: Int, _ app: PBXApp, box: String, _ state: PBXApp.AccessState) {
        guard let slot = calls[number] else { return }
        app.step += 1
        app.mode = .access(box: box, state: state)
        app.keys = ""
        cancelApplicationTimer(number, app)
        switch state {
        case .pin:
            say(number, app, [.say("Please enter your PIN, then press pound.")]) { calls in calls.startApplicationTimer(number, app, seconds: 10) }
        case .main:
            let store = voicemail
            let tenant = slot.tenant
            afterwards(number, app) {
                try? await store.counts(tenant: tenant, extensionNumber: box)
            } then: { calls, app, counts in
                let new = counts?.new ?? 0
                let saved = counts?.saved ?? 0
                let text =
                    "You have \(new) new \(new == 1 ? "message" : "messages") and \(saved) saved \(saved == 1 ? "message" : "messages"). "
                    + "Press 1 for new messages, 2 for saved messages, 3 to record your greeting, 4 to change your PIN, or star to hang up."
                calls.say(number, app, [.say(text)]) { calls in calls.startApplicationTimer(number, app, seconds: 10) }
            }
        case .message:
            guard app.messages.indices.contains(app.messageIndex) else {
                say(number, app, [.say("No more messages.")]) { calls in calls.accessState(number, app, box: box, .main) }
                return
            }
            let message = app.messages[app.messageIndex]
            let store = voicemail
            let logger = self.logger
            afterwards(number, app) {
                do {
                    return try WAVFile(bytes: try await store.recording(message)).samples
                } catch {
                    logger.error("voicemail message unreadable", metadata: ["message": "\(message.id)", "reason": "\(error)"])
                    return []
                }
            } then: { calls, app, audio in
                let from = message.caller.isEmpty ? "" : " from \(message.caller.map(String.init).joined(separator: " "))"
                calls.say(number, app, [
                    .say("Message \(app.messageIndex + 1)\(from)."), .audio(audio),
                    .say("Press 5 to hear it again, 7 to delete it, 9 to save it, 6 for the next message, or star for the main menu."),
                ]) { calls in calls.startApplicationTimer(number, app, seconds: 10) }
            }
        case .greeting:
            say(number, app, [.say("Record your greeting after the tone, then press pound.")]) { calls in
                app.mode = .access(box: box, state: .greeting)
                calls.startRecordingGreeting(number, app, box: box)
            }
        case .newPIN:
            say(number, app, [.say("Enter your new PIN of 4 to 8 digits, then press pound.")]) { calls in
                calls.startApplicationTimer(number, app, seconds: 10)
            }
        }
    }

    private func startRecordingGreeting(_ number: Int, _ app: PBXApp, box: String) {
        app.step += 1
        let step = app.step
        app.endpoint.sender.play(Self.beep) { [unowned self] in
            guard self.calls[number]?.app === app, app.step == step else { return }
            app.recording = []
            app.silentMilliseconds = 0
            app.endpoint.onAudio = { [unowned self] frame in self.recorded(number, app, box: box, frame) }
            self.startApplicationTimer(number, app, seconds: min(60, self.applications.maximumMessageSeconds))
            self.loop.flush()
        }
    }

    private func accessDigit(_ number: Int, _ app: PBXApp, box: String, _ state: PBXApp.AccessState, _ key: Character) {
        guard let slot = calls[number] else { return }
        switch state {
        case .pin:
            app.step += 1
            app.endpoint.sender.stop()
            if key == "#" { return checkPIN(number, app, box: box, final: true) }
            app.keys.append(key)
            startApplicationTimer(number, app, seconds: 5)
            if app.keys.count >= 4 { checkPIN(number, app, box: box, final: app.keys.count >= 8) }
        case .main:
            app.endpoint.sender.stop()
            switch key {
            case "1", "2":
                let store = voicemail
                let tenant = slot.tenant
                app.step += 1
                cancelApplicationTimer(number, app)
                let folder = key == "1" ? "new" : "saved"
                afterwards(number, app) {
                    (try? await store.messages(tenant: tenant, extensionNumber: box, folder: folder)) ?? []
                } then: { calls, app, messages in
                    app.messages = messages
                    app.messageIndex = 0
                    calls.accessState(number, app, box: box, .message)
                }
            case "3": accessState(number, app, box: box, .greeting)
            case "4": accessState(number, app, box: box, .newPIN)
            case "*": goodbye(number, app)
            default: accessState(number, app, box: box, .main)
            }
        case .message:
            app.endpoint.sender.stop()
            let message = app.messages[app.messageIndex]
            switch key {
            case "5": accessState(number, app, box: box, .message)
            case "6":
                app.messageIndex += 1
                accessState(number, app, box: box, .message)
            case "7", "9":
                app.step += 1
                cancelApplicationTimer(number, app)
                let step = app.step
                let store = voicemail
                let logger = self.logger
                let tenant = slot.tenant
                let current = NIOLoopBound(app, eventLoop: loop.eventLoop)
                offLoop {
                    do {
                        if key == "7" { try await store.delete(message.id) } else { try await store.markSaved(message.id) }
                        logger.info(key == "7" ? "voicemail deleted" : "voicemail saved", metadata: [
                            "tenant": "\(tenant)", "extension": "\(box)", "message": "\(message.id)",
                        ])
                        return true
                    } catch {
                        logger.error("voicemail not changed", metadata: ["tenant": "\(tenant)", "message": "\(message.id)", "reason": "\(error)"])
                        return false
                    }
                } then: { calls, done in
                    // The phones' lamps change even when the owner has hung up meanwhile.
                    if done { calls.notifyMessageWaiting(tenant: tenant, box: box) }
                    let app = current.value
                    guard calls.calls[number]?.app === app, app.step == step else { return }
                    let text = done ? (key == "7" ? "Message deleted." : "Message saved.") : "Sorry, that did not work."
                    calls.say(number, app, [.say(text)]) { calls in
                        app.messageIndex += 1
                        calls.accessState(number, app, box: box, .message)
                    }
                }
            case "*": accessState(number, app, box: box, .main)
            default: accessState(number, app, box: box, .message)
            }
        case .greeting:
            if key == "#", app.recording != nil { finishRecording(number, app, box: box, callerLeft: false) }
        case .newPIN:
            app.step += 1
            app.endpoint.sender.stop()
            if key == "#" || app.keys.count >= 8 { return setNewPIN(number, app, box: box) }
            app.keys.append(key)
            startApplicationTimer(number, app, seconds: 5)
        }
    }

    private func accessTimeout(_ number: Int, _ app: PBXApp, box: String, _ state: PBXApp.AccessState) {
        switch state {
        case .pin:
            if app.keys.isEmpty {
                app.tries += 1
                if app.tries >= 3 { return goodbye(number, app) }
                accessState(number, app, box: box, .pin)
            } else {
                checkPIN(number, app, box: box, final: true)
            }
        case .main, .message:
            app.tries += 1
            if app.tries >= 6 { return goodbye(number, app) }
            accessState(number, app, box: box, state)
        case .greeting:
            if app.recording != nil { finishRecording(number, app, box: box, callerLeft: false) }
        case .newPIN:
            setNewPIN(number, app, box: box)
        }
    }

    /// Checks the keys entered as the box's PIN: right, the main menu; wrong on a final check (#, timeout, 8 keys),
    /// another try (three in all), then goodbye.
    private func checkPIN(_ number: Int, _ app: PBXApp, box: String, final: Bool) {
        guard let slot = calls[number], !app.checkingPIN else { return }
        let pin = app.keys
        let store = voicemail
        let tenant = slot.tenant
        let catalogPIN = catalogs.catalog.extension(box, of: tenant)?.voicemailPIN ?? ""
        app.checkingPIN = true
        afterwards(number, app, anyStep: true) {
            (try? await store.checkPIN(tenant: tenant, extensionNumber: box, pin: pin, catalogPIN: catalogPIN)) ?? false
        } then: { calls, app, right in
            app.checkingPIN = false
            guard case .access(_, .pin) = app.mode else { return }
            if right {
                app.tries = 0
                calls.logger.info("voicemail box opened", metadata: ["tenant": "\(tenant)", "extension": "\(box)"])
                calls.accessState(number, app, box: box, .main)
            } else if final {
                app.tries += 1
                calls.logger.notice("voicemail: wrong PIN", metadata: ["tenant": "\(tenant)", "extension": "\(box)", "try": "\(app.tries)"])
                app.step += 1
                if app.tries >= 3 { return calls.goodbye(number, app) }
                app.keys = ""
                calls.say(number, app, [.say("That PIN is not right.")]) { calls in calls.accessState(number, app, box: box, .pin) }
            } else if app.keys != pin, app.keys.count >= 4 {
                // More keys came while this one was checked.
                calls.checkPIN(number, app, box: box, final: app.keys.count >= 8)
            }
        }
    }

    private func setNewPIN(_ number: Int, _ app: PBXApp, box: String) {
        guard let slot = calls[number] else { return }
        let pin = app.keys
        cancelApplicationTimer(number, app)
        guard (4...8).contains(pin.count), pin.allSatisfy(\.isASCIIDigit) else {
            say(number, app, [.say("A PIN has 4 to 8 digits. Your PIN is not changed.")]) { calls in calls.accessState(number, app, box: box, .main) }
            return
        }
        let store = voicemail
        let tenant = slot.tenant
        changeBox(number, app, box: box, "PIN", done: "Your PIN is changed.") {
            try await store.setPIN(tenant: tenant, extensionNumber: box, pin: pin)
        }
    }

    /// Changes the owner's greeting or PIN off the loop (logged either way, even when the owner hung up meanwhile),
    /// tells the owner whether it worked, and goes back to the main menu.
    private func changeBox(
        _ number: Int, _ app: PBXApp, box: String, _ what: String, done: String, _ change: @escaping @Sendable () async throws -> Void
    ) {
        guard let tenant = calls[number]?.tenant else { return }
        app.step += 1
        // Keys pressed while the change is stored are main-menu choices (the owner has finished this entry): they
        // must not be taken as more PIN digits, as a loaded machine showed. A choice made meanwhile wins over the
        // confirmation below, which is skipped; the change is logged either way.
        app.mode = .access(box: box, state: .main)
        app.keys = ""
        cancelApplicationTimer(number, app)
        let logger = self.logger
        afterwards(number, app) {
            do {
                try await change()
                logger.notice("voicemail \(what) changed", metadata: ["tenant": "\(tenant)", "extension": "\(box)"])
                return true
            } catch {
                logger.error("voicemail \(what) NOT changed", metadata: ["tenant": "\(tenant)", "extension": "\(box)", "reason": "\(error)"])
                return false
            }
        } then: { calls, app, changed in
            calls.say(number, app, [.say(changed ? done : "Sorry, your \(what) is not changed.")]) { calls in
                calls.accessState(number, app, box: box, .main)
            }
        }
    }

    private func goodbye(_ number: Int, _ app: PBXApp) {
        app.step += 1
        app.mode = .ending
        cancelApplicationTimer(number, app)
        say(number, app, [.say("Goodbye.")]) { calls in calls.finishApplication(number, status: 200, reason: "goodbye") }
    }

    // MARK: - Message waiting (RFC 3842)

    /// Tells every registered contact of `box` how many messages wait: an unsolicited `NOTIFY` (`Event:
    /// message-summary`) through the SBC holding each phone's flow, as phones expect from a hosted PBX.
    func notifyMessageWaiting(tenant: String, box: String) {
        let store = voicemail
        let bindings = self.bindings
        let logger = self.logger
        offLoop { () -> (new: Int, saved: Int, contacts: [Binding])? in
            do {
                let counts = try await store.counts(tenant: tenant, extensionNumber: box)
                let contacts = try await bindings.bindings(tenant: tenant, extensionNumber: box, now: Int64(Date().timeIntervalSince1970))
                return (counts.new, counts.saved, contacts)
            } catch {
                logger.warning("message-waiting not sent: the box could not be read", metadata: ["tenant": "\(tenant)", "extension": "\(box)", "reason": "\(error)"])
                return nil
            }
        } then: { calls, found in
            guard let found else { return }
            calls.sendNotifies(tenant: tenant, box: box, new: found.new, saved: found.saved, contacts: found.contacts)
        }
    }

    private func sendNotifies(tenant: String, box: String, new: Int, saved: Int, contacts: [Binding]) {
        let domain = catalogs.catalog.tenants.first { $0.name == tenant }?.domain ?? tenant
        let body = Array(
            "Messages-Waiting: \(new > 0 ? "yes" : "no")\r\nMessage-Account: sip:\(applications.voicemailCode)@\(domain)\r\nVoice-Message: \(new)/\(saved) (0/0)\r\n".utf8)
        for binding in contacts {
            guard let target = Self.target(binding, timeoutMilliseconds: 0) else { continue }
            let uri = SIPURI(user: target.number, host: target.host, port: UInt16(target.port))
            var headers = SIPHeaders()
            headers.append(.from, "<sip:\(box)@\(domain)>;tag=\(loop.layer.makeTag())")
            headers.append(.to, "<sip:\(box)@\(domain)>")
            headers.append(.callID, loop.layer.makeCallID())
            headers.append(.cseq, "1 NOTIFY")
            headers.append(.maxForwards, "70")
            headers.append(.contact, "<sip:\(loop.layer.configuration.sentBy[.udp] ?? "")>")
            headers.append(.event, "message-summary")
            headers.append(.subscriptionState, "active;expires=3600")
            headers.append(.contentType, "application/simple-message-summary")
            headers.append(.contentLength, "\(body.count)")
            let token = nextNotifyToken
            nextNotifyToken = nextNotifyToken >= Int(Int32.max) ? Self.firstNotifyToken : nextNotifyToken + 1
            let kind = SIPTransportProtocol(rawValue: target.transport) ?? .udp
            if loop.layer.send(
                SIPRequest(method: .notify, uri: uri, headers: headers, body: body), on: nil,
                to: .address(host: target.host, port: target.port, transport: kind), purpose: .standalone(token)) != nil
            {
                mwiNotifies["sent"]?.increment()
            }
        }
        logger.info("message waiting", metadata: [
            "tenant": "\(tenant)", "extension": "\(box)", "new": "\(new)", "saved": "\(saved)", "contacts": "\(contacts.count)",
        ])
    }
}
