/* lookup: reads records by id, concurrent requests together (see lookup.h).
 *
 * Every request queues a reader. While a statement may start (none runs,
 * or fewer than max_readers and the newest has run spread_ms, or a full
 * batch waits), any queued request that is awake leads: it takes the queue
 * from its head (up to LOOKUP_BATCH_MAX readers, in arrival order) into a
 * batch of its own, runs one statement for all of them with a pooled
 * connection, hands each its answer and wakes the head of what is left.
 * Any, not only the head: a head that was woken but is not running yet (on
 * a busy machine, for as long as the scheduler likes) would otherwise hold
 * every request behind it, and every free connection, until it runs. The
 * head also wakes when the newest statement has run spread_ms, to start
 * another beside it.
 *
 * Every reader waits until its own deadline, wherever it is: still queued
 * it gives up with "busy", as the pool itself would; taken by a leader
 * whose statement hangs, it leaves the batch (the leader then answers
 * only those still there) with "no answer in time". The leader's statement
 * ends at the leader's own deadline; a reader taken with an earlier one
 * leaves at its own.
 *
 * A reader sleeps on a futex of its own (nudge), not on a condition
 * variable: a reader woken by a condition variable first takes mu back, so
 * every answer handed out under mu woke a reader only to put it to sleep
 * again on mu, still held by the leader (wrk at 32 connections: the
 * service's threads waited on mu as often as for their answers). The
 * leader now hands out the answers under mu and wakes the readers after
 * letting it go; a reader that sees its answer (state DONE, stored last)
 * returns without mu. */
#include "lookup.h"

#include <endian.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "clock.h"
#include "db.h"
#include "metrics.h"

/* PostgreSQL's binary timestamptz counts microseconds from 2000-01-01. */
#define PG_EPOCH_UNIX 946684800LL

enum reader_state { QUEUED, TAKEN, DONE };

struct reader;

/* What a leader reads, on the leader's stack: the ids are copied in, so
 * that the statement runs without touching the readers, which may leave. */
struct batch {
	int n;
	char ids[LOOKUP_BATCH_MAX][UID_TEXT_SIZE];
	struct reader *member[LOOKUP_BATCH_MAX]; /* NULL once its reader gave up; under mu */
	enum lookup_result results[LOOKUP_BATCH_MAX];
	struct lookup_record recs[LOOKUP_BATCH_MAX];
	int failed;                       /* the read failed: err answers all */
	char err[256];
};

/* Changed under mu only. DONE is the last store into a reader that is
 * not the writer's own: a reader that sees it may return at once. */
struct reader {
	char id[UID_TEXT_SIZE];
	_Atomic enum reader_state state;
	struct batch *batch; /* while TAKEN, and slot in it */
	int slot;
	enum lookup_result result;
	struct lookup_record rec;
	char err[256];
	_Atomic uint32_t nudge; /* the futex it sleeps on: bumped before each wake */
	struct reader *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct reader *head, *tail; /* the queue, under mu */
static int queued;                 /* its length, under mu */
static int leading;                /* statements running, under mu */
static int max_leading = 1;
static int wait_ms = 2000;
static int spread_ms;
static struct timespec spread_at; /* when another statement may start; under mu */

static int db_read(const char (*ids)[UID_TEXT_SIZE], int n, const struct timespec *deadline,
                   enum lookup_result *results, struct lookup_record *recs, char *errstr,
                   size_t errstr_size);
static lookup_reader_fn reader_fn = db_read;

static struct metrics_series m_batch = METRICS_SIZE_HISTOGRAM_INIT(
    "query_batch_size", "Ids read by one database statement.", "");
static struct metrics_series m_db_errors = METRICS_COUNTER_INIT(
    "db_errors_total", "Database calls that failed.", "");
/* With DB_READ_URL: what became of the ids the read pool did not have. */
#define MISSING_HELP                                                                      \
	"Ids missing on DB_READ_URL, by what DB_URL said: confirmed (missing there too: "    \
	"404), found_on_primary (200), unconfirmed (no answer: 503)."
static struct metrics_series m_confirmed = METRICS_COUNTER_INIT(
    "query_read_missing_total",
    MISSING_HELP, "result=\"confirmed\"");
static struct metrics_series m_found_on_primary = METRICS_COUNTER_INIT(
    "query_read_missing_total",
    MISSING_HELP,
    "result=\"found_on_primary\"");
static struct metrics_series m_unconfirmed = METRICS_COUNTER_INIT(
    "query_read_missing_total",
    MISSING_HELP,
    "result=\"unconfirmed\"");

void lookup_setup(int max_readers, int wait, int spread)
{
	static bool registered;

	max_leading = max_readers;
	wait_ms = wait;
	spread_ms = spread;
	if (!registered) {
		metrics_register(&m_batch);
		metrics_register(&m_db_errors);
		metrics_register(&m_confirmed);
		metrics_register(&m_found_on_primary);
		metrics_register(&m_unconfirmed);
		registered = true;
	}
}

void lookup_set_reader(lookup_reader_fn fn)
{
	pthread_mutex_lock(&mu);
	reader_fn = fn != NULL ? fn : db_read;
	pthread_mutex_unlock(&mu);
}

int lookup_queued(void)
{
	pthread_mutex_lock(&mu);
	int n = queued;
	pthread_mutex_unlock(&mu);
	return n;
}

struct ts_instant lookup_pg_time(const char *bin)
{
	int64_t us;

	memcpy(&us, bin, 8);
	us = (int64_t)be64toh((uint64_t)us);
	int64_t sec = us / 1000000, rem = us % 1000000;
	if (rem < 0) {
		rem += 1000000;
		sec--;
	}
	return (struct ts_instant){.sec = sec + PG_EPOCH_UNIX, .nsec = (int32_t)rem * 1000};
}

/* The later of deadline and LOOKUP_STATEMENT_MIN_MS from now. */
static struct timespec statement_deadline(const struct timespec *deadline)
{
	const struct timespec floor = clock_deadline(LOOKUP_STATEMENT_MIN_MS);

	return clock_cmp(&floor, deadline) > 0 ? floor : *deadline;
}

/* One statement for ids[0..n) on pool: found or missing (see
 * lookup_reader_fn). */
static int read_on(struct pool *pool, const char (*ids)[UID_TEXT_SIZE], int n,
                   const struct timespec *deadline, enum lookup_result *results,
                   struct lookup_record *recs, char *errstr, size_t errstr_size)
{
	char list[LOOKUP_BATCH_MAX * UID_TEXT_SIZE + 3];
	uuid_t keys[LOOKUP_BATCH_MAX];
	const char *vals[1];
	struct timespec until;
	PGconn *conn;
	PGresult *res;
	size_t len = 0;
	int rc = 0;

	if ((conn = pool_acquire(pool, deadline, errstr, errstr_size)) == NULL)
		return -1;
	if (n == 1) {
		vals[0] = ids[0];
	} else { /* a text array: {id,id,...} */
		list[len++] = '{';
		for (int i = 0; i < n; i++) {
			memcpy(list + len, ids[i], UID_TEXT_SIZE - 1);
			len += UID_TEXT_SIZE - 1;
			list[len++] = i + 1 < n ? ',' : '}';
		}
		list[len] = '\0';
		vals[0] = list;
	}
	until = statement_deadline(deadline);
	res = db_exec_prepared(conn, n == 1 ? "get_record" : "get_records", 1, vals, 1, &until,
	                       errstr, errstr_size);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		if (res != NULL) /* else errstr says why: no answer in time */
			db_error_line(PQresultErrorMessage(res), errstr, errstr_size);
		PQclear(res);
		pool_release(pool, conn, true); /* a timed-out one is being cancelled: a new one next */
		return -1;
	}
	pool_release(pool, conn, false);

	for (int i = 0; i < n; i++) {
		results[i] = LOOKUP_MISSING;
		uuid_parse(ids[i], keys[i]); /* valid: lookup_get checked */
	}
	for (int row = 0; row < PQntuples(res) && rc == 0; row++) {
		if (PQgetlength(res, row, 0) != 16 || PQgetlength(res, row, 1) != 8 ||
		    PQgetlength(res, row, 2) != 8) {
			snprintf(errstr, errstr_size, "unexpected column format");
			rc = -1;
			break;
		}
		/* Several readers may ask for the same id. */
		for (int i = 0; i < n; i++) {
			if (memcmp(keys[i], PQgetvalue(res, row, 0), 16) == 0) {
				results[i] = LOOKUP_FOUND;
				recs[i].event_time = lookup_pg_time(PQgetvalue(res, row, 1));
				recs[i].created_at = lookup_pg_time(PQgetvalue(res, row, 2));
			}
		}
	}
	PQclear(res);
	return rc;
}

/* The default reader (lookup_reader_fn): one statement on the read pool.
 * A standby may lag behind the primary: an id it does not have may be
 * there on the primary already, so with a read pool of its own
 * (DB_READ_URL) the ids it misses are read again on the primary, and only
 * what the primary misses too is missing. If the primary cannot answer,
 * those ids are unavailable (a 503): a 404 that could not be confirmed is
 * never given; the ids the read pool found are answered all the same. */
static int db_read(const char (*ids)[UID_TEXT_SIZE], int n, const struct timespec *deadline,
                   enum lookup_result *results, struct lookup_record *recs, char *errstr,
                   size_t errstr_size)
{
	char missing[LOOKUP_BATCH_MAX][UID_TEXT_SIZE], why[256];
	enum lookup_result there[LOOKUP_BATCH_MAX];
	struct lookup_record recs_there[LOOKUP_BATCH_MAX];
	int at[LOOKUP_BATCH_MAX], m = 0;

	if (read_on(pool_reads, ids, n, deadline, results, recs, why, sizeof(why)) != 0) {
		snprintf(errstr, errstr_size, "%s: %s", pool_url_name(pool_reads), why);
		return -1;
	}
	if (pool_reads == pool_primary)
		return 0;
	for (int i = 0; i < n; i++) {
		if (results[i] == LOOKUP_MISSING) {
			memcpy(missing[m], ids[i], UID_TEXT_SIZE);
			at[m++] = i;
		}
	}
	if (m == 0)
		return 0;
	if (read_on(pool_primary, (const char(*)[UID_TEXT_SIZE])missing, m, deadline, there,
	            recs_there, why, sizeof(why)) != 0) {
		snprintf(errstr, errstr_size, "missing on DB_READ_URL, not confirmed on DB_URL: %s",
		         why);
		metrics_add(&m_unconfirmed, (uint64_t)m);
		metrics_add(&m_db_errors, 1);
		for (int j = 0; j < m; j++)
			results[at[j]] = LOOKUP_UNAVAILABLE;
		return 0;
	}
	for (int j = 0; j < m; j++) {
		results[at[j]] = there[j];
		if (there[j] == LOOKUP_FOUND) {
			recs[at[j]] = recs_there[j];
			metrics_add(&m_found_on_primary, 1);
		} else {
			metrics_add(&m_confirmed, 1);
		}
	}
	return 0;
}

/* A round trip through pool, by deadline. Returns 0, or -1 with errstr. */
static int ping(struct pool *pool, const struct timespec *deadline, char *errstr,
                size_t errstr_size)
{
	struct timespec until;
	PGconn *conn;
	PGresult *res;

	if (pool_answered_within(pool, LOOKUP_ANSWERED_FRESH_MS))
		return 0;
	if ((conn = pool_acquire(pool, deadline, errstr, errstr_size)) == NULL)
		return -1;
	until = statement_deadline(deadline);
	res = db_exec_prepared(conn, "ping", 0, NULL, 0, &until, errstr, errstr_size);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		if (res != NULL)
			db_error_line(PQresultErrorMessage(res), errstr, errstr_size);
		PQclear(res);
		pool_release(pool, conn, true);
		return -1;
	}
	PQclear(res);
	pool_release(pool, conn, false);
	return 0;
}

int lookup_ping(char *errstr, size_t errstr_size)
{
	const struct timespec deadline = clock_deadline(wait_ms);
	char why[256];
	int rc = 0;

	/* Both pools are needed: the read pool for reads, the primary to
	 * confirm what the read pool misses (and for the streams). Both are
	 * asked by the same deadline, and the answer names each one down. */
	errstr[0] = '\0';
	if (pool_reads != pool_primary && ping(pool_reads, &deadline, why, sizeof(why)) != 0) {
		snprintf(errstr, errstr_size, "DB_READ_URL: %s", why);
		rc = -1;
	}
	if (ping(pool_primary, &deadline, why, sizeof(why)) != 0) {
		size_t len = strlen(errstr);
		snprintf(errstr + len, errstr_size - len, "%sDB_URL: %s", len ? "; " : "", why);
		rc = -1;
	}
	return rc;
}

/* Bumps r's nudge word, so that a sleep on its old value ends, and returns
 * it for nudge_wake once mu is let go. Under mu. */
static _Atomic uint32_t *nudge(struct reader *r)
{
	atomic_fetch_add_explicit(&r->nudge, 1, memory_order_relaxed);
	return &r->nudge;
}

/* Wakes the reader sleeping on word, if any. The reader may be gone by
 * then (it saw its answer and returned): FUTEX_WAKE takes the address as
 * a key and touches no memory, and whatever sleeps there later takes the
 * wake as a spurious one, as every futex waiter does. */
static void nudge_wake(_Atomic uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Sleeps while word still holds seen, until woken or the deadline
 * (absolute, CLOCK_MONOTONIC: FUTEX_WAIT_BITSET's clock). Whatever ended
 * it (a wake, the word changed already, the deadline, a signal), the
 * caller looks again. */
static void nudge_wait(_Atomic uint32_t *word, uint32_t seen, const struct timespec *deadline)
{
	syscall(SYS_futex, word, FUTEX_WAIT_BITSET_PRIVATE, seen, deadline, NULL,
	        FUTEX_BITSET_MATCH_ANY);
}

/* Reads a batch with the reader in place. Runs without mu. */
static void read_batch(struct batch *b, lookup_reader_fn fn, const struct timespec *deadline)
{
	metrics_observe(&m_batch, b->n);
	b->err[0] = '\0';
	b->failed = fn((const char(*)[UID_TEXT_SIZE])b->ids, b->n, deadline, b->results, b->recs,
	               b->err, sizeof(b->err)) != 0;
	if (b->failed)
		metrics_add(&m_db_errors, 1);
}

/* Takes up to LOOKUP_BATCH_MAX readers from the head of the queue into b.
 * Under mu. */
static void take_batch(struct batch *b)
{
	struct reader *r = head;

	b->n = 0;
	while (r != NULL && b->n < LOOKUP_BATCH_MAX) {
		r->state = TAKEN;
		r->batch = b;
		r->slot = b->n;
		b->member[b->n] = r;
		memcpy(b->ids[b->n], r->id, UID_TEXT_SIZE);
		b->n++;
		r = r->next;
	}
	head = r;
	if (head == NULL)
		tail = NULL;
	queued -= b->n;
}

/* Hands every reader still in b its answer; puts into wake the nudge
 * words of those to wake once mu is let go (all but me), and returns how
 * many. Under mu. */
static int deliver(struct batch *b, const struct reader *me, _Atomic uint32_t **wake)
{
	int n = 0;

	for (int i = 0; i < b->n; i++) {
		struct reader *r = b->member[i];
		if (r == NULL)
			continue; /* gave up, and is gone */
		r->result = b->failed ? LOOKUP_UNAVAILABLE : b->results[i];
		if (r->result == LOOKUP_FOUND)
			r->rec = b->recs[i];
		else if (r->result == LOOKUP_UNAVAILABLE)
			snprintf(r->err, sizeof(r->err), "%s", b->err[0] ? b->err : "no answer");
		r->batch = NULL;
		if (r != me)
			wake[n++] = nudge(r);
		atomic_store_explicit(&r->state, DONE, memory_order_release); /* the last store */
	}
	return n;
}

/* Removes a reader that gave up from the queue. Under mu. */
static void unqueue(struct reader *me)
{
	struct reader **p = &head, *prev = NULL;

	while (*p != NULL && *p != me) {
		prev = *p;
		p = &(*p)->next;
	}
	if (*p == NULL)
		return;
	*p = me->next;
	if (tail == me)
		tail = prev;
	queued--;
}

/* Gives up at the deadline, wherever me waits. Returns the nudge word of
 * a reader to wake once mu is let go, or NULL. Under mu. */
static _Atomic uint32_t *give_up(struct reader *me)
{
	_Atomic uint32_t *wake = NULL;

	if (me->state == QUEUED) {
		struct reader *next = me->next;

		unqueue(me);
		if (head != NULL && head == next) /* it may lead now */
			wake = nudge(head);
		snprintf(me->err, sizeof(me->err),
		         "all %d statements reading by id busy for %d ms", max_leading, wait_ms);
	} else {
		/* The leader's statement hangs: leave its batch. */
		me->batch->member[me->slot] = NULL;
		me->batch = NULL;
		snprintf(me->err, sizeof(me->err), "no answer from the database within %d ms",
		         wait_ms);
	}
	me->result = LOOKUP_UNAVAILABLE;
	me->state = DONE;
	return wake;
}

/* Queues me at the tail. Under mu. */
static void enqueue(struct reader *me)
{
	if (tail != NULL)
		tail->next = me;
	else
		head = me;
	tail = me;
	queued++;
}

/* True if me is to lead now: still queued and a statement free (none
 * running; or fewer than allowed, and the newest has run spread_ms or a
 * full batch waits). Under mu. */
static bool may_lead(const struct reader *me)
{
	if (me->state != QUEUED)
		return false;
	if (leading == 0)
		return true;
	return leading < max_leading && (queued >= LOOKUP_BATCH_MAX || clock_passed(&spread_at));
}

/* Takes the head of the queue (me among it, unless LOOKUP_BATCH_MAX others
 * came first) into a batch, reads it without mu, hands every reader still
 * there its answer, and wakes them and the next leader. Called under mu,
 * returns without it. */
static void lead(struct reader *me, const struct timespec *deadline)
{
	struct batch b;
	_Atomic uint32_t *wake[LOOKUP_BATCH_MAX + 1];
	lookup_reader_fn fn = reader_fn;
	int n;

	take_batch(&b);
	leading++;
	spread_at = clock_deadline(spread_ms);
	pthread_mutex_unlock(&mu);
	read_batch(&b, fn, deadline);
	pthread_mutex_lock(&mu);
	leading--;
	n = deliver(&b, me, wake);
	if (head != NULL)
		wake[n++] = nudge(head);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < n; i++)
		nudge_wake(wake[i]);
}

/* One turn of me's wait: at the deadline it gives up; else it leads if it
 * may, or sleeps until nudged, the deadline, or (the head) until another
 * statement may start. Called under mu, returns without it. */
static void take_turn(struct reader *me, const struct timespec *deadline)
{
	_Atomic uint32_t *wake = NULL;
	struct timespec until = *deadline;
	uint32_t seen;

	if (me->state != DONE && clock_passed(deadline)) {
		wake = give_up(me);
	} else if (may_lead(me)) {
		lead(me, deadline);
		return;
	} else if (me->state != DONE) {
		if (me == head && leading < max_leading && clock_cmp(&spread_at, &until) < 0)
			until = spread_at;
		seen = atomic_load_explicit(&me->nudge, memory_order_relaxed);
		pthread_mutex_unlock(&mu);
		nudge_wait(&me->nudge, seen, &until);
		return;
	}
	pthread_mutex_unlock(&mu);
	if (wake != NULL)
		nudge_wake(wake);
}

enum lookup_result lookup_get(const char *id, struct lookup_record *out, char *errstr,
                              size_t errstr_size)
{
	struct reader me = {.state = QUEUED};
	struct timespec deadline;
	uuid_t key;

	uid_normalize(id, me.id);
	if (uuid_parse(me.id, key) != 0) {
		snprintf(errstr, errstr_size, "not a UUID");
		return LOOKUP_UNAVAILABLE;
	}
	deadline = clock_deadline(wait_ms);

	pthread_mutex_lock(&mu);
	enqueue(&me);
	for (;;) {
		take_turn(&me, &deadline);
		if (atomic_load_explicit(&me.state, memory_order_acquire) == DONE)
			break;
		pthread_mutex_lock(&mu);
	}

	if (me.result == LOOKUP_FOUND)
		*out = me.rec;
	else if (me.result == LOOKUP_UNAVAILABLE)
		snprintf(errstr, errstr_size, "%s", me.err);
	return me.result;
}
