#!/usr/bin/env bash
# integration.sh BUILD_DIR — runs the integration tests against a fresh Kafka
# broker and PostgreSQL on test ports (19092, 15432), so that a `make run`
# stack on the default ports is left alone. The tests start the services.
# TEST_KAFKA_PORT, TEST_PG_PORT, TEST_STATE_DIR and TEST_{COMMAND,CONSUMER,
# QUERY}_PORT move a run elsewhere, so that two can run side by side.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
shift || true   # the rest selects a suite and a case: integration.sh build timestamp
export STATE_DIR=${TEST_STATE_DIR:-$ROOT/.local/test}
export KAFKA_PORT=${TEST_KAFKA_PORT:-19092}
export PG_PORT=${TEST_PG_PORT:-15432}

cleanup() {
  "$HERE/kafka.sh" stop || true
  "$HERE/pg.sh" stop || true
}
trap cleanup EXIT

# A fresh state every run: an empty topic and an empty database.
cleanup >/dev/null 2>&1
rm -rf "$STATE_DIR"
mkdir -p "$STATE_DIR"
"$HERE/promtool.sh" --version >/dev/null   # there (make deps-test), before the tests' time limits
"$HERE/pg.sh" start
"$HERE/kafka.sh" start

export TEST_STATE_DIR=$STATE_DIR TEST_PROMTOOL=$HERE/promtool.sh
TEST_BIN_DIR=$BUILD \
TEST_KAFKA_BROKER=127.0.0.1:$KAFKA_PORT \
TEST_DB_URL=postgresql://postgres@127.0.0.1:$PG_PORT/postgres \
  "$BUILD/integration-tests" "$@" || {
    rc=$?
    echo "[integration] failed; service logs are in $STATE_DIR" >&2
    exit "$rc"
  }
