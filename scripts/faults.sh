#!/usr/bin/env bash
# faults.sh BUILD_DIR [SUITE [CASE]] — runs the fault tests against a fresh
# Kafka broker and PostgreSQL of their own (ports 29092 and 25432, services
# on 27080-27083, state in .local/faults), so that neither `make run` nor
# the integration tests are disturbed; the tests freeze, stop and restart
# the broker and the database through scripts/kafka.sh and scripts/pg.sh.
# TEST_KAFKA_PORT, TEST_PG_PORT, TEST_STATE_DIR and TEST_{COMMAND,CONSUMER,
# QUERY,CONSUMER2}_PORT move a run elsewhere.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
shift || true
export STATE_DIR=${TEST_STATE_DIR:-$ROOT/.local/faults}
export KAFKA_PORT=${TEST_KAFKA_PORT:-29092}
export PG_PORT=${TEST_PG_PORT:-25432}

cleanup() {
  local pid
  # A test that failed while the broker was frozen must not leave it so.
  if pid=$(cat "$STATE_DIR/kafka.pid" 2>/dev/null) &&
     grep -qa kafka.Kafka "/proc/$pid/cmdline" 2>/dev/null; then
    kill -CONT "$pid"
  fi
  "$HERE/kafka.sh" stop || true
  "$HERE/pg.sh" stop || true
}
trap cleanup EXIT

cleanup >/dev/null 2>&1
rm -rf "$STATE_DIR"
mkdir -p "$STATE_DIR"
"$HERE/pg.sh" start
"$HERE/kafka.sh" start

export TEST_STATE_DIR=$STATE_DIR
export TEST_COMMAND_PORT=${TEST_COMMAND_PORT:-27080}
export TEST_CONSUMER_PORT=${TEST_CONSUMER_PORT:-27081}
export TEST_QUERY_PORT=${TEST_QUERY_PORT:-27082}
export TEST_CONSUMER2_PORT=${TEST_CONSUMER2_PORT:-27083}
TEST_BIN_DIR=$BUILD \
TEST_SCRIPTS_DIR=$HERE \
TEST_KAFKA_BROKER=127.0.0.1:$KAFKA_PORT \
TEST_DB_URL=postgresql://postgres@127.0.0.1:$PG_PORT/postgres \
  "$BUILD/fault-tests" "$@" || {
    rc=$?
    echo "[faults] failed; service logs are in $STATE_DIR" >&2
    exit "$rc"
  }
