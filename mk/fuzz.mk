# fuzz.mk — libFuzzer targets (clang, with ASan and UBSan) for the code that
# reads untrusted input: the RFC 3339 parser, the Kafka message codec, UUID
# and Idempotency-Key checks, request paths and correlation ids, the JSON
# escaping of what goes back into error bodies, and the W3C trace context.
#
#   make fuzz                  each target for FUZZ_SECONDS (60), failing on a crash
#   make fuzz FUZZ_SECONDS=600 longer
#   make fuzz-run-ts           one target (ts, msg, uid, http, jsonw, trace)
#   make fuzz-corpus           every committed seed once, no fuzzing (quick)
#
# Seeds are in fuzz/corpus/<target>/ (small, committed); what the fuzzer finds
# goes to $(BUILD)/fuzz/corpus/<target>/, crashing inputs to
# $(BUILD)/fuzz/crashes/. A crash found becomes a case in
# common/tests/test_fuzz_regress.c, which `make test` runs.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := ts msg uid http jsonw trace
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror -Wshadow \
                -Wvla -MMD -MP -Icommon $(FUZZ_SAN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

# Per target: the longest input and a dictionary of the grammar's tokens.
FUZZ_ARGS_ts   := -max_len=96 -dict=fuzz/ts.dict
FUZZ_ARGS_msg  := -max_len=4096 -dict=fuzz/msg.dict
FUZZ_ARGS_uid  := -max_len=320
FUZZ_ARGS_http := -max_len=12288 -dict=fuzz/http.dict
FUZZ_ARGS_jsonw := -max_len=1024 -dict=fuzz/msg.dict
FUZZ_ARGS_trace := -max_len=1024 -dict=fuzz/trace.dict

.PHONY: fuzz fuzz-build fuzz-corpus $(FUZZ_TARGETS:%=fuzz-run-%)

# common/ once more, compiled by clang with coverage instrumentation.
$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call quiet,CLANG,$<)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_DIR)/libcommon.a: $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(COMMON_SRCS))
	$(call quiet,AR,$@)$(AR) rcs $@ $^
$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/fuzz/fuzz_%.o $(FUZZ_DIR)/libcommon.a
	$(call quiet,LINK,$@)$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(LDLIBS)

fuzz-build: $(FUZZ_BINS)
# (kept, so that a second `make fuzz` does not compile the targets again)
.SECONDARY: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/obj/fuzz/fuzz_%.o)

fuzz: $(FUZZ_TARGETS:%=fuzz-run-%)

$(FUZZ_TARGETS:%=fuzz-run-%): fuzz-run-%: $(FUZZ_DIR)/fuzz_%
	@echo "== fuzz $* for $(FUZZ_SECONDS) s (seeds fuzz/corpus/$*, findings $(FUZZ_DIR)/corpus/$*)"
	@mkdir -p $(FUZZ_DIR)/corpus/$* $(FUZZ_DIR)/crashes
	$(Q)$(FUZZ_DIR)/fuzz_$* $(FUZZ_ARGS_$*) -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crashes/$*- \
	  $(FUZZ_DIR)/corpus/$* fuzz/corpus/$* 2>$(FUZZ_DIR)/$*.log \
	  || { tail -n 60 $(FUZZ_DIR)/$*.log; echo "fuzz $*: FAILED; the input is in $(FUZZ_DIR)/crashes/ (add it to common/tests/test_fuzz_regress.c)"; exit 1; }
	@grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+.*DONE' $(FUZZ_DIR)/$*.log | tr '\n' ' '; echo

fuzz-corpus: $(FUZZ_BINS)
	$(Q)for t in $(FUZZ_TARGETS); do \
	  if $(FUZZ_DIR)/fuzz_$$t -runs=0 fuzz/corpus/$$t >$(FUZZ_DIR)/$$t-seeds.log 2>&1; then \
	    echo "fuzz $$t: $$(tail -n 1 $(FUZZ_DIR)/$$t-seeds.log)"; \
	  else \
	    tail -n 30 $(FUZZ_DIR)/$$t-seeds.log; echo "fuzz $$t: a seed fails"; exit 1; \
	  fi; \
	done
