/// The version of this Troncal build, shown by `/health`, `status` and `--version`.
public enum TroncalVersion {
    public static let current = "0.1.0"
}
