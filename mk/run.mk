# run.mk — `make run` tested as a user runs it (make test-run, part of make
# test): scripts/run.sh on ports of its own (Kafka 22092, PostgreSQL 22432,
# services 22080-22082), its restarts, deliberate stops and Ctrl-C.

.PHONY: test-run
test-run: all
	@echo "== make run: supervision and Ctrl-C (own stack: Kafka 22092, PostgreSQL 22432, services 22080-22082)"
	$(Q)scripts/run-test.sh $(BUILD)

TEST_TARGETS += test-run
