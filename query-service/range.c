/* range: pages of records by event_timestamp (see range.h). */
#include "range.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "clock.h"
#include "lookup.h"
#include "params.h"
#include "pool.h"
#include "record.h"

#define CURSOR_VERSION 1
#define CURSOR_BYTES 25
#define CURSOR_CHARS (RANGE_CURSOR_SIZE - 1)

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int wait_ms = 2000;

void range_setup(int wait)
{
	wait_ms = wait;
}

void range_cursor_encode(int64_t us, const unsigned char id[16], char *out)
{
	unsigned char raw[CURSOR_BYTES + 2] = {CURSOR_VERSION}; /* 2: the last group's padding */
	char text[(CURSOR_BYTES + 2) / 3 * 4];                      /* whole groups */
	uint64_t be = htobe64((uint64_t)us);
	size_t n = 0;

	memcpy(raw + 1, &be, 8);
	memcpy(raw + 9, id, 16);
	for (size_t i = 0; i < CURSOR_BYTES; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];

		text[n++] = b64[v >> 18 & 63];
		text[n++] = b64[v >> 12 & 63];
		text[n++] = b64[v >> 6 & 63];
		text[n++] = b64[v & 63];
	}
	/* 25 bytes: 34 characters, the last group's first 2. */
	memcpy(out, text, CURSOR_CHARS);
	out[CURSOR_CHARS] = '\0';
}

int range_cursor_decode(const char *s, int64_t *us, unsigned char id[16])
{
	unsigned char raw[CURSOR_BYTES + 2];
	uint32_t acc = 0;
	size_t n = 0;
	int bits = 0;
	uint64_t be;

	if (strlen(s) != CURSOR_CHARS)
		return -1;
	for (size_t i = 0; i < CURSOR_CHARS; i++) {
		const char *p = s[i] != '\0' ? strchr(b64, s[i]) : NULL;

		if (p == NULL)
			return -1;
		acc = acc << 6 | (uint32_t)(p - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			raw[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* One cursor, one text: the bits left over must be zero. */
	if (n != CURSOR_BYTES || acc != 0 || raw[0] != CURSOR_VERSION)
		return -1;
	memcpy(&be, raw + 1, 8);
	*us = (int64_t)be64toh(be);
	if (*us < PARAMS_US_MIN || *us >= PARAMS_US_END)
		return -1;
	memcpy(id, raw + 9, 16);
	return 0;
}

/* limit: a whole number 1..RANGE_LIMIT_MAX, digits only. */
static int parse_limit(const char *value, int *limit, char *errstr, size_t errstr_size)
{
	size_t len = strlen(value);

	if (len == 0 || len > 4 || strspn(value, "0123456789") != len ||
	    (*limit = atoi(value)) < 1 || *limit > RANGE_LIMIT_MAX) {
		snprintf(errstr, errstr_size, "limit: '%.16s' is not a whole number from 1 to %d",
		         value, RANGE_LIMIT_MAX);
		return -1;
	}
	return 0;
}

int range_parse(const char *qs, struct range_query *q, char *errstr, size_t errstr_size)
{
	char name[PARAMS_NAME_MAX], value[PARAMS_VALUE_MAX];
	bool has_limit = false;
	int rc;

	*q = (struct range_query){.from_us = PARAMS_US_MIN, .to_us = PARAMS_US_END,
	                          .limit = RANGE_LIMIT_DEFAULT};
	while ((rc = params_next(&qs, name, value, errstr, errstr_size)) == 1) {
		bool *seen = strcmp(name, "from") == 0     ? &q->has_from
		             : strcmp(name, "to") == 0     ? &q->has_to
		             : strcmp(name, "limit") == 0  ? &has_limit
		             : strcmp(name, "cursor") == 0 ? &q->has_cursor
		                                           : NULL;
		/* A misspelt parameter (form=) would otherwise widen the range
		 * silently. */
		if (seen == NULL) {
			snprintf(errstr, errstr_size,
			         "unknown parameter '%s': expected from, to, limit, cursor", name);
			return -1;
		}
		if (*seen) {
			snprintf(errstr, errstr_size, "%s: given twice", name);
			return -1;
		}
		*seen = true;
		if (seen == &q->has_from)
			rc = params_time("from", value, &q->from_us, errstr, errstr_size);
		else if (seen == &q->has_to)
			rc = params_time("to", value, &q->to_us, errstr, errstr_size);
		else if (seen == &has_limit)
			rc = parse_limit(value, &q->limit, errstr, errstr_size);
		else if ((rc = range_cursor_decode(value, &q->after_us, q->after_id)) != 0)
			snprintf(errstr, errstr_size,
			         "cursor: '%.40s' is not a cursor of this API (take it from the "
			         "Link header of the previous page)",
			         value);
		if (rc != 0)
			return -1;
	}
	if (rc < 0)
		return -1;
	return 0;
}

/* Link: the next page, starting after the record (us, id). The bounds are
 * written as the instants they were read as (UTC, microseconds), which
 * need no escaping. */
static void next_link(const struct range_query *q, int64_t us, const unsigned char id[16],
                      char *buf, size_t size)
{
	char from[TS_TEXT_MAX] = "", to[TS_TEXT_MAX] = "", cursor[RANGE_CURSOR_SIZE];
	struct ts_instant t;

	if (q->has_from) {
		t = params_instant(q->from_us);
		ts_format(&t, 6, from);
	}
	if (q->has_to && q->to_us < PARAMS_US_END) { /* else no bound: the same */
		t = params_instant(q->to_us);
		ts_format(&t, 6, to);
	}
	range_cursor_encode(us, id, cursor);
	snprintf(buf, size,
	         "Link: <" RANGE_PATH "?%s%s%s%s%s%slimit=%d&cursor=%s>; rel=\"next\"\r\n",
	         from[0] ? "from=" : "", from, from[0] ? "&" : "", to[0] ? "to=" : "", to,
	         to[0] ? "&" : "", q->limit, cursor);
}

/* The page's records as {"records":[…]} into a buffer of the caller's
 * (free it), n of them from res. Returns NULL when out of memory. */
static char *page_body(PGresult *res, int n, size_t *len)
{
	size_t size = (size_t)n * RECORD_JSON_MAX + 16, pos = 0;
	char *body = malloc(size), idt[UID_TEXT_SIZE];
	struct ts_instant ev, cr;
	int w;

	if (body == NULL)
		return NULL;
	pos += (size_t)snprintf(body, size, "{\"records\":[");
	for (int row = 0; row < n; row++) {
		uuid_unparse_lower((const unsigned char *)PQgetvalue(res, row, 0), idt);
		ev = lookup_pg_time(PQgetvalue(res, row, 1));
		cr = lookup_pg_time(PQgetvalue(res, row, 2));
		if (row > 0)
			body[pos++] = ',';
		/* Fits: RECORD_JSON_MAX per record, its NUL making room for the comma. */
		w = record_json(idt, &ev, &cr, body + pos, size - pos);
		if (w < 0) {
			free(body);
			return NULL;
		}
		pos += (size_t)w;
	}
	pos += (size_t)snprintf(body + pos, size - pos, "]}");
	*len = pos;
	return body;
}

/* Every row has the three columns, binary, in their sizes. */
static bool rows_well_formed(PGresult *res)
{
	for (int row = 0; row < PQntuples(res); row++)
		if (PQnfields(res) != 3 || PQgetlength(res, row, 0) != 16 ||
		    PQgetlength(res, row, 1) != 8 || PQgetlength(res, row, 2) != 8)
			return false;
	return true;
}

int range_get(const struct http_req *req)
{
	static const unsigned char nil[16];
	char errstr[512], from[TS_TEXT_MAX], to[TS_TEXT_MAX], after[TS_TEXT_MAX];
	char after_id[UID_TEXT_SIZE], limit[16], headers[512] = "";
	const char *vals[5] = {from, to, after, after_id, limit};
	struct timespec deadline = clock_deadline(wait_ms);
	struct range_query q;
	struct ts_instant last;
	PGresult *res;
	char *body;
	size_t len;
	int n, status;

	if (range_parse(req->ri->query_string, &q, errstr, sizeof(errstr)) != 0)
		return http_send_error(req, 400, NULL, "%s", errstr);
	params_sql_time(q.from_us, from);
	params_sql_time(q.to_us, to);
	/* The first page starts after (-infinity, nil): before every record. */
	params_sql_time(q.has_cursor ? q.after_us : PARAMS_US_MIN - 1, after);
	uuid_unparse_lower(q.has_cursor ? q.after_id : nil, after_id);
	snprintf(limit, sizeof(limit), "%d", q.limit + 1); /* one more: is there a next page? */

	struct trace_span *span = pool_span(pool_reads, &req->trace, "SELECT", "timestamp_records");
	res = pool_exec(pool_reads, "range_page", 5, vals, 1, &deadline, errstr, sizeof(errstr));
	if (res == NULL)
		trace_error(span, "%s", errstr);
	else
		trace_attr_int(span, "db.response.returned_rows", PQntuples(res));
	trace_end(span);
	if (res == NULL)
		return http_send_error(req, 503, "Retry-After: 1\r\nCache-Control: no-store\r\n",
		                       "database unavailable: %s", errstr);
	if (!rows_well_formed(res)) {
		PQclear(res);
		return http_send_error(req, 500, NULL, "unexpected column format");
	}
	n = PQntuples(res);
	if (n > q.limit) {
		n = q.limit;
		last = lookup_pg_time(PQgetvalue(res, n - 1, 1));
		next_link(&q, params_us(&last), (const unsigned char *)PQgetvalue(res, n - 1, 0),
		          headers, sizeof(headers));
	}
	/* A page can still grow (records arrive with any event time): not
	 * cached anywhere. */
	snprintf(headers + strlen(headers), sizeof(headers) - strlen(headers),
	         "Cache-Control: no-store\r\n");
	body = page_body(res, n, &len);
	PQclear(res);
	if (body == NULL)
		return http_send_error(req, 500, NULL, "out of memory for a page of %d records", n);
	status = http_send(req->conn, 200, req->cid, "application/json", headers, body, len);
	free(body);
	return status;
}
