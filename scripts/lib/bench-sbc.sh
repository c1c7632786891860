# `scripts/bench sbc`: the highest call rate through Troncal's SBC at < 0.1% failed calls, against the same sipp
# pair talking directly and a minimal transaction-stateful Kamailio proxy (one worker), in one run on loopback.
# Sourced by scripts/bench; needs sipp and kamailio (installed from Debian when missing) and a release build.

bench_sbc() {
    command -v kamailio >/dev/null || {
        echo "troncal: installing kamailio for the comparison" >&2
        local sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
        $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends kamailio >/dev/null
    }
    echo "troncal: building troncal, troncal-sbc and troncal-routing (release)" >&2
    for product in troncal troncal-sbc troncal-routing; do
        swift build -c release --scratch-path .build-release --product "$product" >&2
    done
    local bin
    bin="$(swift build -c release --scratch-path .build-release --show-bin-path)"
    BENCH_WORK="$(mktemp -d /tmp/troncal-bench-sbc.XXXXXX)"
    local work="$BENCH_WORK"
    BENCH_PIDS=()
    trap 'for pid in "${BENCH_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done; pkill -9 -f "$BENCH_WORK/kamailio.cfg" 2>/dev/null || true; rm -rf "$BENCH_WORK"' EXIT
    # Which systems to measure (all three by default): `scripts/bench sbc troncal kamailio`.
    local systems="${*:-direct troncal kamailio}"

    local sbc_port=25060 kamailio_port=25070 carrier_port=25080 caller_port=25090
    local callee=34911234567
    local scenario="$PWD/Benchmarks/sbc/uac.xml"

    # The Troncal site: the SBC and the routing core, quiet logs, border limits out of the way of one busy trunk. sipp's
    # built-in uas cannot answer OPTIONS, so probes are off; then a trunk taken out of routes would never come back:
    # an overloaded trial must not take it out (failuresToTakeOut at its maximum).
    mkdir -p "$work/site"
    cat > "$work/site/site.json" <<JSON
{
  "site": "bench",
  "logging": { "level": "warning" },
  "sip": { "listenAddress": "127.0.0.1", "udpPort": $sbc_port, "tcpPort": $sbc_port, "tlsPort": $((sbc_port + 1)),
           "requestsPerWindow": 1000000, "authenticatedRequestsPerWindow": 1000000, "requestsPerWindowPerAddress": 1000000 },
  "sbc": { "advertisedAddress": "127.0.0.1", "mediaPortMin": 30000, "mediaPortMax": 59999, "maximumCalls": 100000,
           "maximumCallsPerCustomer": 100000, "customers": [ { "id": "bench", "addresses": ["127.0.0.2/32"] } ] },
  "routing": { "probeIntervalMilliseconds": 0, "failuresToTakeOut": 1000, "authorization": "off", "routes": [ { "prefix": "", "targets": [ { "carrier": "bench", "host": "127.0.0.3", "port": $carrier_port } ] } ] },
  "instances": [
    { "role": "sbc", "name": "sbc-1", "linkPort": 27101, "adminPort": 28101 },
    { "role": "routing", "name": "routing-1", "linkPort": 27102, "adminPort": 28102 },
    { "role": "billing", "name": "billing-1", "linkPort": 27103, "adminPort": 28103 },
    { "role": "pbx", "name": "pbx-1", "linkPort": 27104, "adminPort": 28104 },
    { "role": "backup", "name": "backup-1", "linkPort": 27105, "adminPort": 28105 },
    { "role": "monitor", "name": "monitor-1", "linkPort": 27106, "adminPort": 28106 }
  ]
}
JSON
    "$bin/troncal" pki init --data-dir "$work/site" >/dev/null
    "$bin/troncal-routing" --config "$work/site/site.json" --instance routing-1 >"$work/routing.log" 2>&1 &
    local routing_pid=$!
    BENCH_PIDS+=("$routing_pid")
    "$bin/troncal-sbc" --config "$work/site/site.json" --instance sbc-1 >"$work/sbc.log" 2>&1 &
    local sbc_pid=$!
    BENCH_PIDS+=("$sbc_pid")

    # Kamailio: one UDP worker.
    local modules
    modules="$(dirname "$(find /usr/lib -name tm.so -path '*kamailio*' | head -1)")/"
    sed -e "s|@LISTEN@|127.0.0.1:$kamailio_port|" -e "s|@MODULES@|$modules|" -e "s|@CARRIER@|127.0.0.3:$carrier_port|" \
        Benchmarks/sbc/kamailio.cfg.in > "$work/kamailio.cfg"
    kamailio -f "$work/kamailio.cfg" -DD -E -P "$work/kamailio.pid" >"$work/kamailio.log" 2>&1 &
    BENCH_PIDS+=("$!")
    sleep 3

    echo "== calls per second at < 0.1% failed calls (sipp uac -> X -> sipp uas, UDP, loopback; CPU per call of X) =="
    local direct="0 0" troncal="0 0" kamailio="0 0"
    [[ " $systems " == *" direct "* ]] && direct="$(bench_sbc_search direct "127.0.0.3:$carrier_port" "")"
    [[ " $systems " == *" troncal "* ]] && troncal="$(bench_sbc_search troncal "127.0.0.1:$sbc_port" "$sbc_pid $routing_pid")"
    [[ " $systems " == *" kamailio "* ]] && kamailio="$(bench_sbc_search kamailio "127.0.0.1:$kamailio_port" "$(pgrep -f "$work/kamailio.cfg" | tr '\n' ' ')")"
    local direct_rate=${direct%% *} troncal_rate=${troncal%% *} kamailio_rate=${kamailio%% *}
    printf '%-10s %8s cps   CPU %s ms/call\n' direct "$direct_rate" "${direct#* }"
    printf '%-10s %8s cps   CPU %s ms/call (troncal-sbc + troncal-routing)\n' troncal "$troncal_rate" "${troncal#* }"
    printf '%-10s %8s cps   CPU %s ms/call (all kamailio processes)\n' kamailio "$kamailio_rate" "${kamailio#* }"
    awk -v t="$troncal_rate" -v k="$kamailio_rate" -v d="$direct_rate" 'BEGIN {
        printf "ratios: troncal/kamailio %s, troncal/direct %s, kamailio/direct %s\n",
            (k > 0 ? sprintf("%.2f", t / k) : "-"), (d > 0 ? sprintf("%.2f", t / d) : "-"), (d > 0 ? sprintf("%.2f", k / d) : "-") }'
}

# The CPU ticks (user + system) used so far by these PIDs.
bench_sbc_ticks() {
    local total=0 pid
    for pid in $1; do
        if [ -r "/proc/$pid/stat" ]; then
            total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
        fi
    done
    echo "$total"
}

# One trial: `calls` calls at `rate` (5 s of calls, at least 1,000); prints "failed-permille cpu-ms-per-call".
bench_sbc_trial() {
    local target="$1" rate="$2" calls="$3" pids="$4" name="$5"
    local work_dir
    work_dir="$(mktemp -d /tmp/troncal-bench-trial.XXXXXX)"
    sipp -sn uas -i 127.0.0.3 -p 25080 -mi 127.0.0.3 -mp 26000 -buff_size 4194304 -nostdin >"$work_dir/uas.out" 2>&1 &
    local uas=$!
    BENCH_PIDS+=("$uas")
    sleep 0.5
    local before after
    before="$(bench_sbc_ticks "$pids")"
    sipp -sf "$scenario" -s "$callee" -i 127.0.0.2 -p 25090 -mi 127.0.0.2 -mp 26100 -m "$calls" -r "$rate" -l $((rate * 4 + 100)) \
        -buff_size 4194304 -nostdin -timeout $((calls / rate + 40))s -recv_timeout 8000 "$target" >"$work_dir/uac.out" 2>&1 || true
    after="$(bench_sbc_ticks "$pids")"
    kill -9 "$uas" 2>/dev/null || true
    wait "$uas" 2>/dev/null || true
    local ok failed
    ok="$(grep -E 'Successful call' "$work_dir/uac.out" | tail -1 | awk -F'|' '{ gsub(/ /, "", $3); print $3 }')"
    failed="$(grep -E 'Failed call' "$work_dir/uac.out" | tail -1 | awk -F'|' '{ gsub(/ /, "", $3); print $3 }')"
    ok=${ok:-0}
    failed=${failed:-$calls}
    local missing=$((calls - ok))
    [ "$missing" -gt "$failed" ] && failed=$missing
    local hz
    hz="$(getconf CLK_TCK)"
    awk -v f="$failed" -v c="$calls" -v t=$((after - before)) -v hz="$hz" -v n="$ok" 'BEGIN {
        printf "%.2f %.3f\n", 1000 * f / c, (n > 0 ? 1000 * t / hz / n : 0) }'
    echo "   $name: $rate cps x $calls calls: $ok ok, $failed failed" >&2
    rm -rf "$work_dir"
}

# After a failed (overloaded) trial: let the system forget it before the next one. A SIP transaction is kept 32 s (64·T1)
# after it ends to absorb retransmissions, so an overloaded trial leaves a full table behind that would fail the next trial
# for reasons of the previous one. Every system gets the same pause.
bench_sbc_drain() {
    sleep 35
}

# The highest rate with < 0.1% failed calls: doubling from 100 cps, then bisecting. Prints "rate cpu-ms-per-call".
bench_sbc_search() {
    local name="$1" target="$2" pids="$3"
    local good=0 good_cpu=0 bad=0 rate=100 result permille cpu
    while [ "$rate" -le 12800 ]; do
        result="$(bench_sbc_trial "$target" "$rate" $((rate * 5 > 1000 ? rate * 5 : 1000)) "$pids" "$name")"
        permille="${result% *}"
        cpu="${result#* }"
        if awk -v p="$permille" 'BEGIN { exit !(p < 1) }'; then
            good=$rate
            good_cpu=$cpu
            rate=$((rate * 2))
        else
            bad=$rate
            bench_sbc_drain
            break
        fi
    done
    if [ "$good" -eq 0 ]; then
        echo "   $name: fails at the lowest rate; see its logs" >&2
        echo "0 0"
        return
    fi
    if [ "$bad" -gt 0 ]; then
        local step
        for step in 1 2 3; do
            rate=$(((good + bad) / 2))
            [ "$rate" -le "$good" ] && break
            result="$(bench_sbc_trial "$target" "$rate" $((rate * 5 > 1000 ? rate * 5 : 1000)) "$pids" "$name")"
            permille="${result% *}"
            cpu="${result#* }"
            if awk -v p="$permille" 'BEGIN { exit !(p < 1) }'; then
                good=$rate
                good_cpu=$cpu
            else
                bad=$rate
                bench_sbc_drain
            fi
        done
    fi
    echo "$good $good_cpu"
}
