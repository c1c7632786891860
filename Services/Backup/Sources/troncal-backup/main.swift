import TroncalRuntime
import TroncalBackup

await ServiceMain.run(BackupService.self)
