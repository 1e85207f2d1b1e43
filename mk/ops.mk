# ops.mk — the operations checks (make test-ops, part of make test) and curl
# helpers for the calls people make by hand against a running trio (make run).
#
#   make api-create TS=2009-09-28T19:03:12Z   record an instant; prints {"id":"…"}
#   make api-now                              record the current time
#   make api-get ID=<id>                      read a record back
#   make api-health                           /health and /ready of all three
#
# HOST (127.0.0.1), COMMAND_PORT (7080), CONSUMER_PORT (7081), QUERY_PORT (7082)
# point them elsewhere; CID sets the correlationId header (default: a new UUID,
# printed on stderr); IDEMPOTENCY_KEY adds an Idempotency-Key to api-create
# and api-now. A 4xx/5xx answer is printed and the target fails.

TEST_TARGETS += test-ops

.PHONY: test-ops api-create api-now api-get api-health

test-ops: deps-test all
	@echo "== ops checks: Postman/newman, OpenAPI lint + schemathesis, docker-compose, Dockerfiles, Ansible"
	$(Q)scripts/ops-test.sh $(BUILD)

# HOST only from the command line: some shells export HOST as the machine's name.
API_HOST := $(if $(filter command line,$(origin HOST)),$(HOST),127.0.0.1)
COMMAND_PORT ?= 7080
CONSUMER_PORT ?= 7081
QUERY_PORT ?= 7082

# $(call api_curl,ARGS): curl with the correlationId header; body on stdout.
api_curl = cid="$${CID:-$$(cat /proc/sys/kernel/random/uuid)}"; \
	echo "correlationId: $$cid" >&2; \
	curl -sS --fail-with-body -H "correlationId: $$cid" $(1); rc=$$?; echo; exit $$rc
api_idem = $(if $(IDEMPOTENCY_KEY),-H 'Idempotency-Key: $(IDEMPOTENCY_KEY)')

api-create:
	@test -n "$(TS)" || { echo 'usage: make api-create TS=2009-09-28T19:03:12Z [IDEMPOTENCY_KEY=...]' >&2; exit 2; }
	@$(call api_curl,-X POST $(api_idem) 'http://$(API_HOST):$(COMMAND_PORT)/api/v1/timestamp/$(TS)')

api-now:
	@$(call api_curl,-X POST $(api_idem) 'http://$(API_HOST):$(COMMAND_PORT)/api/v1/timestamp')

api-get:
	@test -n "$(ID)" || { echo 'usage: make api-get ID=<id from api-create or api-now>' >&2; exit 2; }
	@$(call api_curl,'http://$(API_HOST):$(QUERY_PORT)/api/v1/timestamp/$(ID)')

api-health:
	@rc=0; for s in command-service:$(COMMAND_PORT) consumer-service:$(CONSUMER_PORT) query-service:$(QUERY_PORT); do \
	  name=$${s%%:*}; url=http://$(API_HOST):$${s##*:}; \
	  h=$$(curl -sS -m 5 "$$url/health" 2>&1) || rc=1; \
	  r=$$(curl -sS -m 5 --fail-with-body "$$url/ready" 2>&1) || rc=1; \
	  printf '%-17s %-24s health %s  ready %s\n' "$$name" "$$url" "$$h" "$$r"; \
	done; exit $$rc
