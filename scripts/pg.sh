#!/usr/bin/env bash
# pg.sh — run a local PostgreSQL 15 cluster on 127.0.0.1 (as the postgres OS user when called as root).
#
# usage: scripts/pg.sh start|stop|status|wait|kill|psql [PSQL ARGS...]
#        scripts/pg.sh start-standby|stop-standby|status-standby|kill-standby|promote
# env:   PG_PORT (5432), STATE_DIR (<repo>/.local/run), PG_BIN (/usr/lib/postgresql/15/bin),
#        PG_WAIT_SECONDS (30), PG_STANDBY_PORT (PG_PORT+1)
#
# The standby (STATE_DIR/pgdata-standby, log postgres-standby.log) is a
# streaming replica of the running primary: pg_basebackup -R with the
# physical replication slot "standby" (initdb's pg_hba trusts replication
# from 127.0.0.1; max_wal_senders and max_replication_slots default to 10).
# promote makes it a primary and waits until it accepts writes. kill and
# kill-standby SIGKILL the postmaster: a host lost, not a shutdown.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_PORT=${PG_PORT:-5432}
STATE_DIR=${STATE_DIR:-$ROOT/.local/run}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
DATA=$STATE_DIR/pgdata
SOCK=$STATE_DIR/pgsock
LOG=$STATE_DIR/postgres.log
PG_STANDBY_PORT=${PG_STANDBY_PORT:-$((PG_PORT + 1))}
SDATA=$STATE_DIR/pgdata-standby
SLOG=$STATE_DIR/postgres-standby.log
SLOT=standby

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

running() { as_pg "$PG_BIN/pg_ctl" status -D "${1:-$DATA}" >/dev/null 2>&1; }

# The settings that follow a cluster's data dir from run to run: port and sockets.
local_conf() {
  cat >"$1/local.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $2
unix_socket_directories = '$SOCK'
max_connections = 200
EOF
  [ "$(id -u)" -ne 0 ] || chown postgres: "$1/local.conf" "$1/postgresql.conf"
}

# pg_ctl start of data dir $1 on port $2, logging to $3.
pg_start() {
  ! { : >"/dev/tcp/127.0.0.1/$2"; } 2>/dev/null || die "port $2 on 127.0.0.1 is already in use"
  local_conf "$1" "$2"
  if ! as_pg "$PG_BIN/pg_ctl" start -w -t "${PG_WAIT_SECONDS:-30}" -D "$1" -l "$3" >/dev/null; then
    say "failed to start; last lines of $3:" >&2
    tail -n 20 "$3" >&2
    exit 1
  fi
}

start() {
  prepare
  if [ ! -f "$DATA/PG_VERSION" ]; then
    mkdir -p "$DATA"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$DATA"
    as_pg "$PG_BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
    echo "include_if_exists = 'local.conf'" >>"$DATA/postgresql.conf"
  fi
  if running; then say "already running on 127.0.0.1:$PG_PORT"; return 0; fi
  # local.conf is rewritten at every start, so PG_PORT and STATE_DIR may change between runs.
  pg_start "$DATA" "$PG_PORT" "$LOG"
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

sql() { "$PG_BIN/psql" -h "$SOCK" -p "$1" -U postgres -X -qAt -c "$2"; }

start_standby() {
  prepare
  touch "$SLOG"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$SLOG"
  if running "$SDATA"; then say "standby already running on 127.0.0.1:$PG_STANDBY_PORT"; return 0; fi
  if [ ! -f "$SDATA/PG_VERSION" ]; then
    running || die "the primary does not run on 127.0.0.1:$PG_PORT: start it first"
    # A slot left by an earlier standby of this primary would hold WAL for nobody.
    sql "$PG_PORT" "SELECT pg_drop_replication_slot('$SLOT') FROM pg_replication_slots
                    WHERE slot_name = '$SLOT' AND NOT active" >/dev/null
    rm -rf "$SDATA"
    mkdir -p "$SDATA"
    chmod 700 "$SDATA"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$SDATA"
    # -R writes standby.signal and primary_conninfo (host 127.0.0.1, PG_PORT);
    # -C -S creates the physical slot, so the primary keeps the WAL it needs.
    # -c fast: the backup starts from a checkpoint taken at once; the default
    # (spread) one is paced over most of checkpoint_timeout when many pages
    # are dirty (4.5 min in make bench's step 9 after 300 MB of rows).
    as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" -U postgres -D "$SDATA" \
      -R -X stream -C -S "$SLOT" -c fast >/dev/null
  fi
  pg_start "$SDATA" "$PG_STANDBY_PORT" "$SLOG"
  say "standby started on 127.0.0.1:$PG_STANDBY_PORT, replicating 127.0.0.1:$PG_PORT; data $SDATA, log $SLOG"
}

stop_standby() {
  if ! running "$SDATA"; then say "standby not running"; return 0; fi
  as_pg "$PG_BIN/pg_ctl" stop -D "$SDATA" -m fast -w >/dev/null
  say "standby stopped"
}

# SIGKILL of the postmaster of data dir $1 (its backends notice and exit),
# then waits until the port is free. Returns 1 if it was not running.
kill_pg() {
  local p i
  p=$(head -n 1 "$1/postmaster.pid" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
  kill -KILL "$p"
  for ((i = 0; i < 100; i++)); do
    ! { : >"/dev/tcp/127.0.0.1/$2"; } 2>/dev/null && ! kill -0 "$p" 2>/dev/null && return 0
    sleep 0.1
  done
  die "postmaster $p still there 10 s after SIGKILL"
}

promote() {
  local deadline=$((SECONDS + ${PG_WAIT_SECONDS:-30}))
  running "$SDATA" || die "no standby runs on 127.0.0.1:$PG_STANDBY_PORT"
  as_pg "$PG_BIN/pg_ctl" promote -D "$SDATA" -w -t "${PG_WAIT_SECONDS:-30}" >/dev/null
  until [ "$(sql "$PG_STANDBY_PORT" 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
    [ $SECONDS -lt $deadline ] || die "the standby on 127.0.0.1:$PG_STANDBY_PORT is still in recovery"
    sleep 0.2
  done
  say "standby on 127.0.0.1:$PG_STANDBY_PORT promoted: it accepts writes"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  wait) wait_ready; say "ready on 127.0.0.1:$PG_PORT" ;;
  psql) shift; exec "$PG_BIN/psql" -h "$SOCK" -p "$PG_PORT" -U postgres -X "$@" ;;
  kill) if kill_pg "$DATA" "$PG_PORT"; then say "killed (SIGKILL)"; else say "not running"; fi ;;
  start-standby) start_standby ;;
  stop-standby) stop_standby ;;
  status-standby)
    if running "$SDATA"; then say "standby running on 127.0.0.1:$PG_STANDBY_PORT"; else say "standby not running"; exit 3; fi ;;
  kill-standby) if kill_pg "$SDATA" "$PG_STANDBY_PORT"; then say "standby killed (SIGKILL)"; else say "standby not running"; fi ;;
  promote) promote ;;
  *)
    echo "usage: $0 start|stop|status|wait|kill|psql [ARGS...]" >&2
    echo "       $0 start-standby|stop-standby|status-standby|kill-standby|promote" >&2
    exit 2
    ;;
esac
