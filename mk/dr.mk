# dr.mk — disaster recovery: `consumer-service --reset-offsets earliest`,
# `make dr-drill` (the drill against a running `make run` stack) and
# `make test-dr` (the same drill on a stack of its own, part of `make test`).

.PHONY: dr-drill test-dr

# The drill against the stack of `make run` (default ports; STATE_DIR,
# COMMAND_PORT, CONSUMER_PORT, QUERY_PORT, PG_PORT, DR_RECORDS, ... move it).
dr-drill: all
	$(Q)BIN_DIR=$(abspath $(BUILD)) scripts/dr-drill.sh

# The same drill on a fresh stack of its own, on ports of its own, so that it
# runs beside `make run` and the other test stacks; with a password in DB_URL
# that must show nowhere (scripts/dr-test.sh).
DR_TEST_ENV := STATE_DIR=$(CURDIR)/.local/dr KAFKA_PORT=21092 PG_PORT=21432 \
               COMMAND_PORT=21080 CONSUMER_PORT=21081 QUERY_PORT=21082 \
               DR_SPARE_PORT=21083 DR_RECORDS=301
test-dr: all
	@echo "== disaster-recovery drill (own stack: Kafka 21092, PostgreSQL 21432, services 21080-21083)"
	$(Q)env $(DR_TEST_ENV) BIN_DIR=$(abspath $(BUILD)) scripts/dr-test.sh

TEST_TARGETS += test-dr
