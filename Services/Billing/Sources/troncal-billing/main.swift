import TroncalRuntime
import TroncalBilling

await ServiceMain.run(BillingService.self)
