/* otlp_sink: a tiny OTLP/HTTP (JSON) receiver for the unit tests of what
 * the services trace: a thread on 127.0.0.1 that answers every POST 200
 * and keeps the spans of its body, to be looked at with json-c. */
#ifndef COMMON_TESTS_OTLP_SINK_H
#define COMMON_TESTS_OTLP_SINK_H

#include <json-c/json.h>

/* Starts the receiver on a free port; returns the port. Asserts success. */
int otlp_sink_start(void);

/* Starts the receiver and sets tracing up (trace_setup) to export to it
 * every 50 ms, always sampling. Asserts success. */
void otlp_sink_trace(void);

/* Stops it and forgets the spans. */
void otlp_sink_stop(void);

/* Waits up to timeout_ms until at least want spans named name have come
 * (a bound, not an assertion), then puts up to max of them, in the order
 * they came, into out (references the caller puts). Returns how many came. */
int otlp_sink_spans(const char *name, int want, int timeout_ms, json_object **out, int max);

/* A span's top-level string field (traceId, spanId, parentSpanId, name),
 * or NULL. Strings belong to the span. */
const char *otlp_field(json_object *span, const char *field);

/* The value of attribute key as text (a stringValue, an intValue, "true"
 * or "false"), or NULL when the span has none. */
const char *otlp_attr(json_object *span, const char *key);

/* The status code (0 unset, 1 ok, 2 error) and kind of a span. */
int otlp_status(json_object *span);
int otlp_kind(json_object *span);

/* The span ids the span links to, up to max, into ids; returns how many. */
int otlp_links(json_object *span, const char **ids, int max);

#endif
