#!/usr/bin/env bash
# dr-test.sh — `make test-dr`: the operator's disaster-recovery drill
# (dr-drill.sh: the zero-downtime rebuild, then truncate-and-replay twice)
# on a fresh stack of its own whose DB_URL carries a password, which
# must never show: not in the drill's output, not in the services' logs, and
# not on any process's command line (where `ps` shows it to every user) —
# /proc/*/cmdline is sampled every 10 ms while the drill runs. Ends with
# "dr-test: N passed, N failed".
# env: as dr-drill.sh (STATE_DIR, KAFKA_PORT, PG_PORT, *_PORT, BIN_DIR, ...).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${STATE_DIR:?}" "${PG_PORT:?}"

# The test cluster trusts local connections, so any password works.
secret=dr-secret-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
export DB_URL=postgresql://postgres:$secret@127.0.0.1:$PG_PORT/postgres
out=$(mktemp -d) sampler=""
stop_stack() {
  "$HERE/services.sh" stop >/dev/null 2>&1 || true
  "$HERE/stack.sh" down >/dev/null 2>&1 || true
}
trap 'kill "$sampler" 2>/dev/null || true; stop_stack; rm -rf "$out"' EXIT
# The pattern goes in a file: on grep's command line it would be found.
printf '%s\n' "$secret" >"$out/pattern"

sample() {  # one grep a sweep: psql lives for a few milliseconds
  while :; do
    grep -lsaF -f "$out/pattern" /proc/[0-9]*/cmdline >>"$out/leaks" || true
    sleep 0.01
  done
}
sample &
sampler=$!

passed=0 failed=0
show() {  # prints lines of stdin, indented, with the password masked (no sed: its
  while IFS= read -r l; do echo "    ${l//$secret/<the password>}"; done  # argv would hold it)
}
verdict() {  # verdict OK NAME
  if [ "$1" = 0 ]; then passed=$((passed + 1)); echo "dr-test: ok     $2"
  else failed=$((failed + 1)); echo "dr-test: FAILED $2"; fi
}

stop_stack
rm -rf "$STATE_DIR"
mkdir -p "$STATE_DIR"
rc=0
{ "$HERE/stack.sh" up && "$HERE/services.sh" start && "$HERE/dr-drill.sh"; } 2>&1 |
  tee "$out/drill.txt" || rc=${PIPESTATUS[0]}
stop_stack
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
verdict "$rc" "the drill: a zero-downtime rebuild, then two rebuilds with identical rows"

if grep -qF -f "$out/pattern" "$out/drill.txt"; then
  grep -nF -f "$out/pattern" "$out/drill.txt" | head -n 3 | show
  verdict 1 "the password is not in the drill's output"
else
  verdict 0 "the password is not in the drill's output"
fi
if [ -s "$out/leaks" ]; then
  sort -u "$out/leaks" | head -n 3 | show  # (pids: the processes are gone by now)
  verdict 1 "the password is on no command line"
else
  verdict 0 "the password is on no command line"
fi
if grep -lF -f "$out/pattern" "$STATE_DIR"/*.log "$STATE_DIR"/dr-drill/*.log 2>/dev/null; then
  verdict 1 "the password is in no service log"
else
  verdict 0 "the password is in no service log"
fi
echo "dr-test: $passed passed, $failed failed"
[ "$failed" = 0 ]
