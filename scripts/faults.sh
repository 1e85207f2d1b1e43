#!/usr/bin/env bash
# faults.sh BUILD_DIR [SUITE [CASE]] — runs the fault tests against a fresh
# Kafka broker and PostgreSQL of their own (ports 29092 and 25432, services
# on 27080-27083, state in .local/faults), so that neither `make run` nor
# the integration tests are disturbed; the tests freeze, stop and restart
# the broker and the database through scripts/kafka.sh and scripts/pg.sh.
# TEST_KAFKA_PORT, TEST_PG_PORT, TEST_STATE_DIR and TEST_{COMMAND,CONSUMER,
# QUERY,CONSUMER2}_PORT move a run elsewhere. The run itself:
# scripts/lib/tests.sh (as integration.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=scripts/lib/tests.sh
. "$HERE/lib/tests.sh"

export TEST_COMMAND_PORT=${TEST_COMMAND_PORT:-27080}
export TEST_CONSUMER_PORT=${TEST_CONSUMER_PORT:-27081}
export TEST_QUERY_PORT=${TEST_QUERY_PORT:-27082}
export TEST_CONSUMER2_PORT=${TEST_CONSUMER2_PORT:-27083}
export TEST_SCRIPTS_DIR=$HERE
run_tests faults fault-tests "$ROOT/.local/faults" 29092 25432 "$@"
