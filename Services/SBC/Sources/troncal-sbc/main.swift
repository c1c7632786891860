import TroncalRuntime
import TroncalSBC

await ServiceMain.run(SBCService.self)
