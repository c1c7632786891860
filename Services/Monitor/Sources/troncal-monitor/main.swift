import TroncalRuntime
import TroncalMonitor

await ServiceMain.run(MonitorService.self)
