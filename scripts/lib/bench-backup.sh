# `scripts/bench backup [MEGABYTES]`: how fast a billing database of MEGABYTES (default 1024) on SQLite is backed up by
# troncal-backup (snapshot over the link, chunked, encrypted, written once into the store), restored by `troncal backup
# restore`, and drilled, against a plain `cp` of the same file, in one run. Sourced by scripts/bench; release build.

source scripts/lib/bench-common.sh

bench_now() { date +%s.%N; }
bench_rate() { awk -v bytes="$1" -v seconds="$2" 'BEGIN { printf "%.1f", bytes / 1048576 / seconds }'; }
bench_span() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

bench_backup() {
    local megabytes="${1:-1024}"
    command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
    echo "troncal: building troncal, troncal-billing and troncal-backup (release)" >&2
    for product in troncal troncal-billing troncal-backup; do
        swift build -c release --scratch-path .build-release --product "$product" >&2
    done
    local bin
    bin="$(swift build -c release --scratch-path .build-release --show-bin-path)"
    BENCH_WORK="$(mktemp -d /tmp/troncal-bench-backup.XXXXXX)"
    BENCH_PIDS=()
    trap 'for pid in "${BENCH_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done; rm -rf "$BENCH_WORK"' EXIT
    local work="$BENCH_WORK" site="$BENCH_WORK/site"
    mkdir -p "$site"
    cat > "$site/site.json" <<JSON
{
  "site": "bench",
  "logging": { "level": "warning" },
  "backup": { "databaseIntervalMinutes": 44640, "configIntervalMinutes": 44640 },
  $(bench_instances_json 27400)
}
JSON
    "$bin/troncal" pki init --data-dir "$site" >/dev/null
    "$bin/troncal" backup keys init --data-dir "$site" --private-key-out "$work/restore.key" >/dev/null

    # billing-1 makes its schema; then its CDR table is filled to the size wanted.
    "$bin/troncal-billing" --config "$site/site.json" --instance billing-1 >"$work/billing.log" 2>&1 &
    local billing=$!
    BENCH_PIDS+=("$billing")
    bench_wait_healthy 28403 "$work/billing.log"
    kill -TERM "$billing"
    wait "$billing" || true
    local db="$site/data/db/billing-1.sqlite" batch=0
    echo "troncal: filling billing_cdrs to ${megabytes} MB" >&2
    while [ "$(stat -c %s "$db")" -lt $((megabytes * 1048576)) ]; do
        sqlite3 "$db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
            INSERT INTO billing_cdrs SELECT 'b$batch-' || i, 'call-b$batch-' || i, 'bench', '+34911' || i, '+44207' || i, 'carrier-a', 'main',
            '2026-12-04T10:00:00Z', '2026-12-04T10:00:02Z', '2026-12-04T10:03:00Z', 178000, 180, 200, 'caller', 'EUR', 180000, 30000, 150000,
            1, '34', '', 4.3, hex(randomblob(300)), '2026-12-04T10:03:01Z' FROM n; PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
        batch=$((batch + 1))
    done
    local bytes
    bytes="$(stat -c %s "$db")"
    echo "troncal: billing-1.sqlite is $((bytes / 1048576)) MB ($((batch * 100000)) CDRs)" >&2

    local t0 t1
    sync
    t0="$(bench_now)"; cp "$db" "$work/copy.sqlite"; sync; t1="$(bench_now)"
    local cp_seconds; cp_seconds="$(bench_span "$t0" "$t1")"
    rm -f "$work/copy.sqlite"

    "$bin/troncal-billing" --config "$site/site.json" --instance billing-1 >>"$work/billing.log" 2>&1 &
    BENCH_PIDS+=("$!")
    bench_wait_healthy 28403 "$work/billing.log"
    t0="$(bench_now)"
    "$bin/troncal-backup" --config "$site/site.json" --instance backup-1 >"$work/backup.log" 2>&1 &
    BENCH_PIDS+=("$!")
    local id=""
    until [ -n "$id" ]; do
        sleep 0.2
        id="$("$bin/troncal" backup list --data-dir "$site" | awk '$2 == "billing-1" { print $1 }' | tail -1)"
        if [ -z "$id" ] && grep "database not backed up" "$work/backup.log" | grep -q "source=billing-1"; then
            echo "the backup failed:" >&2; cat "$work/backup.log" >&2; return 1
        fi
    done
    t1="$(bench_now)"
    local backup_seconds; backup_seconds="$(bench_span "$t0" "$t1")"

    t0="$(bench_now)"
    "$bin/troncal" backup restore "$id" --private-key "$work/restore.key" --to "$work/restored.sqlite" --data-dir "$site" >/dev/null
    t1="$(bench_now)"
    local restore_seconds; restore_seconds="$(bench_span "$t0" "$t1")"
    rm -f "$work/restored.sqlite"

    t0="$(bench_now)"
    "$bin/troncal" backup drill "$id" --private-key "$work/restore.key" --data-dir "$site"
    t1="$(bench_now)"
    local drill_seconds; drill_seconds="$(bench_span "$t0" "$t1")"

    local stored
    stored="$(du -sb "$site/backup-store/$id" | awk '{ print $1 }')"
    echo "== backup of a $((bytes / 1048576)) MB billing database (SQLite) =="
    echo "cp of the file:         ${cp_seconds} s, $(bench_rate "$bytes" "$cp_seconds") MB/s"
    echo "backup (service start, snapshot over the link, encrypt, store): ${backup_seconds} s, $(bench_rate "$bytes" "$backup_seconds") MB/s"
    echo "restore (verify, decrypt, check): ${restore_seconds} s, $(bench_rate "$bytes" "$restore_seconds") MB/s"
    echo "drill (restore + per-table counts and checksums): ${drill_seconds} s"
    echo "stored: $((stored / 1048576)) MB for $((bytes / 1048576)) MB"
    awk -v c="$cp_seconds" -v b="$backup_seconds" -v r="$restore_seconds" \
        'BEGIN { printf "ratio backup/cp time %.1f, restore/cp time %.1f\n", b / c, r / c }'
}
