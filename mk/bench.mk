# Benchmarks (bench/): each service measured against its ceiling in one run.
#   make bench         the full run on its own stack (ports 13092, 13432,
#                      13080-13083); writes bench/REPORT.md and its charts
#   make test-bench    a short smoke of the same harness (part of make test,
#                      no thresholds; report in .local/bench-smoke)
# BENCH_OUT sets where the report goes.

BENCH_BINS := $(BUILD)/bench/noop-server $(BUILD)/bench/produce $(BUILD)/bench/insert \
              $(BUILD)/bench/readable $(BUILD)/bench/produce-latency $(BUILD)/bench/pause \
              $(BUILD)/bench/attack

$(BUILD)/bench/noop-server: $(call obj,bench/noop-server.c) $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(call quiet,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/bench/produce: $(call obj,bench/produce.c) $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(call quiet,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
# The ceiling of the produce path at low concurrency (produce, wait, repeat).
$(BUILD)/bench/produce-latency: $(call obj,bench/produce-latency.c) $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(call quiet,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
# The ceiling of the consumer is its own sink without the consumer: insert.c
# includes consumer-service/sink.h by its path (no -I opens the consumer's
# other headers) and links the consumer's own sink and schema objects.
$(BUILD)/bench/insert: $(call obj,bench/insert.c consumer-service/sink.c) $(BUILD)/obj/schema.o \
                       $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(call quiet,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
# The host's pauses during each measured run (scripts/bench.sh, machine_mark).
$(BUILD)/bench/pause: $(call obj,bench/pause.c)
	@mkdir -p $(dir $@)
	$(call quiet,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^
# The open-loop POSTs of the accept → readable runs (bench/readable follows them).
$(BUILD)/bench/attack: $(call obj,bench/attack.c) $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(call quiet,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/bench/readable: $(call obj,bench/readable.c) $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(call quiet,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs libcurl) $(LDLIBS)

.PHONY: bench test-bench bench-bins
bench-bins: all $(BENCH_BINS)

# deps-test's tools, but not its background build of Jaeger (the tracing
# tests' collector): it would compile on the cores being measured.
bench:
	@DEPS_JAEGER=0 scripts/deps.sh test
	@$(MAKE) --no-print-directory bench-bins
	@echo "== benchmarks (own stack; see bench/README.md)"
	$(Q)scripts/bench.sh $(BUILD) $(or $(BENCH_OUT),bench)

test-bench: bench-bins
	@echo "== benchmark harness smoke (a few seconds per step, no thresholds)"
	$(Q)BENCH_SMOKE=1 scripts/bench.sh $(BUILD) $(or $(BENCH_OUT),.local/bench-smoke)

TEST_TARGETS += test-bench
