# `scripts/bench monitor`: samples a collection round ingests per second (Prometheus text parsed, the site's series
# built, the alarm rules evaluated and stored, the samples written in bulk) and the dashboard's instances page time,
# with 1,000 instances' worth of series, on SQLite and on a throwaway PostgreSQL (scripts/lib/postgres.sh, port 54349),
# in one run of the monitor's own code (Benchmarks/MonitorBench, release).

bench_monitor() {
    local instances="${1:-1000}" rounds="${2:-10}"
    echo "troncal: building MonitorBench (release)" >&2
    swift build -c release --scratch-path .build-release --product MonitorBench >&2
    local bin
    bin="$(swift build -c release --scratch-path .build-release --show-bin-path)"
    export TRONCAL_TEST_PG_PORT=54349
    source scripts/lib/postgres.sh
    troncal_pg_start
    BENCH_WORK="$(mktemp -d /tmp/troncal-bench-monitor.XXXXXX)"
    trap 'rm -rf "$BENCH_WORK"; troncal_pg_stop' EXIT
    echo "== monitor: $instances instances, $rounds collection rounds =="
    "$bin/MonitorBench" "$BENCH_WORK" "$instances" "$rounds" "$TRONCAL_TEST_POSTGRES_URL" 2> >(grep -v "CancellationError" >&2)
}
