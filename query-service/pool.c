/* pool: a bounded pool of PostgreSQL connections, every wait bounded by
 * the caller's deadline. */
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

static struct db_params params;
static const struct pool_stmt *stmts;
static struct slot *slots;
static int n_slots, n_busy;        /* n_busy: under lock, mirrored in m_in_use */
static bool last_ok;               /* the last release was not broken, under lock */
static long last_release_ms;       /* clock_mono_ms(), under lock */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t freed;       /* a slot was given back: clock_cond_init */

static struct metrics_series m_in_use = METRICS_GAUGE_INIT(
    "db_pool_connections_in_use", "Pooled database connections lent out.", "");

int pool_setup(const struct db_params *p, int size, const struct pool_stmt *s, char *errstr,
               size_t errstr_size)
{
	static bool registered;
	int rc;

	params = *p;
	stmts = s;
	n_busy = 0;
	last_ok = false;
	/* pool_acquire's deadlines are clock_deadline()s: monotonic. */
	if ((rc = clock_cond_init(&freed)) != 0) {
		snprintf(errstr, errstr_size, "pthread_cond_init: %s", strerror(rc));
		return -1;
	}
	slots = calloc((size_t)size, sizeof(*slots));
	if (slots == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		pthread_cond_destroy(&freed);
		return -1;
	}
	n_slots = size;
	if (!registered) {
		metrics_register(&m_in_use);
		registered = true;
	}
	metrics_set(&m_in_use, 0);
	return 0;
}

/* Takes a free slot, or gives one back: n_busy and its gauge. Under lock. */
static void busy_add(int n)
{
	n_busy += n;
	metrics_set(&m_in_use, n_busy);
}

/* Connects and prepares every statement, by deadline. */
static PGconn *connect_slot(const struct timespec *deadline, char *errstr, size_t errstr_size)
{
	PGconn *conn = db_connect_until(&params, deadline, errstr, errstr_size);

	for (const struct pool_stmt *s = stmts; conn && s->name; s++) {
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

PGconn *pool_acquire(const struct timespec *deadline, char *errstr, size_t errstr_size)
{
	struct slot *slot = NULL;
	PGconn *conn;
	int rc = 0;

	pthread_mutex_lock(&lock);
	while (n_busy == n_slots && rc == 0)
		rc = pthread_cond_timedwait(&freed, &lock, deadline);
	/* A free slot with a live connection if there is one, else any free. */
	for (int i = 0; i < n_slots && (slot == NULL || slot->conn == NULL); i++) {
		if (!slots[i].busy)
			slot = &slots[i];
	}
	if (slot != NULL) {
		slot->busy = true;
		busy_add(1);
	}
	pthread_mutex_unlock(&lock);
	if (slot == NULL) {
		snprintf(errstr, errstr_size, "all %d database connections busy", n_slots);
		return NULL;
	}
	if (slot->conn != NULL && stale(slot)) {
		PQfinish(slot->conn);
		slot->conn = NULL;
	}
	if (slot->conn == NULL)
		slot->conn = connect_slot(deadline, errstr, errstr_size);
	conn = slot->conn; /* read before the slot can go to another thread */
	if (conn == NULL) {
		pthread_mutex_lock(&lock);
		slot->busy = false;
		busy_add(-1);
		pthread_cond_signal(&freed);
		pthread_mutex_unlock(&lock);
	}
	return conn;
}

void pool_release(PGconn *conn, bool broken)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < n_slots; i++) {
		if (slots[i].busy && slots[i].conn == conn) {
			if (broken)
				slots[i].conn = NULL;
			slots[i].busy = false;
			slots[i].released_ms = last_release_ms = clock_mono_ms();
			last_ok = !broken;
			busy_add(-1);
			pthread_cond_signal(&freed);
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	/* The connection is nonblocking (db_connect): closing it never waits
	 * on the server, but needs no lock either. */
	if (broken)
		PQfinish(conn);
}

PGresult *pool_exec(const char *name, int n_params, const char *const *vals,
                    int result_format, const struct timespec *deadline, char *errstr,
                    size_t errstr_size)
{
	PGconn *conn;
	PGresult *res;

	if ((conn = pool_acquire(deadline, errstr, errstr_size)) == NULL)
		return NULL;
	res = db_exec_prepared(conn, name, n_params, vals, result_format, deadline, errstr,
	                       errstr_size);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		if (res != NULL) /* else errstr says why: no answer in time */
			db_error_line(PQresultErrorMessage(res), errstr, errstr_size);
		PQclear(res);
		pool_release(conn, true); /* a timed-out one is being cancelled: a new one next */
		return NULL;
	}
	pool_release(conn, false);
	return res;
}

bool pool_answered_within(int ms)
{
	const long now = clock_mono_ms();
	bool ok;

	pthread_mutex_lock(&lock);
	ok = last_ok && now - last_release_ms < ms;
	pthread_mutex_unlock(&lock);
	return ok;
}

int pool_in_use(void)
{
	pthread_mutex_lock(&lock);
	int n = n_busy;
	pthread_mutex_unlock(&lock);
	return n;
}

void pool_shutdown(void)
{
	if (slots == NULL)
		return; /* never set up, or shut down already */
	for (int i = 0; i < n_slots; i++)
		PQfinish(slots[i].conn);
	free(slots);
	slots = NULL;
	n_slots = n_busy = 0;
	metrics_set(&m_in_use, 0);
	pthread_cond_destroy(&freed);
}
