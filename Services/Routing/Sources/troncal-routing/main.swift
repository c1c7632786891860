import TroncalRuntime
import TroncalRouting

await ServiceMain.run(RoutingService.self)
