#!/usr/bin/env bash
# integration.sh BUILD_DIR [SUITE [CASE]] — runs the integration tests against
# a fresh Kafka broker and PostgreSQL on test ports (19092, 15432; state in
# .local/test), so that a `make run` stack on the default ports is left alone.
# The tests start the services. TEST_KAFKA_PORT, TEST_PG_PORT, TEST_STATE_DIR
# and TEST_{COMMAND,CONSUMER,QUERY}_PORT move a run elsewhere, so that two can
# run side by side. Jaeger runs with them (OTLP 17318, query API 17686;
# TEST_JAEGER_OTLP_PORT and TEST_JAEGER_QUERY_PORT move it) and the services
# export their spans to it: the tracing suite reads them back. The run
# itself: scripts/lib/tests.sh (as faults.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=scripts/lib/tests.sh
. "$HERE/lib/tests.sh"

"$HERE/promtool.sh" --version >/dev/null   # there (make deps-test), before the tests' time limits
export TEST_PROMTOOL=$HERE/promtool.sh
"$HERE/jaeger.sh" build   # built (or waited for: make deps-test starts it) before the tests too
export TESTS_JAEGER=1
run_tests integration integration-tests "$ROOT/.local/test" 19092 15432 "$@"
