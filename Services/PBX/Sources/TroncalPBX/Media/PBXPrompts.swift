internal import Foundation
internal import Logging
internal import Synchronization
internal import TroncalMedia

/// The audio of prompts, 8 kHz: text spoken by `espeak-ng` (its 22,050 Hz output resampled), WAV files from the prompts
/// directory. Rendered once and kept: an import renders its menus' prompts before it is accepted (a prompt that cannot
/// be made refuses the import with the reason), the PBX renders its own phrases (voicemail) at start, and anything
/// missing is rendered on first use.
final class PBXPrompts: Sendable {
    let directory: URL
    /// The text-to-speech command (`espeak-ng`, or a path to it) and its voice.
    let speech: String
    let voice: String
    let logger: Logger
    private let cache = Mutex<[PBXPrompt: [Int16]]>([:])

    init(directory: URL, speech: String = "espeak-ng", voice: String = "en-us", logger: Logger) {
        self.directory = directory
        self.speech = speech
        self.voice = voice
        self.logger = logger
    }

    /// The audio of `prompt` when already rendered.
    func cached(_ prompt: PBXPrompt) -> [Int16]? { cache.withLock { $0[prompt] } }

    /// The audio of `prompt`, rendered now when it is not yet.
    func audio(_ prompt: PBXPrompt) async throws -> [Int16] {
        if let known = cached(prompt) { return known }
        let samples: [Int16]
        switch prompt {
        case .say(let words): samples = try await speak(words)
        case .file(let name):
            let url = directory.appendingPathComponent(name)
            do {
                samples = try WAVFile(contentsOf: url).samples
            } catch {
                throw PromptError("prompt file \(url.path): \(error)")
            }
        }
        guard !samples.isEmpty else { throw PromptError("prompt \(prompt) holds no audio") }
        cache.withLock { $0[prompt] = samples }
        return samples
    }

    /// Renders every prompt of `menus`; throws naming the first one that cannot be made.
    func render(_ menus: [PBXCatalog.Menu]) async throws {
        for menu in menus {
            do {
                _ = try await audio(menu.prompt)
            } catch {
                throw PromptError("menu \(menu.name) of \(menu.tenant): \(error)")
            }
        }
    }

    /// `words` spoken by espeak-ng into a temporary WAV, read back and resampled to 8 kHz.
    private func speak(_ words: String) async throws -> [Int16] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("troncal-prompt-\(UUID().uuidString).wav")
        defer { try? FileManager.default.removeItem(at: file) }
        let command = speech
        let voice = self.voice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            let process = Process()
            if command.contains("/") {
                process.executableURL = URL(fileURLWithPath: command)
                process.arguments = ["-v", voice, "-s", "150", "-w", file.path, "--", words]
            } else {
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = [command, "-v", voice, "-s", "150", "-w", file.path, "--", words]
            }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
                ProcessDeadline.kill(process, after: 30)
            } catch {
                continuation.resume(throwing: PromptError("\(command) could not be started: \(error) (install Debian's espeak-ng, or use file: prompts)"))
            }
        }
        guard status == 0 else {
            throw PromptError("\(command) failed with status \(status)\(status == 127 ? ": not installed (Debian's espeak-ng), or use file: prompts" : "")")
        }
        let wav = try WAVFile(bytes: Array(try Data(contentsOf: file)), requiredRate: nil)
        // espeak-ng speaks at full scale; telephone prompts sit around -12 dBFS.
        return Resampler.resample(wav.samples, from: wav.sampleRate).map { Int16(Int($0) / 2) }
    }
}

struct PromptError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
