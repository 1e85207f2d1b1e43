#!/usr/bin/env bash
# cluster.sh — the cluster form of the stack on 127.0.0.1: three Kafka brokers
# (KRaft, each a broker and a controller) and PostgreSQL as a primary with a
# streaming standby, started and stopped together (scripts/stack.sh is the
# single-node form).
#
# usage: scripts/cluster.sh up|down|status|env
#   env   prints the services' configuration for this cluster, one NAME=value
#         a line: every broker, topics with RF 3 (and min.insync.replicas=2),
#         a multi-host DB_URL that finds the primary, reads on the standby,
#         the consumer's offsets held until the standby has the rows
# env:   as scripts/kafka.sh and scripts/pg.sh (KAFKA_PORT 9092, PG_PORT 5432,
#        PG_STANDBY_PORT PG_PORT+1, STATE_DIR, ...); KAFKA_NODES (3)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export KAFKA_NODES=${KAFKA_NODES:-3}
KAFKA_PORT=${KAFKA_PORT:-9092}
PG_PORT=${PG_PORT:-5432}
PG_STANDBY_PORT=${PG_STANDBY_PORT:-$((PG_PORT + 1))}
export PG_STANDBY_PORT

case "${1:-}" in
  up)
    "$HERE/pg.sh" start
    "$HERE/pg.sh" start-standby
    "$HERE/kafka.sh" start
    ;;
  down)
    # Also what a test left frozen or killed: kafka.sh resumes a frozen node
    # before it stops it.
    rc=0
    "$HERE/kafka.sh" stop || rc=$?
    "$HERE/pg.sh" stop-standby || rc=$?
    "$HERE/pg.sh" stop || rc=$?
    exit "$rc"
    ;;
  status)
    rc=0
    "$HERE/kafka.sh" status || rc=$?
    "$HERE/pg.sh" status || rc=$?
    "$HERE/pg.sh" status-standby || rc=$?
    exit "$rc"
    ;;
  env)
    brokers=
    for ((i = 0; i < KAFKA_NODES; i++)); do
      brokers+=${brokers:+,}127.0.0.1:$((KAFKA_PORT + 2 * i))
    done
    hosts=127.0.0.1:$PG_PORT,127.0.0.1:$PG_STANDBY_PORT
    echo "KAFKA_BROKER=$brokers"
    echo "KAFKA_TOPIC_REPLICATION=$((KAFKA_NODES < 3 ? KAFKA_NODES : 3))"
    echo "DB_URL=postgresql://postgres@$hosts/postgres?target_session_attrs=read-write"
    echo "CONSUMER_DURABLE_STANDBYS=1"
    echo "DB_READ_URL=postgresql://postgres@127.0.0.1:$PG_STANDBY_PORT,127.0.0.1:$PG_PORT/postgres?target_session_attrs=prefer-standby"
    ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
