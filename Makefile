# Timestamp service trio: build, run, test.
#   make            build the three services into build/ (warnings are errors)
#   make run        install what is missing, start Kafka, PostgreSQL and the trio
#                   (TRACING=1: and Jaeger, the trio exporting its spans to it)
#   make test       unit tests (plain, then ASan+UBSan) and integration tests
#   make deps       install what make run needs (deps-test: and make test)
#   make lint       cppcheck and shellcheck
#   make clean      remove build output
# V=1 shows the compiler commands.

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
BUILD   ?= build
CC      ?= cc
PKGS    := rdkafka libpq json-c uuid libcurl

ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla \
           -MMD -MP -Icommon -DTS_VERSION='"$(VERSION)"' $(SANFLAGS) \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS += $(SANFLAGS)
# civetweb ships no pkg-config file in Debian.
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcivetweb -lpthread

COMMON_SRCS   := common/cfg.c common/clock.c common/db.c common/http.c common/jsonw.c \
                 common/kafka.c common/log.c common/metrics.c common/msg.c \
                 common/trace.c common/ts.c common/uid.c
COMMAND_SRCS  := command-service/main.c command-service/publisher.c \
                 command-service/api.c
CONSUMER_SRCS := consumer-service/main.c consumer-service/consumer.c \
                 consumer-service/sink.c consumer-service/reset.c \
                 consumer-service/rebuild.c consumer-service/verify.c
CONSUMER_SRCS += consumer-service/rebuild_status.c
QUERY_SRCS    := $(wildcard query-service/*.c)
UNIT_SRCS     := $(wildcard common/tests/*.c)
# Each service's own modules have unit tests in <service>/tests/, linked with
# the service's sources except its main.c, and the shared runner.
COMMAND_TEST_SRCS  := $(wildcard command-service/tests/*.c) \
                      $(filter-out %/main.c,$(COMMAND_SRCS)) common/tests/runner.c \
                      common/tests/otlp_sink.c
CONSUMER_TEST_SRCS := $(wildcard consumer-service/tests/*.c) \
                      $(filter-out %/main.c,$(CONSUMER_SRCS)) common/tests/runner.c \
                      common/tests/otlp_sink.c
QUERY_TEST_SRCS    := $(wildcard query-service/tests/*.c) \
                      $(filter-out %/main.c,$(QUERY_SRCS)) common/tests/runner.c \
                      common/tests/pg_startup.c
# The test harness (integration/harness/: processes, the stack, HTTP, Kafka
# and database access, shared assertions) is a library of its own that the
# integration suites (integration/*.c) and the fault suites link.
HARNESS_SRCS  := $(wildcard integration/harness/*.c)
INTEG_SRCS    := $(wildcard integration/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
BINS := $(BUILD)/command-service $(BUILD)/consumer-service $(BUILD)/query-service

ifneq ($(V),1)
Q := @
quiet = @printf '  %-5s %s\n' $(1) $(2);
endif

.PHONY: all deps deps-test run test test-unit test-unit-san test-integration lint clean
all: $(BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call quiet,CC,$<)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libcommon.a: $(call obj,$(COMMON_SRCS))
	$(call quiet,AR,$@)$(AR) rcs $@ $^

$(BUILD)/command-service: $(call obj,$(COMMAND_SRCS)) $(BUILD)/libcommon.a
	$(call quiet,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/consumer-service: $(call obj,$(CONSUMER_SRCS)) $(BUILD)/obj/schema.o $(BUILD)/libcommon.a
	$(call quiet,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/query-service: $(call obj,$(QUERY_SRCS)) $(BUILD)/libcommon.a
	$(call quiet,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The schema is one SQL file, compiled into the consumer as a string.
$(BUILD)/gen/schema.c: consumer-service/schema.sql scripts/embed.sh
	@mkdir -p $(dir $@)
	$(call quiet,GEN,$@)sh scripts/embed.sh schema_sql < $< > $@
$(BUILD)/obj/schema.o: $(BUILD)/gen/schema.c
	$(call quiet,CC,$<)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/unit-tests: $(call obj,$(UNIT_SRCS)) $(BUILD)/libcommon.a
	$(call quiet,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check) $(LDLIBS)

# A service's tests include its headers and the runner's.
$(BUILD)/obj/command-service/tests/%.o: CFLAGS += -Icommand-service -Icommon/tests
$(BUILD)/obj/consumer-service/tests/%.o: CFLAGS += -Iconsumer-service -Icommon/tests
$(BUILD)/obj/query-service/tests/%.o: CFLAGS += -Iquery-service -Icommon/tests
SERVICE_TESTS := $(foreach s,command consumer query,\
                   $(if $(wildcard $(s)-service/tests/main.c),$(BUILD)/$(s)-service-tests))
$(BUILD)/command-service-tests: $(call obj,$(COMMAND_TEST_SRCS)) $(BUILD)/libcommon.a
	$(call quiet,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check) $(LDLIBS)
$(BUILD)/consumer-service-tests: $(call obj,$(CONSUMER_TEST_SRCS)) $(BUILD)/obj/schema.o \
                                 $(BUILD)/libcommon.a
	$(call quiet,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check) $(LDLIBS)
$(BUILD)/query-service-tests: $(call obj,$(QUERY_TEST_SRCS)) $(BUILD)/libcommon.a
	$(call quiet,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check) $(LDLIBS)
$(BUILD)/libharness.a: $(call obj,$(HARNESS_SRCS))
	$(call quiet,AR,$@)$(AR) rcs $@ $^
# The suites include the harness's headers.
$(BUILD)/obj/integration/%.o: CFLAGS += -Iintegration/harness
# The schema too: the read_url suite applies it to a database of its own.
$(BUILD)/integration-tests: $(call obj,$(INTEG_SRCS)) $(BUILD)/obj/schema.o $(BUILD)/libharness.a \
                            $(BUILD)/libcommon.a
	$(call quiet,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check libcurl) $(LDLIBS)

# The only targets that install anything (see scripts/deps.sh): deps what
# make run needs, deps-test also what the tests and benchmarks use.
deps:
	@scripts/deps.sh run
deps-test:
	@scripts/deps.sh test

run: deps
	@$(MAKE) --no-print-directory all
	@BIN_DIR=$(abspath $(BUILD)) scripts/run.sh

# Each mk/*.mk fragment may add targets and append to TEST_TARGETS.
TEST_TARGETS := test-unit test-unit-san test-integration
-include $(sort $(wildcard mk/*.mk))

test: deps-test
	@set -e; for t in $(TEST_TARGETS); do $(MAKE) --no-print-directory $$t; done

test-unit: $(BUILD)/unit-tests $(SERVICE_TESTS)
	@echo "== unit tests"
	$(Q)for t in $^; do echo "-- $$t"; CK_FORK=yes $$t || exit 1; done

test-unit-san:
	@echo "== unit tests under AddressSanitizer and UndefinedBehaviorSanitizer"
	@$(MAKE) --no-print-directory test-unit BUILD=build/san SAN=1

test-integration: all $(BUILD)/integration-tests
	@echo "== integration tests (real Kafka and PostgreSQL)"
	$(Q)scripts/integration.sh $(BUILD)

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr --suppress=missingIncludeSystem -Icommon \
	  -Iintegration/harness common command-service consumer-service query-service integration bench
	shellcheck scripts/*.sh scripts/lib/*.sh .ci/run

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
