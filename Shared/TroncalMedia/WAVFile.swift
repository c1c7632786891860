public import Foundation

/// A mono 8 kHz WAV file as the PBX keeps prompts, music on hold and voicemail: 16-bit linear PCM (format 1), or
/// G.711 µ-law (format 7) and A-law (format 6), one byte per sample. Reading accepts any RIFF/WAVE file with a
/// `fmt ` chunk of one of those formats and a `data` chunk (other chunks are skipped); the samples come back as 16-bit
/// PCM whatever the file held, at 8 kHz only (what is played and recorded). Anything else is refused with the
/// reason (a prompt exported at 44.1 kHz stereo must be converted first, e.g. `sox in.wav -r 8000 -c 1 -b 16 out.wav`).
public struct WAVFile: Sendable, Hashable {
    public enum Format: UInt16, Sendable, Hashable {
        case pcm16 = 1
        case aLaw = 6
        case muLaw = 7
    }

    public var format: Format
    public var sampleRate: Int
    /// The audio as 16-bit linear samples.
    public var samples: [Int16]

    public struct ReadError: Error, Sendable, Hashable, CustomStringConvertible {
        public var reason: String
        public var description: String { "not a usable WAV file: \(reason)" }
        public init(reason: String) { self.reason = reason }
    }

    public init(format: Format = .pcm16, sampleRate: Int = 8000, samples: [Int16]) {
        self.format = format
        self.sampleRate = sampleRate
        self.samples = samples
    }

    public var duration: Duration { .milliseconds(samples.count * 1000 / max(1, sampleRate)) }

    /// Parses a WAV file's bytes; a rate other than `requiredRate` is refused (nil: any rate, for a file resampled after).
    public init(bytes: [UInt8], requiredRate: Int? = 8000) throws(ReadError) {
        func u16(_ offset: Int) -> Int { Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 }
        func u32(_ offset: Int) -> Int { u16(offset) | u16(offset + 2) << 16 }
        guard bytes.count >= 12, Array(bytes[0..<4]) == Array("RIFF".utf8), Array(bytes[8..<12]) == Array("WAVE".utf8) else {
            throw ReadError(reason: "no RIFF/WAVE header")
        }
        var offset = 12
        var format: Format?
        var rate = 0
        var bits = 0
        var data: ArraySlice<UInt8>?
        while offset + 8 <= bytes.count {
            let id = String(decoding: bytes[offset..<offset + 4], as: UTF8.self)
            let size = u32(offset + 4)
            let body = offset + 8
            guard size <= bytes.count - body || id == "data" else { throw ReadError(reason: "chunk '\(id)' runs past the end of the file") }
            let end = min(bytes.count, body + size)
            switch id {
            case "fmt ":
                guard size >= 16 else { throw ReadError(reason: "a 'fmt ' chunk of \(size) bytes") }
                var tag = UInt16(u16(body))
                // WAVE_FORMAT_EXTENSIBLE: the real format is the first two bytes of the sub-format GUID.
                if tag == 0xFFFE, size >= 40 { tag = UInt16(u16(body + 24)) }
                guard let known = Format(rawValue: tag) else {
                    throw ReadError(reason: "format \(tag) (only 16-bit PCM, µ-law and A-law are read)")
                }
                let channels = u16(body + 2)
                guard channels == 1 else { throw ReadError(reason: "\(channels) channels (mono only)") }
                format = known
                rate = u32(body + 4)
                bits = u16(body + 14)
            case "data":
                data = bytes[body..<end]
            default:
                break
            }
            // Chunks are padded to an even size.
            offset = body + size + (size & 1)
        }
        guard let format else { throw ReadError(reason: "no 'fmt ' chunk") }
        guard let data else { throw ReadError(reason: "no 'data' chunk") }
        // Played and recorded at 8 kHz: any other rate would play at the wrong speed.
        if let requiredRate, rate != requiredRate { throw ReadError(reason: "a sample rate of \(rate) Hz (\(requiredRate) only)") }
        guard rate > 0 else { throw ReadError(reason: "a sample rate of 0 Hz") }
        switch format {
        case .pcm16:
            guard bits == 16 else { throw ReadError(reason: "\(bits)-bit PCM (16-bit only)") }
            var samples: [Int16] = []
            samples.reserveCapacity(data.count / 2)
            var index = data.startIndex
            while index + 1 < data.endIndex {
                samples.append(Int16(bitPattern: UInt16(data[index]) | UInt16(data[index + 1]) << 8))
                index += 2
            }
            self.init(format: format, sampleRate: rate, samples: samples)
        case .muLaw, .aLaw:
            guard bits == 8 else { throw ReadError(reason: "\(bits)-bit G.711 (8-bit only)") }
            let codec: G711 = format == .muLaw ? .muLaw : .aLaw
            self.init(format: format, sampleRate: rate, samples: codec.decode(data))
        }
    }

    public init(contentsOf url: URL) throws {
        try self.init(bytes: Array(try Data(contentsOf: url)))
    }

    /// The file's bytes in its `format`: a RIFF header, a 16-byte `fmt ` chunk (18 with `cbSize` for G.711) and
    /// the `data` chunk.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        func u16(_ value: Int) { out += [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)] }
        func u32(_ value: Int) { u16(value & 0xFFFF); u16(value >> 16 & 0xFFFF) }
        let bytesPerSample = format == .pcm16 ? 2 : 1
        let dataSize = samples.count * bytesPerSample
        let fmtSize = format == .pcm16 ? 16 : 18
        out += Array("RIFF".utf8)
        u32(4 + 8 + fmtSize + 8 + dataSize + (dataSize & 1))
        out += Array("WAVEfmt ".utf8)
        u32(fmtSize)
        u16(Int(format.rawValue))
        u16(1)
        u32(sampleRate)
        u32(sampleRate * bytesPerSample)
        u16(bytesPerSample)
        u16(bytesPerSample * 8)
        if fmtSize == 18 { u16(0) }
        out += Array("data".utf8)
        u32(dataSize)
        switch format {
        case .pcm16:
            out.reserveCapacity(out.count + dataSize)
            for sample in samples { u16(Int(UInt16(bitPattern: sample))) }
        case .muLaw: out += G711.muLaw.encode(samples)
        case .aLaw: out += G711.aLaw.encode(samples)
        }
        if dataSize & 1 == 1 { out.append(0) }
        return out
    }

    /// Writes the file once, whole: a temporary name in the same directory, fsync, then rename, so that a reader
    /// never sees half a file (a voicemail being saved when the disk fills is an error, never a truncated message).
    public func write(to url: URL) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UInt32.random(in: 0...UInt32.max)).tmp")
        let data = Data(bytes)
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary.path])
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            defer { try? handle.close() }
            try handle.write(contentsOf: data)
            try handle.synchronize()
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
        if rename(temporary.path, url.path) != 0 {
            let code = errno
            try? FileManager.default.removeItem(at: temporary)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
        // The rename itself is durable once the directory is synced (a saved voicemail survives a power cut).
        let directory = open(url.deletingLastPathComponent().path, O_RDONLY)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }
}
