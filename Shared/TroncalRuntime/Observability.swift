public import Logging
internal import Metrics
public import Prometheus

/// Sets up logging and metrics for one process. Only executables call this, once, first thing in `main`;
/// libraries only use `Logger` and the metrics API.
public enum Observability {
    /// Installs a stderr log handler and a Prometheus metrics backend; returns the registry that `/metrics`
    /// renders.
    public static func bootstrap() -> PrometheusCollectorRegistry {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }
}
