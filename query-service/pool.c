/* pool: a bounded pool of PostgreSQL connections, every wait bounded by
 * the caller's deadline. Two at most (pool_role), in static storage: their
 * metrics series are registered once and outlive a pool_shutdown (tests
 * set pools up again). */
#include "pool.h"

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "metrics.h"

struct slot {
	PGconn *conn;
	bool busy;
	long released_ms; /* clock_mono_ms() when last given back */
};

/* A connection given back less than this long ago is not checked again. */
#define FRESH_MS 200

/* The pool's sessions run their prepared statements with the generic plan,
 * planned once per connection, never with a plan made for each call's
 * values. The planner otherwise chose per-call plans for range_page
 * (its bounds estimated from the values), and planning one took ten times
 * as long as running it: 0.6 ms against 0.06, most of it looking up the
 * index's true ends for the bounds (EXPLAIN ANALYZE, 1.1 million rows).
 * The generic plans are those per-call planning picks anyway: an index
 * scan in the index's order for range_page, the primary key for the ids,
 * seq's index for the streams (counts: whichever its small table takes).
 * wrk, range pages of 100, 32 connections, pool of 8, five rounds in
 * turn: 10,900-13,100 pages/s, p99 72-250 ms (wrk's, corrected as it
 * corrects), PostgreSQL's CPU 59-60 us a page; before, 10,400-11,100,
 * 280-440 ms and 80-85 us. GETs by id the same either way. */
#define POOL_SESSION_OPTIONS "-c plan_cache_mode=force_generic_plan"

struct pool {
	const char *url_name;         /* "DB_URL" or "DB_READ_URL" */
	struct db_params params;
	struct db_target target; /* for the spans */
	const struct pool_stmt *stmts;
	struct slot *slots;
	int n_slots, n_busy;          /* n_busy: under lock, mirrored in m_in_use */
	bool last_ok;                 /* the last release was not broken, under lock */
	long last_release_ms;         /* clock_mono_ms(), under lock */
	pthread_mutex_t lock;
	pthread_cond_t freed;         /* a slot was given back: clock_cond_init */
	struct metrics_series m_in_use, m_up;
	bool registered;
};

#define POOL_INIT(url, label)                                                            \
	{                                                                                    \
		.url_name = (url), .lock = PTHREAD_MUTEX_INITIALIZER,                            \
		.m_in_use = METRICS_GAUGE_INIT("db_pool_connections_in_use",                     \
		                               "Pooled database connections lent out.", label), \
		.m_up = METRICS_GAUGE_INIT("db_pool_up",                                         \
		                           "1 while the pool's last connection or statement "    \
		                           "succeeded, 0 after one failed.",                     \
		                           label),                                               \
	}

static struct pool pools[] = {
    [POOL_PRIMARY] = POOL_INIT("DB_URL", "pool=\"primary\""),
    [POOL_READ] = POOL_INIT("DB_READ_URL", "pool=\"read\""),
};

struct pool *pool_primary, *pool_reads;

struct trace_span *pool_span(const struct pool *pool, const struct trace_ctx *parent,
                             const char *operation, const char *table)
{
	struct trace_span *span;
	struct trace_ctx ctx;
	char name[128];

	if (!trace_on())
		return NULL;
	snprintf(name, sizeof(name), "%s %s", operation, table);
	span = trace_start(name, TRACE_CLIENT, parent, &ctx);
	trace_attr_str(span, "db.system", "postgresql");
	trace_attr_str(span, "db.operation.name", operation);
	trace_attr_str(span, "db.collection.name", table);
	trace_attr_str(span, "db.namespace", pool->target.name);
	trace_attr_str(span, "server.address", pool->target.host);
	trace_attr_int(span, "server.port", pool->target.port);
	return span;
}

struct pool *pool_setup(enum pool_role role, const struct db_params *p, int size,
                        const struct pool_stmt *s, char *errstr, size_t errstr_size)
{
	struct pool *pool = &pools[role];
	int rc;

	pool->params = *p;
	pool->params.options = POOL_SESSION_OPTIONS;
	db_target_of(p, &pool->target);
	pool->stmts = s;
	pool->n_busy = 0;
	pool->last_ok = false;
	/* pool_acquire's deadlines are clock_deadline()s: monotonic. */
	if ((rc = clock_cond_init(&pool->freed)) != 0) {
		snprintf(errstr, errstr_size, "pthread_cond_init: %s", strerror(rc));
		return NULL;
	}
	pool->slots = calloc((size_t)size, sizeof(*pool->slots));
	if (pool->slots == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		pthread_cond_destroy(&pool->freed);
		return NULL;
	}
	pool->n_slots = size;
	if (!pool->registered) {
		metrics_register(&pool->m_in_use);
		metrics_register(&pool->m_up);
		pool->registered = true;
	}
	metrics_set(&pool->m_in_use, 0);
	metrics_set(&pool->m_up, 0);
	return pool;
}

const char *pool_url_name(const struct pool *pool)
{
	return pool->url_name;
}

/* Takes a free slot, or gives one back: n_busy and its gauge. Under lock. */
static void busy_add(struct pool *pool, int n)
{
	pool->n_busy += n;
	metrics_set(&pool->m_in_use, pool->n_busy);
}

/* Connects and prepares every statement, by deadline. */
static PGconn *connect_slot(struct pool *pool, const struct timespec *deadline, char *errstr,
                            size_t errstr_size)
{
	PGconn *conn = db_connect_until(&pool->params, deadline, errstr, errstr_size);

	for (const struct pool_stmt *s = pool->stmts; conn && s->name; s++) {
		char why[256];
		PGresult *res = db_prepare(conn, s->name, s->sql, s->n_params, deadline, why,
		                           sizeof(why));
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			if (res != NULL)
				db_error_line(PQresultErrorMessage(res), why, sizeof(why));
			snprintf(errstr, errstr_size, "prepare %s: %s", s->name, why);
			PQfinish(conn);
			conn = NULL;
		}
		PQclear(res);
	}
	return conn;
}

/* True if an idle connection cannot be used. The server closes the
 * sessions it ends (a restart, an administrator) with a message and an EOF,
 * which libpq notices only at the next statement, failing it: so an idle
 * connection with anything to read counts as dead, and is replaced before
 * a request sees it fail. One used within the last FRESH_MS is taken as it
 * is: under load that saves a poll() per request, and a server that ended
 * the session in between fails one statement, which drops the connection. */
static bool stale(const struct slot *slot)
{
	struct pollfd p = {.fd = PQsocket(slot->conn), .events = POLLIN};

	if (PQstatus(slot->conn) != CONNECTION_OK || p.fd < 0)
		return true;
	if (clock_mono_ms() - slot->released_ms < FRESH_MS)
		return false;
	return poll(&p, 1, 0) != 0;
}

PGconn *pool_acquire(struct pool *pool, const struct timespec *deadline, char *errstr,
                     size_t errstr_size)
{
	struct slot *slot = NULL;
	PGconn *conn;
	int rc = 0;

	pthread_mutex_lock(&pool->lock);
	while (pool->n_busy == pool->n_slots && rc == 0)
		rc = pthread_cond_timedwait(&pool->freed, &pool->lock, deadline);
	/* A free slot with a live connection if there is one, else any free. */
	for (int i = 0; i < pool->n_slots && (slot == NULL || slot->conn == NULL); i++) {
		if (!pool->slots[i].busy)
			slot = &pool->slots[i];
	}
	if (slot != NULL) {
		slot->busy = true;
		busy_add(pool, 1);
	}
	pthread_mutex_unlock(&pool->lock);
	if (slot == NULL) {
		snprintf(errstr, errstr_size, "all %d database connections busy", pool->n_slots);
		return NULL;
	}
	if (slot->conn != NULL && stale(slot)) {
		PQfinish(slot->conn);
		slot->conn = NULL;
	}
	if (slot->conn == NULL)
		slot->conn = connect_slot(pool, deadline, errstr, errstr_size);
	conn = slot->conn; /* read before the slot can go to another thread */
	if (conn == NULL) {
		pthread_mutex_lock(&pool->lock);
		slot->busy = false;
		busy_add(pool, -1);
		pool->last_ok = false;
		metrics_set(&pool->m_up, 0);
		pthread_cond_signal(&pool->freed);
		pthread_mutex_unlock(&pool->lock);
	}
	return conn;
}

void pool_release(struct pool *pool, PGconn *conn, bool broken)
{
	pthread_mutex_lock(&pool->lock);
	for (int i = 0; i < pool->n_slots; i++) {
		struct slot *slot = &pool->slots[i];

		if (slot->busy && slot->conn == conn) {
			if (broken)
				slot->conn = NULL;
			slot->busy = false;
			slot->released_ms = pool->last_release_ms = clock_mono_ms();
			pool->last_ok = !broken;
			metrics_set(&pool->m_up, !broken);
			busy_add(pool, -1);
			pthread_cond_signal(&pool->freed);
			break;
		}
	}
	pthread_mutex_unlock(&pool->lock);
	/* The connection is nonblocking (db_connect): closing it never waits
	 * on the server, but needs no lock either. */
	if (broken)
		PQfinish(conn);
}

PGresult *pool_exec(struct pool *pool, const char *name, int n_params, const char *const *vals,
                    int result_format, const struct timespec *deadline, char *errstr,
                    size_t errstr_size)
{
	PGconn *conn;
	PGresult *res;

	if ((conn = pool_acquire(pool, deadline, errstr, errstr_size)) == NULL)
		return NULL;
	res = db_exec_prepared(conn, name, n_params, vals, result_format, deadline, errstr,
	                       errstr_size);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		if (res != NULL) /* else errstr says why: no answer in time */
			db_error_line(PQresultErrorMessage(res), errstr, errstr_size);
		PQclear(res);
		pool_release(pool, conn, true); /* a timed-out one is being cancelled: a new one next */
		return NULL;
	}
	pool_release(pool, conn, false);
	return res;
}

bool pool_answered_within(struct pool *pool, int ms)
{
	const long now = clock_mono_ms();
	bool ok;

	pthread_mutex_lock(&pool->lock);
	ok = pool->last_ok && now - pool->last_release_ms < ms;
	pthread_mutex_unlock(&pool->lock);
	return ok;
}

int pool_in_use(struct pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	int n = pool->n_busy;
	pthread_mutex_unlock(&pool->lock);
	return n;
}

void pool_shutdown(struct pool *pool)
{
	if (pool == NULL || pool->slots == NULL)
		return; /* never set up, or shut down already */
	for (int i = 0; i < pool->n_slots; i++)
		PQfinish(pool->slots[i].conn);
	free(pool->slots);
	pool->slots = NULL;
	pool->n_slots = pool->n_busy = 0;
	metrics_set(&pool->m_in_use, 0);
	metrics_set(&pool->m_up, 0);
	pthread_cond_destroy(&pool->freed);
}
