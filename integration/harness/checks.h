/* checks: assertions and request shorthands that several suites share.
 * They use Check's ck_assert*, so they run inside a test only. */
#ifndef INTEGRATION_CHECKS_H
#define INTEGRATION_CHECKS_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "stack.h"
#include "ts.h"

/* Time limits shared by the suites, in milliseconds. */
#define READ_TIMEOUT_MS 15000 /* accept -> readable through the query service */

/* True if s is a UUID text (8-4-4-4-12 hex digits). */
bool is_uuid(const char *s);

/* Asserts that resp is a JSON error: status, Content-Type application/json,
 * {"error": non-empty string, "correlationId": the response header}. */
void check_error(const struct http_resp *resp, long status);

/* Asserts a 200 JSON response and returns its object (the caller puts it). */
json_object *check_json_200(const struct http_resp *resp);

/* POSTs to the command service's path (headers may be NULL), asserts
 * 200 {"id":<uuid>} and copies the id into id[37]. */
void post_ticket(const char *path, const char *const *headers, char *id);

/* Waits for the record of id and asserts it: 200, every value a JSON
 * string, id == command_id == id. Returns the object (the caller puts it). */
json_object *get_record(const char *id);

/* The value of the Prometheus series whose line starts with series (name
 * and labels, e.g. consumer_records_total{outcome="duplicate"}) in GET url,
 * or -1 when there is none. */
double metric_value(const char *url, const char *series);

/* The sum of the topic's high watermarks (asserts success). */
int64_t topic_total(void);

/* Parses an RFC 3339 text, asserting that it is one. */
struct ts_instant parse_ts(const char *text);

/* Microseconds since the epoch of an instant (truncated). */
int64_t ts_micros(struct ts_instant t);

#endif
