/* pool: a bounded pool of PostgreSQL connections. */
#include "pool.h"

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ts.h"

struct slot {
	PGconn *conn;
	bool busy;
	struct timespec released; /* monotonic */
};

/* A connection given back less than this long ago is not checked again. */
#define FRESH_NS 200000000L

static struct db_params params;
static const struct pool_stmt *stmts;
static struct slot *slots;
static int n_slots, n_busy, timeout_ms;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t freed = PTHREAD_COND_INITIALIZER;

int pool_setup(const struct db_params *p, int size, int acquire_timeout_ms,
               const struct pool_stmt *s, char *errstr, size_t errstr_size)
{
	params = *p;
	stmts = s;
	timeout_ms = acquire_timeout_ms;
	slots = calloc((size_t)size, sizeof(*slots));
	if (slots == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	n_slots = size;
	return 0;
}

/* Connects and prepares every statement. */
static PGconn *connect_slot(char *errstr, size_t errstr_size)
{
	PGconn *conn = db_connect(&params, errstr, errstr_size);

	for (const struct pool_stmt *s = stmts; conn && s->name; s++) {
		PGresult *res = PQprepare(conn, s->name, s->sql, s->n_params, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			char why[256];
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
 * a request sees it fail. One used within the last FRESH_NS is taken as it
 * is: under load that saves a poll() per request, and a server that ended
 * the session in between fails one statement, which drops the connection. */
static bool stale(const struct slot *slot)
{
	struct pollfd p = {.fd = PQsocket(slot->conn), .events = POLLIN};
	struct timespec now;

	if (PQstatus(slot->conn) != CONNECTION_OK || p.fd < 0)
		return true;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((now.tv_sec - slot->released.tv_sec) * 1000000000L +
	        (now.tv_nsec - slot->released.tv_nsec) < FRESH_NS)
		return false;
	return poll(&p, 1, 0) != 0;
}

PGconn *pool_acquire(char *errstr, size_t errstr_size)
{
	struct timespec until;
	struct slot *slot = NULL;
	int rc = 0;

	until = ts_deadline(timeout_ms);
	pthread_mutex_lock(&lock);
	while (n_busy == n_slots && rc == 0)
		rc = pthread_cond_timedwait(&freed, &lock, &until);
	/* A free slot with a live connection if there is one, else any free. */
	for (int i = 0; i < n_slots && (slot == NULL || slot->conn == NULL); i++) {
		if (!slots[i].busy)
			slot = &slots[i];
	}
	if (slot != NULL) {
		slot->busy = true;
		n_busy++;
	}
	pthread_mutex_unlock(&lock);
	if (slot == NULL) {
		snprintf(errstr, errstr_size, "all %d database connections busy for %d ms",
		         n_slots, timeout_ms);
		return NULL;
	}
	if (slot->conn != NULL && stale(slot)) {
		PQfinish(slot->conn);
		slot->conn = NULL;
	}
	if (slot->conn == NULL)
		slot->conn = connect_slot(errstr, errstr_size);
	if (slot->conn == NULL) {
		pthread_mutex_lock(&lock);
		slot->busy = false;
		n_busy--;
		pthread_cond_signal(&freed);
		pthread_mutex_unlock(&lock);
	}
	return slot->conn;
}

void pool_release(PGconn *conn, int broken)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < n_slots; i++) {
		if (slots[i].busy && slots[i].conn == conn) {
			if (broken) {
				PQfinish(conn);
				slots[i].conn = NULL;
			}
			slots[i].busy = false;
			clock_gettime(CLOCK_MONOTONIC, &slots[i].released);
			n_busy--;
			pthread_cond_signal(&freed);
			break;
		}
	}
	pthread_mutex_unlock(&lock);
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
	for (int i = 0; i < n_slots; i++)
		PQfinish(slots[i].conn);
	free(slots);
	slots = NULL;
	n_slots = 0;
}
