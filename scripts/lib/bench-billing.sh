# `scripts/bench billing`: CDRs stored per second by troncal-billing on PostgreSQL, sent over the mutual-TLS link as the SBC
# sends them, against a plain COPY of the same rows, in one run. Sourced by scripts/bench; starts its own throwaway
# PostgreSQL (scripts/lib/postgres.sh, port 54339) and a release build of troncal, troncal-billing and BillingBench.

source scripts/lib/bench-common.sh

bench_billing() {
    local count="${1:-20000}" concurrency="${2:-16}"
    echo "troncal: building troncal, troncal-billing and BillingBench (release)" >&2
    for product in troncal troncal-billing BillingBench; do
        swift build -c release --scratch-path .build-release --product "$product" >&2
    done
    local bin
    bin="$(swift build -c release --scratch-path .build-release --show-bin-path)"
    export TRONCAL_TEST_PG_PORT=54339
    source scripts/lib/postgres.sh
    troncal_pg_start
    BENCH_WORK="$(mktemp -d /tmp/troncal-bench-billing.XXXXXX)"
    BENCH_PIDS=()
    trap 'for pid in "${BENCH_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done; rm -rf "$BENCH_WORK"; troncal_pg_stop' EXIT
    local work="$BENCH_WORK"
    mkdir -p "$work/site"
    cat > "$work/site/site.json" <<JSON
{
  "site": "bench",
  "logging": { "level": "warning" },
  "store": { "backend": "postgres", "postgres": { "host": "127.0.0.1", "port": $TRONCAL_TEST_PG_PORT, "user": "postgres", "database": "$TRONCAL_TEST_PG_DB" } },
  $(bench_instances_json 27200)
}
JSON
    "$bin/troncal" pki init --data-dir "$work/site" >/dev/null
    "$bin/troncal-billing" --config "$work/site/site.json" --instance billing-1 >"$work/billing.log" 2>&1 &
    BENCH_PIDS+=("$!")
    bench_wait_healthy 28203 "$work/billing.log"
    printf 'customer,type,rate_plan\nbench,prepaid,retail\n' > "$work/customers.csv"
    printf 'plan,prefix,rate,first_increment,next_increment\nretail,34,0.06,60,60\n' > "$work/rates.csv"
    printf 'carrier,prefix,rate\ncarrier-a,34,0.01\n' > "$work/buy.csv"
    "$bin/troncal" billing import customers "$work/customers.csv" --data-dir "$work/site" >&2
    "$bin/troncal" billing import rates "$work/rates.csv" --data-dir "$work/site" >&2
    "$bin/troncal" billing import carrier-rates "$work/buy.csv" --data-dir "$work/site" >&2
    "$bin/troncal" billing topup bench 1000000 --reason bench --data-dir "$work/site" >/dev/null
    echo "== CDRs per second into PostgreSQL: through troncal-billing over the link, and a plain COPY (one run) =="
    "$bin/BillingBench" "$work/site/pki" 127.0.0.1 27203 "$TRONCAL_TEST_POSTGRES_URL" "$count" "$concurrency"
}
