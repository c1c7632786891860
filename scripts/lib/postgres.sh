# A throwaway PostgreSQL cluster for the store tests. Sourced by scripts/test (works under `set -euo pipefail`).
#
#   source scripts/lib/postgres.sh
#   troncal_pg_start            # installs PostgreSQL if needed, starts a fresh cluster, creates troncal_test
#   trap troncal_pg_stop EXIT   # stops it and deletes its directory
#
# The cluster listens on 127.0.0.1 only, on port ${TRONCAL_TEST_PG_PORT:-54329}, with its Unix socket inside its
# own temporary directory and trust authentication (nothing but loopback can reach it). PostgreSQL refuses to run
# as root, so when we are root the server runs as the `postgres` OS user, on a data directory that user owns.
#
# troncal_pg_start exports, for the tests:
#   TRONCAL_TEST_POSTGRES_URL   postgres://postgres@127.0.0.1:<port>/troncal_test?sslmode=disable (what the Swift
#                               store tests read; see PostgresConfiguration(url:))
#   TRONCAL_TEST_PG_HOST, TRONCAL_TEST_PG_PORT, TRONCAL_TEST_PG_USER, TRONCAL_TEST_PG_DB, TRONCAL_TEST_PG_SOCKET_DIR
#                               the same, separately, for scripts and psql
# Set TRONCAL_TEST_PG_PORT before starting to use another port.

TRONCAL_PG_DATABASE=troncal_test
TRONCAL_PG_USER=postgres
_troncal_pg_apt_updated=""

_troncal_pg_say() { echo "troncal-pg: $*" >&2; }

# Prints the directory of the newest installed PostgreSQL server binaries (Debian's /usr/lib/postgresql/N/bin).
_troncal_pg_find_bin() {
    local dir best="" best_version=0 version
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/pg_ctl" ] || continue
        version="${dir#/usr/lib/postgresql/}"
        version="${version%%/*}"
        version="${version%%.*}"
        if [[ "$version" =~ ^[0-9]+$ ]] && ((version > best_version)); then
            best_version=$version
            best=$dir
        fi
    done
    if [ -z "$best" ] && command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        best="$(dirname "$(command -v pg_ctl)")"
    fi
    [ -n "$best" ] && echo "$best"
}

# Installs Debian's postgresql package when no server binaries are found.
_troncal_pg_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    if [ -z "$_troncal_pg_apt_updated" ]; then
        _troncal_pg_say "PostgreSQL is not installed; installing Debian's postgresql package"
        if ! $sudo apt-get update -qq; then
            _troncal_pg_say "apt-get update failed"
            return 1
        fi
        _troncal_pg_apt_updated=1
    fi
    if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null; then
        _troncal_pg_say "apt-get install postgresql failed"
        return 1
    fi
}

# Runs a command as the cluster's owner: the postgres OS user when we are root, ourselves otherwise.
_troncal_pg_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        if command -v runuser >/dev/null 2>&1; then
            runuser -u postgres -- "$@"
        else
            su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
        fi
    else
        "$@"
    fi
}

_troncal_pg_show_log() {
    local log="${TRONCAL_PG_DIR:-}/server.log"
    if [ -n "${TRONCAL_PG_DIR:-}" ] && [ -f "$log" ]; then
        _troncal_pg_say "server log ($log):"
        sed 's/^/    /' "$log" >&2 || true
    fi
}

# Fails loudly: the message, the server log, then the half-started cluster is removed.
_troncal_pg_fail() {
    _troncal_pg_say "FAILED: $*"
    _troncal_pg_show_log
    troncal_pg_stop || true
    return 1
}

_troncal_pg_running() {
    [ -n "${TRONCAL_PG_DIR:-}" ] && [ -n "${TRONCAL_PG_BIN:-}" ] && [ -d "$TRONCAL_PG_DIR/data" ] &&
        _troncal_pg_as_owner "$TRONCAL_PG_BIN/pg_ctl" status -D "$TRONCAL_PG_DIR/data" >/dev/null 2>&1
}

troncal_pg_start() {
    if _troncal_pg_running; then
        _troncal_pg_say "cluster already running in $TRONCAL_PG_DIR on port $TRONCAL_TEST_PG_PORT"
        return 0
    fi
    local port="${TRONCAL_TEST_PG_PORT:-54329}"
    if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1024 || port > 65535)); then
        _troncal_pg_say "TRONCAL_TEST_PG_PORT=$port is not a port between 1024 and 65535"
        return 1
    fi

    local bin
    bin="$(_troncal_pg_find_bin || true)"
    if [ -z "$bin" ]; then
        _troncal_pg_install || return 1
        bin="$(_troncal_pg_find_bin || true)"
        if [ -z "$bin" ]; then
            _troncal_pg_say "postgresql was installed but no pg_ctl was found under /usr/lib/postgresql/*/bin"
            return 1
        fi
    fi
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        _troncal_pg_say "running as root but there is no postgres OS user to run the server as (install postgresql)"
        return 1
    fi
    if command -v ss >/dev/null 2>&1 && ss -ltn "sport = :$port" 2>/dev/null | grep -q LISTEN; then
        _troncal_pg_say "port $port is already in use; set TRONCAL_TEST_PG_PORT to a free port"
        return 1
    fi

    # Under /tmp, not $TMPDIR: the postgres user must be able to reach it.
    local dir
    if ! dir="$(mktemp -d /tmp/troncal-pg.XXXXXX)"; then
        _troncal_pg_say "cannot create a temporary directory under /tmp"
        return 1
    fi
    export TRONCAL_PG_DIR="$dir" TRONCAL_PG_BIN="$bin"
    mkdir -p "$dir/socket"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres:postgres "$dir" || { _troncal_pg_fail "cannot hand $dir to the postgres user"; return 1; }
    fi

    _troncal_pg_say "starting PostgreSQL $("$bin/postgres" --version | awk '{print $3}') in $dir on 127.0.0.1:$port"
    if ! _troncal_pg_as_owner "$bin/initdb" -D "$dir/data" -U "$TRONCAL_PG_USER" --auth=trust --encoding=UTF8 \
        --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
        sed 's/^/    /' "$dir/initdb.log" >&2 || true
        _troncal_pg_fail "initdb failed"
        return 1
    fi
    # A throwaway cluster: no durability settings worth the time.
    if ! _troncal_pg_as_owner "$bin/pg_ctl" start -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir/socket -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        >/dev/null; then
        _troncal_pg_fail "pg_ctl start failed"
        return 1
    fi
    if ! "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$TRONCAL_PG_USER" -d postgres \
        -c "CREATE DATABASE $TRONCAL_PG_DATABASE" >/dev/null; then
        _troncal_pg_fail "cannot create database $TRONCAL_PG_DATABASE"
        return 1
    fi

    export TRONCAL_TEST_PG_HOST=127.0.0.1
    export TRONCAL_TEST_PG_PORT="$port"
    export TRONCAL_TEST_PG_USER="$TRONCAL_PG_USER"
    export TRONCAL_TEST_PG_DB="$TRONCAL_PG_DATABASE"
    export TRONCAL_TEST_PG_SOCKET_DIR="$dir/socket"
    export TRONCAL_TEST_POSTGRES_URL="postgres://$TRONCAL_PG_USER@127.0.0.1:$port/$TRONCAL_PG_DATABASE?sslmode=disable"
    _troncal_pg_say "ready: $TRONCAL_TEST_POSTGRES_URL"
}

troncal_pg_stop() {
    local dir="${TRONCAL_PG_DIR:-}" bin="${TRONCAL_PG_BIN:-}"
    [ -n "$dir" ] || return 0
    if [ -n "$bin" ] && [ -f "$dir/data/postmaster.pid" ]; then
        if ! _troncal_pg_as_owner "$bin/pg_ctl" stop -D "$dir/data" -m fast -w -t 60 >/dev/null 2>&1; then
            _troncal_pg_say "pg_ctl stop failed; server log follows"
            _troncal_pg_show_log
        fi
    fi
    case "$dir" in
    /tmp/troncal-pg.*) rm -rf -- "$dir" ;;
    *) _troncal_pg_say "not removing unexpected directory $dir" ;;
    esac
    unset TRONCAL_PG_DIR TRONCAL_PG_BIN TRONCAL_TEST_POSTGRES_URL TRONCAL_TEST_PG_HOST TRONCAL_TEST_PG_USER \
        TRONCAL_TEST_PG_DB TRONCAL_TEST_PG_SOCKET_DIR
    # TRONCAL_TEST_PG_PORT stays: it may be the caller's own choice of port.
    return 0
}
