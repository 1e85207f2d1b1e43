#!/usr/bin/env bash
# services.sh — start, stop and supervise the three services as background
# processes.
#
# usage: scripts/services.sh start|stop|restart|status [SERVICE...]
#        scripts/services.sh supervise
#   start    starts the services (all three, or those named) and waits for /ready
#   stop     stops them (SIGTERM, SIGKILL after 10 s); a service stopped this
#            way stays down under `supervise` until it is started again (or its
#            pid file names a live process again), so that a drill can stop one
#   supervise  watches the running services until SIGINT/SIGTERM: one that
#            exits without `stop` is logged and started again, after 1 s, then
#            2, 4, ... up to 30 s while it keeps failing (back to 1 s once it
#            has stayed up for a minute) — what the systemd units of ansible/ do
#   SERVICE  command-service, consumer-service or query-service
# env:   BIN_DIR (<repo>/build), STATE_DIR (<repo>/.local/run; logs and pid files),
#        COMMAND_PORT (7080), CONSUMER_PORT (7081), QUERY_PORT (7082),
#        KAFKA_PORT (9092), PG_PORT (5432), QUERY_PUBLIC_URL
#        (http://127.0.0.1:$QUERY_PORT); any service variable (LOG_LEVEL, ...)
#        set in the environment reaches the services too.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/proc.sh
. "$ROOT/scripts/lib/proc.sh"
BIN_DIR=${BIN_DIR:-$ROOT/build}
STATE_DIR=${STATE_DIR:-$ROOT/.local/run}
COMMAND_PORT=${COMMAND_PORT:-7080}
CONSUMER_PORT=${CONSUMER_PORT:-7081}
QUERY_PORT=${QUERY_PORT:-7082}
export KAFKA_BROKER=${KAFKA_BROKER:-127.0.0.1:${KAFKA_PORT:-9092}}
export DB_URL=${DB_URL:-postgresql://127.0.0.1:${PG_PORT:-5432}/postgres}
# The command service's Location then points at this query service.
export QUERY_PUBLIC_URL=${QUERY_PUBLIC_URL:-http://127.0.0.1:$QUERY_PORT}

say() { echo "[services] $*"; }

pid_of() { proc_pid_file "$STATE_DIR/$1.pid"; }  # the service's pid if it is running

# write_whole FILE VALUE: by a rename, so that the supervisor never reads a
# pid or hold file half-written: it read a hold empty, took it for another
# process's, dropped it, and restarted a service `stop` had stopped.
write_whole() { echo "$2" >"$1.new" && mv -f "$1.new" "$1"; }

start_one() {
  local name=$1
  rm -f "$STATE_DIR/$name.held"
  if pid_of "$name" >/dev/null; then
    say "$name already running"
    return 0
  fi
  proc_start "$STATE_DIR/$name.log" env SERVER_PORT="$(proc_service_port "$name")" "$BIN_DIR/$name"
  write_whole "$STATE_DIR/$name.pid" "$PROC_PID"
  disown "$PROC_PID" 2>/dev/null || true  # its end is ours to report, not the shell's ("Killed")
}

wait_ready() {
  local name=$1 port p
  port=$(proc_service_port "$name")
  p=$(cat "$STATE_DIR/$name.pid")
  proc_wait_ready "$p" "http://127.0.0.1:$port/ready" 30 "$STATE_DIR/$name.log" ||
    { say "$name did not get ready"; return 1; }
  say "$name ready on http://127.0.0.1:$port"
}

stop_one() {
  local name=$1 p
  p=$(pid_of "$name") || p=none
  # Held: the supervisor leaves this service down (see supervise).
  [ ! -d "$STATE_DIR" ] || write_whole "$STATE_DIR/$name.held" "$p"
  [ "$p" != none ] || { rm -f "$STATE_DIR/$name.pid"; return 0; }
  proc_stop "$p" "$name" || true
  rm -f "$STATE_DIR/$name.pid"
  say "$name stopped"
}

# Restarts services that exit without being stopped, with backoff; returns
# on SIGINT/SIGTERM. A service held by `stop NAME` is left alone.
supervise() {
  local s p h now
  declare -A backoff=() retry_at=() up_since=()
  trap 'say "supervisor stopping"; exit 0' INT TERM
  for s in $SERVICES; do backoff[$s]=1; done
  while :; do
    now=$SECONDS
    for s in $SERVICES; do
      if p=$(pid_of "$s"); then
        # A process other than the one `stop` was ending ends the hold. No
        # hold read (none, or `stop` writing it now) is not another's.
        h=$(cat "$STATE_DIR/$s.held" 2>/dev/null) || h=""
        [ -z "$h" ] || [ "$h" = "$p" ] || rm -f "$STATE_DIR/$s.held"
        unset 'retry_at[$s]'
        [ -n "${up_since[$s]:-}" ] || up_since[$s]=$now
        [ $((now - up_since[$s])) -lt 60 ] || backoff[$s]=1
      elif [ -f "$STATE_DIR/$s.held" ]; then
        unset 'retry_at[$s]' 'up_since[$s]'
      elif [ -z "${retry_at[$s]:-}" ]; then
        unset 'up_since[$s]'
        retry_at[$s]=$((now + backoff[$s]))
        say "$s exited; restarting it in ${backoff[$s]} s; last lines of $STATE_DIR/$s.log:"
        tail -n 5 "$STATE_DIR/$s.log" 2>/dev/null | sed 's/^/    /' >&2
      elif [ "$now" -ge "${retry_at[$s]}" ]; then
        unset 'retry_at[$s]'
        backoff[$s]=$((backoff[$s] * 2 > 30 ? 30 : backoff[$s] * 2))
        say "restarting $s"
        start_one "$s"
      fi
    done
    sleep 1
  done
}

SERVICES="command-service consumer-service query-service"
action=${1:-}
shift || true
for s in "$@"; do
  case " $SERVICES " in *" $s "*) ;; *) echo "$0: unknown service '$s' ($SERVICES)" >&2; exit 2 ;; esac
done
# Named services, or all three (stopped in the order that loses nothing:
# readers and writers of the topic before the consumer).
if [ $# -gt 0 ]; then chosen="$*"; else chosen=$SERVICES; fi
if [ $# -gt 0 ]; then stop_order="$*"; else stop_order="query-service command-service consumer-service"; fi
case "$action" in
  start)
    mkdir -p "$STATE_DIR"
    for s in $chosen; do start_one "$s"; done
    for s in $chosen; do wait_ready "$s"; done
    ;;
  stop)
    for s in $stop_order; do stop_one "$s"; done
    ;;
  restart)
    for s in $stop_order; do stop_one "$s"; done
    mkdir -p "$STATE_DIR"
    for s in $chosen; do start_one "$s"; done
    for s in $chosen; do wait_ready "$s"; done
    ;;
  status)
    rc=0
    for s in $chosen; do
      if p=$(pid_of "$s"); then say "$s running (pid $p)"; else say "$s stopped"; rc=3; fi
    done
    exit "$rc"
    ;;
  supervise)
    [ $# -eq 0 ] || { echo "usage: $0 supervise" >&2; exit 2; }
    supervise
    ;;
  *) echo "usage: $0 start|stop|restart|status [SERVICE...] | supervise" >&2; exit 2 ;;
esac
