# The second half of `scripts/bench routing`: a rate deck of 200,000 prefixes imported with `troncal routing import rates`
# into a release troncal-routing (SQLite, the embedded default), timed by the routing core (check, store, rebuild).

source scripts/lib/bench-common.sh

bench_routing_import() {
    local rows="${1:-200000}"
    echo "troncal: building troncal and troncal-routing (release)" >&2
    for product in troncal troncal-routing; do
        swift build -c release --scratch-path .build-release --product "$product" >&2
    done
    local bin
    bin="$(swift build -c release --scratch-path .build-release --show-bin-path)"
    BENCH_WORK="$(mktemp -d /tmp/troncal-bench-routing.XXXXXX)"
    BENCH_PIDS=()
    trap 'for pid in "${BENCH_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done; rm -rf "$BENCH_WORK"' EXIT
    local work="$BENCH_WORK"
    mkdir -p "$work/site"
    cat > "$work/site/site.json" <<JSON
{
  "site": "bench",
  "logging": { "level": "warning" },
  "routing": { "probeIntervalMilliseconds": 0, "authorization": "off" },
  $(bench_instances_json 27300)
}
JSON
    "$bin/troncal" pki init --data-dir "$work/site" >/dev/null
    "$bin/troncal-routing" --config "$work/site/site.json" --instance routing-1 >"$work/routing.log" 2>&1 &
    BENCH_PIDS+=("$!")
    bench_wait_healthy 28302 "$work/routing.log"
    printf 'carrier,host\ncarrier-a,192.0.2.1\ncarrier-b,192.0.2.2\n' > "$work/carriers.csv"
    "$bin/troncal" routing import carriers "$work/carriers.csv" --data-dir "$work/site" >/dev/null
    # Distinct prefixes: a country digit and 3-7 more, deterministic.
    awk -v n="$rows" 'BEGIN { print "carrier,prefix,rate"; srand(200000); seen = 0;
        while (seen < n) { len = 3 + int(rand() * 5); p = 1 + int(rand() * 9); for (i = 0; i < len; i++) p = p "" int(rand() * 10);
            if (!(p in have)) { have[p] = 1; seen++; printf "carrier-%s,%s,0.%04d\n", (seen % 2 ? "a" : "b"), p, int(rand() * 10000) } } }' > "$work/rates.csv"
    echo "== a rate deck of $rows prefixes ($(du -h "$work/rates.csv" | cut -f1)) imported into troncal-routing (SQLite) =="
    local started ended
    started=$(date +%s%N)
    "$bin/troncal" routing import rates "$work/rates.csv" --data-dir "$work/site"
    ended=$(date +%s%N)
    echo "wall time of the command (read, send in parts over mutual TLS, check, store, rebuild): $(( (ended - started) / 1000000 )) ms"
}
