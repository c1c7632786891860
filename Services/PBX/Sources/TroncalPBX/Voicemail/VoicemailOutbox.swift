internal import AsyncHTTPClient
internal import Foundation
internal import Logging
internal import Metrics
internal import NIOCore
internal import NIOHTTP1
internal import ServiceLifecycle
internal import TroncalRuntime

/// Delivers new voicemail: by e-mail through a sendmail-compatible command (the message on its standard input, with the
/// recording attached; exit status 0 is delivered), and by webhook (a JSON POST, 2xx is delivered). Each delivery is a
/// row of the outbox: an attempt that fails records its reason and is tried again later (the wait doubling from
/// `retrySeconds`, at most an hour), up to `maximumAttempts`, then it is `failed`; `troncal pbx voicemail list` shows
/// every one, so a delivery that fails is never silent.
struct VoicemailOutbox: Service {
    struct Settings: Sendable {
        var mailCommand: [String]
        var mailFrom: String
        var webhook: String
        var retrySeconds: Int
        var maximumAttempts: Int
    }

    let store: VoicemailStore
    let settings: Settings
    let logger: Logger

    func run() async throws {
        let retrying = Gauge(label: "troncal_pbx_voicemail_deliveries_retrying")
        let failed = Gauge(label: "troncal_pbx_voicemail_deliveries_failed_last_day")
        while !Task.isCancelledOrShuttingDown {
            await deliverDue()
            // What the monitor's VoicemailDelivery alarms read.
            if let health = try? await store.deliveryHealth(now: Int64(Date().timeIntervalSince1970)) {
                retrying.record(health.retrying)
                failed.record(health.failedLastDay)
            }
            // Once a second: a message just saved goes out within a second, and retries come due.
            await Task.sleepUnlessShuttingDown(for: .seconds(1))
        }
    }

    func deliverDue() async {
        let now = Int64(Date().timeIntervalSince1970)
        let due: [(VoicemailStore.Delivery, VoicemailStore.Message)]
        do {
            due = try await store.dueDeliveries(now: now)
        } catch {
            logger.warning("voicemail outbox could not be read; tried again", metadata: ["reason": "\(error)"])
            return
        }
        for (delivery, message) in due {
            let failure: String?
            do {
                switch delivery.channel {
                case "email": try await email(message, to: delivery.target)
                case "webhook": try await post(message, to: delivery.target)
                default: throw DeliveryError("unknown channel \(delivery.channel)")
                }
                failure = nil
            } catch {
                failure = "\(error)"
            }
            let attempts = Int(delivery.attempts) + 1
            let next: Int64? =
                failure == nil || attempts >= settings.maximumAttempts
                ? nil : Int64(Date().timeIntervalSince1970) + Int64(min(3600, settings.retrySeconds << min(attempts - 1, 12)))
            let metadata: Logger.Metadata = [
                "tenant": "\(message.tenant)", "extension": "\(message.extensionNumber)", "message": "\(message.id)", "channel": "\(delivery.channel)",
                "target": "\(delivery.target)", "attempt": "\(attempts)",
            ]
            if let failure {
                logger.warning(
                    next == nil ? "voicemail delivery failed: given up" : "voicemail delivery failed: tried again later",
                    metadata: metadata.merging(["reason": "\(failure)"]) { $1 })
            } else {
                logger.info("voicemail delivered", metadata: metadata)
            }
            Counter(
                label: "troncal_pbx_voicemail_deliveries_total",
                dimensions: [("channel", delivery.channel), ("result", failure == nil ? "delivered" : next == nil ? "failed" : "retrying")]
            ).increment()
            do {
                try await store.recordAttempt(delivery, error: failure, nextAttemptAt: next, now: Int64(Date().timeIntervalSince1970))
            } catch {
                logger.error("voicemail delivery attempt not recorded", metadata: metadata.merging(["reason": "\(error)"]) { $1 })
            }
        }
    }

    /// The e-mail: headers, a text part and the recording as an `audio/wav` attachment (base64, lines of 76).
    static func mail(_ message: VoicemailStore.Message, audio: [UInt8], from: String, to: String) -> String {
        let boundary = "troncal-\(message.id)"
        let seconds = Int(message.durationMilliseconds / 1000)
        let received = Date(timeIntervalSince1970: TimeInterval(message.receivedAt))
        let caller = message.caller.isEmpty ? "an unknown caller" : message.caller
        let encoded = Data(audio).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        return [
            "From: \(from)", "To: \(to)", "Subject: New voicemail from \(caller) (\(seconds / 60):\(String(format: "%02d", seconds % 60)))",
            "Date: \(received.formatted(.iso8601))", "Message-ID: <\(message.id)@troncal>", "MIME-Version: 1.0",
            "Content-Type: multipart/mixed; boundary=\"\(boundary)\"", "", "--\(boundary)", "Content-Type: text/plain; charset=utf-8", "",
            "Extension \(message.extensionNumber) of \(message.tenant) has a new voicemail from \(caller), \(seconds) s, received \(received.formatted(.iso8601)).",
            "", "--\(boundary)", "Content-Type: audio/wav; name=\"voicemail-\(message.id).wav\"", "Content-Transfer-Encoding: base64",
            "Content-Disposition: attachment; filename=\"voicemail-\(message.id).wav\"", "", encoded, "--\(boundary)--", "",
        ].joined(separator: "\r\n")
    }

    private func audio(_ message: VoicemailStore.Message) async throws -> [UInt8] {
        guard message.folder != "deleted" else { throw DeliveryError("the message was deleted before it was delivered") }
        return try await store.recording(message)
    }

    private func email(_ message: VoicemailStore.Message, to address: String) async throws {
        guard let executable = settings.mailCommand.first else { throw DeliveryError("no mail command (pbx.voicemailMailCommand)") }
        let text = Self.mail(message, audio: try await audio(message), from: settings.mailFrom, to: address)
        let arguments = Array(settings.mailCommand.dropFirst())
        let (status, errorText): (Int32, String) = try await withCheckedThrowingContinuation { continuation in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            let input = Pipe()
            let errors = Pipe()
            process.standardInput = input
            process.standardOutput = FileHandle.nullDevice
            process.standardError = errors
            process.terminationHandler = { process in
                let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile().prefix(300), as: UTF8.self)
                continuation.resume(returning: (process.terminationStatus, text.trimmingCharacters(in: .whitespacesAndNewlines)))
            }
            do {
                try process.run()
            } catch {
                continuation.resume(throwing: DeliveryError("the mail command \(executable) could not be started: \(error)"))
                return
            }
            // A command that hangs (an MTA waiting on a dead relay) is killed: the attempt fails and is retried.
            ProcessDeadline.kill(process, after: 60)
            // The message on its standard input; a command that exits without reading it fails the write, not the PBX.
            signal(SIGPIPE, SIG_IGN)
            try? input.fileHandleForWriting.write(contentsOf: Data(text.utf8))
            try? input.fileHandleForWriting.close()
        }
        guard status == 0 else {
            throw DeliveryError("the mail command exited with status \(status)\(errorText.isEmpty ? "" : ": \(errorText)")")
        }
    }

    private func post(_ message: VoicemailStore.Message, to url: String) async throws {
        struct Body: Encodable {
            var id, tenant, extensionNumber, caller: String
            var receivedAt: Date
            var durationMilliseconds: Int64
            var audio: String
        }
        let body = Body(
            id: message.id, tenant: message.tenant, extensionNumber: message.extensionNumber, caller: message.caller,
            receivedAt: Date(timeIntervalSince1970: TimeInterval(message.receivedAt)), durationMilliseconds: message.durationMilliseconds,
            audio: Data(try await audio(message)).base64EncodedString())
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try encoder.encode(body)))
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        } catch {
            throw DeliveryError("the webhook \(url) could not be reached: \(error)")
        }
        guard (200..<300).contains(response.status.code) else { throw DeliveryError("the webhook answered \(response.status.code)") }
    }
}

struct DeliveryError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Kills a child process still running after a deadline (its termination handler then reports the signal).
enum ProcessDeadline {
    /// Process is thread-safe for `isRunning` and `terminate`; it is not marked Sendable.
    final class Box: @unchecked Sendable {
        let process: Process
        init(_ process: Process) { self.process = process }
    }

    static func kill(_ process: Process, after seconds: Int) {
        let box = Box(process)
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(seconds)) {
            if box.process.isRunning { box.process.terminate() }
        }
    }
}
