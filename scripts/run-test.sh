#!/usr/bin/env bash
# run-test.sh — `make test-run`: `make run` (scripts/run.sh) as a user runs it,
# on ports of its own (Kafka 22092, PostgreSQL 22432, services 22080-22082):
# a service that dies is restarted with growing backoff, one stopped with
# `scripts/services.sh stop NAME` stays down until started again, and Ctrl-C
# (SIGINT) stops everything with status 0. Ends with "run-test: N passed, N failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
export STATE_DIR=${RUN_TEST_STATE_DIR:-$ROOT/.local/run-test}
# RUN_TEST_{KAFKA,PG,COMMAND,CONSUMER,QUERY}_PORT move a run elsewhere.
export KAFKA_PORT=${RUN_TEST_KAFKA_PORT:-22092} PG_PORT=${RUN_TEST_PG_PORT:-22432}
export COMMAND_PORT=${RUN_TEST_COMMAND_PORT:-22080} CONSUMER_PORT=${RUN_TEST_CONSUMER_PORT:-22081}
export QUERY_PORT=${RUN_TEST_QUERY_PORT:-22082}
export BIN_DIR=$BUILD
unset KAFKA_BROKER DB_URL
OUT=$STATE_DIR/run.out
RUN_PID=""

passed=0 failed=0
check() {  # check NAME CMD...: counts one assertion
  local name=$1
  shift
  if "$@"; then passed=$((passed + 1)); echo "run-test: ok     $name"
  else failed=$((failed + 1)); echo "run-test: FAILED $name"; fi
}
# until SECONDS CMD...: true once CMD succeeds, false after SECONDS
until_() {
  local end=$((SECONDS + $1))
  shift
  while [ "$SECONDS" -lt "$end" ]; do "$@" && return 0; sleep 0.2; done
  return 1
}
ready() { curl -fsS -o /dev/null -m 2 "http://127.0.0.1:$1/ready" 2>/dev/null; }
pid_of() { local p; p=$(cat "$STATE_DIR/$1.pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null && echo "$p"; }
new_pid() { local p; p=$(pid_of "$1") && [ "$p" != "$2" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
restarted() { new_pid consumer-service "$1" && ready "$CONSUMER_PORT"; }
others_ready() { ready "$COMMAND_PORT" && ready "$QUERY_PORT"; }
port_closed() { ! { : >"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; }
said() { grep -qF -- "$1" "$OUT"; }
stays_down() {  # stays_down NAME PORT SECONDS
  local end=$((SECONDS + $3))
  while [ "$SECONDS" -lt "$end" ]; do
    if pid_of "$1" >/dev/null || ! port_closed "$2"; then return 1; fi
    sleep 0.2
  done
}
all_down() {
  local s
  for s in command-service consumer-service query-service; do
    if pid_of "$s" >/dev/null; then return 1; fi
  done
  port_closed "$KAFKA_PORT" && port_closed "$PG_PORT"
}

cleanup() {
  if [ -n "$RUN_PID" ] && kill -0 "$RUN_PID" 2>/dev/null; then
    kill -TERM "$RUN_PID" 2>/dev/null || true
    until_ 30 gone "$RUN_PID" || kill -KILL "$RUN_PID" 2>/dev/null || true
  fi
  "$HERE/services.sh" stop >/dev/null 2>&1 || true
  "$HERE/stack.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

cleanup
rm -rf "$STATE_DIR"
mkdir -p "$STATE_DIR"
# A background job of a script starts with SIGINT ignored; Ctrl-C must work.
env --default-signal=INT "$HERE/run.sh" >"$OUT" 2>&1 </dev/null &
RUN_PID=$!
if ! until_ 180 said "The trio is up"; then
  tail -n 30 "$OUT" >&2
  echo "run-test: make run did not start"
  exit 1
fi
echo "run-test: the stack is up (output in $OUT)"

first=$(pid_of consumer-service)
kill -KILL "$first"
check "a killed consumer is restarted after 1 s and gets ready" \
  until_ 30 restarted "$first"
check "the restart is logged" said "consumer-service exited; restarting it in 1 s"

second=$(pid_of consumer-service)
kill -KILL "$second"
check "killed again at once: restarted after 2 s (backoff)" \
  until_ 30 restarted "$second"
check "the longer backoff is logged" said "consumer-service exited; restarting it in 2 s"

"$HERE/services.sh" stop consumer-service >/dev/null
check "a consumer stopped with services.sh stop stays down (8 s)" \
  stays_down consumer-service "$CONSUMER_PORT" 8
check "the other services keep running meanwhile" others_ready
"$HERE/services.sh" start consumer-service >/dev/null
check "services.sh start brings it back" ready "$CONSUMER_PORT"

kill -INT "$RUN_PID"
rc=0
if until_ 60 gone "$RUN_PID"; then
  wait "$RUN_PID" || rc=$?
  check "Ctrl-C: make run exits with status 0 (got $rc)" test "$rc" = 0
else
  check "Ctrl-C: make run exits within 60 s" false
fi
RUN_PID=""
check "Ctrl-C: every service, the broker and the database are stopped" all_down

echo "run-test: $passed passed, $failed failed"
[ "$failed" = 0 ]
