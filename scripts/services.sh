#!/usr/bin/env bash
# services.sh — start or stop the three services as background processes.
#
# usage: scripts/services.sh start|stop|status
# env:   BIN_DIR (<repo>/build), STATE_DIR (<repo>/.local/run; logs and pid files),
#        COMMAND_PORT (7080), CONSUMER_PORT (7081), QUERY_PORT (7082),
#        KAFKA_PORT (9092), PG_PORT (5432); any service variable (LOG_LEVEL, ...)
#        set in the environment reaches the services too.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN_DIR=${BIN_DIR:-$ROOT/build}
STATE_DIR=${STATE_DIR:-$ROOT/.local/run}
COMMAND_PORT=${COMMAND_PORT:-7080}
CONSUMER_PORT=${CONSUMER_PORT:-7081}
QUERY_PORT=${QUERY_PORT:-7082}
export KAFKA_BROKER=${KAFKA_BROKER:-127.0.0.1:${KAFKA_PORT:-9092}}
export DB_URL=${DB_URL:-postgresql://127.0.0.1:${PG_PORT:-5432}/postgres}

say() { echo "[services] $*"; }

port_of() {
  case $1 in
    command-service) echo "$COMMAND_PORT" ;;
    consumer-service) echo "$CONSUMER_PORT" ;;
    query-service) echo "$QUERY_PORT" ;;
  esac
}

pid_of() {  # prints the service's pid if it is running
  local f=$STATE_DIR/$1.pid p
  [ -f "$f" ] || return 1
  p=$(cat "$f")
  kill -0 "$p" 2>/dev/null && echo "$p"
}

start_one() {
  local name=$1 port
  port=$(port_of "$name")
  if pid_of "$name" >/dev/null; then
    say "$name already running"
    return 0
  fi
  SERVER_PORT=$port nohup "$BIN_DIR/$name" >>"$STATE_DIR/$name.log" 2>&1 &
  echo $! >"$STATE_DIR/$name.pid"
}

wait_ready() {
  local name=$1 port
  port=$(port_of "$name")
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/ready" 2>/dev/null; then
      say "$name ready on http://127.0.0.1:$port"
      return 0
    fi
    if ! pid_of "$name" >/dev/null; then
      say "$name exited; last lines of $STATE_DIR/$name.log:"
      tail -n 20 "$STATE_DIR/$name.log" >&2
      return 1
    fi
    sleep 0.1
  done
  say "$name not ready after 30 s; last lines of $STATE_DIR/$name.log:"
  tail -n 20 "$STATE_DIR/$name.log" >&2
  return 1
}

stop_one() {
  local name=$1 p
  p=$(pid_of "$name") || { rm -f "$STATE_DIR/$name.pid"; return 0; }
  kill -TERM "$p"
  for _ in $(seq 1 100); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$p" 2>/dev/null; then
    say "$name did not stop within 10 s; killing it"
    kill -KILL "$p"
  fi
  rm -f "$STATE_DIR/$name.pid"
  say "$name stopped"
}

SERVICES="command-service consumer-service query-service"
case "${1:-}" in
  start)
    mkdir -p "$STATE_DIR"
    for s in $SERVICES; do start_one "$s"; done
    for s in $SERVICES; do wait_ready "$s"; done
    ;;
  stop)
    for s in query-service command-service consumer-service; do stop_one "$s"; done
    ;;
  status)
    rc=0
    for s in $SERVICES; do
      if p=$(pid_of "$s"); then say "$s running (pid $p)"; else say "$s stopped"; rc=3; fi
    done
    exit "$rc"
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
