# `scripts/bench sbc`: the highest call rate through Troncal's SBC at < 0.1% failed calls, against the same sipp
# pair talking directly and a minimal transaction-stateful Kamailio proxy (one worker), in one run on loopback.
# Troncal is measured twice: with `sbc.eventLoops 2` and with `sbc.eventLoops 1`.
# Sourced by scripts/bench; needs sipp and kamailio (installed from Debian when missing) and a release build.
# TRONCAL_BENCH_PROFILE=1 also records a `perf` profile of troncal-sbc at its best passing rate and prints where its
# CPU goes (kernel, SIP parsing, call core, TLS, JSON, ...).
source scripts/lib/bench-common.sh

bench_sbc() {
    command -v kamailio >/dev/null || {
        echo "troncal: installing kamailio for the comparison" >&2
        local sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
        $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends kamailio >/dev/null
    }
    if [ -n "${TRONCAL_BENCH_PROFILE:-}" ] && ! command -v perf >/dev/null; then
        echo "troncal: installing linux-perf for the profile" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-perf >/dev/null
    fi
    echo "troncal: building troncal, troncal-sbc and troncal-routing (release)" >&2
    for product in troncal troncal-sbc troncal-routing; do
        swift build -c release --scratch-path .build-release --product "$product" >&2
    done
    BENCH_BIN="$(swift build -c release --scratch-path .build-release --show-bin-path)"
    BENCH_WORK="$(mktemp -d /tmp/troncal-bench-sbc.XXXXXX)"
    local work="$BENCH_WORK"
    BENCH_PIDS=()
    trap 'for pid in "${BENCH_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done; pkill -9 -f "$BENCH_WORK/kamailio.cfg" 2>/dev/null || true; rm -rf "$BENCH_WORK"' EXIT
    # Which systems to measure (all four by default): `scripts/bench sbc troncal kamailio`. `troncal` is
    # sbc.eventLoops 2, `troncal-1` sbc.eventLoops 1.
    local systems="${*:-direct troncal troncal-1 kamailio}"

    BENCH_SBC_PORT=25060
    local kamailio_port=25070 carrier_port=25080
    BENCH_CALLEE=34911234567
    BENCH_SCENARIO="$PWD/Benchmarks/sbc/uac.xml"

    echo "== calls per second at < 0.1% failed calls (sipp uac -> X -> sipp uas, UDP, loopback; CPU per call of X) =="
    local direct="0 0" troncal="0 0" troncal1="0 0" kamailio="0 0"
    [[ " $systems " == *" direct "* ]] && direct="$(bench_sbc_search direct "127.0.0.3:$carrier_port" "")"
    if [[ " $systems " == *" troncal "* ]]; then
        bench_sbc_site 2
        troncal="$(bench_sbc_search troncal "127.0.0.1:$BENCH_SBC_PORT" "$BENCH_SITE_PIDS")"
        [ -n "${TRONCAL_BENCH_PROFILE:-}" ] && bench_sbc_profile "${troncal%% *}" troncal
        bench_sbc_site_stop
    fi
    if [[ " $systems " == *" troncal-1 "* ]]; then
        bench_sbc_site 1
        troncal1="$(bench_sbc_search troncal-1 "127.0.0.1:$BENCH_SBC_PORT" "$BENCH_SITE_PIDS")"
        [ -n "${TRONCAL_BENCH_PROFILE:-}" ] && bench_sbc_profile "${troncal1%% *}" troncal-1
        bench_sbc_site_stop
    fi
    if [[ " $systems " == *" kamailio "* ]]; then
        # Kamailio: one UDP worker.
        local modules
        modules="$(dirname "$(find /usr/lib -name tm.so -path '*kamailio*' | head -1)")/"
        sed -e "s|@LISTEN@|127.0.0.1:$kamailio_port|" -e "s|@MODULES@|$modules|" -e "s|@CARRIER@|127.0.0.3:$carrier_port|" \
            Benchmarks/sbc/kamailio.cfg.in > "$work/kamailio.cfg"
        kamailio -f "$work/kamailio.cfg" -DD -E -P "$work/kamailio.pid" >"$work/kamailio.log" 2>&1 &
        BENCH_PIDS+=("$!")
        sleep 3
        kamailio="$(bench_sbc_search kamailio "127.0.0.1:$kamailio_port" "$(pgrep -f "$work/kamailio.cfg" | tr '\n' ' ')")"
    fi
    local direct_rate=${direct%% *} troncal_rate=${troncal%% *} troncal1_rate=${troncal1%% *} kamailio_rate=${kamailio%% *}
    printf '%-10s %8s cps   CPU %s ms/call\n' direct "$direct_rate" "${direct#* }"
    printf '%-10s %8s cps   CPU %s ms/call (troncal-sbc + troncal-routing, sbc.eventLoops 2)\n' troncal "$troncal_rate" "${troncal#* }"
    printf '%-10s %8s cps   CPU %s ms/call (troncal-sbc + troncal-routing, sbc.eventLoops 1)\n' troncal-1 "$troncal1_rate" "${troncal1#* }"
    printf '%-10s %8s cps   CPU %s ms/call (all kamailio processes)\n' kamailio "$kamailio_rate" "${kamailio#* }"
    awk -v t="$troncal_rate" -v t1="$troncal1_rate" -v k="$kamailio_rate" -v d="$direct_rate" -v tc="${troncal#* }" -v kc="${kamailio#* }" 'BEGIN {
        printf "ratio troncal/kamailio %s\n", (k > 0 ? sprintf("%.2f", t / k) : "-")
        printf "cpu-per-call troncal/kamailio %s\n", (kc > 0 ? sprintf("%.2f", tc / kc) : "-")
        printf "loops 2/1 %s\n", (t1 > 0 ? sprintf("%.2f", t / t1) : "-")
        printf "ratio troncal/direct %s, kamailio/direct %s\n", (d > 0 ? sprintf("%.2f", t / d) : "-"), (d > 0 ? sprintf("%.2f", k / d) : "-") }'
}

# Starts the Troncal site (troncal-routing and troncal-sbc) with `sbc.eventLoops` LOOPS; sets BENCH_SITE_PIDS and
# BENCH_SBC_PID.
bench_sbc_site() {
    local loops="$1" site="$BENCH_WORK/site-$1"
    # Quiet logs, border limits out of the way of one busy trunk. sipp's built-in uas cannot answer OPTIONS, so probes
    # are off; then a trunk taken out of routes would never come back: an overloaded trial must not take it out
    # (failuresToTakeOut at its maximum).
    mkdir -p "$site"
    cat > "$site/site.json" <<JSON
{
  "site": "bench",
  "logging": { "level": "warning" },
  "sip": { "listenAddress": "127.0.0.1", "udpPort": $BENCH_SBC_PORT, "tcpPort": $BENCH_SBC_PORT, "tlsPort": $((BENCH_SBC_PORT + 1)),
           "requestsPerWindow": 1000000, "authenticatedRequestsPerWindow": 1000000, "requestsPerWindowPerAddress": 1000000 },
  "sbc": { "advertisedAddress": "127.0.0.1", "mediaPortMin": 30000, "mediaPortMax": 59999, "maximumCalls": 100000,
           "maximumCallsPerCustomer": 100000, "eventLoops": $loops, "customers": [ { "id": "bench", "addresses": ["127.0.0.2/32"] } ] },
  "routing": { "probeIntervalMilliseconds": 0, "failuresToTakeOut": 1000, "authorization": "off", "routes": [ { "prefix": "", "targets": [ { "carrier": "bench", "host": "127.0.0.3", "port": 25080 } ] } ] },
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
    "$BENCH_BIN/troncal" pki init --data-dir "$site" >/dev/null
    "$BENCH_BIN/troncal-routing" --config "$site/site.json" --instance routing-1 >"$site/routing.log" 2>&1 &
    local routing_pid=$!
    BENCH_PIDS+=("$routing_pid")
    "$BENCH_BIN/troncal-sbc" --config "$site/site.json" --instance sbc-1 >"$site/sbc.log" 2>&1 &
    BENCH_SBC_PID=$!
    BENCH_PIDS+=("$BENCH_SBC_PID")
    BENCH_SITE_PIDS="$BENCH_SBC_PID $routing_pid"
    bench_wait_healthy 28102 "$site/routing.log" >&2
    bench_wait_healthy 28101 "$site/sbc.log" >&2
}

bench_sbc_site_stop() {
    local pid
    for pid in $BENCH_SITE_PIDS; do kill "$pid" 2>/dev/null || true; done
    for pid in $BENCH_SITE_PIDS; do wait "$pid" 2>/dev/null || true; done
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
# With RECORD set, runs `perf record` on troncal-sbc during the trial into that file.
bench_sbc_trial() {
    local target="$1" rate="$2" calls="$3" pids="$4" name="$5"
    local work_dir
    work_dir="$(mktemp -d /tmp/troncal-bench-trial.XXXXXX)"
    sipp -sn uas -i 127.0.0.3 -p 25080 -mi 127.0.0.3 -mp 26000 -buff_size 4194304 -nostdin >"$work_dir/uas.out" 2>&1 &
    local uas=$!
    BENCH_PIDS+=("$uas")
    sleep 0.5
    local before after perf_pid=""
    before="$(bench_sbc_ticks "$pids")"
    if [ -n "${RECORD:-}" ]; then
        perf record -e cpu-clock -F 999 -g -p "$BENCH_SBC_PID" -o "$RECORD" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    sipp -sf "$BENCH_SCENARIO" -s "$BENCH_CALLEE" -i 127.0.0.2 -p 25090 -mi 127.0.0.2 -mp 26100 -m "$calls" -r "$rate" -l $((rate * 4 + 100)) \
        -buff_size 4194304 -nostdin -timeout $((calls / rate + 40))s -recv_timeout 8000 "$target" >"$work_dir/uac.out" 2>&1 || true
    after="$(bench_sbc_ticks "$pids")"
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
    fi
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

# A perf profile of troncal-sbc during one more trial at RATE, summarised by where the CPU went.
bench_sbc_profile() {
    local rate="$1" name="$2"
    [ "$rate" -gt 0 ] || return 0
    local data="$BENCH_WORK/$name.perf"
    RECORD="$data" bench_sbc_trial "127.0.0.1:$BENCH_SBC_PORT" "$rate" $((rate * 5 > 1000 ? rate * 5 : 1000)) "$BENCH_SITE_PIDS" "$name (profiled)" >/dev/null
    echo "== where troncal-sbc's CPU goes at $rate cps ($name; perf, cpu-clock samples, self time) =="
    perf report -i "$data" --no-children --sort dso,sym --stdio 2>/dev/null | bench_sbc_classify
    cp "$data" "/tmp/troncal-sbc-$name.perf" 2>/dev/null && echo "(profile kept in /tmp/troncal-sbc-$name.perf)"
}

# Reads `perf report --sort dso,sym` lines and adds up the percentages by category.
bench_sbc_classify() {
    awk '
    /^ +[0-9.]+%/ {
        share = $1; sub(/%/, "", share)
        line = $0
        category = "other"
        if (line ~ /\[kernel/ || line ~ /\[k\]/) category = "kernel (system calls, network stack, scheduler)"
        else if (line ~ /BoringSSL|NIOSSL|CNIOBoringSSL|aes|gcm|chacha|sha256_block/) category = "TLS (routing link)"
        else if (line ~ /10TroncalSIP/ && line ~ /Pars|Lexer|Scanner|Validator|Framer|ByteClass|HeaderName|URI/) category = "SIP parsing and validation"
        else if (line ~ /10TroncalSIP/) category = "SIP messages, serialising, transactions"
        else if (line ~ /11TroncalCall/ || line ~ /10TroncalSBC/) category = "call core (call layer, B2BUA, admission)"
        else if (line ~ /12TroncalMedia/) category = "media relay"
        else if (line ~ /JSON|Foundation|Codable|Coding|Decod|Encod/) category = "JSON and Foundation"
        else if (line ~ /NIOCore|NIOPosix|7NIOCore|8NIOPosix|NIO/) category = "SwiftNIO (event loops, channels, buffers)"
        else if (line ~ /swift_retain|swift_release|swift_|malloc|free|libswiftCore|memmove|memcpy/) category = "Swift runtime and allocator"
        else if (line ~ /libc/) category = "libc"
        total[category] += share
        sum += share
    }
    END {
        n = 0
        for (name in total) order[++n] = name
        # Largest first.
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (total[order[j]] > total[order[i]]) { t = order[i]; order[i] = order[j]; order[j] = t }
        for (i = 1; i <= n; i++) printf "  %5.1f%%  %s\n", total[order[i]], order[i]
        printf "  (%.1f%% of samples classified)\n", sum
    }'
}
