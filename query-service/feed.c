/* feed: the LISTEN thread, the waiters by id and the ring (see feed.h).
 *
 * The consumer's batch INSERT takes an advisory lock before it inserts, so
 * seq values rise in COMMIT order: a reader that has seen every row up to
 * seq N and reads seq > N after each notification misses none. The thread
 * starts at max(seq), LISTENing first (a row committed in between is read
 * at its notification); after a lost connection it reconnects with capped
 * backoff and reads on from its last seq, so nothing is missed across a
 * reconnect. Notifications are only a hint of when to read: every
 * FEED_SAFETY_MS without one it reads anyway. */
#include "feed.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

#define FEED_PAGE 1000          /* rows read by one statement */
#define FEED_SAFETY_MS 5000     /* read without a notification this often */
#define FEED_BACKOFF_MIN_MS 100 /* after a failure; doubles up to the max */
#define FEED_BACKOFF_MAX_MS 5000
#define WAIT_BUCKETS 1024       /* waiters by id: a power of two */

/* The position before the first connection: every stream is behind
 * until the feed knows where the table ends. */
#define POS_UNKNOWN INT64_MAX

static struct db_params params;
static struct feed_opts opts;
static pthread_t thread;
static bool started;
static int wake_fd = -1; /* eventfd: feed_shutdown wakes the thread's poll */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ring_cv;                    /* the ring grew, or was reset */
static struct feed_ring ring;                     /* under mu */
static unsigned epoch;                            /* under mu: + 1 at each switch */
static struct feed_waiter *buckets[WAIT_BUCKETS]; /* under mu */
static int n_waiters, n_streams;                  /* under mu */
static bool stopping, quit;                       /* under mu */

static struct metrics_series m_connected = METRICS_GAUGE_INIT(
    "feed_connected", "1 while the feed's LISTEN connection to PostgreSQL is up.", "");
static struct metrics_series m_waiters = METRICS_GAUGE_INIT(
    "wait_requests_waiting", "GET requests waiting for their record (Prefer: wait).", "");
static struct metrics_series m_streams = METRICS_GAUGE_INIT(
    "streams_open", "Server-Sent Events streams open.", "");
static struct metrics_series m_reconnects = METRICS_COUNTER_INIT(
    "feed_reconnects_total", "Times the feed lost its connection and connected again.", "");

/* ---- rows ---- */

static int parse_i64(const char *s, int64_t *out)
{
	char *end;

	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static struct ts_instant from_us(int64_t us)
{
	int64_t sec = us / 1000000, rem = us % 1000000;

	if (rem < 0) {
		rem += 1000000;
		sec--;
	}
	return (struct ts_instant){.sec = sec, .nsec = (int32_t)rem * 1000};
}

int feed_parse_row(const void *r, int row, struct feed_record *rec)
{
	const PGresult *res = r;
	int64_t ev, cr;

	if (PQnfields(res) != 4 || parse_i64(PQgetvalue(res, row, 0), &rec->seq) != 0 ||
	    !uid_valid(PQgetvalue(res, row, 1), (size_t)PQgetlength(res, row, 1)) ||
	    parse_i64(PQgetvalue(res, row, 2), &ev) != 0 ||
	    parse_i64(PQgetvalue(res, row, 3), &cr) != 0)
		return -1;
	uid_normalize(PQgetvalue(res, row, 1), rec->id);
	rec->event_time = from_us(ev);
	rec->created_at = from_us(cr);
	return 0;
}

/* ---- the ring ---- */

int feed_ring_init(struct feed_ring *rg, int size, int64_t base)
{
	rg->r = calloc((size_t)size, sizeof(*rg->r));
	rg->size = size;
	rg->head = 0;
	rg->base = rg->last = base;
	return rg->r != NULL ? 0 : -1;
}

void feed_ring_free(struct feed_ring *rg)
{
	free(rg->r);
	rg->r = NULL;
}

void feed_ring_push(struct feed_ring *rg, const struct feed_record *rec)
{
	struct feed_record *slot = &rg->r[rg->head % (uint64_t)rg->size];

	if (rg->head >= (uint64_t)rg->size)
		rg->base = slot->seq; /* the oldest, dropped */
	*slot = *rec;
	rg->head++;
	rg->last = rec->seq;
}

int feed_ring_after(const struct feed_ring *rg, int64_t after, struct feed_record *out, int max)
{
	const uint64_t size = (uint64_t)rg->size;
	uint64_t lo = rg->head > size ? rg->head - size : 0, hi = rg->head;
	int n = 0;

	if (after < rg->base)
		return -1;
	/* The first record with seq > after: seqs rise through the ring. */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (rg->r[mid % size].seq > after)
			hi = mid;
		else
			lo = mid + 1;
	}
	for (; lo < rg->head && n < max; lo++)
		out[n++] = rg->r[lo % size];
	return n;
}

/* ---- waiters ---- */

static unsigned bucket_of(const char *id)
{
	unsigned h = 2166136261u; /* FNV-1a */

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h & (WAIT_BUCKETS - 1);
}

int feed_wait_begin(struct feed_waiter *w, const char *id)
{
	unsigned b;

	uid_normalize(id, w->id);
	w->delivered = false;
	if (clock_cond_init(&w->cv) != 0)
		return -1;
	b = bucket_of(w->id);
	pthread_mutex_lock(&mu);
	if (stopping || n_waiters >= opts.max_waiters) {
		pthread_mutex_unlock(&mu);
		pthread_cond_destroy(&w->cv);
		return -1;
	}
	w->next = buckets[b];
	buckets[b] = w;
	metrics_set(&m_waiters, ++n_waiters);
	pthread_mutex_unlock(&mu);
	return 0;
}

enum feed_wait_result feed_wait(struct feed_waiter *w, const struct timespec *deadline)
{
	enum feed_wait_result r;

	pthread_mutex_lock(&mu);
	while (!w->delivered && !stopping &&
	       pthread_cond_timedwait(&w->cv, &mu, deadline) != ETIMEDOUT)
		;
	r = w->delivered ? FEED_DELIVERED : stopping ? FEED_STOPPING : FEED_TIMED_OUT;
	pthread_mutex_unlock(&mu);
	return r;
}

void feed_wait_end(struct feed_waiter *w)
{
	pthread_mutex_lock(&mu);
	for (struct feed_waiter **p = &buckets[bucket_of(w->id)]; *p != NULL; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	metrics_set(&m_waiters, --n_waiters);
	pthread_mutex_unlock(&mu);
	pthread_cond_destroy(&w->cv);
}

/* Hands rec to its waiters and to the ring. Under mu. */
static void deliver(const struct feed_record *rec)
{
	for (struct feed_waiter *w = buckets[bucket_of(rec->id)]; w != NULL; w = w->next) {
		if (!w->delivered && strcmp(w->id, rec->id) == 0) {
			w->rec = *rec;
			w->delivered = true;
			pthread_cond_signal(&w->cv);
		}
	}
	feed_ring_push(&ring, rec);
}

/* ---- streams ---- */

int feed_stream_begin(void)
{
	int rc = -1;

	pthread_mutex_lock(&mu);
	if (!stopping && n_streams < opts.max_streams) {
		metrics_set(&m_streams, ++n_streams);
		rc = 0;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

void feed_stream_end(void)
{
	pthread_mutex_lock(&mu);
	metrics_set(&m_streams, --n_streams);
	pthread_mutex_unlock(&mu);
}

unsigned feed_epoch(void)
{
	pthread_mutex_lock(&mu);
	unsigned e = epoch;
	pthread_mutex_unlock(&mu);
	return e;
}

bool feed_last(int64_t *last)
{
	pthread_mutex_lock(&mu);
	bool known = ring.base != POS_UNKNOWN;
	*last = ring.last;
	pthread_mutex_unlock(&mu);
	return known;
}

enum feed_take_result feed_take(int64_t after, unsigned ep, struct feed_record *out, int max,
                                int *n, const struct timespec *deadline, int64_t *reset_seq)
{
	enum feed_take_result r = FEED_TAKEN;

	*n = 0;
	pthread_mutex_lock(&mu);
	for (;;) {
		if (stopping) {
			r = FEED_CLOSING;
			break;
		}
		if (ep != epoch) {
			*reset_seq = ring.last;
			r = FEED_RESET;
			break;
		}
		if ((*n = feed_ring_after(&ring, after, out, max)) < 0) {
			*n = 0;
			r = FEED_BEHIND;
			break;
		}
		if (*n > 0 || pthread_cond_timedwait(&ring_cv, &mu, deadline) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&mu);
	return r;
}

/* ---- the thread ---- */

/* Runs sql with up to one parameter on conn (text results), within the
 * statement deadline. Returns the result when its status is want, else
 * NULL with errstr. */
static PGresult *run(PGconn *conn, const char *sql, const char *param, ExecStatusType want,
                     char *errstr, size_t errstr_size)
{
	const struct timespec until = db_statement_deadline(&params);
	const char *vals[1] = {param};
	PGresult *res = db_exec_params(conn, sql, param ? 1 : 0, vals, &until, errstr, errstr_size);

	if (res != NULL && PQresultStatus(res) != want) {
		db_error_line(PQresultErrorMessage(res), errstr, errstr_size);
		PQclear(res);
		res = NULL;
	}
	return res;
}

/* The table's largest seq (0 when empty) into *pos. Returns 0 or -1. */
static int read_max(PGconn *conn, int64_t *pos, char *errstr, size_t errstr_size)
{
	PGresult *res = run(conn, "SELECT coalesce(max(seq), 0) FROM timestamp_records", NULL,
	                    PGRES_TUPLES_OK, errstr, errstr_size);
	int rc = -1;

	if (res != NULL && PQntuples(res) == 1 && parse_i64(PQgetvalue(res, 0, 0), pos) == 0)
		rc = 0;
	else if (res != NULL)
		snprintf(errstr, errstr_size, "unexpected answer to max(seq)");
	PQclear(res);
	return rc;
}

/* Starts over after pos, or at the table's end when pos < 0: at start,
 * and after a switch. */
static int restart_at(PGconn *conn, int64_t pos, bool switched, char *errstr,
                      size_t errstr_size)
{
	if (pos < 0 && read_max(conn, &pos, errstr, errstr_size) != 0)
		return -1;
	pthread_mutex_lock(&mu);
	ring.head = 0;
	ring.base = ring.last = pos;
	if (switched)
		epoch++; /* every stream ends: its positions meant the old table */
	pthread_cond_broadcast(&ring_cv);
	pthread_mutex_unlock(&mu);
	log_info("feed: %s at seq %" PRId64, switched ? "table switched, reading on" : "reading on",
	         pos);
	return 0;
}

/* Reads every row after the ring's last seq, page by page. */
static int catch_up(PGconn *conn, char *errstr, size_t errstr_size)
{
	static const char sql[] = "SELECT " FEED_COLUMNS " FROM timestamp_records "
	                          "WHERE seq > $1::bigint ORDER BY seq LIMIT 1000";
	_Static_assert(FEED_PAGE == 1000, "FEED_PAGE is the LIMIT above");
	int rows;

	do {
		char after[24];
		PGresult *res;

		pthread_mutex_lock(&mu);
		snprintf(after, sizeof(after), "%" PRId64, ring.last);
		pthread_mutex_unlock(&mu);
		if ((res = run(conn, sql, after, PGRES_TUPLES_OK, errstr, errstr_size)) == NULL)
			return -1;
		rows = PQntuples(res);
		pthread_mutex_lock(&mu);
		for (int i = 0; i < rows; i++) {
			struct feed_record rec;
			if (feed_parse_row(res, i, &rec) != 0) {
				snprintf(errstr, errstr_size, "unexpected row format");
				rows = -1;
				break;
			}
			deliver(&rec);
		}
		if (rows > 0)
			pthread_cond_broadcast(&ring_cv);
		pthread_mutex_unlock(&mu);
		PQclear(res);
	} while (rows == FEED_PAGE);
	return rows < 0 ? -1 : 0;
}

/* Takes the notifications that arrived; *switched if one says the table
 * was switched, with *switch_pos where to read on (-1: at the end). -1
 * when the connection failed. */
static int take_notifies(PGconn *conn, bool *switched, int64_t *switch_pos)
{
	const size_t len = sizeof(FEED_SWITCH) - 1;
	PGnotify *nt;

	if (!PQconsumeInput(conn))
		return -1;
	while ((nt = PQnotifies(conn)) != NULL) {
		if (strncmp(nt->extra, FEED_SWITCH, len) == 0 &&
		    (nt->extra[len] == '\0' || nt->extra[len] == ':')) {
			int64_t pos;

			*switched = true;
			*switch_pos = nt->extra[len] == ':' &&
			                      parse_i64(nt->extra + len + 1, &pos) == 0 && pos >= 0
			                  ? pos
			                  : -1;
		}
		PQfreemem(nt);
	}
	return 0;
}

static bool quitting(void)
{
	pthread_mutex_lock(&mu);
	bool q = quit;
	pthread_mutex_unlock(&mu);
	return q;
}

/* One connection's life: LISTEN, start (or read on), then read at each
 * notification until the connection fails or feed_shutdown. Returns true
 * if it got as far as listening. */
static bool follow(PGconn *conn, char *errstr, size_t errstr_size)
{
	char sql[128];
	PGresult *res;
	bool known;

	snprintf(sql, sizeof(sql), "LISTEN \"%s\"", opts.channel);
	if ((res = run(conn, sql, NULL, PGRES_COMMAND_OK, errstr, errstr_size)) == NULL)
		return false;
	PQclear(res);
	pthread_mutex_lock(&mu);
	known = ring.base != POS_UNKNOWN;
	pthread_mutex_unlock(&mu);
	if (!known && restart_at(conn, -1, false, errstr, errstr_size) != 0)
		return false;
	if (catch_up(conn, errstr, errstr_size) != 0)
		return false;
	metrics_set(&m_connected, 1);
	log_info("feed: listening on %s", opts.channel);
	while (!quitting()) {
		struct pollfd p[2] = {{.fd = PQsocket(conn), .events = POLLIN},
		                      {.fd = wake_fd, .events = POLLIN}};
		bool switched = false;
		int64_t switch_pos = -1;
		int rc = poll(p, 2, FEED_SAFETY_MS);

		if (rc < 0 && errno != EINTR) {
			snprintf(errstr, errstr_size, "poll: %s", strerror(errno));
			return true;
		}
		if (p[1].revents != 0)
			continue; /* quit */
		if (p[0].revents != 0 && take_notifies(conn, &switched, &switch_pos) != 0) {
			db_error_line(PQerrorMessage(conn), errstr, errstr_size);
			return true;
		}
		if (switched && restart_at(conn, switch_pos, true, errstr, errstr_size) != 0)
			return true;
		if (catch_up(conn, errstr, errstr_size) != 0)
			return true;
	}
	return true;
}

static void *feed_main(void *arg)
{
	int backoff = FEED_BACKOFF_MIN_MS;
	bool once = false;

	(void)arg;
	while (!quitting()) {
		char errstr[512] = "";
		PGconn *conn = db_connect(&params, errstr, sizeof(errstr));

		if (conn != NULL) {
			if (once)
				metrics_add(&m_reconnects, 1);
			once = true;
			if (follow(conn, errstr, sizeof(errstr)))
				backoff = FEED_BACKOFF_MIN_MS; /* it worked for a while */
			PQfinish(conn);
		}
		metrics_set(&m_connected, 0);
		if (quitting())
			break;
		log_warn("feed: %s; connecting again in %d ms", errstr, backoff);
		struct pollfd p = {.fd = wake_fd, .events = POLLIN};
		(void)poll(&p, 1, backoff);
		backoff = backoff * 2 < FEED_BACKOFF_MAX_MS ? backoff * 2 : FEED_BACKOFF_MAX_MS;
	}
	return NULL;
}

int feed_setup(const struct db_params *p, const struct feed_opts *o, char *errstr,
               size_t errstr_size)
{
	static bool registered;
	int rc;

	params = *p;
	opts = *o;
	if (!registered) {
		metrics_register(&m_connected);
		metrics_register(&m_waiters);
		metrics_register(&m_streams);
		metrics_register(&m_reconnects);
		registered = true;
	}
	if ((rc = clock_cond_init(&ring_cv)) != 0) {
		snprintf(errstr, errstr_size, "pthread_cond_init: %s", strerror(rc));
		return -1;
	}
	if (feed_ring_init(&ring, opts.ring_size, POS_UNKNOWN) != 0) {
		snprintf(errstr, errstr_size, "out of memory for a ring of %d records", opts.ring_size);
		goto failed;
	}
	if ((wake_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
		snprintf(errstr, errstr_size, "eventfd: %s", strerror(errno));
		goto failed;
	}
	stopping = quit = false;
	if ((rc = pthread_create(&thread, NULL, feed_main, NULL)) != 0) {
		snprintf(errstr, errstr_size, "pthread_create: %s", strerror(rc));
		goto failed;
	}
	started = true;
	return 0;
failed:
	if (wake_fd >= 0)
		close(wake_fd);
	wake_fd = -1;
	feed_ring_free(&ring);
	pthread_cond_destroy(&ring_cv);
	return -1;
}

void feed_stopping(void)
{
	pthread_mutex_lock(&mu);
	stopping = true;
	for (int b = 0; b < WAIT_BUCKETS; b++)
		for (struct feed_waiter *w = buckets[b]; w != NULL; w = w->next)
			pthread_cond_signal(&w->cv);
	pthread_cond_broadcast(&ring_cv);
	pthread_mutex_unlock(&mu);
}

void feed_shutdown(void)
{
	const uint64_t one = 1;

	if (!started)
		return;
	feed_stopping();
	pthread_mutex_lock(&mu);
	quit = true;
	pthread_mutex_unlock(&mu);
	(void)!write(wake_fd, &one, sizeof(one));
	pthread_join(thread, NULL);
	started = false;
	close(wake_fd);
	wake_fd = -1;
	feed_ring_free(&ring);
	pthread_cond_destroy(&ring_cv);
}

/* ---- Prefer ---- */

static const char *skip_ows(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

long feed_prefer_wait(const char *prefer, long max_ms)
{
	const char *s = prefer;

	/* preference = token [ BWS "=" BWS word ] *( OWS ";" [ OWS parameter ] ),
	 * preferences separated by commas (RFC 7240 section 2). */
	while (*s != '\0') {
		const char *name = s = skip_ows(s), *end;
		size_t name_len = strcspn(name, "=;, \t");
		char value[32];
		size_t vlen = 0;
		bool has_value = false, quoted = false, digits = false;

		s = skip_ows(name + name_len);
		if (*s == '=') {
			has_value = true;
			s = skip_ows(s + 1);
			if (*s == '"') {
				quoted = true;
				s++;
			}
			end = s + strcspn(s, quoted ? "\"" : ";, \t");
			if (quoted && *end != '"')
				return -1; /* an unterminated quoted string */
			vlen = (size_t)(end - s);
			digits = vlen > 0 && strspn(s, "0123456789") >= vlen;
			if (vlen >= sizeof(value)) /* a number that long is beyond any cap */
				vlen = sizeof(value) - 1;
			memcpy(value, s, vlen);
			value[vlen] = '\0';
			s = end + (quoted ? 1 : 0);
		}
		/* The rest of this preference (its parameters) up to the next comma;
		 * a comma inside a quoted parameter value is not a separator. */
		for (bool q = false; *s != '\0' && (q || *s != ','); s++)
			if (*s == '"')
				q = !q;
		if (*s == ',')
			s++;
		if (name_len == 4 && strncasecmp(name, "wait", 4) == 0) {
			char *num_end;
			long long secs;

			if (!has_value || !digits)
				return -1; /* not a number of seconds */
			errno = 0;
			secs = strtoll(value, &num_end, 10);
			if (*num_end != '\0')
				return -1;
			if (errno == ERANGE || secs > max_ms / 1000 + 1)
				return max_ms;
			return secs * 1000 < max_ms ? (long)secs * 1000 : max_ms;
		}
	}
	return 0;
}
