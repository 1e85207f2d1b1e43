/* pool: a bounded pool of PostgreSQL connections, every wait bounded by
 * the caller's deadline. */
#include "pool.h"

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>


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
static int n_slots, n_busy;
static bool last_ok;               /* the last release was not broken, under lock */
static struct timespec last_release; /* monotonic, under lock */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t freed = PTHREAD_COND_INITIALIZER;

int pool_setup(const struct db_params *p, int size, const struct pool_stmt *s, char *errstr,
               size_t errstr_size)
{
	params = *p;
	stmts = s;
	n_busy = 0;
	last_ok = false;
	slots = calloc((size_t)size, sizeof(*slots));
	if (slots == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	n_slots = size;
	return 0;
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

PGconn *pool_acquire(const struct timespec *deadline, char *errstr, size_t errstr_size)
{
	struct slot *slot = NULL;
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
		n_busy++;
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
	if (slot->conn == NULL) {
		pthread_mutex_lock(&lock);
		slot->busy = false;
		n_busy--;
		pthread_cond_signal(&freed);
		pthread_mutex_unlock(&lock);
	}
	return slot->conn;
}

void pool_release(PGconn *conn, bool broken)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < n_slots; i++) {
		if (slots[i].busy && slots[i].conn == conn) {
			if (broken)
				slots[i].conn = NULL;
			slots[i].busy = false;
			clock_gettime(CLOCK_MONOTONIC, &slots[i].released);
			last_release = slots[i].released;
			last_ok = !broken;
			n_busy--;
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

bool pool_answered_within(int ms)
{
	struct timespec now;
	bool ok;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&lock);
	ok = last_ok && (now.tv_sec - last_release.tv_sec) * 1000L +
	                        (now.tv_nsec - last_release.tv_nsec) / 1000000L <
	                    ms;
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
	for (int i = 0; i < n_slots; i++)
		PQfinish(slots[i].conn);
	free(slots);
	slots = NULL;
	n_slots = n_busy = 0;
}
