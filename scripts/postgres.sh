#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1, for the tests and for development:
#   scripts/postgres.sh up DIR [PORT]   create the cluster in DIR, start it, print its URL
#   scripts/postgres.sh down DIR        stop it (DIR can then be deleted)
# Debian's postgresql package provides the programs (scripts/ensure_test_tools.sh installs it).
# Run as root, the server runs as the postgres user (PostgreSQL refuses to run as root).
# fsync is off: the cluster holds test data, and only the assistant's processes are killed.
set -euo pipefail

find_bin() {
    local initdb
    initdb="$(command -v initdb 2>/dev/null || ls -1 /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || true)"
    if [ -z "$initdb" ]; then
        echo "error: PostgreSQL's initdb not found; install Debian's postgresql package (scripts/ensure_test_tools.sh)" >&2
        exit 1
    fi
    dirname "$(readlink -f "$initdb")"
}

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

bin="$(find_bin)"
case "${1:-}" in
up)
    dir="$(mkdir -p "$2" && cd "$2" && pwd)"
    port="${3:-55432}"
    [ "$(id -u)" -ne 0 ] || chown postgres "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >/dev/null
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
    ;;
down)
    as_owner "$bin/pg_ctl" -D "$2/data" -m fast -w stop >/dev/null
    ;;
*)
    echo "usage: $0 up DIR [PORT] | down DIR" >&2
    exit 2
    ;;
esac
