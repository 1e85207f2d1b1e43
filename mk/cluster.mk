# cluster.mk — the cluster form (issue 13): three Kafka brokers (KRaft) and a
# PostgreSQL primary with a streaming standby, all on 127.0.0.1.
#   make run-cluster    scripts/run.sh cluster: the trio on 7080-7082 against
#                       brokers 9092/9094/9096, PostgreSQL 5432 + standby 5433
#   make test-cluster   the failover fault tests (integration/cluster/) on a
#                       cluster of their own: brokers 26092/26094/26096
#                       (controllers +1), PostgreSQL 26432 + standby 26433,
#                       services 26080-26083, state in .local/cluster

CLUSTER_SRCS := $(wildcard integration/cluster/*.c)

.PHONY: run-cluster test-cluster
run-cluster: deps
	@$(MAKE) --no-print-directory all
	@BIN_DIR=$(abspath $(BUILD)) scripts/run.sh cluster

# The cluster tests link the test harness (integration/harness/, whose
# headers every integration/ object includes) as the fault suites do.
$(BUILD)/cluster-tests: $(call obj,$(CLUSTER_SRCS)) $(BUILD)/libharness.a $(BUILD)/libcommon.a
	$(call quiet,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check libcurl) $(LDLIBS)

test-cluster: all $(BUILD)/cluster-tests
	@echo "== cluster tests (3 Kafka brokers, PostgreSQL primary + standby; failover)"
	$(Q)scripts/cluster-test.sh $(BUILD)

TEST_TARGETS += test-cluster
