/* stream: Server-Sent Events of the records as they are persisted (see
 * stream.h).
 *
 * A stream keeps one position, the seq of the last record it sent, and
 * sends what follows it: from the feed's ring while the ring still holds
 * it, else from the table in pages through the pool. Both give the rows
 * with seq > position in seq order, so the hand-over from table to ring has
 * neither gap nor duplicate. Memory per stream is fixed: a batch of records
 * and the text of one write. A reader slower than the writers falls out of
 * the ring and is cut off (it resumes with Last-Event-ID); a reader that
 * stops reading blocks mg_write, which gives up after the request timeout,
 * and is cut off then. The socket's send buffer is kept small so that this
 * comes after a bounded amount of data, not after megabytes. */
#define _GNU_SOURCE /* POLLRDHUP */
#include "stream.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "feed.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "record.h"

#define BATCH 32                   /* records taken from the ring at a time */
#define EVENT_MAX (RECORD_JSON_MAX + 48)
#define SNDBUF_BYTES (64 * 1024)   /* the kernel's share of a stream's buffer */
#define RETRY_MS 1000              /* the client's reconnect delay (retry:) */
#define WAIT_FEED_MS 200           /* the feed has not started yet: ask again */
#define WRITE_STALL_S 1.0          /* a failed write that took this long: a frozen reader */
#define GONE_CHECK_MS 1000         /* an idle stream looks this often whether its client left */

static struct stream_opts opts = {.heartbeat_ms = 15000, .db_wait_ms = 2000};

static struct metrics_series m_events = METRICS_COUNTER_INIT(
    "stream_events_sent_total", "Records sent as Server-Sent Events.", "");
static struct metrics_series m_cut = METRICS_COUNTER_INIT(
    "streams_cut_off_total",
    "Streams closed because the reader fell behind the ring or stopped reading.", "");

void stream_setup(const struct stream_opts *o)
{
	static bool registered;

	opts = *o;
	if (!registered) {
		metrics_register(&m_events);
		metrics_register(&m_cut);
		registered = true;
	}
}

int stream_parse_seq(const char *s, long long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno == 0 && *end == '\0' ? 0 : -1;
}

/* One stream's state. */
struct stream {
	const struct http_req *req;
	int64_t pos;   /* the seq of the last record sent */
	int fd;        /* the socket, for options and a look at its state, or -1 */
	long left;     /* events still to send (?limit), or -1: no limit */
	unsigned epoch;
	char buf[BATCH * EVENT_MAX];
	size_t len;
	bool failed;   /* a write failed: the client is gone or cut off */
};

/* Writes what is buffered. A write that fails after blocking a while
 * met a reader that stopped reading: that is a cut-off. */
static void flush(struct stream *st)
{
	const double t0 = clock_mono_s();

	if (st->failed || st->len == 0) {
		st->len = 0; /* after a failure, nothing more goes out */
		return;
	}
	if (mg_write(st->req->conn, st->buf, st->len) != (int)st->len) {
		st->failed = true;
		if (clock_mono_s() - t0 >= WRITE_STALL_S) {
			metrics_add(&m_cut, 1);
			log_at(LOG_INFO, st->req->cid, NULL,
			       "stream cut off at seq %" PRId64 ": the reader stopped reading", st->pos);
		}
	}
	st->len = 0;
}

static void send_record(struct stream *st, const struct feed_record *r)
{
	char json[RECORD_JSON_MAX];

	if (st->len + EVENT_MAX > sizeof(st->buf))
		flush(st);
	if (st->failed || st->left == 0)
		return;
	if (record_json(r->id, &r->event_time, &r->created_at, json, sizeof(json)) < 0)
		return; /* cannot happen: ids and times have fixed sizes */
	st->len += (size_t)snprintf(st->buf + st->len, sizeof(st->buf) - st->len,
	                            "id: %" PRId64 "\ndata: %s\n\n", r->seq, json);
	st->pos = r->seq;
	if (st->left > 0)
		st->left--;
	metrics_add(&m_events, 1);
}

/* Runs a prepared statement on conn (text results) until deadline;
 * NULL with errstr on failure (conn is then broken). */
static PGresult *exec(PGconn *conn, const char *name, int n, const char *const *vals,
                      const struct timespec *deadline, char *errstr, size_t errstr_size)
{
	PGresult *res = db_exec_prepared(conn, name, n, vals, 0, deadline, errstr, errstr_size);

	if (res != NULL && PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_error_line(PQresultErrorMessage(res), errstr, errstr_size);
		PQclear(res);
		res = NULL;
	}
	return res;
}

/* True if the client closed its side: an idle stream would otherwise
 * learn it only at its next heartbeat, holding its slot until then. Only
 * looks (poll): the socket is civetweb's. */
static bool client_gone(const struct stream *st)
{
	struct pollfd p = {.fd = st->fd, .events = POLLRDHUP};

	return st->fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Sends the next page of the table after st->pos. Returns the rows sent,
 * or -1 with errstr. */
static int send_page(struct stream *st, char *errstr, size_t errstr_size)
{
	const struct timespec deadline = clock_deadline(opts.db_wait_ms);
	char after[24];
	const char *vals[1] = {after};
	PGconn *conn = pool_acquire(pool_primary, &deadline, errstr, errstr_size);
	PGresult *res;
	int rows;

	if (conn == NULL)
		return -1;
	snprintf(after, sizeof(after), "%" PRId64, st->pos);
	res = exec(conn, "stream_page", 1, vals, &deadline, errstr, errstr_size);
	pool_release(pool_primary, conn, res == NULL);
	if (res == NULL)
		return -1;
	rows = PQntuples(res);
	for (int i = 0; i < rows; i++) {
		struct feed_record r;
		if (feed_parse_row(res, i, &r) != 0) {
			snprintf(errstr, errstr_size, "unexpected row format");
			rows = -1;
			break;
		}
		send_record(st, &r);
	}
	PQclear(res);
	flush(st);
	return rows;
}

/* The position just before the first record persisted at or after from,
 * by a binary search over seq (the seq index; persisted_at has none):
 * persisted_at is the time its transaction began, so within a batch, and
 * between batches that overlap, the answer is approximate. Also the
 * table's end when from is NULL. Returns 0, or -1 with errstr. */
static int position_of(const struct ts_instant *from, int64_t *pos, char *errstr,
                       size_t errstr_size)
{
	const struct timespec deadline = clock_deadline(opts.db_wait_ms);
	PGconn *conn = pool_acquire(pool_primary, &deadline, errstr, errstr_size);
	char mid_text[24], from_text[TS_TEXT_MAX];
	const char *vals[2] = {mid_text, from_text};
	PGresult *res;
	int64_t lo = 0, hi;

	if (conn == NULL)
		return -1;
	if ((res = exec(conn, "stream_max", 0, NULL, &deadline, errstr, errstr_size)) == NULL)
		goto failed;
	hi = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (from == NULL) {
		*pos = hi;
		pool_release(pool_primary, conn, false);
		return 0;
	}
	/* Every row with seq <= lo was persisted before from; the first one
	 * with seq >= hi at or after it (hi = max + 1: none yet). */
	hi++;
	ts_format(from, 6, from_text);
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2, seq;
		bool after;

		snprintf(mid_text, sizeof(mid_text), "%" PRId64, mid);
		if ((res = exec(conn, "stream_probe", 2, vals, &deadline, errstr, errstr_size)) == NULL)
			goto failed;
		after = PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 1), "t") == 0;
		seq = PQntuples(res) == 0 ? hi : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		if (after || seq >= hi)
			hi = mid; /* none in [mid, hi) is before from */
		else
			lo = seq;
	}
	pool_release(pool_primary, conn, false);
	*pos = lo;
	return 0;
failed:
	pool_release(pool_primary, conn, true);
	return -1;
}

/* Where a stream starts, as the request asks. */
struct start {
	bool at_pos;          /* pos given (Last-Event-ID or after) */
	int64_t pos;
	bool at_from;         /* else from given */
	struct ts_instant from;
	long limit;           /* events to send, -1: no limit */
};

/* Reads Last-Event-ID, ?after=, ?from= and ?limit= into *s. Every one given
 * must be good, even one that another wins over. Returns 0, or the status
 * it answered (400). Runs before the stream takes a slot: a client that
 * sends its next request as soon as it has the 400 finds the slot free. */
static int read_start(const struct http_req *req, struct start *s)
{
	const char *qs = req->ri->query_string ? req->ri->query_string : "";
	char last_id[32], after[32], from[64], lim[32], errstr[256];
	int n_limit = mg_get_var(qs, strlen(qs), "limit", lim, sizeof(lim));
	int n_last = http_header(req->conn, "Last-Event-ID", last_id, sizeof(last_id));
	int n_after = mg_get_var(qs, strlen(qs), "after", after, sizeof(after));
	int n_from = mg_get_var(qs, strlen(qs), "from", from, sizeof(from));
	long long v = 0, v_after = 0, v_last = 0;

	*s = (struct start){.limit = -1};
	if (n_limit != -1) {
		if (n_limit < 0 || stream_parse_seq(lim, &v) != 0 || v < 1 || v > STREAM_LIMIT_MAX)
			return http_send_error(req, 400, NULL,
			                       "limit must be a whole number of events from 1 to %d, "
			                       "got '%.32s'", STREAM_LIMIT_MAX, n_limit < 0 ? "(too long)" : lim);
		s->limit = (long)v;
	}
	if (n_last != -1 && (n_last < 0 || stream_parse_seq(last_id, &v_last) != 0))
		return http_send_error(req, 400, NULL,
		                       "Last-Event-ID must be an event id of this stream "
		                       "(a whole number), got '%.32s'", n_last < 0 ? "(too long)" : last_id);
	if (n_after != -1 && (n_after < 0 || stream_parse_seq(after, &v_after) != 0))
		return http_send_error(req, 400, NULL,
		                       "after must be an event id of this stream (a whole "
		                       "number), got '%.32s'", n_after < 0 ? "(too long)" : after);
	if (n_from != -1 && (n_from < 0 || ts_parse_rfc3339(from, strlen(from), &s->from, errstr,
	                                                     sizeof(errstr)) != 0))
		return http_send_error(req, 400, NULL, "from must be an RFC 3339 date-time: %s",
		                       n_from < 0 ? "too long" : errstr);
	/* A reconnecting EventSource repeats its URL: Last-Event-ID wins; then
	 * after, the more exact; then from. */
	s->at_pos = n_last != -1 || n_after != -1;
	s->pos = n_last != -1 ? v_last : v_after;
	s->at_from = !s->at_pos && n_from != -1;
	return 0;
}

/* The position to start after: given, found from a time, or (none) where
 * the feed is: live from now. A given position beyond the table's end
 * cannot be of this table (it is from one a rebuild replaced, or from
 * before the table was emptied): *stale is then set, with *pos the end.
 * Returns 0, or the status it answered (503). */
static int start_position(const struct http_req *req, const struct start *s, int64_t *pos,
                          bool *stale)
{
	char errstr[256];
	int64_t end;

	*pos = s->pos;
	*stale = false;
	if (s->at_pos && feed_last(&end) && s->pos <= end)
		return 0;
	if (!s->at_pos && !s->at_from && feed_last(pos))
		return 0;
	if (position_of(s->at_from ? &s->from : NULL, s->at_pos ? &end : pos, errstr,
	                sizeof(errstr)) != 0)
		return http_send_error(req, 503, "Retry-After: 1\r\n", "database unavailable: %s",
		                       errstr);
	if (s->at_pos && s->pos > end) {
		*stale = true;
		*pos = end;
	}
	return 0;
}

/* The last event of a stream whose positions no longer mean this table:
 * its id is the position to go on from. */
static void send_reset(struct stream *st, int64_t seq)
{
	st->len += (size_t)snprintf(st->buf + st->len, sizeof(st->buf) - st->len,
	                            "event: reset\nid: %" PRId64 "\ndata: {\"reason\":"
	                            "\"the table was rebuilt; ids start again\"}\n\n",
	                            seq);
	flush(st);
}

/* Follows the ring (or the table, while behind) until the stream ends. */
static void follow(struct stream *st)
{
	struct feed_record batch[BATCH];
	struct timespec beat = clock_deadline(opts.heartbeat_ms);
	/* An age limit ends even a busy stream; its client resumes. */
	const struct timespec end = clock_deadline(opts.max_age_ms > 0 ? opts.max_age_ms : 1000000000L);
	bool in_ring = false;
	char errstr[256];
	int64_t reset_seq;
	int n;

	while (!st->failed && st->left != 0) {
		struct timespec until = clock_deadline(GONE_CHECK_MS);

		if (clock_cmp(&beat, &until) < 0)
			until = beat;
		if (clock_cmp(&end, &until) < 0)
			until = end;
		if (clock_passed(&end))
			return;
		switch (feed_take(st->pos, st->epoch, batch, BATCH, &n, &until, &reset_seq)) {
		case FEED_TAKEN:
			in_ring = true;
			for (int i = 0; i < n; i++)
				send_record(st, &batch[i]);
			if (n == 0 && client_gone(st))
				return;
			if (n == 0 && clock_passed(&beat)) {
				st->len += (size_t)snprintf(st->buf + st->len, sizeof(st->buf) - st->len,
				                            ": keep-alive\n\n");
				beat = clock_deadline(opts.heartbeat_ms);
			}
			flush(st);
			break;
		case FEED_BEHIND:
			if (in_ring) { /* fell out of the ring: too slow a reader */
				metrics_add(&m_cut, 1);
				log_at(LOG_INFO, st->req->cid, NULL,
				       "stream cut off at seq %" PRId64 ": the reader fell behind", st->pos);
				return;
			}
			if ((n = send_page(st, errstr, sizeof(errstr))) < 0) {
				log_at(LOG_WARN, st->req->cid, NULL, "stream ends at seq %" PRId64 ": %s",
				       st->pos, errstr);
				return;
			}
			if (n == 0) { /* the feed has not started: nothing to follow yet */
				if (client_gone(st))
					return;
				nanosleep(&(struct timespec){.tv_nsec = WAIT_FEED_MS * 1000000L}, NULL);
			}
			break;
		case FEED_RESET:
			/* The table was switched (a blue-green rebuild): the positions
			 * sent so far meant the old one. The new position goes with the
			 * event, so that a client that resumes goes on from there. */
			send_reset(st, reset_seq);
			return;
		case FEED_CLOSING:
			return;
		}
	}
}

int stream_serve(const struct http_req *req)
{
	struct stream *st;
	char head[512];
	struct start start;
	int64_t pos = 0;
	unsigned epoch;
	int status, sndbuf = SNDBUF_BYTES;
	bool stale;

	if ((status = read_start(req, &start)) != 0)
		return status;
	if (feed_stream_begin() != 0)
		return http_send_error(req, 503, "Retry-After: 5\r\n",
		                       "too many streams open; retry later");
	http_long_begin();
	/* The epoch first: a switch while the start is read ends the stream. */
	epoch = feed_epoch();
	if ((status = start_position(req, &start, &pos, &stale)) != 0)
		goto done;
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		status = http_send_error(req, 503, "Retry-After: 1\r\n", "out of memory");
		goto done;
	}
	st->req = req;
	st->pos = pos;
	st->left = start.limit;
	st->epoch = epoch;
	if ((st->fd = http_conn_fd(req)) >= 0)
		(void)setsockopt(st->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	mg_disable_connection_keep_alive(req->conn);
	st->len = (size_t)snprintf(head, sizeof(head),
	                           "HTTP/1.1 200 OK\r\n"
	                           "Content-Type: text/event-stream\r\n"
	                           "Cache-Control: no-store\r\n"
	                           "X-Accel-Buffering: no\r\n"
	                           "Connection: close\r\n"
	                           "correlationId: %s\r\n\r\n"
	                           "retry: %d\n\n",
	                           req->cid, RETRY_MS);
	memcpy(st->buf, head, st->len);
	flush(st);
	if (stale)
		send_reset(st, pos);
	else
		follow(st);
	free(st);
	status = 200;
done:
	http_long_end();
	feed_stream_end();
	return status;
}
