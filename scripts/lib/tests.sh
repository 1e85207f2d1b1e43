# shellcheck shell=bash
# tests.sh — what integration.sh and faults.sh share (sourced by both): a
# fresh Kafka broker and PostgreSQL of the run's own, the test binary against
# them, and both stopped at the end, also when a test left the broker frozen.
#
#   run_tests NAME BINARY STATE_DIR KAFKA_PORT PG_PORT BUILD_DIR [SUITE [CASE]]
#     NAME         the prefix of what the script says ([NAME] failed; ...)
#     BINARY       the test program in BUILD_DIR (integration-tests, fault-tests)
#     STATE_DIR, KAFKA_PORT, PG_PORT
#                  defaults that TEST_STATE_DIR, TEST_KAFKA_PORT and TEST_PG_PORT
#                  override, so that two runs can go side by side
#   The test program gets TEST_BIN_DIR, TEST_STATE_DIR, TEST_KAFKA_BROKER,
#   TEST_DB_URL and whatever TEST_* the caller exported (service ports, ...).
#   With TESTS_CLUSTER=1 the stack is the cluster form (scripts/cluster.sh:
#   three brokers from KAFKA_PORT, a PostgreSQL primary on PG_PORT and its
#   standby), and the test program gets its configuration from
#   `cluster.sh env`: every broker, the multi-host DB_URL (TEST_DB_URL) and
#   TEST_DB_READ_URL.
#   With TESTS_JAEGER=1 (integration.sh) Jaeger runs too (scripts/jaeger.sh; OTLP
#   on TEST_JAEGER_OTLP_PORT, 17318, query API on TEST_JAEGER_QUERY_PORT, 17686,
#   and 17685 for its gRPC), and the test program gets TEST_OTLP_ENDPOINT and
#   TEST_JAEGER_URL: the services it starts export their spans there.

TESTS_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# shellcheck disable=SC2317  # invoked by the trap
tests_cleanup() {
  local pid
  # A test that failed while the broker was frozen must not leave it so.
  if pid=$(cat "$STATE_DIR/kafka.pid" 2>/dev/null) &&
     grep -qa kafka.Kafka "/proc/$pid/cmdline" 2>/dev/null; then
    kill -CONT "$pid"
  fi
  if [ -n "${TESTS_CLUSTER:-}" ]; then
    "$TESTS_HERE/cluster.sh" down || true
    return 0
  fi
  "$TESTS_HERE/kafka.sh" stop || true
  "$TESTS_HERE/pg.sh" stop || true
  [ -z "${TESTS_JAEGER:-}" ] || "$TESTS_HERE/jaeger.sh" stop || true
}

run_tests() {
  local name=$1 binary=$2 build rc
  export STATE_DIR=${TEST_STATE_DIR:-$3}
  export KAFKA_PORT=${TEST_KAFKA_PORT:-$4}
  export PG_PORT=${TEST_PG_PORT:-$5}
  build=$(cd "${6:-$TESTS_HERE/../build}" && pwd)
  shift 6 || shift $#   # the rest selects a suite and a case

  trap tests_cleanup EXIT
  # A fresh state every run: an empty topic and an empty database.
  tests_cleanup >/dev/null 2>&1
  rm -rf "$STATE_DIR"
  mkdir -p "$STATE_DIR"
  local broker=127.0.0.1:$KAFKA_PORT db_url=postgresql://postgres@127.0.0.1:$PG_PORT/postgres
  if [ -n "${TESTS_CLUSTER:-}" ]; then
    "$TESTS_HERE/cluster.sh" up
    broker=$("$TESTS_HERE/cluster.sh" env | sed -n 's/^KAFKA_BROKER=//p')
    db_url=$("$TESTS_HERE/cluster.sh" env | sed -n 's/^DB_URL=//p')
    TEST_DB_READ_URL=$("$TESTS_HERE/cluster.sh" env | sed -n 's/^DB_READ_URL=//p')
    export TEST_DB_READ_URL
  else
    "$TESTS_HERE/pg.sh" start
    "$TESTS_HERE/kafka.sh" start
  fi
  if [ -n "${TESTS_JAEGER:-}" ]; then
    export JAEGER_OTLP_PORT=${TEST_JAEGER_OTLP_PORT:-17318}
    export JAEGER_QUERY_PORT=${TEST_JAEGER_QUERY_PORT:-17686}
    "$TESTS_HERE/jaeger.sh" start
    export TEST_OTLP_ENDPOINT=http://127.0.0.1:$JAEGER_OTLP_PORT
    export TEST_JAEGER_URL=http://127.0.0.1:$JAEGER_QUERY_PORT
  fi

  export TEST_STATE_DIR=$STATE_DIR
  TEST_BIN_DIR=$build \
  TEST_KAFKA_BROKER=$broker \
  TEST_DB_URL=$db_url \
    "$build/$binary" "$@" || {
      rc=$?
      echo "[$name] failed; service logs are in $STATE_DIR" >&2
      exit "$rc"
    }
}
