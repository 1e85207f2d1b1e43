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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Checks the host list of a URL (after "scheme://", up to the path):
 * every host named, every port a number in 1..65535. An empty list is
 * libpq's default host (or a host= parameter). Returns 0, or -1 with
 * errstr. */
static int check_hosts(const char *url, char *errstr, size_t errstr_size)
{
	const char *auth = strstr(url, "://") + 3;
	size_t len = strcspn(auth, "/?");
	const char *at = memchr(auth, '@', len);
	int i = 1;

	/* user:password@ goes before the hosts: skip it (the last '@'). */
	while (at != NULL) {
		len -= (size_t)(at + 1 - auth);
		auth = at + 1;
		at = memchr(auth, '@', len);
	}
	if (len == 0)
		return 0;
	for (const char *h = auth, *end = auth + len; h <= end; i++) {
		const char *comma = memchr(h, ',', (size_t)(end - h));
		const char *stop = comma != NULL ? comma : end, *colon;

		if (*h == '[') { /* an IPv6 address: libpq checks the brackets */
			const char *close = memchr(h, ']', (size_t)(stop - h));
			colon = close != NULL && close + 1 < stop && close[1] == ':' ? close + 1 : NULL;
		} else {
			colon = memchr(h, ':', (size_t)(stop - h));
		}
		if (h == stop || h == colon) {
			snprintf(errstr, errstr_size, "host %d of the host list is empty", i);
			return -1;
		}
		if (colon != NULL) {
			long port = 0;
			const char *d = colon + 1;

			for (; d < stop && *d >= '0' && *d <= '9' && port <= 65535; d++)
				port = port * 10 + (*d - '0');
			if (d == colon + 1 || d != stop || port < 1 || port > 65535) {
				snprintf(errstr, errstr_size,
				         "port '%.*s' of host %d is not a number in 1..65535",
				         (int)(stop - colon - 1 > 16 ? 16 : stop - colon - 1), colon + 1, i);
				return -1;
			}
		}
		h = stop + 1;
	}
	return 0;
}

/* JDBC's targetServerType and the target_session_attrs that asks libpq for
 * the same: pgjdbc tells a primary from a secondary by
 * transaction_read_only, as libpq's read-write and read-only do. */
static const char *const server_types[][2] = {
    {"any", "any"},
    {"primary", "read-write"},
    {"master", "read-write"},
    {"secondary", "read-only"},
    {"slave", "read-only"},
    {"preferSecondary", "prefer-standby"},
    {"preferSlave", "prefer-standby"},
};

/* Appends the JDBC query string q (without its '?') to out as libpq's
 * parameters (see DB_JDBC_PARAMS). Returns 0, or -1 with errstr naming
 * the parameter (never a value: it may be the password). */
static int jdbc_params(const char *q, char *out, size_t out_size, char *errstr,
                       size_t errstr_size)
{
	size_t o = strlen(out);
	char sep = '?';

	while (*q != '\0') {
		size_t len = strcspn(q, "&"), name_len = strcspn(q, "=&");
		const char *value = q + name_len + 1, *name = NULL;
		int value_len = (int)(len - name_len - 1), n;

		if (len == 0) { /* "a=1&&b=2": nothing between */
			q++;
			continue;
		}
		if (name_len == len) {
			snprintf(errstr, errstr_size, "JDBC parameter '%.*s' has no value",
			         (int)(name_len > 40 ? 40 : name_len), q);
			return -1;
		}
#define IS(s) (name_len == sizeof(s) - 1 && strncmp(q, s, name_len) == 0)
		if (IS("user") || IS("password") || IS("sslmode")) {
			name = "";
		} else if (IS("connectTimeout")) {
			name = "connect_timeout";
		} else if (IS("targetServerType")) {
			const char *twin = NULL;

			name = "target_session_attrs";
			for (size_t i = 0; i < sizeof(server_types) / sizeof(server_types[0]); i++) {
				if ((size_t)value_len == strlen(server_types[i][0]) &&
				    strncmp(value, server_types[i][0], (size_t)value_len) == 0)
					twin = server_types[i][1];
			}
			if (twin == NULL) {
				snprintf(errstr, errstr_size,
				         "JDBC targetServerType '%.*s' is none of any, primary, master, "
				         "secondary, slave, preferSecondary, preferSlave",
				         value_len > 40 ? 40 : value_len, value);
				return -1;
			}
			value = twin;
			value_len = (int)strlen(twin);
		}
#undef IS
		if (name == NULL) {
			snprintf(errstr, errstr_size,
			         "JDBC parameter '%.*s' has no libpq equivalent (known: " DB_JDBC_PARAMS ")",
			         (int)(name_len > 40 ? 40 : name_len), q);
			return -1;
		}
		if (*name == '\0')
			name = q, n = (int)name_len;
		else
			n = (int)strlen(name);
		if (o + 2 + (size_t)n + (size_t)value_len >= out_size) {
			snprintf(errstr, errstr_size, "URL longer than %zu characters", out_size - 1);
			return -1;
		}
		o += (size_t)snprintf(out + o, out_size - o, "%c%.*s=%.*s", sep, n, name, value_len,
		                      value);
		sep = '&';
		q += len;
	}
	return 0;
}

int db_url_convert(const char *db_url, char *out, size_t out_size, char *errstr,
                   size_t errstr_size)
{
	static const char jdbc[] = "jdbc:";
	PQconninfoOption *opts;
	char *err = NULL;
	const char *url = db_url, *query;
	const bool is_jdbc = strncmp(url, jdbc, sizeof(jdbc) - 1) == 0;
	size_t base;

	if (is_jdbc)
		url += sizeof(jdbc) - 1;
	if (strncmp(url, "postgresql://", 13) != 0 && strncmp(url, "postgres://", 11) != 0) {
		/* The URL may hold a password: never repeat it. */
		snprintf(errstr, errstr_size,
		         "not a postgresql://host:port/db URL (or jdbc:postgresql://…)");
		return -1;
	}
	if (check_hosts(url, errstr, errstr_size) != 0)
		return -1;
	query = strchr(url, '?');
	base = is_jdbc && query != NULL ? (size_t)(query - url) : strlen(url);
	if (base >= out_size) {
		snprintf(errstr, errstr_size, "URL longer than %zu characters", out_size - 1);
		return -1;
	}
	memcpy(out, url, base);
	out[base] = '\0';
	if (is_jdbc && query != NULL && jdbc_params(query + 1, out, out_size, errstr, errstr_size) != 0)
		return -1;
	opts = PQconninfoParse(out, &err);
	if (opts == NULL) {
		/* libpq's message quotes the URL, password included. */
		snprintf(errstr, errstr_size, "not a valid libpq connection URL%s",
		         err && strstr(err, "invalid URI query parameter") ? " (unknown query parameter)" : "");
		PQfreemem(err);
		return -1;
	}
	PQconninfoFree(opts);
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
 * 0 at the deadline, -1 on a poll error (errno). clock_ms_left rounds
 * down: the last fraction of a millisecond is waited for too, or the wait
 * ends before the deadline (a test measured 599 ms of 600). */
static int wait_fd(int fd, short events, const struct timespec *deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int rc;

	do {
		const int ms = clock_ms_left(deadline);
		rc = poll(&pfd, 1, ms > 0 || clock_passed(deadline) ? ms : 1);
	} while ((rc < 0 && errno == EINTR) || (rc == 0 && !clock_passed(deadline)));
	return rc;
}

/* The hosts of a URL, for db_connect_until to give each its share of the
 * time. n is 0 when the URL lists at most one host, or when its host and
 * port lists do not pair up (libpq then says what is wrong). */
#define HOSTS_MAX 16
struct hosts {
	int n;
	char host[HOSTS_MAX][256], port[HOSTS_MAX][8];
};

/* Splits list at commas into n items of items[size]; returns how many, or
 * -1 if there are more than max or one is too long. */
static int split_list(const char *list, char *items, size_t size, int max)
{
	int n = 0;

	for (const char *s = list;; n++) {
		size_t len = strcspn(s, ",");
		if (n == max || len >= size)
			return -1;
		memcpy(items + (size_t)n * size, s, len);
		items[(size_t)n * size + len] = '\0';
		if (s[len] == '\0')
			return n + 1;
		s += len + 1;
	}
}

static void hosts_of(const char *url, struct hosts *h)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	const char *host = "", *port = "";
	bool has_addr = false;
	int n_ports;

	h->n = 0;
	if (opts == NULL)
		return;
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (strcmp(o->keyword, "host") == 0 && o->val != NULL)
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0 && o->val != NULL)
			port = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0 && o->val != NULL && *o->val)
			has_addr = true;
	}
	if (has_addr) /* pairs with host: not rotated (libpq's list as it is) */
		host = "";
	h->n = split_list(host, h->host[0], sizeof(h->host[0]), HOSTS_MAX);
	n_ports = split_list(port, h->port[0], sizeof(h->port[0]), HOSTS_MAX);
	/* One port (or none) stands for every host, as in libpq. */
	for (int i = 1; n_ports == 1 && i < h->n; i++)
		strcpy(h->port[i], h->port[0]);
	if (h->n < 2 || (n_ports != 1 && n_ports != h->n))
		h->n = 0;
	PQconninfoFree(opts);
}

void db_target_of(const struct db_params *p, struct db_target *out)
{
	PQconninfoOption *opts = PQconninfoParse(p->url, NULL);
	const char *name = p->user && *p->user ? p->user : "", *host = "localhost", *port = "";

	for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
		if (o->val == NULL || *o->val == '\0')
			continue;
		if (strcmp(o->keyword, "dbname") == 0)
			name = o->val;
		else if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
	}
	snprintf(out->name, sizeof(out->name), "%s", name);
	snprintf(out->host, sizeof(out->host), "%.*s", (int)strcspn(host, ","), host);
	out->port = atoi(port);
	if (out->port <= 0)
		out->port = 5432;
	PQconninfoFree(opts);
}

/* The index in h of the host conn is trying, or 0. */
static int host_index(const struct hosts *h, PGconn *conn)
{
	const char *host = PQhost(conn), *port = PQport(conn);

	for (int i = 0; host != NULL && i < h->n; i++) {
		if (strcmp(h->host[i], host) == 0 &&
		    (h->port[i][0] == '\0' || port == NULL || strcmp(h->port[i], port) == 0))
			return i;
	}
	return 0;
}

/* Starts connecting with the hosts of h from first on, round the list
 * (h->n == 0: the URL's list as it is). */
static PGconn *connect_start(const struct db_params *p, const struct hosts *h, int first,
                             const char *options)
{
	char host[HOSTS_MAX * 257], port[HOSTS_MAX * 9];
	const char *keys[20], *vals[20];
	int n = 0;

	keys[n] = "dbname", vals[n++] = p->url;
	/* Keywords after dbname override the URL's (expand_dbname). */
	if (h->n > 0 && first > 0) {
		size_t ho = 0, po = 0;
		for (int i = 0; i < h->n; i++) {
			const int k = (first + i) % h->n;
			ho += (size_t)sprintf(host + ho, "%s%s", i ? "," : "", h->host[k]);
			po += (size_t)sprintf(port + po, "%s%s", i ? "," : "", h->port[k]);
		}
		keys[n] = "host", vals[n++] = host;
		if (port[strspn(port, ",")] != '\0') /* no port given: libpq's default */
			keys[n] = "port", vals[n++] = port;
	}
	if (p->session_attrs && *p->session_attrs)
		keys[n] = "target_session_attrs", vals[n++] = p->session_attrs;
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
	return PQconnectStartParams(keys, vals, 1);
}

PGconn *db_connect_until(const struct db_params *p, const struct timespec *deadline,
                         char *errstr, size_t errstr_size)
{
	const int connect_ms = p->connect_timeout_ms > 0 ? p->connect_timeout_ms
	                                                 : DB_CONNECT_TIMEOUT_DEFAULT_MS;
	const int statement_ms = p->statement_timeout_ms > 0 ? p->statement_timeout_ms
	                                                     : DB_STATEMENT_TIMEOUT_DEFAULT_MS;
	struct timespec until = clock_deadline(connect_ms), host_until;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	char options[256];
	struct hosts hosts;
	PGconn *conn;
	int current = -1, share_ms;

	if (deadline != NULL && clock_cmp(deadline, &until) < 0)
		until = *deadline;
	if (snprintf(options, sizeof(options), "-c TimeZone=UTC -c statement_timeout=%d%s%s",
	             statement_ms, p->options && *p->options ? " " : "",
	             p->options ? p->options : "") >= (int)sizeof(options)) {
		snprintf(errstr, errstr_size, "session options longer than %zu bytes", sizeof(options));
		return NULL;
	}
	hosts_of(p->url, &hosts);
	share_ms = hosts.n > 0 ? clock_ms_left(&until) / hosts.n : 0;

	/* PQconnectdb would wait connect_timeout per host, in whole seconds
	 * (at least 2): our deadline covers the whole attempt instead, and
	 * with several hosts each gets 1/n of it. libpq cannot be
	 * told to give up on one host for the next, so a host whose share is
	 * used up is left by starting over with the host after it first. */
	conn = connect_start(p, &hosts, 0, options);
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
		if (hosts.n > 0 && host_index(&hosts, conn) != current) {
			/* libpq went on to the next host: its share starts now. */
			current = host_index(&hosts, conn);
			host_until = clock_deadline(share_ms);
			if (clock_cmp(&until, &host_until) < 0)
				host_until = until;
		}
		/* The socket may change from one call to the next (another
		 * address, another host). */
		rc = wait_fd(PQsocket(conn), st == PGRES_POLLING_READING ? POLLIN : POLLOUT,
		             hosts.n > 0 ? &host_until : &until);
		if (rc == 0 && hosts.n > 0 && clock_ms_left(&until) > 0) {
			log_debug("postgresql: no answer from %s:%s within %d ms, trying the next host",
			          PQhost(conn), PQport(conn), share_ms);
			PQfinish(conn);
			if ((conn = connect_start(p, &hosts, (current + 1) % hosts.n, options)) == NULL) {
				snprintf(errstr, errstr_size, "out of memory");
				return NULL;
			}
			current = -1;
			st = PGRES_POLLING_WRITING;
			continue;
		}
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
