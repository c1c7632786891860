import Foundation
import Testing
@testable import TroncalRuntime

@Suite("Host figures from /proc")
struct HostFiguresTests {
    @Test func theCPULineGivesTotalAndIdleJiffiesAndTheCPUsAreCounted() throws {
        let stat = """
            cpu  4705 356 584 3699 23 0 21 5 7 0
            cpu0 1393 280 277 1825 12 0 10 3 4 0
            cpu1 3312 76 307 1874 11 0 11 2 3 0
            intr 114930548 113199788 3 0 5 263 0 4 [... lots more numbers ...]
            ctxt 1990473
            """
        let (total, idle, cpus) = try HostFigures.parseStat(stat)
        #expect(total == 4705 + 356 + 584 + 3699 + 23 + 0 + 21 + 5, "guest time is inside user time: not added")
        #expect(idle == 3699 + 23)
        #expect(cpus == 2)
    }

    @Test func busyPercentageIsTheShareOfNonIdleJiffiesBetweenTwoReadings() throws {
        var earlier = try HostFigures.read(dataDirectory: "/")
        earlier.cpuTotal = 1000
        earlier.cpuIdle = 800
        var later = earlier
        later.cpuTotal = 1200
        later.cpuIdle = 850
        #expect(later.cpuPercent(since: earlier) == 75)
        #expect(earlier.cpuPercent(since: earlier) == nil, "no time passed")
    }

    @Test func loadMemoryAndNetworkFormatsAreRead() throws {
        let load = try HostFigures.parseLoadAverage("0.52 1.58 2.59 2/1046 12345\n")
        #expect(load.one == 0.52 && load.five == 1.58 && load.fifteen == 2.59)
        let memory = try HostFigures.parseMemoryInfo("MemTotal:       16303428 kB\nMemFree:         1234567 kB\nMemAvailable:   12000000 kB\n")
        #expect(memory.total == 16_303_428 * 1024)
        #expect(memory.used == (16_303_428 - 12_000_000) * 1024)
        let network = try HostFigures.parseNetworkDevices("""
            Inter-|   Receive                                                |  Transmit
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
                lo: 2776770   11307    0    0    0     0          0         0  2776770   11307    0    0    0     0       0          0
              eth0: 1215645    2751    0    0    0     0          0         0  1782404    4324    0    0    0   427       0          0
            """)
        #expect(network["lo"]?.received == 2_776_770 && network["lo"]?.sent == 2_776_770)
        #expect(network["eth0"]?.received == 1_215_645 && network["eth0"]?.sent == 1_782_404)
    }

    @Test(arguments: [
        ("stat", "intr 1 2 3\n"),
        ("loadavg", "not numbers\n"),
        ("meminfo", "MemTotal: 100 kB\n"),
        ("net/dev", "  eth0: 1 2 3\n"),
    ])
    func aTruncatedOrUnexpectedFileIsAClearErrorNamingIt(_ file: String, _ text: String) {
        let error: HostFiguresError?
        do {
            switch file {
            case "stat": _ = try HostFigures.parseStat(text)
            case "loadavg": _ = try HostFigures.parseLoadAverage(text)
            case "meminfo": _ = try HostFigures.parseMemoryInfo(text)
            default: _ = try HostFigures.parseNetworkDevices(text)
            }
            error = nil
        } catch let caught {
            error = caught
        }
        #expect(error?.description.contains("/proc/\(file)") == true, "\(String(describing: error))")
    }

    @Test func aLiveReadingMatchesWhatTheKernelAndTheFileSystemSay() throws {
        let directory = FileManager.default.temporaryDirectory.path
        let figures = try HostFigures.read(dataDirectory: directory)
        #expect(figures.cpuCount == ProcessInfo.processInfo.activeProcessorCount)
        // MemTotal does not move; used memory does, so only its bounds are checked.
        #expect(figures.memoryTotalBytes == ProcessInfo.processInfo.physicalMemory)
        #expect(figures.memoryUsedBytes > 0 && figures.memoryUsedBytes < figures.memoryTotalBytes)
        let attributes = try FileManager.default.attributesOfFileSystem(forPath: directory)
        let size = try #require(attributes[.systemSize] as? NSNumber).uint64Value
        #expect(figures.diskTotalBytes == size)
        #expect(figures.diskUsedBytes <= figures.diskTotalBytes)
        #expect(figures.network["lo"] != nil, "loopback is always there")
    }
}
