#!/usr/bin/env bash
# pg.sh — run a local PostgreSQL 15 cluster on 127.0.0.1 (as the postgres OS user when called as root).
#
# usage: scripts/pg.sh start|stop|status|wait|psql [PSQL ARGS...]
# env:   PG_PORT (5432), STATE_DIR (<repo>/.local/run), PG_BIN (/usr/lib/postgresql/15/bin),
#        PG_WAIT_SECONDS (30)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_PORT=${PG_PORT:-5432}
STATE_DIR=${STATE_DIR:-$ROOT/.local/run}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
DATA=$STATE_DIR/pgdata
SOCK=$STATE_DIR/pgsock
LOG=$STATE_DIR/postgres.log

say() { echo "[pg] $*"; }
die() { echo "[pg] error: $*" >&2; exit 1; }

# PostgreSQL refuses to run as root: then run its programs as the postgres OS user.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Create the state dirs; as root, hand them to postgres and make sure it can reach them.
prepare() {
  [ -x "$PG_BIN/pg_ctl" ] || die "$PG_BIN/pg_ctl not found (run make deps)"
  mkdir -p "$STATE_DIR" "$SOCK"
  chmod 755 "$SOCK"
  touch "$LOG"
  [ "$(id -u)" -eq 0 ] || return 0
  id postgres >/dev/null 2>&1 || die "no postgres OS user (run make deps)"
  chown postgres: "$SOCK" "$LOG"
  local d=$STATE_DIR
  while [ "$d" != / ]; do  # every parent must be traversable (e.g. a repo under /root)
    if ! runuser -u postgres -- test -x "$d"; then
      say "chmod o+x $d (so that postgres can reach $STATE_DIR)"
      chmod o+x "$d"
    fi
    d=$(dirname "$d")
  done
}

running() { as_pg "$PG_BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; }

start() {
  prepare
  if [ ! -f "$DATA/PG_VERSION" ]; then
    mkdir -p "$DATA"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$DATA"
    as_pg "$PG_BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
    echo "include_if_exists = 'local.conf'" >>"$DATA/postgresql.conf"
  fi
  if running; then say "already running on 127.0.0.1:$PG_PORT"; return 0; fi
  ! { : >"/dev/tcp/127.0.0.1/$PG_PORT"; } 2>/dev/null || die "port $PG_PORT on 127.0.0.1 is already in use"
  # Rewritten at every start, so PG_PORT and STATE_DIR may change between runs.
  cat >"$DATA/local.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$SOCK'
max_connections = 200
EOF
  [ "$(id -u)" -ne 0 ] || chown postgres: "$DATA/local.conf" "$DATA/postgresql.conf"
  if ! as_pg "$PG_BIN/pg_ctl" start -w -t "${PG_WAIT_SECONDS:-30}" -D "$DATA" -l "$LOG" >/dev/null; then
    say "failed to start; last lines of $LOG:" >&2
    tail -n 20 "$LOG" >&2
    exit 1
  fi
  say "started on 127.0.0.1:$PG_PORT (socket dir $SOCK); data $DATA, log $LOG"
}

stop() {
  if ! running; then say "not running"; return 0; fi
  as_pg "$PG_BIN/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null
  say "stopped"
}

status() {
  if running; then say "running on 127.0.0.1:$PG_PORT"; else say "not running"; return 3; fi
}

wait_ready() {
  local deadline=$((SECONDS + ${PG_WAIT_SECONDS:-30}))
  until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; do
    [ $SECONDS -lt $deadline ] || { say "not ready on 127.0.0.1:$PG_PORT" >&2; tail -n 20 "$LOG" >&2; exit 1; }
    sleep 0.2
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  wait) wait_ready; say "ready on 127.0.0.1:$PG_PORT" ;;
  psql) shift; exec "$PG_BIN/psql" -h "$SOCK" -p "$PG_PORT" -U postgres -X "$@" ;;
  *) echo "usage: $0 start|stop|status|wait|psql [ARGS...]" >&2; exit 2 ;;
esac
