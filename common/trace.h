/* trace: W3C trace context (traceparent, tracestate) and spans, exported
 * in batches with OTLP/HTTP (binary protobuf, or JSON) from a thread of its own.
 *
 * Off unless OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) is set and
 * OTEL_SDK_DISABLED is not "true". A request never waits for the exporter:
 * trace_end hands the span to a bounded queue and returns; a full queue, a
 * down or slow collector drops spans and counts them in /metrics:
 *   trace_spans_total{result="exported"|"dropped_queue_full"|
 *                     "dropped_export_failed"|"dropped_no_memory"}
 *   trace_export_requests_total{result="ok"|"error"}
 * (registered by trace_setup when tracing is on). */
#ifndef COMMON_TRACE_H
#define COMMON_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRACE_HDR_PARENT "traceparent"
#define TRACE_HDR_STATE "tracestate"

/* "00-<32 hex>-<16 hex>-<2 hex>" and its NUL. */
#define TRACE_PARENT_SIZE 56
/* A trace id in hex, and its NUL. */
#define TRACE_ID_TEXT_SIZE 33
/* The longest tracestate kept (W3C: 32 members of at most 256 bytes, but
 * vendors are asked to keep it under 512); a longer one is dropped. */
#define TRACE_STATE_MAX 512

struct trace_ctx {
	uint8_t trace_id[16]; /* all zero: no context */
	uint8_t span_id[8];
	uint8_t flags;        /* W3C trace-flags; bit 0: sampled */
	char state[TRACE_STATE_MAX + 1]; /* tracestate as received, or "" */
};

/* A context with a non-zero trace id and span id. */
bool trace_ctx_valid(const struct trace_ctx *c);

/* Parses a traceparent header (version 00, or a later version read as 00
 * as W3C asks) and, when not NULL, a tracestate header. Returns 0, or -1
 * for a missing or invalid traceparent (out is then zeroed: the caller
 * starts a new trace). An invalid or oversized tracestate is dropped, not
 * an error. */
int trace_parse(const char *traceparent, const char *tracestate, struct trace_ctx *out);

/* Formats c as a traceparent header value. */
void trace_format(const struct trace_ctx *c, char buf[TRACE_PARENT_SIZE]);

/* The trace id in lowercase hex ("" when c is not valid): for log lines. */
void trace_id_text(const struct trace_ctx *c, char buf[TRACE_ID_TEXT_SIZE]);

/* The standard OTEL_* variables this program reads (see cfg.h). */
struct trace_config {
	const char *endpoint;        /* OTEL_EXPORTER_OTLP_ENDPOINT; /v1/traces is appended */
	const char *traces_endpoint; /* OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, used as it is */
	const char *protocol;        /* OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf or http/json */
	const char *headers;         /* OTEL_EXPORTER_OTLP_HEADERS: k=v,k=v */
	int timeout_ms;              /* OTEL_EXPORTER_OTLP_TIMEOUT */
	const char *service_name;    /* OTEL_SERVICE_NAME; "": the program's name */
	const char *resource_attributes; /* OTEL_RESOURCE_ATTRIBUTES: k=v,k=v */
	const char *sampler;         /* OTEL_TRACES_SAMPLER */
	const char *sampler_arg;     /* OTEL_TRACES_SAMPLER_ARG */
	const char *disabled;        /* OTEL_SDK_DISABLED: "true" turns tracing off */
	int queue_max;               /* OTEL_BSP_MAX_QUEUE_SIZE */
	int batch_max;               /* OTEL_BSP_MAX_EXPORT_BATCH_SIZE */
	int delay_ms;                /* OTEL_BSP_SCHEDULE_DELAY */
};

/* The cfg_param entries for struct trace_config c (see cfg.h), with the
 * specification's defaults (http/protobuf) but a shorter schedule delay. */
#define TRACE_CFG_PARAMS(c)                                                               \
	{"OTEL_EXPORTER_OTLP_ENDPOINT", CFG_STRING, &(c).endpoint, "", 0, 0,                \
	 "OTLP/HTTP collector base URL, e.g. http://127.0.0.1:4318 (empty: tracing off)"}, \
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", CFG_STRING, &(c).traces_endpoint, "", 0, 0,  \
	 "full URL for traces, instead of the endpoint + /v1/traces"},                      \
	{"OTEL_EXPORTER_OTLP_PROTOCOL", CFG_STRING, &(c).protocol, "http/protobuf", 0, 0,   \
	 "http/protobuf or http/json (grpc is not spoken)"},                                \
	{"OTEL_EXPORTER_OTLP_HEADERS", CFG_STRING, &(c).headers, "", 0, 0,                  \
	 "extra export request headers, k=v,k=v"},                                          \
	{"OTEL_EXPORTER_OTLP_TIMEOUT", CFG_INT, &(c).timeout_ms, "10000", 100, 600000,      \
	 "ms an export request may take"},                                                  \
	{"OTEL_SERVICE_NAME", CFG_STRING, &(c).service_name, "", 0, 0,                      \
	 "service.name (empty: the program's name)"},                                       \
	{"OTEL_RESOURCE_ATTRIBUTES", CFG_STRING, &(c).resource_attributes, "", 0, 0,        \
	 "extra resource attributes, k=v,k=v"},                                             \
	{"OTEL_TRACES_SAMPLER", CFG_STRING, &(c).sampler, "parentbased_always_on", 0, 0,    \
	 "always_on, always_off, traceidratio or parentbased_* of them"},                  \
	{"OTEL_TRACES_SAMPLER_ARG", CFG_STRING, &(c).sampler_arg, "", 0, 0,                 \
	 "the ratio for *traceidratio, 0 to 1 (empty: 1)"},                                 \
	{"OTEL_SDK_DISABLED", CFG_STRING, &(c).disabled, "false", 0, 0,                     \
	 "true turns tracing off"},                                                         \
	{"OTEL_BSP_MAX_QUEUE_SIZE", CFG_INT, &(c).queue_max, "2048", 1, 1000000,            \
	 "spans waiting for export; more are dropped (counted)"},                           \
	{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", CFG_INT, &(c).batch_max, "512", 1, 100000,       \
	 "spans per export request"},                                                       \
	{"OTEL_BSP_SCHEDULE_DELAY", CFG_INT, &(c).delay_ms, "1000", 1, 600000,              \
	 "ms between exports when fewer than a batch wait"}

/* Validates c (a bad value: -1 and "OTEL_NAME: reason" in errstr, for the
 * caller to print and exit 2), and when tracing is on, starts the exporter
 * thread. program is the default service.name. Call it once, before the
 * threads that trace. Returns 0 also when tracing is off. */
int trace_setup(const struct trace_config *c, const char *program, char *errstr,
                size_t errstr_size) __attribute__((warn_unused_result));

/* Exports what is queued, waiting up to timeout_ms (a transfer in progress
 * is cut at the deadline), then stops the thread; what was not exported by
 * then is dropped (dropped_export_failed). Spans ended afterwards are
 * dropped too (dropped_queue_full). Does nothing when tracing is off or was
 * never set up; trace_setup may be called again afterwards. */
void trace_shutdown(int timeout_ms);

/* Tracing is on (setup succeeded with an endpoint and not disabled). */
bool trace_on(void);

/* OTLP span kinds. */
enum trace_kind {
	TRACE_INTERNAL = 1,
	TRACE_SERVER = 2,
	TRACE_CLIENT = 3,
	TRACE_PRODUCER = 4,
	TRACE_CONSUMER = 5,
};

struct trace_span;

/* Starts a span named name (copied) of kind as a child of parent (NULL or
 * not valid: the root of a new trace), and fills *ctx with its context:
 * the one to propagate (traceparent) and to log. The sampler decides from
 * parent's sampled flag or, at a root, from the trace id (OTEL_TRACES_SAMPLER).
 *
 * Returns NULL when the span is not recorded: tracing is off (ctx is then a
 * copy of parent, or zeroed), the span is not sampled (ctx is a new span
 * with the sampled flag clear, to propagate), or the span memory is used up
 * (counted). Every function below does nothing with NULL. ctx may be parent
 * itself (it becomes the child), or NULL. name is cut at 128 bytes. */
struct trace_span *trace_start(const char *name, enum trace_kind kind,
                               const struct trace_ctx *parent, struct trace_ctx *ctx);

/* A span recorded after the fact, in two steps. trace_begin is
 * trace_start without the span: it decides ctx (the ids, the sampling) on
 * the thread that sees the work, and returns true when the span is to be
 * recorded. trace_start_at then makes that span (ctx as trace_begin filled
 * it; parent_span: the parent's span id, NULL at a root) with its start
 * time, wall clock in ns since the epoch, and trace_end_at ends it: on any
 * thread, typically in a function given to trace_defer. */
bool trace_begin(const struct trace_ctx *parent, struct trace_ctx *ctx);
struct trace_span *trace_start_at(const char *name, enum trace_kind kind,
                                  const struct trace_ctx *ctx, const uint8_t *parent_span,
                                  int64_t start_ns);
void trace_end_at(struct trace_span *s, int64_t end_ns);

/* Runs fn(arg) on the exporter's thread, before its next export: making
 * spans (trace_start_at) costs the caller's thread nothing but recording
 * what they need. spans: how many fn will make; the jobs waiting hold at
 * most OTEL_BSP_MAX_QUEUE_SIZE spans (or one job). Returns -1 when fn will not run
 * (tracing off or stopped, no room, no memory: the spans counted as
 * dropped); arg is then still the caller's. fn owns arg, and runs also
 * while trace_shutdown stops the exporter. */
int trace_defer(void (*fn)(void *arg), void *arg, int spans);

/* Counts spans that could not be recorded for want of memory
 * (dropped_no_memory). */
void trace_lost(int spans);

/* Attributes. key must be a string that lives as long as the program (a
 * literal: the semantic-convention names); setting the same key (the same
 * pointer) again replaces the value. Values are copied, strings cut at 256
 * bytes (at a UTF-8 character boundary). A span holds 16 attributes, and
 * 768 bytes for its name, string values and tracestate (kept when at most
 * 256 bytes); what does not fit is counted as dropped (OTLP
 * droppedAttributesCount). */
void trace_attr_str(struct trace_span *s, const char *key, const char *value);
void trace_attr_int(struct trace_span *s, const char *key, int64_t value);
void trace_attr_bool(struct trace_span *s, const char *key, bool value);

/* Adds a link to another span (a batch to the messages it wrote); an
 * invalid to is ignored. Links beyond 1024 are counted as dropped in the
 * span (OTLP droppedLinksCount). */
void trace_link(struct trace_span *s, const struct trace_ctx *to);

/* Sets the span's status to ERROR with a message (cut at 255 bytes). */
void trace_error(struct trace_span *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Ends the span now and hands it to the exporter: never blocks; the span
 * must not be used afterwards. */
void trace_end(struct trace_span *s);

#endif
