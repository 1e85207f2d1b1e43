/* live_test: the query service's live side against the real consumer,
 * Kafka and PostgreSQL: GET with Prefer: wait / ?wait answered at the
 * commit (measured against the commit's own notification) or 404 at its
 * deadline, a thousand waiters that leave plain GETs alone, the event
 * stream delivering a 10,000-message burst exactly once across a
 * reconnect with Last-Event-ID, ?after= and ?from=, a frozen reader cut
 * off, bad parameters, and SIGTERM with waits and streams open.
 *
 * The stream is read with a plain socket (an SSE client in a few lines),
 * so that the test controls when it reads, and how little. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fault.h"
#include "faults.h"
#include "msg.h"
#include "ts.h"

#define WAITERS 1000
#define BURST 10000

static char q_metrics[128];

static void start(const char *const *query_env)
{
	fault_start(STACK_CONSUMER, NULL);
	fault_start(STACK_QUERY, query_env);
	stack_url(q_metrics, sizeof(q_metrics), STACK_QUERY, "/metrics");
}

/* ---- writing ---- */

/* Produces one valid command for each of ids[0..n) (fresh ids when
 * fresh), straight into the topic. */
static void produce(char (*ids)[UID_TEXT_SIZE], int n, bool fresh)
{
	struct topic_out *out = calloc((size_t)n, sizeof(*out));
	char(*vals)[MSG_ENCODED_MAX] = calloc((size_t)n, MSG_ENCODED_MAX);
	const struct ts_instant now = ts_now();
	char errstr[512];

	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(vals);
	for (int i = 0; i < n; i++) {
		struct msg_command m = {.event_time = now};
		if (fresh)
			uid_v4(ids[i]);
		memcpy(m.command_id, ids[i], UID_TEXT_SIZE);
		out[i] = (struct topic_out){.key = ids[i], .value = vals[i],
		                            .value_len = msg_encode(&m, vals[i]),
		                            .ts_ms = msg_ts_ms(now),
		                            .partition = TOPIC_ANY_PARTITION};
	}
	ck_assert_msg(topic_produce(stack.broker, stack.topic, out, (size_t)n, errstr,
	                            sizeof(errstr)) == 0,
	              "%s", errstr);
	free(out);
	free(vals);
}

/* Produces n fresh commands and waits until they are rows. */
static void write_rows(char (*ids)[UID_TEXT_SIZE], int n)
{
	produce(ids, n, true);
	ck_assert_int_eq(fault_wait_rows(ids, (size_t)n, 60000), n);
}

static PGconn *db_open(void)
{
	PGconn *conn = PQconnectdb(stack.db_url);

	ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s", PQerrorMessage(conn));
	return conn;
}

/* The seq of the row with id. */
static long long seq_of(PGconn *conn, const char *id)
{
	const char *vals[1] = {id};
	PGresult *res = PQexecParams(conn, "SELECT seq FROM timestamp_records WHERE id = $1::uuid",
	                             1, NULL, vals, NULL, NULL, 0);
	long long seq;

	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1, "%s",
	              PQresultErrorMessage(res));
	seq = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return seq;
}

/* Waits until the query service's gauge series reaches want (timeout_ms). */
static void await_metric(const char *series, double want, long timeout_ms)
{
	const long until = clock_mono_ms() + timeout_ms;
	double v;

	while ((v = fault_metric(q_metrics, series)) < want && clock_mono_ms() < until)
		proc_sleep_ms(10);
	ck_assert_msg(v >= want, "%s is %g after %ld ms, want %g", series, v, timeout_ms, want);
}

/* Waits until the query service's gauge series falls to want or below. */
static void await_metric_at_most(const char *series, double want, long timeout_ms)
{
	const long until = clock_mono_ms() + timeout_ms;
	double v;

	while ((v = fault_metric(q_metrics, series)) > want && clock_mono_ms() < until)
		proc_sleep_ms(10);
	ck_assert_msg(v >= 0 && v <= want, "%s is %g after %ld ms, want at most %g", series, v,
	              timeout_ms, want);
}

/* ---- a raw HTTP client: a request on a socket of its own ---- */

/* Connects to the query service (with a receive buffer of rcvbuf bytes
 * when > 0) and sends a GET of target with extra header lines. */
static int raw_get(const char *target, const char *headers, int rcvbuf)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(stack.port[STACK_QUERY]),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char req[1024];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), n;

	ck_assert_int_ge(fd, 0);
	if (rcvbuf > 0)
		ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
	              strerror(errno));
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", target,
	             headers ? headers : "");
	ck_assert_int_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
	return fd;
}

/* Reads from fd into buf until it holds needle or deadline (ms); returns
 * bytes held, -1 on EOF/error before. */
static int read_until(int fd, char *buf, size_t size, size_t *len, const char *needle,
                      long until)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		buf[*len] = '\0';
		if (strstr(buf, needle) != NULL)
			return (int)*len;
		if (*len + 1 >= size || clock_mono_ms() >= until ||
		    poll(&p, 1, (int)(until - clock_mono_ms())) <= 0)
			return -1;
		if ((n = recv(fd, buf + *len, size - 1 - *len, 0)) <= 0)
			return -1;
		*len += (size_t)n;
	}
}

/* ---- an SSE client ---- */

struct sse {
	int fd;
	char buf[65536];
	size_t len;
	bool eof;
};

/* Opens a stream with query (e.g. "?after=3") and extra headers, and
 * reads its response head; asserts 200 and the SSE headers. */
static void sse_open(struct sse *c, const char *query, const char *headers, int rcvbuf)
{
	char target[256];
	char *end;

	snprintf(target, sizeof(target), "/api/v1/timestamps/stream%s", query ? query : "");
	c->fd = raw_get(target, headers, rcvbuf);
	c->len = 0;
	c->eof = false;
	ck_assert_msg(read_until(c->fd, c->buf, sizeof(c->buf), &c->len, "\r\n\r\n",
	                         clock_mono_ms() + 15000) > 0,
	              "no response head for %s", target);
	ck_assert_msg(strncmp(c->buf, "HTTP/1.1 200", 12) == 0, "%.200s", c->buf);
	ck_assert_ptr_nonnull(strstr(c->buf, "Content-Type: text/event-stream\r\n"));
	ck_assert_ptr_nonnull(strstr(c->buf, "Cache-Control: no-store\r\n"));
	end = strstr(c->buf, "\r\n\r\n") + 4;
	c->len -= (size_t)(end - c->buf);
	memmove(c->buf, end, c->len);
}

/* The next event: its id (seq) and the record's id. Returns 1, 0 at the
 * deadline, -1 at the end of the stream. Comments and retry: are skipped;
 * event: is kept in *type (NULL: a record). */
static int sse_next(struct sse *c, long long *seq, char *id, char *type, size_t type_size,
                    long until)
{
	for (;;) {
		char *end;

		c->buf[c->len] = '\0';
		while ((end = strstr(c->buf, "\n\n")) != NULL) {
			size_t used = (size_t)(end + 2 - c->buf);
			char *p;
			bool event = false;

			*end = '\0';
			type[0] = '\0';
			if ((p = strstr(c->buf, "id: ")) != NULL && (p == c->buf || p[-1] == '\n')) {
				*seq = atoll(p + 4);
				event = true;
			}
			if ((p = strstr(c->buf, "event: ")) != NULL)
				snprintf(type, type_size, "%.*s", (int)strcspn(p + 7, "\n"), p + 7);
			if ((p = strstr(c->buf, "\"id\":\"")) != NULL)
				snprintf(id, UID_TEXT_SIZE, "%.36s", p + 6);
			memmove(c->buf, c->buf + used, c->len - used);
			c->len -= used;
			c->buf[c->len] = '\0';
			if (event)
				return 1;
		}
		struct pollfd pf = {.fd = c->fd, .events = POLLIN};
		ssize_t n;
		if (c->eof)
			return -1;
		if (clock_mono_ms() >= until || poll(&pf, 1, (int)(until - clock_mono_ms())) <= 0)
			return 0;
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
		if (n <= 0)
			c->eof = true;
		else
			c->len += (size_t)n;
	}
}

static void sse_close(struct sse *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void teardown(void)
{
	fault_teardown(NULL, 0);
}

/* ---- waits ---- */

struct waiting_get {
	char url[256];
	const char *header;
	pthread_t tid;
	long answered_ms;
	long status;
	char body_id[UID_TEXT_SIZE];
};

static void *waiting_get_main(void *arg)
{
	struct waiting_get *g = arg;
	const char *headers[] = {g->header, NULL};
	struct http_resp resp;
	json_object *jobj;

	if (http_request(NULL, "GET", g->url, g->header ? headers : NULL, NULL, 0, &resp) == 0)
		g->status = resp.status;
	g->answered_ms = clock_mono_ms();
	if ((jobj = http_resp_json(&resp)) != NULL && json_str(jobj, "id") != NULL)
		snprintf(g->body_id, sizeof(g->body_id), "%s", json_str(jobj, "id"));
	json_object_put(jobj);
	http_resp_clear(&resp);
	return NULL;
}

/* Waits for the next notification on conn's channel; returns when it came
 * (clock_mono_ms), or -1 at the deadline. */
static long await_notify(PGconn *conn, long until)
{
	for (;;) {
		struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
		PGnotify *nt;

		ck_assert_int_eq(PQconsumeInput(conn), 1);
		if ((nt = PQnotifies(conn)) != NULL) {
			const long at = clock_mono_ms();
			PQfreemem(nt);
			return at;
		}
		if (clock_mono_ms() >= until || poll(&p, 1, (int)(until - clock_mono_ms())) <= 0)
			return -1;
	}
}

static int cmp_long(const void *a, const void *b)
{
	const long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

/* The consumer's notification comes at the row's COMMIT: the test LISTENs
 * itself, and each waiting GET's 200 is timed against the notification of
 * the batch that held its record (one write at a time). The median is
 * asserted (the 50 ms); every figure goes to the log. */
START_TEST(wait_answers_at_the_commit)
{
	enum { ROUNDS = 20 };
	const char *const env[] = {"HTTP_THREADS=16", NULL};
	PGconn *listen_conn;
	PGresult *res;
	long lat[ROUNDS];

	start(env);
	listen_conn = db_open();
	res = PQexec(listen_conn, "LISTEN timestamp_records");
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	for (int r = 0; r < ROUNDS; r++) {
		struct waiting_get g = {.header = r % 2 ? "Prefer: wait=30" : NULL};
		char id[1][UID_TEXT_SIZE];
		long notified;

		uid_v4(id[0]);
		stack_url(g.url, sizeof(g.url), STACK_QUERY, "/api/v1/timestamp/%s%s", id[0],
		          r % 2 ? "" : "?wait=30000");
		ck_assert_int_eq(pthread_create(&g.tid, NULL, waiting_get_main, &g), 0);
		await_metric("wait_requests_waiting", 1, 10000);
		produce(id, 1, false);
		notified = await_notify(listen_conn, clock_mono_ms() + 30000);
		pthread_join(g.tid, NULL);
		ck_assert_msg(notified > 0, "no notification within 30 s");
		ck_assert_int_eq(g.status, 200);
		ck_assert_str_eq(g.body_id, id[0]);
		lat[r] = g.answered_ms - notified;
		printf("live: wait round %d (%s): 200 %ld ms after the commit's notification\n", r,
		       r % 2 ? "Prefer: wait=30" : "?wait=30000", lat[r]);
	}
	PQfinish(listen_conn);
	qsort(lat, ROUNDS, sizeof(lat[0]), cmp_long);
	printf("live: wait-for-commit latency over %d waits: median %ld ms, max %ld ms\n", ROUNDS,
	       lat[ROUNDS / 2], lat[ROUNDS - 1]);
	ck_assert_msg(lat[ROUNDS / 2] <= 50, "median %ld ms after the commit", lat[ROUNDS / 2]);
}
END_TEST

START_TEST(wait_for_an_id_never_written_is_404_at_its_deadline)
{
	const char *const env[] = {"WAIT_MAX_MS=2000", NULL};
	static const struct {
		const char *query, *header;
		long want_ms;
	} cases[] = {
	    {"?wait=1500", NULL, 1500},
	    {"", "Prefer: wait=1", 1000},
	    {"", "Prefer: respond-async, WAIT=\"60\"", 2000}, /* capped at WAIT_MAX_MS */
	    {"?wait=99999999999999999999", NULL, 2000},
	    /* longer than any integer type: still a number of ms, capped
	     * (schemathesis sent one of 32 digits and got 400) */
	    {"?wait=00000000009999999999999999999999999999999999", NULL, 2000},
	};

	start(env);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct waiting_get g = {.header = cases[i].header};
		char id[UID_TEXT_SIZE];
		long t0, took;

		uid_v4(id);
		stack_url(g.url, sizeof(g.url), STACK_QUERY, "/api/v1/timestamp/%s%s", id,
		          cases[i].query);
		t0 = clock_mono_ms();
		waiting_get_main(&g);
		took = g.answered_ms - t0;
		printf("live: %s%s: %ld after %ld ms (deadline %ld ms)\n", cases[i].query,
		       cases[i].header ? cases[i].header : "", g.status, took, cases[i].want_ms);
		ck_assert_int_eq(g.status, 404);
		ck_assert_int_ge(took, cases[i].want_ms);
		ck_assert_int_lt(took, cases[i].want_ms + 10000);
	}
	await_metric_at_most("wait_requests_waiting", 0, 1000);
}
END_TEST

/* 1,000 requests wait on threads reserved for them; plain GETs keep
 * HTTP_THREADS, and the 1,001st waiter gets 503. */
START_TEST(a_thousand_waiters_leave_plain_gets_alone)
{
	const char *const env[] = {"WAIT_MAX_WAITERS=1000", "HTTP_THREADS=16", NULL};
	static int fds[WAITERS];
	char ids[50][UID_TEXT_SIZE], url[256], fresh[UID_TEXT_SIZE];
	struct http_resp resp;
	long t0, slowest = 0;

	start(env);
	write_rows(ids, 50);
	for (int i = 0; i < WAITERS; i++) {
		char target[128], id[UID_TEXT_SIZE];
		uid_v4(id);
		snprintf(target, sizeof(target), "/api/v1/timestamp/%s?wait=120000", id);
		fds[i] = raw_get(target, NULL, 0);
	}
	t0 = clock_mono_ms();
	await_metric("wait_requests_waiting", WAITERS, 60000);
	printf("live: %d waiters registered %ld ms after the last was sent\n", WAITERS,
	       clock_mono_ms() - t0);

	/* over the limit: 503 for a record that is not there, which would wait;
	 * one that is there needs no wait and is answered */
	uid_v4(fresh);
	stack_url(url, sizeof(url), STACK_QUERY, "/api/v1/timestamp/%s?wait=5000", fresh);
	ck_assert_int_eq(http_get(url, NULL, &resp), 0);
	ck_assert_int_eq(resp.status, 503);
	ck_assert_str_ne(resp.retry_after, "");
	http_resp_clear(&resp);
	stack_url(url, sizeof(url), STACK_QUERY, "/api/v1/timestamp/%s?wait=5000", ids[0]);
	ck_assert_int_eq(http_get(url, NULL, &resp), 0);
	ck_assert_msg(resp.status == 200, "%s -> %ld %s", url, resp.status, resp.body);
	http_resp_clear(&resp);

	/* plain GETs, each on a new connection and on one kept alive */
	for (int round = 0; round < 2; round++) {
		CURL *curl = round ? curl_easy_init() : NULL;
		for (int i = 0; i < 50; i++) {
			const long s = clock_mono_ms();
			stack_url(url, sizeof(url), STACK_QUERY, "/api/v1/timestamp/%s", ids[i]);
			ck_assert_int_eq(http_request(curl, "GET", url, NULL, NULL, 0, &resp), 0);
			ck_assert_msg(resp.status == 200, "GET %s -> %ld while %d wait", ids[i],
			              resp.status, WAITERS);
			http_resp_clear(&resp);
			if (clock_mono_ms() - s > slowest)
				slowest = clock_mono_ms() - s;
		}
		if (curl != NULL)
			curl_easy_cleanup(curl);
	}
	printf("live: 100 plain GETs answered 200 while %d waited (slowest %ld ms)\n", WAITERS,
	       slowest);
	ck_assert_int_eq((int)fault_metric(q_metrics, "wait_requests_waiting"), WAITERS);
	for (int i = 0; i < WAITERS; i++)
		close(fds[i]);
}
END_TEST

/* ---- the stream ---- */

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Reads events from c into got[] (ids) until *n reaches want, the stream
 * ends or until; checks that seqs rise. Returns the last seq. */
static long long read_events(struct sse *c, char (*got)[UID_TEXT_SIZE], int *n, int want,
                             long long last, long until)
{
	char type[32];
	long long seq;

	while (*n < want) {
		int rc = sse_next(c, &seq, got[*n], type, sizeof(type), until);
		if (rc <= 0)
			break;
		ck_assert_msg(type[0] == '\0', "event: %s", type);
		ck_assert_msg(seq > last, "seq %lld after %lld", seq, last);
		last = seq;
		(*n)++;
	}
	return last;
}

START_TEST(stream_delivers_a_burst_exactly_once_across_a_reconnect)
{
	static char got[BURST + 100][UID_TEXT_SIZE];
	static char want[BURST][UID_TEXT_SIZE];
	struct fault_stream burst = {0};
	struct sse c;
	long long last;
	char hdr[64];
	int n = 0, reconnects = 0;
	const long until = clock_mono_ms() + 240000;

	start(NULL);
	sse_open(&c, NULL, NULL, 0); /* live, from now */
	fault_stream_start(&burst, BURST, 500, 0);
	last = read_events(&c, got, &n, BURST / 3, 0, until);
	printf("live: closing the stream after %d events (seq %lld)\n", n, last);
	sse_close(&c);
	while (n < BURST && clock_mono_ms() < until) {
		snprintf(hdr, sizeof(hdr), "Last-Event-ID: %lld\r\n", last);
		sse_open(&c, NULL, hdr, 0);
		reconnects++;
		last = read_events(&c, got, &n, BURST, last, clock_mono_ms() + 30000);
		if (n >= BURST) /* anything more would be a duplicate */
			last = read_events(&c, got, &n, BURST + 100, last, clock_mono_ms() + 2000);
		sse_close(&c); /* done, or the stream ended (cut off) or went quiet: resume */
	}
	fault_stream_join(&burst, false);
	printf("live: %d events over %d connections\n", n, reconnects + 1);
	ck_assert_int_eq(n, BURST);
	memcpy(want, burst.ids, sizeof(want));
	qsort(got, (size_t)n, UID_TEXT_SIZE, cmp_id);
	qsort(want, BURST, UID_TEXT_SIZE, cmp_id);
	for (int i = 0; i < BURST; i++)
		ck_assert_str_eq(got[i], want[i]);
	free(burst.ids);
}
END_TEST

/* ?after=<seq> and ?from=<time> replay from the table, then go on live. */
/* True if id is one of ids[0..n). */
static bool among(const char *id, char (*ids)[UID_TEXT_SIZE], int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(id, ids[i]) == 0)
			return true;
	return false;
}

START_TEST(stream_replays_after_a_position_and_from_a_time)
{
	/* written[]: A (5, before the position), B (5), then 3 more per pass */
	char written[16][UID_TEXT_SIZE];
	char query[128], from[TS_TEXT_MAX], got[16][UID_TEXT_SIZE];
	PGconn *conn;
	struct sse c;
	long long seq_a = 0;
	int n, have;

	start(NULL);
	conn = db_open();
	write_rows(written, 5);
	for (int i = 0; i < 5; i++)
		if (seq_of(conn, written[i]) > seq_a)
			seq_a = seq_of(conn, written[i]);
	proc_sleep_ms(1100);
	ts_format(&(struct ts_instant){.sec = ts_now().sec}, 0, from); /* after A, before B */
	proc_sleep_ms(1100);
	write_rows(written + 5, 5);
	have = 10;

	for (int pass = 0; pass < 2; pass++) {
		if (pass == 0)
			snprintf(query, sizeof(query), "?after=%lld", seq_a);
		else
			snprintf(query, sizeof(query), "?from=%s", from);
		sse_open(&c, query, NULL, 0);
		/* the replay: every row after A, each once (their order is seq's) */
		n = 0;
		read_events(&c, got, &n, have - 5, seq_a, clock_mono_ms() + 15000);
		ck_assert_msg(n == have - 5, "%s: %d events of %d", query, n, have - 5);
		for (int i = 0; i < n; i++) {
			ck_assert_msg(among(got[i], written + 5, have - 5), "%s: event %d is %s", query, i,
			              got[i]);
			ck_assert_msg(!among(got[i], got, i), "%s: %s twice", query, got[i]);
		}
		/* then live: the new rows */
		write_rows(written + have, 3);
		n = 0;
		read_events(&c, got, &n, 3, 0, clock_mono_ms() + 15000);
		ck_assert_msg(n == 3, "%s: %d live events of 3", query, n);
		for (int i = 0; i < 3; i++)
			ck_assert_msg(among(got[i], written + have, 3), "%s: live event %d is %s", query,
			              i, got[i]);
		have += 3;
		sse_close(&c);
	}
	/* after wins over from (a far future one: nothing would come) */
	snprintf(query, sizeof(query), "?from=2999-01-01T00:00:00Z&after=%lld&limit=1", seq_a);
	sse_open(&c, query, NULL, 0);
	n = 0;
	read_events(&c, got, &n, 1, seq_a, clock_mono_ms() + 15000);
	ck_assert_msg(n == 1 && among(got[0], written + 5, 5), "%s: %d events", query, n);
	sse_close(&c);
	/* ?limit: that many events, then the end */
	snprintf(query, sizeof(query), "?after=%lld&limit=2", seq_a);
	sse_open(&c, query, NULL, 0);
	n = 0;
	read_events(&c, got, &n, 3, seq_a, clock_mono_ms() + 15000);
	ck_assert_msg(n == 2 && c.eof, "%s: %d events, %s", query, n, c.eof ? "ended" : "open");
	sse_close(&c);
	PQfinish(conn);
}
END_TEST

/* A reader that stops reading (its window closes) is cut off: the service
 * closes the connection within a bounded time, and counts it. */
START_TEST(a_frozen_reader_is_cut_off)
{
	const char *const env[] = {"STREAM_RING_SIZE=256", "HTTP_REQUEST_TIMEOUT_MS=2000", NULL};
	struct fault_stream burst = {0};
	struct sse c;
	char buf[4096];
	long t0, until;
	ssize_t r = 1;

	start(env);
	sse_open(&c, NULL, NULL, 4096);
	await_metric("streams_open", 1, 5000);
	fault_stream_start(&burst, 3000, 500, 0);
	fault_stream_join(&burst, false);
	t0 = clock_mono_ms();
	await_metric("streams_cut_off_total", 1, 60000);
	await_metric_at_most("streams_open", 0, 10000);
	printf("live: the frozen reader was cut off %ld ms after the burst was produced\n",
	       clock_mono_ms() - t0);
	/* What was sent before the cut is still readable; then the end. */
	until = clock_mono_ms() + 30000;
	while (r > 0 && clock_mono_ms() < until) {
		struct pollfd p = {.fd = c.fd, .events = POLLIN};
		if (poll(&p, 1, (int)(until - clock_mono_ms())) <= 0)
			break;
		r = recv(c.fd, buf, sizeof(buf), 0);
	}
	ck_assert_msg(r <= 0, "the connection is still open 30 s after the cut");
	sse_close(&c);
	free(burst.ids);
}
END_TEST

START_TEST(bad_parameters_are_400_and_streams_are_bounded)
{
	const char *const env[] = {"STREAM_MAX=1", NULL};
	static const struct {
		const char *target, *header, *names;
	} cases[] = {
	    {"/api/v1/timestamp/{id}?wait=abc", NULL, "wait"},
	    {"/api/v1/timestamp/{id}?wait=-5", NULL, "wait"},
	    {"/api/v1/timestamp/{id}?wait=", NULL, "wait"},
	    {"/api/v1/timestamp/{id}?wait=1.5", NULL, "wait"},
	    {"/api/v1/timestamps/stream?after=x", NULL, "after"},
	    {"/api/v1/timestamps/stream?after=-1", NULL, "after"},
	    {"/api/v1/timestamps/stream?after=99999999999999999999", NULL, "after"},
	    {"/api/v1/timestamps/stream?from=yesterday", NULL, "from"},
	    {"/api/v1/timestamps/stream?from=2024-02-30T00:00:00Z", NULL, "from"},
	    {"/api/v1/timestamps/stream", "Last-Event-ID: abc", "Last-Event-ID"},
	    {"/api/v1/timestamps/stream?limit=0", NULL, "limit"},
	    {"/api/v1/timestamps/stream?limit=x", NULL, "limit"},
	    {"/api/v1/timestamps/stream?limit=1000001", NULL, "limit"},
	};
	struct http_resp resp;
	struct sse c;
	char url[256], id[UID_TEXT_SIZE], path[160];
	long t0;

	start(env);
	uid_v4(id);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *headers[] = {cases[i].header, NULL};
		json_object *jobj;
		const char *rest = strstr(cases[i].target, "{id}");
		if (rest != NULL) /* a GET by id: a fresh id in place of {id} */
			snprintf(path, sizeof(path), "%.*s%s%s", (int)(rest - cases[i].target),
			         cases[i].target, id, rest + 4);
		else
			snprintf(path, sizeof(path), "%s", cases[i].target);
		stack_url(url, sizeof(url), STACK_QUERY, "%s", path);
		ck_assert_int_eq(http_get(url, cases[i].header ? headers : NULL, &resp), 0);
		ck_assert_msg(resp.status == 400, "%s -> %ld", path, resp.status);
		jobj = http_resp_json(&resp);
		ck_assert_msg(jobj != NULL && json_str(jobj, "error") != NULL &&
		                  strncmp(json_str(jobj, "error"), cases[i].names,
		                          strlen(cases[i].names)) == 0,
		              "%s: %s does not start with the parameter's name", path, resp.body);
		json_object_put(jobj);
		http_resp_clear(&resp);
	}
	/* A Prefer that cannot be used is ignored (RFC 7240): answered at once. */
	{
		const char *headers[] = {"Prefer: wait=soon", NULL};
		stack_url(url, sizeof(url), STACK_QUERY, "/api/v1/timestamp/%s", id);
		t0 = clock_mono_ms();
		ck_assert_int_eq(http_get(url, headers, &resp), 0);
		ck_assert_int_eq(resp.status, 404);
		ck_assert_int_lt(clock_mono_ms() - t0, 5000);
		http_resp_clear(&resp);
	}
	/* STREAM_MAX=1: the second stream waits its turn */
	sse_open(&c, NULL, NULL, 0);
	stack_url(url, sizeof(url), STACK_QUERY, "/api/v1/timestamps/stream");
	ck_assert_int_eq(http_get(url, NULL, &resp), 0);
	ck_assert_int_eq(resp.status, 503);
	ck_assert_str_ne(resp.retry_after, "");
	http_resp_clear(&resp);
	sse_close(&c);
	await_metric_at_most("streams_open", 0, 10000); /* noticed within about 1 s */
	sse_open(&c, NULL, NULL, 0); /* the slot is free again once the client left */
	sse_close(&c);
}
END_TEST

/* SIGTERM ends open waits (503) and streams at once: the service exits 0
 * within 10 s (fault_sigterm) although the wait had 30 s left. */
START_TEST(sigterm_ends_waits_and_streams)
{
	struct waiting_get g = {.header = "Prefer: wait=30"};
	struct sse c;
	char id[UID_TEXT_SIZE], buf[256];
	long took, until;
	ssize_t r = 1;

	start(NULL);
	uid_v4(id);
	stack_url(g.url, sizeof(g.url), STACK_QUERY, "/api/v1/timestamp/%s", id);
	sse_open(&c, NULL, NULL, 0);
	ck_assert_int_eq(pthread_create(&g.tid, NULL, waiting_get_main, &g), 0);
	await_metric("wait_requests_waiting", 1, 10000);
	took = fault_sigterm(&stack.svc[STACK_QUERY]);
	pthread_join(g.tid, NULL);
	printf("live: SIGTERM with a wait and a stream open: exit 0 in %ld ms\n", took);
	ck_assert_int_eq(g.status, 503);
	until = clock_mono_ms() + 10000;
	while (r > 0 && clock_mono_ms() < until) { /* the stream ended: EOF */
		struct pollfd p = {.fd = c.fd, .events = POLLIN};
		if (poll(&p, 1, (int)(until - clock_mono_ms())) <= 0)
			break;
		r = recv(c.fd, buf, sizeof(buf), 0);
	}
	ck_assert_msg(r <= 0, "the stream is still open 10 s after the service exited");
	sse_close(&c);
}
END_TEST

static void exec_ok(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);

	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK ||
	                  PQresultStatus(res) == PGRES_COMMAND_OK,
	              "%s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
}

/* The feed's LISTEN connection is killed three times while records stream
 * in: it reconnects and reads on from its last seq, so a stream that
 * follows it throughout gets every record once, and a waiter is answered. */
START_TEST(feed_reconnects_and_misses_nothing)
{
	static char got[2100][UID_TEXT_SIZE];
	struct fault_stream burst = {0};
	PGconn *conn;
	struct sse c;
	long long last = 0;
	int n = 0;
	const long until = clock_mono_ms() + 120000;

	start(NULL);
	conn = db_open();
	sse_open(&c, NULL, NULL, 0);
	await_metric("streams_open", 1, 5000);
	fault_stream_start(&burst, 2000, 50, 100); /* 2,000 records over about 4 s */
	for (int kill = 0; kill < 3; kill++) {
		proc_sleep_ms(800);
		/* the feed's connection: the one that LISTENs, whose last statement
		 * is its read of 1,000 rows (the pool's are prepared statements) */
		exec_ok(conn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
		              "WHERE application_name = 'query-service' AND "
		              "(query LIKE 'LISTEN%' OR query LIKE '%LIMIT 1000')");
	}
	fault_stream_join(&burst, false);
	last = read_events(&c, got, &n, 2000, 0, until);
	read_events(&c, got, &n, 2100, last, clock_mono_ms() + 2000); /* nothing more */
	sse_close(&c);
	printf("live: %d events across 3 lost feed connections (%g reconnects)\n", n,
	       fault_metric(q_metrics, "feed_reconnects_total"));
	ck_assert_int_ge(fault_metric(q_metrics, "feed_reconnects_total"), 3);
	ck_assert_int_eq(n, 2000);
	qsort(got, (size_t)n, UID_TEXT_SIZE, cmp_id);
	qsort(burst.ids, 2000, UID_TEXT_SIZE, cmp_id);
	for (int i = 0; i < n; i++)
		ck_assert_str_eq(got[i], burst.ids[i]);
	free(burst.ids);
	PQfinish(conn);
}
END_TEST

/* A blue-green rebuild's switch (NOTIFY 'switch'): every stream ends with
 * event: reset, whose id is the table's position now; a stream asked to
 * resume beyond the table's end gets that reset at once; waits go on. */
START_TEST(a_table_switch_ends_streams_with_reset)
{
	char type[32], id[UID_TEXT_SIZE], rows[1][UID_TEXT_SIZE], query[64];
	struct waiting_get g = {0};
	long long seq, max_seq;
	PGconn *conn;
	PGresult *res;
	struct sse c;
	int rc;

	start(NULL);
	conn = db_open();
	write_rows(rows, 1);
	sse_open(&c, NULL, NULL, 0);
	await_metric("streams_open", 1, 5000);
	exec_ok(conn, "NOTIFY timestamp_records, 'switch'");
	while ((rc = sse_next(&c, &seq, id, type, sizeof(type), clock_mono_ms() + 15000)) == 1 &&
	       strcmp(type, "reset") != 0)
		;
	ck_assert_int_eq(rc, 1);
	ck_assert_str_eq(type, "reset");
	res = PQexec(conn, "SELECT max(seq) FROM timestamp_records");
	ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	max_seq = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	ck_assert_int_eq(seq, max_seq);
	ck_assert_int_eq(sse_next(&c, &seq, id, type, sizeof(type), clock_mono_ms() + 15000), -1);
	sse_close(&c);

	/* a position beyond the table's end is of another table: reset at once */
	snprintf(query, sizeof(query), "Last-Event-ID: %lld\r\n", max_seq + 1000);
	sse_open(&c, NULL, query, 0);
	ck_assert_int_eq(sse_next(&c, &seq, id, type, sizeof(type), clock_mono_ms() + 15000), 1);
	ck_assert_str_eq(type, "reset");
	ck_assert_int_eq(seq, max_seq);
	ck_assert_int_eq(sse_next(&c, &seq, id, type, sizeof(type), clock_mono_ms() + 15000), -1);
	sse_close(&c);
	/* the end itself is a position of this table: no reset, a live stream */
	snprintf(query, sizeof(query), "Last-Event-ID: %lld\r\n", max_seq);
	sse_open(&c, NULL, query, 0);
	ck_assert_int_eq(sse_next(&c, &seq, id, type, sizeof(type), clock_mono_ms() + 1500), 0);
	sse_close(&c);

	/* the feed reads on: a wait started now is answered at the commit */
	g.header = "Prefer: wait=30";
	uid_v4(rows[0]);
	stack_url(g.url, sizeof(g.url), STACK_QUERY, "/api/v1/timestamp/%s", rows[0]);
	ck_assert_int_eq(pthread_create(&g.tid, NULL, waiting_get_main, &g), 0);
	await_metric("wait_requests_waiting", 1, 10000);
	produce(rows, 1, false);
	pthread_join(g.tid, NULL);
	ck_assert_int_eq(g.status, 200);
	PQfinish(conn);
}
END_TEST

Suite *make_live_suite(void)
{
	Suite *s = suite_create("live");
	TCase *tc = tcase_create("wait");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, wait_answers_at_the_commit);
	tcase_add_test(tc, wait_for_an_id_never_written_is_404_at_its_deadline);
	tcase_add_test(tc, a_thousand_waiters_leave_plain_gets_alone);
	suite_add_tcase(s, tc);
	tc = tcase_create("stream");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, stream_delivers_a_burst_exactly_once_across_a_reconnect);
	tcase_add_test(tc, stream_replays_after_a_position_and_from_a_time);
	tcase_add_test(tc, a_frozen_reader_is_cut_off);
	tcase_add_test(tc, bad_parameters_are_400_and_streams_are_bounded);
	tcase_add_test(tc, feed_reconnects_and_misses_nothing);
	tcase_add_test(tc, a_table_switch_ends_streams_with_reset);
	tcase_add_test(tc, sigterm_ends_waits_and_streams);
	suite_add_tcase(s, tc);
	return s;
}
