import Foundation

/// The CLI's own output (tables, JSON, instructions) goes to stdout; diagnostics go through `Logger` to stderr.
enum Output {
    static func line(_ text: String = "") {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}
