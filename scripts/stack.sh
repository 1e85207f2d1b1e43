#!/usr/bin/env bash
# stack.sh — start or stop the local Kafka broker and PostgreSQL together.
#
# usage: scripts/stack.sh up|down|status
# env:   as scripts/kafka.sh and scripts/pg.sh (KAFKA_PORT, PG_PORT, STATE_DIR, ...)
# What they need is installed by `make deps` (scripts/deps.sh), not here.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

case "${1:-}" in
  up)
    "$HERE/pg.sh" start
    "$HERE/kafka.sh" start
    # The three C services are started separately (see the Makefile's run target).
    ;;
  down)
    # Stop the C services first, if they were started (see the Makefile's run target).
    "$HERE/kafka.sh" stop
    "$HERE/pg.sh" stop
    ;;
  status)
    rc=0
    "$HERE/kafka.sh" status || rc=$?
    "$HERE/pg.sh" status || rc=$?
    exit "$rc"
    ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
