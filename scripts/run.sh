#!/usr/bin/env bash
# run.sh — `make run`: Kafka, PostgreSQL and the three services on the default
# ports, until Ctrl-C, which stops everything.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export STATE_DIR=${STATE_DIR:-$ROOT/.local/run}

# shellcheck disable=SC2317  # invoked by the trap
stop_all() {
  trap - INT TERM EXIT
  echo
  "$HERE/services.sh" stop || true
  "$HERE/stack.sh" down || true
}
# Ctrl-C or a TERM is how it is meant to stop: everything down, status 0.
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

"$HERE/stack.sh" up
"$HERE/services.sh" start

cat <<MSG

The trio is up. Logs: $STATE_DIR/{command,consumer,query}-service.log

  # record a timestamp (the answer is a ticket id)
  curl -s -X POST http://127.0.0.1:7080/api/v1/timestamp/2009-09-28T19:03:12Z \\
       -H 'correlationId: 3f0e2c4a-1b2c-4d5e-8f90-123456789abc'
  # record the current time
  curl -s -X POST http://127.0.0.1:7080/app
  # read it back (use the id from the answer)
  curl -s http://127.0.0.1:7082/api/v1/timestamp/<id>
  # health and readiness
  curl -s http://127.0.0.1:7081/ready

Press Ctrl-C to stop everything.
MSG

# Wait until a signal arrives or a service dies.
while "$HERE/services.sh" status >/dev/null; do
  sleep 1
done
echo "[run] a service exited; see its log in $STATE_DIR"
exit 1
