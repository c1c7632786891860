# Helpers of the benchmark scripts (sourced by scripts/lib/bench-*.sh).

# The `instances` of a bench site.json: the six roles on link ports BASE+1… and admin ports BASE+1001…
bench_instances_json() {
    local base="$1" index=0 role
    echo '"instances": ['
    for role in sbc routing billing pbx backup monitor; do
        index=$((index + 1))
        printf '    { "role": "%s", "name": "%s-1", "linkPort": %d, "adminPort": %d }%s\n' "$role" "$role" $((base + index)) $((base + 1000 + index)) \
            "$([ "$index" -lt 6 ] && echo ,)"
    done
    echo '  ]'
}

# Waits up to 20 s for an admin port's /health to answer 200; prints LOG and fails otherwise.
bench_wait_healthy() {
    local port="$1" log="$2" tries=0
    until curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ "$tries" -gt 100 ]; then echo "the service on admin port $port did not start:" >&2; cat "$log" >&2; return 1; fi
        sleep 0.2
    done
}
