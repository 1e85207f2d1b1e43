# Fault tests: the delivery guarantees under real faults (a frozen or
# restarted broker, a stopped database, killed and stopped services, poison
# messages, abusive HTTP clients). Included by the Makefile.
#   make test-faults     build and run them on their own stack (ports 29092,
#                        25432, 27080-27083; state in .local/faults)

FAULT_SRCS := $(wildcard integration/faults/*.c)

# The fault suites link the test harness (integration/harness/, see the
# Makefile), as the integration suites do.
$(BUILD)/fault-tests: $(call obj,$(FAULT_SRCS)) $(BUILD)/libharness.a $(BUILD)/libcommon.a
	$(call quiet,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check libcurl) $(LDLIBS)

.PHONY: test-faults
test-faults: all $(BUILD)/fault-tests
	@echo "== fault tests (real Kafka and PostgreSQL, faults injected)"
	$(Q)scripts/faults.sh $(BUILD)

TEST_TARGETS += test-faults
