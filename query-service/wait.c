/* wait: GET by id, held until the record is there (see wait.h).
 *
 * The order matters: the waiter is registered with the feed first, then
 * the record is looked up as usual. A row committed before the lookup is
 * found by it; one committed after the registration reaches the waiter
 * through the feed; none falls in between. */
#include "wait.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "feed.h"
#include "pool.h"
#include "trace.h"

static long wait_max_ms = 30000;

void wait_setup(long max_ms)
{
	wait_max_ms = max_ms;
}

/* lookup_get, as a CLIENT span of the request when tracing is on. */
static enum lookup_result traced_get(const struct http_req *req, const char *id,
                                     struct lookup_record *rec, char *errstr, size_t errstr_size)
{
	struct trace_span *span = pool_span(pool_reads, &req->trace, "SELECT", "timestamp_records");
	const enum lookup_result result = lookup_get(id, rec, errstr, errstr_size);

	if (result == LOOKUP_UNAVAILABLE)
		trace_error(span, "%s", errstr);
	else
		trace_attr_int(span, "db.response.returned_rows", result == LOOKUP_FOUND);
	trace_end(span);
	return result;
}

/* The wait the request asks for in ms (0: none), or -1 after answering 400
 * for a bad ?wait. ?wait wins over Prefer: it is the more explicit. */
static long asked_ms(const struct http_req *req, int *status)
{
	const char *qs = req->ri->query_string;
	/* Any number of digits is a wait (capped): room for the whole query. */
	char val[HTTP_PATH_MAX + 1], prefer[512];
	int n;

	if (qs != NULL && (n = mg_get_var(qs, strlen(qs), "wait", val, sizeof(val))) != -1) {
		char *end = val;
		long long ms;

		errno = 0;
		ms = n >= 0 && val[0] >= '0' && val[0] <= '9' ? strtoll(val, &end, 10) : -1;
		if (ms < 0 || *end != '\0') {
			*status = http_send_error(req, 400, NULL,
			                          "wait must be a whole number of milliseconds, got '%.32s'",
			                          n >= 0 ? val : "(too long)");
			return -1;
		}
		return errno == ERANGE || ms > wait_max_ms ? wait_max_ms : (long)ms;
	}
	/* A Prefer the parser cannot use is ignored, as RFC 7240 asks of a
	 * preference a server cannot honour: the request is answered at once. */
	if (http_header(req->conn, "Prefer", prefer, sizeof(prefer)) < 0)
		return 0;
	long ms = feed_prefer_wait(prefer, wait_max_ms);
	return ms > 0 ? ms : 0;
}

int wait_lookup(const struct http_req *req, const char *id, struct lookup_record *rec,
                enum lookup_result *result, char *errstr, size_t errstr_size)
{
	struct feed_waiter w;
	struct timespec deadline;
	int status = 0;
	long ms = asked_ms(req, &status);

	if (ms < 0)
		return status;
	if (ms == 0) {
		*result = traced_get(req, id, rec, errstr, errstr_size);
		return 0;
	}
	deadline = clock_deadline(ms);
	if (feed_wait_begin(&w, id) != 0) {
		/* No room to wait: a record that is there needs none. */
		*result = traced_get(req, id, rec, errstr, errstr_size);
		if (*result != LOOKUP_MISSING)
			return 0;
		return http_send_error(req, 503, "Retry-After: 1\r\n",
		                       "too many requests waiting for their record; retry");
	}
	http_long_begin();
	*result = traced_get(req, id, rec, errstr, errstr_size);
	if (*result == LOOKUP_MISSING) {
		switch (feed_wait(&w, &deadline)) {
		case FEED_DELIVERED:
			rec->event_time = w.rec.event_time;
			rec->created_at = w.rec.created_at;
			*result = LOOKUP_FOUND;
			break;
		case FEED_STOPPING:
			snprintf(errstr, errstr_size, "the service is stopping");
			*result = LOOKUP_UNAVAILABLE;
			break;
		case FEED_TIMED_OUT:
			break; /* still missing: 404 */
		}
	}
	http_long_end();
	feed_wait_end(&w);
	return 0;
}
