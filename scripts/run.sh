#!/usr/bin/env bash
# run.sh — `make run`: Kafka, PostgreSQL and the three services on the default
# ports, until Ctrl-C, which stops everything. A service that exits meanwhile
# is logged and restarted with backoff; `scripts/services.sh stop NAME` stops
# one on purpose (it stays down until `scripts/services.sh start NAME`).
# `scripts/run.sh cluster` (make run-cluster): the same on the cluster form of
# scripts/cluster.sh — three Kafka brokers from 9092 (9092, 9094, 9096), the
# PostgreSQL primary on 5432 and its standby on 5433 — with the services
# configured for it (scripts/cluster.sh env).
# TRACING=1 (make run TRACING=1) also runs Jaeger (scripts/jaeger.sh: built
# once, ~7 min; OTLP/HTTP on 127.0.0.1:4318, its query API on 127.0.0.1:16686)
# and the services export their spans to it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
STACK=$HERE/stack.sh CLUSTER_MSG=
case "${1:-}" in
  "") export STATE_DIR=${STATE_DIR:-$ROOT/.local/run} ;;
  cluster)
    # A state of its own: a single-node broker's data is another Kafka
    # cluster (its own id and voters), which the cluster's nodes refuse.
    export STATE_DIR=${STATE_DIR:-$ROOT/.local/run-cluster}
    STACK=$HERE/cluster.sh
    while IFS= read -r kv; do export "${kv?}"; done < <("$STACK" env)
    CLUSTER_MSG="Cluster form: brokers $KAFKA_BROKER; PostgreSQL primary 127.0.0.1:${PG_PORT:-5432},
standby 127.0.0.1:${PG_STANDBY_PORT:-$((${PG_PORT:-5432} + 1))} (scripts/cluster.sh status).
"
    ;;
  *) echo "usage: $0 [cluster]" >&2; exit 2 ;;
esac

SUPERVISOR=""
# shellcheck disable=SC2317  # invoked by the trap
stop_all() {
  trap - INT TERM EXIT
  echo
  if [ -n "$SUPERVISOR" ]; then
    kill -TERM "$SUPERVISOR" 2>/dev/null || true
    wait "$SUPERVISOR" 2>/dev/null || true
  fi
  "$HERE/services.sh" stop || true
  "$STACK" down || true
  [ "${TRACING:-}" != 1 ] || "$HERE/jaeger.sh" stop || true
}
# Ctrl-C or a TERM is how it is meant to stop: everything down, status 0.
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

"$STACK" up
TRACING_MSG=
if [ "${TRACING:-}" = 1 ]; then
  "$HERE/jaeger.sh" build
  "$HERE/jaeger.sh" start
  export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:${JAEGER_OTLP_PORT:-4318}
  TRACING_MSG="Tracing: the services export their spans to Jaeger (log $STATE_DIR/jaeger.log). The latest POST's trace:
  scripts/jaeger.sh last      # or: curl -s 'http://127.0.0.1:${JAEGER_QUERY_PORT:-16686}/api/traces?service=command-service&limit=1'
"
fi
"$HERE/services.sh" start

cat <<MSG

The trio is up. Logs: $STATE_DIR/{command,consumer,query}-service.log
$CLUSTER_MSG$TRACING_MSG
  # record a timestamp (the answer is a ticket id)
  curl -s -X POST http://127.0.0.1:7080/api/v1/timestamp/2009-09-28T19:03:12Z \\
       -H 'correlationId: 3f0e2c4a-1b2c-4d5e-8f90-123456789abc'
  # record the current time
  curl -s -X POST http://127.0.0.1:7080/app
  # read it back (use the id from the answer)
  curl -s http://127.0.0.1:7082/api/v1/timestamp/<id>
  # health and readiness
  curl -s http://127.0.0.1:7081/ready
  # stop one service on purpose, and start it again (the others keep running)
  scripts/services.sh stop consumer-service; scripts/services.sh start consumer-service

A service that exits is restarted with backoff. Press Ctrl-C to stop everything.
MSG

# In the background, so that a signal to this script is handled at once.
"$HERE/services.sh" supervise &
SUPERVISOR=$!
wait "$SUPERVISOR"
