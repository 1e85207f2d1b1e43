#!/usr/bin/env bash
# cluster-test.sh BUILD_DIR [SUITE [CASE]] — `make test-cluster`: the failover
# tests (build/cluster-tests) against a fresh cluster form of their own
# (scripts/cluster.sh: brokers 26092/26094/26096, controllers one port
# above each, PostgreSQL 26432 and its standby 26433, services 26080-26083,
# state in .local/cluster). The tests kill, stop, wipe and restart brokers
# and the database through scripts/kafka.sh and scripts/pg.sh; everything is
# stopped at the end whatever they left. TEST_KAFKA_PORT, TEST_PG_PORT,
# TEST_STATE_DIR and TEST_{COMMAND,CONSUMER,QUERY,CONSUMER2}_PORT move a run
# elsewhere (the standby on TEST_PG_PORT + 1). The run: scripts/lib/tests.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=scripts/lib/tests.sh
. "$HERE/lib/tests.sh"

export TESTS_CLUSTER=1 KAFKA_NODES=3
export PG_STANDBY_PORT=$((${TEST_PG_PORT:-26432} + 1))
export TEST_COMMAND_PORT=${TEST_COMMAND_PORT:-26080}
export TEST_CONSUMER_PORT=${TEST_CONSUMER_PORT:-26081}
export TEST_QUERY_PORT=${TEST_QUERY_PORT:-26082}
export TEST_CONSUMER2_PORT=${TEST_CONSUMER2_PORT:-26083}
export TEST_SCRIPTS_DIR=$HERE
run_tests cluster cluster-tests "$ROOT/.local/cluster" 26092 26432 "$@"
