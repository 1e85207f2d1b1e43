/* db: PostgreSQL connection helpers, and every wait on the server with a
 * deadline.
 *
 * A server that is frozen or cut off by a partition is the case the time
 * limits are for: its kernel (or nobody) still accepts connections and
 * acknowledges data, so neither TCP nor libpq's own connect_timeout ends the
 * wait, and the server cannot send its statement_timeout error. So every
 * wait here is a poll() on the socket with what is left of a deadline, and
 * libpq is driven by its asynchronous API. */
#include "db.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "log.h"

/* TCP keepalives: an idle connection to a peer that is gone (a partition,
 * a crashed host) is found dead after about 10 + 3 * 5 s, before a request
 * picks it; tcp_user_timeout drops one whose sent data stays unacknowledged
 * for 10 s. Neither helps against a frozen server on a live host, whose
 * kernel answers for it: the deadlines below do. */
#define KEEPALIVES_IDLE_S "10"
#define KEEPALIVES_INTERVAL_S "5"
#define KEEPALIVES_COUNT "3"
#define TCP_USER_TIMEOUT_MS "10000"

/* Cancel requests in flight at most: each takes a thread that may block
 * as long as the server does not answer. More are skipped: the server's
 * statement_timeout ends the statement anyway. */
#define CANCELS_MAX 4

void db_error_line(const char *msg, char *errstr, size_t errstr_size)
{
	size_t n;

	snprintf(errstr, errstr_size, "%s", msg && *msg ? msg : "unknown error");
	/* libpq messages end with a newline and may span several lines, with
	 * tabs: make them one line with single spaces. */
	size_t o = 0;
	for (n = 0; errstr[n]; n++) {
		char c = errstr[n] == '\n' || errstr[n] == '\t' ? ' ' : errstr[n];
		if (c == ' ' && (o == 0 || errstr[o - 1] == ' '))
			continue;
		errstr[o++] = c;
	}
	while (o > 0 && errstr[o - 1] == ' ')
		o--;
	errstr[o] = '\0';
}

int db_url_convert(const char *db_url, char *out, size_t out_size, char *errstr,
                   size_t errstr_size)
{
	static const char jdbc[] = "jdbc:";
	PQconninfoOption *opts;
	char *err = NULL;
	const char *url = db_url;

	if (strncmp(url, jdbc, sizeof(jdbc) - 1) == 0)
		url += sizeof(jdbc) - 1;
	if (strncmp(url, "postgresql://", 13) != 0 && strncmp(url, "postgres://", 11) != 0) {
		/* The URL may hold a password: never repeat it. */
		snprintf(errstr, errstr_size,
		         "not a postgresql://host:port/db URL (or jdbc:postgresql://…)");
		return -1;
	}
	if (strlen(url) >= out_size) {
		snprintf(errstr, errstr_size, "URL longer than %zu characters", out_size - 1);
		return -1;
	}
	opts = PQconninfoParse(url, &err);
	if (opts == NULL) {
		/* libpq's message quotes the URL, password included. */
		snprintf(errstr, errstr_size, "not a valid libpq connection URL%s",
		         err && strstr(err, "invalid URI query parameter") ? " (unknown query parameter)" : "");
		PQfreemem(err);
		return -1;
	}
	PQconninfoFree(opts);
	strcpy(out, url);
	return 0;
}

/* Server notices (e.g. "relation already exists, skipping") go to our log
 * instead of libpq's default, stderr. */
static void on_notice(void *arg, const char *message)
{
	char line[512];

	(void)arg;
	db_error_line(message, line, sizeof(line));
	log_debug("postgresql: %s", line);
}

/* Waits until fd is ready for events or deadline. Returns 1 when ready,
 * 0 at the deadline, -1 on a poll error (errno). */
static int wait_fd(int fd, short events, const struct timespec *deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int rc;

	do {
		rc = poll(&pfd, 1, clock_ms_left(deadline));
	} while (rc < 0 && errno == EINTR);
	return rc;
}

PGconn *db_connect_until(const struct db_params *p, const struct timespec *deadline,
                         char *errstr, size_t errstr_size)
{
	const char *keys[16], *vals[16];
	const int connect_ms = p->connect_timeout_ms > 0 ? p->connect_timeout_ms
	                                                 : DB_CONNECT_TIMEOUT_DEFAULT_MS;
	const int statement_ms = p->statement_timeout_ms > 0 ? p->statement_timeout_ms
	                                                     : DB_STATEMENT_TIMEOUT_DEFAULT_MS;
	struct timespec until = clock_deadline(connect_ms);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	char options[64];
	PGconn *conn;
	int n = 0;

	if (deadline != NULL && clock_cmp(deadline, &until) < 0)
		until = *deadline;
	snprintf(options, sizeof(options), "-c TimeZone=UTC -c statement_timeout=%d", statement_ms);
	keys[n] = "dbname", vals[n++] = p->url;
	if (p->user && *p->user)
		keys[n] = "user", vals[n++] = p->user;
	if (p->password && *p->password)
		keys[n] = "password", vals[n++] = p->password;
	keys[n] = "application_name", vals[n++] = p->app_name;
	keys[n] = "options", vals[n++] = options;
	keys[n] = "keepalives", vals[n++] = "1";
	keys[n] = "keepalives_idle", vals[n++] = KEEPALIVES_IDLE_S;
	keys[n] = "keepalives_interval", vals[n++] = KEEPALIVES_INTERVAL_S;
	keys[n] = "keepalives_count", vals[n++] = KEEPALIVES_COUNT;
	keys[n] = "tcp_user_timeout", vals[n++] = TCP_USER_TIMEOUT_MS;
	keys[n] = NULL, vals[n] = NULL;

	/* PQconnectdb would wait connect_timeout per host, in whole seconds
	 * (at least 2): our deadline covers the whole attempt instead. The
	 * price: with several hosts in DB_URL, one that accepts and never
	 * answers uses up the attempt, and the next attempt starts over. */
	conn = PQconnectStartParams(keys, vals, 1);
	if (conn == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	while (st != PGRES_POLLING_OK) {
		int rc;

		if (st == PGRES_POLLING_FAILED || PQstatus(conn) == CONNECTION_BAD) {
			db_error_line(PQerrorMessage(conn), errstr, errstr_size);
			goto failed;
		}
		/* The socket may change from one call to the next (another
		 * address, another host). */
		rc = wait_fd(PQsocket(conn), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, &until);
		if (rc == 0) {
			snprintf(errstr, errstr_size, "no connection to %s:%s within %d ms", PQhost(conn),
			         PQport(conn), connect_ms);
			if (deadline != NULL && clock_ms_left(deadline) == 0)
				snprintf(errstr, errstr_size, "no connection to %s:%s in time", PQhost(conn),
				         PQport(conn));
			goto failed;
		}
		if (rc < 0) {
			snprintf(errstr, errstr_size, "poll: %s", strerror(errno));
			goto failed;
		}
		st = PQconnectPoll(conn);
	}
	/* Sends never block: a request whose answer will not come must not
	 * hang in a send either (see db_exec). */
	if (PQsetnonblocking(conn, 1) != 0) {
		db_error_line(PQerrorMessage(conn), errstr, errstr_size);
		goto failed;
	}
	PQsetNoticeProcessor(conn, on_notice, NULL);
	return conn;
failed:
	PQfinish(conn);
	return NULL;
}

PGconn *db_connect(const struct db_params *p, char *errstr, size_t errstr_size)
{
	return db_connect_until(p, NULL, errstr, errstr_size);
}

struct timespec db_statement_deadline(const struct db_params *p)
{
	return clock_deadline((p->statement_timeout_ms > 0 ? p->statement_timeout_ms
	                                                : DB_STATEMENT_TIMEOUT_DEFAULT_MS) +
	                   DB_ANSWER_GRACE_MS);
}

static atomic_int cancels;

static void *cancel_main(void *arg)
{
	PGcancel *cancel = arg;
	char why[256];

	/* PQcancel connects to the server and waits for it to close: as long
	 * as the server is frozen. */
	if (!PQcancel(cancel, why, sizeof(why)))
		log_debug("postgresql: cancel request failed: %s", why);
	PQfreeCancel(cancel);
	atomic_fetch_sub(&cancels, 1);
	return NULL;
}

/* Asks the server to cancel what conn runs, from a thread of its own. */
static void cancel_async(PGconn *conn)
{
	PGcancel *cancel;
	pthread_attr_t attr;
	pthread_t tid;

	if (atomic_fetch_add(&cancels, 1) >= CANCELS_MAX)
		goto skipped;
	if ((cancel = PQgetCancel(conn)) == NULL)
		goto skipped;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, cancel_main, cancel) != 0) {
		PQfreeCancel(cancel);
		pthread_attr_destroy(&attr);
		goto skipped;
	}
	pthread_attr_destroy(&attr);
	return;
skipped:
	atomic_fetch_sub(&cancels, 1);
}

/* After a PQsend*: flushes the request and collects its results until
 * deadline (see db_exec). */
static PGresult *wait_result(PGconn *conn, const struct timespec *deadline, char *errstr,
                             size_t errstr_size)
{
	PGresult *res, *kept = NULL;

	for (;;) {
		int flushing = PQflush(conn), rc;

		if (flushing < 0)
			goto broken;
		while (!flushing && !PQisBusy(conn)) {
			if ((res = PQgetResult(conn)) == NULL) {
				if (kept == NULL)
					snprintf(errstr, errstr_size, "no result");
				return kept;
			}
			/* As PQexec: the first error, else the last result. */
			if (kept != NULL && PQresultStatus(kept) == PGRES_FATAL_ERROR) {
				PQclear(res);
			} else {
				PQclear(kept);
				kept = res;
			}
		}
		rc = wait_fd(PQsocket(conn), flushing ? POLLIN | POLLOUT : POLLIN, deadline);
		if (rc == 0) {
			snprintf(errstr, errstr_size, "no answer from the database in time");
			cancel_async(conn);
			PQclear(kept);
			return NULL;
		}
		if (rc < 0) {
			snprintf(errstr, errstr_size, "poll: %s", strerror(errno));
			PQclear(kept);
			return NULL;
		}
		if (!PQconsumeInput(conn))
			goto broken;
	}
broken:
	db_error_line(PQerrorMessage(conn), errstr, errstr_size);
	PQclear(kept);
	return NULL;
}

/* The end of a PQsend* call: its results, or why it could not be sent. */
static PGresult *sent(PGconn *conn, int ok, const struct timespec *deadline, char *errstr,
                      size_t errstr_size)
{
	if (!ok) {
		db_error_line(PQerrorMessage(conn), errstr, errstr_size);
		return NULL;
	}
	return wait_result(conn, deadline, errstr, errstr_size);
}

PGresult *db_exec(PGconn *conn, const char *sql, const struct timespec *deadline, char *errstr,
                  size_t errstr_size)
{
	return sent(conn, PQsendQuery(conn, sql), deadline, errstr, errstr_size);
}

PGresult *db_prepare(PGconn *conn, const char *name, const char *sql, int n_params,
                     const struct timespec *deadline, char *errstr, size_t errstr_size)
{
	return sent(conn, PQsendPrepare(conn, name, sql, n_params, NULL), deadline, errstr,
	            errstr_size);
}

PGresult *db_exec_prepared(PGconn *conn, const char *name, int n_params,
                           const char *const *vals, int result_format,
                           const struct timespec *deadline, char *errstr, size_t errstr_size)
{
	return sent(conn,
	            PQsendQueryPrepared(conn, name, n_params, vals, NULL, NULL, result_format),
	            deadline, errstr, errstr_size);
}

PGresult *db_exec_params(PGconn *conn, const char *sql, int n_params, const char *const *vals,
                         const struct timespec *deadline, char *errstr, size_t errstr_size)
{
	return sent(conn, PQsendQueryParams(conn, sql, n_params, NULL, vals, NULL, NULL, 0),
	            deadline, errstr, errstr_size);
}
