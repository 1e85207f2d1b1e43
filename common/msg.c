/* msg: the Kafka message codec, the one definition of the wire format. */
#include "msg.h"

#include "jsonw.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

size_t msg_encode(const struct msg_command *m, char *buf)
{
	char ts[TS_TEXT_MAX];

	ts_format(&m->event_time, 9, ts);
	return (size_t)snprintf(buf, MSG_ENCODED_MAX,
	                        "{\"command_id\":\"%s\",\"event_timestamp\":\"%s\"}",
	                        m->command_id, ts);
}

/* Fetches a string member; returns NULL with a reason on failure. */
static const char *string_field(struct json_object *jobj, const char *name,
                                size_t *len, char *errstr, size_t errstr_size)
{
	struct json_object *field;

	if (!json_object_object_get_ex(jobj, name, &field)) {
		snprintf(errstr, errstr_size, "missing field %s", name);
		return NULL;
	}
	if (!json_object_is_type(field, json_type_string)) {
		snprintf(errstr, errstr_size, "field %s is not a string", name);
		return NULL;
	}
	*len = (size_t)json_object_get_string_len(field);
	return json_object_get_string(field);
}

/* True when s[0..len) is well-formed UTF-8: json-c checks only the shape. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
	for (size_t i = 0, n; i < len; i += n) {
		if ((n = jsonw_utf8_seq(s + i, len - i)) == 0)
			return false;
	}
	return true;
}

/* The fields' checks, whichever way they were read. */
static int fields_decode(const char *id, size_t id_len, const char *ts, size_t ts_len,
                         struct msg_command *out, char *errstr, size_t errstr_size)
{
	char why[128];

	if (!uid_valid(id, id_len)) {
		snprintf(errstr, errstr_size, "command_id is not a UUID");
		return -1;
	}
	if (ts_parse_rfc3339(ts, ts_len, &out->event_time, why, sizeof(why)) != 0) {
		snprintf(errstr, errstr_size, "event_timestamp is not RFC 3339: %s", why);
		return -1;
	}
	uid_normalize(id, out->command_id);
	return 0;
}

#define CANON_HEAD "{\"command_id\":\""
#define CANON_MID "\",\"event_timestamp\":\""
#define CANON_TAIL "\"}"

/* The characters of an RFC 3339 date-time: none is one JSON escapes. */
static const bool ts_char[256] = {['0' ... '9'] = true, ['A' ... 'Z'] = true,
                                  ['a' ... 'z'] = true, ['-'] = true, [':'] = true,
                                  ['.'] = true, ['+'] = true};

/* A value exactly as msg_encode writes it (any UUID, any run of date-time
 * characters), with nothing JSON would unescape or ignore: any JSON parser
 * reads the same two strings from it, so it is read without one. json-c's
 * tokener, objects and locale switch per parse were half of the consumer's
 * CPU time per message in perf; every other value, however close, goes to
 * json-c. */
static bool canonical(const char *v, size_t len, const char **id, const char **ts,
                      size_t *ts_len)
{
	const size_t head = sizeof(CANON_HEAD) - 1, mid = sizeof(CANON_MID) - 1,
	             tail = sizeof(CANON_TAIL) - 1;
	const char *p, *end = v + len;

	if (len < head + UID_TEXT_SIZE - 1 + mid + tail || memcmp(v, CANON_HEAD, head) != 0 ||
	    !uid_valid(v + head, UID_TEXT_SIZE - 1))
		return false;
	p = v + head + UID_TEXT_SIZE - 1;
	if (memcmp(p, CANON_MID, mid) != 0)
		return false;
	*id = v + head;
	*ts = p += mid;
	while (p < end && ts_char[(unsigned char)*p])
		p++;
	*ts_len = (size_t)(p - *ts);
	return (size_t)(end - p) == tail && memcmp(p, CANON_TAIL, tail) == 0;
}

int msg_decode(const void *value, size_t len, struct msg_command *out,
               char *errstr, size_t errstr_size)
{
	struct json_tokener *tok = NULL;
	struct json_object *jobj = NULL;
	const char *id, *ts;
	size_t id_len, ts_len;
	int rc = -1;

	if (value == NULL || len == 0) {
		snprintf(errstr, errstr_size, "empty value");
		return -1;
	}
	if (len > MSG_VALUE_MAX) {
		snprintf(errstr, errstr_size, "value of %zu bytes exceeds %d", len,
		         MSG_VALUE_MAX);
		return -1;
	}
	if (canonical(value, len, &id, &ts, &ts_len))
		return fields_decode(id, UID_TEXT_SIZE - 1, ts, ts_len, out, errstr, errstr_size);
	if (memchr(value, '\0', len) != NULL) {
		snprintf(errstr, errstr_size, "value contains a NUL byte");
		return -1;
	}
	if (!utf8_valid(value, len)) {
		snprintf(errstr, errstr_size, "not JSON: invalid UTF-8");
		return -1;
	}
	tok = json_tokener_new();
	if (tok == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	jobj = json_tokener_parse_ex(tok, value, (int)len);
	if (jobj == NULL) {
		enum json_tokener_error jerr = json_tokener_get_error(tok);
		snprintf(errstr, errstr_size, "not JSON: %s",
		         jerr == json_tokener_continue ? "incomplete or not an object"
		                                       : json_tokener_error_desc(jerr));
		goto done;
	}
	for (size_t end = json_tokener_get_parse_end(tok); end < len; end++) {
		if (!strchr(" \t\r\n", ((const char *)value)[end])) {
			snprintf(errstr, errstr_size, "not JSON: characters after the value");
			goto done;
		}
	}
	if (!json_object_is_type(jobj, json_type_object)) {
		snprintf(errstr, errstr_size, "not a JSON object");
		goto done;
	}
	if ((id = string_field(jobj, "command_id", &id_len, errstr, errstr_size)) == NULL ||
	    (ts = string_field(jobj, "event_timestamp", &ts_len, errstr, errstr_size)) == NULL)
		goto done;
	rc = fields_decode(id, id_len, ts, ts_len, out, errstr, errstr_size);
done:
	json_object_put(jobj);
	json_tokener_free(tok);
	return rc;
}

int64_t msg_ts_ms(struct ts_instant t)
{
	return t.sec * 1000 + t.nsec / 1000000;
}

rd_kafka_resp_err_t msg_produce(rd_kafka_t *rk, const struct msg_record *r)
{
	rd_kafka_vu_t vu[10] = {
	    {.vtype = RD_KAFKA_VTYPE_TOPIC, .u.cstr = r->topic},
	    {.vtype = RD_KAFKA_VTYPE_KEY, .u.mem = {(void *)r->key, strlen(r->key)}},
	    {.vtype = RD_KAFKA_VTYPE_VALUE, .u.mem = {(void *)r->value, r->value_len}},
	    {.vtype = RD_KAFKA_VTYPE_MSGFLAGS, .u.i = RD_KAFKA_MSG_F_COPY},
	    {.vtype = RD_KAFKA_VTYPE_TIMESTAMP, .u.i64 = r->ts_ms},
	    {.vtype = RD_KAFKA_VTYPE_HEADER,
	     .u.header = {MSG_HDR_CORRELATION, r->cid, (ssize_t)strlen(r->cid)}},
	    {.vtype = RD_KAFKA_VTYPE_HEADER,
	     .u.header = {MSG_HDR_CONTENT_TYPE, MSG_CONTENT_TYPE,
	                  (ssize_t)sizeof(MSG_CONTENT_TYPE) - 1}},
	    {.vtype = RD_KAFKA_VTYPE_OPAQUE, .u.ptr = r->opaque},
	};
	size_t n = 8;
	rd_kafka_error_t *error;
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

	if (r->traceparent != NULL && r->traceparent[0] != '\0')
		vu[n++] = (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_HEADER,
		                          .u.header = {TRACE_HDR_PARENT, r->traceparent,
		                                       (ssize_t)strlen(r->traceparent)}};
	if (r->tracestate != NULL && r->tracestate[0] != '\0')
		vu[n++] = (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_HEADER,
		                          .u.header = {TRACE_HDR_STATE, r->tracestate,
		                                       (ssize_t)strlen(r->tracestate)}};
	error = rd_kafka_produceva(rk, vu, n);

	if (error != NULL) {
		err = rd_kafka_error_code(error);
		rd_kafka_error_destroy(error);
	}
	return err;
}

/* The record timestamp as created_at. RFC 3339 (so the command service, the
 * query service and their clients) has years 0001-9999 only; a later one,
 * which any producer on the topic may write, would fail the whole batch in
 * PostgreSQL or come back unreadable. Returns 0, or -1 with the reason. */
static int created_at_from(int64_t ts_ms, struct ts_instant *out, char *errstr,
                           size_t errstr_size)
{
	const int64_t end_ms = ts_days_from_civil(10000, 1, 1) * 86400 * 1000;

	if (ts_ms < 0) {
		snprintf(errstr, errstr_size, "record has no timestamp");
		return -1;
	}
	if (ts_ms >= end_ms) {
		snprintf(errstr, errstr_size,
		         "record timestamp %" PRId64 " ms is past year 9999 (RFC 3339 range)", ts_ms);
		return -1;
	}
	out->sec = ts_ms / 1000;
	out->nsec = (int32_t)(ts_ms % 1000) * 1000000;
	return 0;
}

/* Copies header name's last value into buf[size] as a string. Returns 0, or
 * -1 when it is absent, longer than size - 1 or holds a NUL. */
static int header_text(rd_kafka_headers_t *hdrs, const char *name, char *buf, size_t size)
{
	const void *val;
	size_t len;

	if (rd_kafka_header_get_last(hdrs, name, &val, &len) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    val == NULL || len >= size || memchr(val, '\0', len) != NULL)
		return -1;
	memcpy(buf, val, len);
	buf[len] = '\0';
	return 0;
}

int msg_trace_context(const rd_kafka_message_t *rkm, struct trace_ctx *out)
{
	rd_kafka_headers_t *hdrs = NULL;
	/* A later version's traceparent may be longer than version 00's
	 * (more fields after it): trace_parse decides on those. */
	char parent[256], state[TRACE_STATE_MAX + 1];

	if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    header_text(hdrs, TRACE_HDR_PARENT, parent, sizeof(parent)) != 0) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return trace_parse(parent, header_text(hdrs, TRACE_HDR_STATE, state, sizeof(state)) == 0
	                               ? state
	                               : NULL,
	                   out);
}

int msg_decode_kafka(const rd_kafka_message_t *rkm, struct msg_command *out,
                     struct ts_instant *created_at, char cid[UID_TEXT_SIZE], char *errstr,
                     size_t errstr_size)
{
	rd_kafka_headers_t *hdrs = NULL;
	rd_kafka_timestamp_type_t tstype;
	const void *val;
	size_t val_len;

	cid[0] = '\0';
	if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
	    rd_kafka_header_get_last(hdrs, MSG_HDR_CORRELATION, &val, &val_len) ==
	        RD_KAFKA_RESP_ERR_NO_ERROR &&
	    val != NULL && uid_valid(val, val_len)) {
		memcpy(cid, val, UID_TEXT_SIZE - 1);
		cid[UID_TEXT_SIZE - 1] = '\0';
	}
	if (msg_decode(rkm->payload, rkm->len, out, errstr, errstr_size) != 0)
		return -1;
	return created_at_from(rd_kafka_message_timestamp(rkm, &tstype), created_at, errstr,
	                       errstr_size);
}
