/* lookup: reads records by id, concurrent requests together (see lookup.h).
 *
 * Every request queues a reader. While fewer than max_readers statements
 * run, the request at the head of the queue leads: it takes the queue (up
 * to BATCH_MAX readers, itself among them), runs one statement for all of
 * them with a pooled connection, hands each its answer and wakes the next
 * head. Readers taken by a leader wait for it; readers still queued give
 * up after wait_ms with "busy", as the pool itself would. */
#include "lookup.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "db.h"
#include "metrics.h"
#include "uid.h"

#define BATCH_MAX 64

/* PostgreSQL's binary timestamptz counts microseconds from 2000-01-01. */
#define PG_EPOCH_UNIX 946684800LL

enum reader_state { QUEUED, TAKEN, DONE };

struct reader {
	char id[UID_TEXT_SIZE];
	uuid_t key;
	enum reader_state state;
	enum lookup_result result;
	struct lookup_record rec;
	char err[256];
	pthread_cond_t cv;
	struct reader *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct reader *head, *tail; /* the queue, under mu */
static int leading;                /* statements running, under mu */
static int max_leading = 1;
static int wait_ms = 2000;

static struct metrics_series m_batch = METRICS_SIZE_HISTOGRAM_INIT(
    "query_batch_size", "Ids read by one database statement.", "");
static struct metrics_series m_in_use = METRICS_GAUGE_INIT(
    "db_pool_connections_in_use", "Pooled database connections lent out.", "");
static struct metrics_series m_db_errors = METRICS_COUNTER_INIT(
    "db_errors_total", "Database calls that failed.", "");

void lookup_setup(int max_readers, int wait)
{
	max_leading = max_readers;
	wait_ms = wait;
	metrics_register(&m_batch);
	metrics_register(&m_in_use);
	metrics_register(&m_db_errors);
}

static struct ts_instant pg_time(const char *bin)
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

static void fail_all(struct reader *batch, const char *why)
{
	for (struct reader *r = batch; r != NULL; r = r->next) {
		r->result = LOOKUP_UNAVAILABLE;
		snprintf(r->err, sizeof(r->err), "%s", why);
	}
}

/* Reads the records of batch (a list of TAKEN readers) with one statement
 * and fills in each reader's answer. Runs without mu. */
static void read_batch(struct reader *batch, int n)
{
	char errstr[256], ids[BATCH_MAX * UID_TEXT_SIZE + 3];
	const char *vals[1];
	PGconn *conn;
	PGresult *res;
	size_t len = 0;

	metrics_observe(&m_batch, n);
	if ((conn = pool_acquire(errstr, sizeof(errstr))) == NULL) {
		metrics_add(&m_db_errors, 1);
		fail_all(batch, errstr);
		return;
	}
	metrics_set(&m_in_use, pool_in_use());
	if (n == 1) {
		vals[0] = batch->id;
		res = PQexecPrepared(conn, "get_record", 1, vals, NULL, NULL, 1);
	} else { /* a text array: {id,id,...} */
		ids[len++] = '{';
		for (struct reader *r = batch; r != NULL; r = r->next) {
			memcpy(ids + len, r->id, UID_TEXT_SIZE - 1);
			len += UID_TEXT_SIZE - 1;
			ids[len++] = r->next != NULL ? ',' : '}';
		}
		ids[len] = '\0';
		vals[0] = ids;
		res = PQexecPrepared(conn, "get_records", 1, vals, NULL, NULL, 1);
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_error_line(PQresultErrorMessage(res), errstr, sizeof(errstr));
		PQclear(res);
		pool_release(conn, 1);
		metrics_add(&m_db_errors, 1);
		fail_all(batch, errstr);
		return;
	}
	pool_release(conn, 0);

	for (struct reader *r = batch; r != NULL; r = r->next)
		r->result = LOOKUP_MISSING;
	for (int row = 0; row < PQntuples(res); row++) {
		if (PQgetlength(res, row, 0) != 16 || PQgetlength(res, row, 1) != 8 ||
		    PQgetlength(res, row, 2) != 8) {
			fail_all(batch, "unexpected column format");
			break;
		}
		/* Several readers may ask for the same id. */
		for (struct reader *r = batch; r != NULL; r = r->next) {
			if (memcmp(r->key, PQgetvalue(res, row, 0), 16) == 0) {
				r->result = LOOKUP_FOUND;
				r->rec.event_time = pg_time(PQgetvalue(res, row, 1));
				r->rec.created_at = pg_time(PQgetvalue(res, row, 2));
			}
		}
	}
	PQclear(res);
}

/* Takes up to BATCH_MAX readers from the head of the queue. Under mu. */
static struct reader *take_batch(int *n)
{
	struct reader *batch = head, *last = NULL;

	*n = 0;
	for (struct reader *r = head; r != NULL && *n < BATCH_MAX; r = r->next) {
		r->state = TAKEN;
		last = r;
		++*n;
	}
	head = last->next;
	if (head == NULL)
		tail = NULL;
	last->next = NULL;
	return batch;
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
}

enum lookup_result lookup_get(const char *id, struct lookup_record *out, char *errstr,
                              size_t errstr_size)
{
	struct reader me = {.state = QUEUED};
	struct timespec until;

	uid_normalize(id, me.id);
	if (uuid_parse(me.id, me.key) != 0) {
		snprintf(errstr, errstr_size, "not a UUID");
		return LOOKUP_UNAVAILABLE;
	}
	pthread_cond_init(&me.cv, NULL);
	until = ts_deadline(wait_ms);

	pthread_mutex_lock(&mu);
	if (tail != NULL)
		tail->next = &me;
	else
		head = &me;
	tail = &me;
	while (me.state != DONE) {
		if (me.state == QUEUED && head == &me && leading < max_leading) {
			int n;
			struct reader *batch = take_batch(&n);

			leading++;
			pthread_mutex_unlock(&mu);
			read_batch(batch, n);
			pthread_mutex_lock(&mu);
			leading--;
			for (struct reader *r = batch, *next; r != NULL; r = next) {
				next = r->next; /* r may be gone once DONE */
				r->state = DONE;
				if (r != &me)
					pthread_cond_signal(&r->cv);
			}
			if (head != NULL) /* the next leader */
				pthread_cond_signal(&head->cv);
		} else if (me.state == QUEUED) {
			if (pthread_cond_timedwait(&me.cv, &mu, &until) == ETIMEDOUT &&
			    me.state == QUEUED) {
				struct reader *next = me.next;

				unqueue(&me);
				if (head != NULL && head == next)
					pthread_cond_signal(&head->cv);
				me.state = DONE;
				me.result = LOOKUP_UNAVAILABLE;
				snprintf(me.err, sizeof(me.err),
				         "all %d database connections busy for %d ms", max_leading,
				         wait_ms);
			}
		} else {
			pthread_cond_wait(&me.cv, &mu); /* a leader has it */
		}
	}
	pthread_mutex_unlock(&mu);
	pthread_cond_destroy(&me.cv);

	if (me.result == LOOKUP_FOUND)
		*out = me.rec;
	else if (me.result == LOOKUP_UNAVAILABLE)
		snprintf(errstr, errstr_size, "%s", me.err);
	return me.result;
}
