import TroncalRuntime
import TroncalPBX

await ServiceMain.run(PBXService.self)
