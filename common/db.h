/* db: PostgreSQL connection helpers: DB_URL (incl. the jdbc: form) and
 * connecting with the configured credentials. */
#ifndef COMMON_DB_H
#define COMMON_DB_H

#include <libpq-fe.h>
#include <stddef.h>
#include <time.h>

struct db_params {
	char url[1024];       /* libpq URI, converted from DB_URL */
	const char *user;     /* DB_USERNAME; "" leaves the URL's */
	const char *password; /* DB_PASSWORD; "" leaves the URL's */
	const char *app_name; /* application_name */
	/* target_session_attrs forced over the URL's (the consumer:
	 * "read-write", so that it always writes to the primary); NULL or ""
	 * leaves the URL's. */
	const char *session_attrs;
	/* More settings of the session, in the server's command-line form
	 * ("-c name=value ..."), after our own (TimeZone, statement_timeout);
	 * NULL or "": none. */
	const char *options;
	int connect_timeout_ms;   /* DB_CONNECT_TIMEOUT_MS; 0: the default */
	int statement_timeout_ms; /* DB_STATEMENT_TIMEOUT_MS; 0: the default */
};

/* The JDBC parameters that have a libpq twin (db_url_convert). */
#define DB_JDBC_PARAMS "user, password, sslmode, connectTimeout, targetServerType"

#define DB_CONNECT_TIMEOUT_DEFAULT_MS 5000
#define DB_STATEMENT_TIMEOUT_DEFAULT_MS 5000

/* How much longer than statement_timeout a client waits for a statement's
 * answer before it gives up on the connection: the server's own timeout
 * error (with its text) normally comes first; only a server that cannot
 * answer at all (frozen, cut off) meets this one. */
#define DB_ANSWER_GRACE_MS 1000

/* Configuration parameters of every service that uses the database (see
 * cfg.h); url_var gets DB_URL as given, for db_url_convert. */
#define DB_CFG_PARAMS(url_var, params)                                                   \
	{"DB_URL", CFG_STRING, &(url_var), "postgresql://127.0.0.1:5432/postgres", 0, 0,      \
	 "PostgreSQL URL, one host or several (h1:p1,h2:p2); jdbc:postgresql://… "            \
	 "accepted"},                                                                         \
	{"DB_USERNAME", CFG_STRING, &(params).user, "postgres", 0, 0, "database user"},       \
	{"DB_PASSWORD", CFG_SECRET, &(params).password, NULL, 0, 0, "database password"},     \
	{"DB_CONNECT_TIMEOUT_MS", CFG_INT, &(params).connect_timeout_ms, "5000", 100, 60000, \
	 "longest a new database connection may take to open"},                             \
	{"DB_STATEMENT_TIMEOUT_MS", CFG_INT, &(params).statement_timeout_ms, "5000", 100,    \
	 600000,                                                                           \
	 "longest a statement may run (the server's statement_timeout); a connection "     \
	 "whose answer is 1 s later still is cancelled and replaced"}

/* Converts DB_URL into a libpq URI: "postgresql://…" and "postgres://…"
 * pass as they are, "jdbc:postgresql://…" loses its "jdbc:" prefix and its
 * query parameters become their libpq twins (DB_JDBC_PARAMS); any other
 * JDBC parameter is refused by name. Either form may list several hosts
 * (h1:p1,h2:p2): none may be empty, every port is 1..65535. Checks that
 * libpq can parse the result. Returns 0, or -1 with a one-line errstr that
 * never holds the password. */
int db_url_convert(const char *db_url, char *out, size_t out_size, char *errstr,
                   size_t errstr_size) __attribute__((warn_unused_result));

/* Opens a connection: TimeZone UTC, the server's statement_timeout, TCP
 * keepalives and tcp_user_timeout (a peer cut off is noticed on an idle
 * connection too), in nonblocking mode (see db_exec). It gives up at
 * deadline, or connect_timeout_ms from now if that comes first; deadline
 * NULL means connect_timeout_ms. With several hosts in the URL, each host
 * gets its share of that time: a host that accepts and never answers (a
 * frozen server) is left for the next one when its share is used up, and
 * goes last in the list. Returns NULL and a one-line reason (never the
 * password) in errstr on failure. */
PGconn *db_connect_until(const struct db_params *p, const struct timespec *deadline,
                         char *errstr, size_t errstr_size);

/* db_connect_until(p, NULL, ...). */
PGconn *db_connect(const struct db_params *p, char *errstr, size_t errstr_size);

/* The deadline of one statement run on its own: statement_timeout_ms +
 * DB_ANSWER_GRACE_MS from now (a clock_deadline). */
struct timespec db_statement_deadline(const struct db_params *p);

/* Run a statement and wait for its answer until deadline (a
 * clock_deadline), never longer: what PQexec, PQprepare and
 * PQexecPrepared do, with a time limit. db_exec may hold several statements
 * (one transaction). Returns the result, which the caller checks
 * (PQresultStatus, PQresultErrorMessage, PQresultErrorField: as with libpq)
 * and clears; with several statements the first error, or else the last
 * result. Returns NULL with a one-line reason in errstr when no answer came
 * by deadline or the connection failed: the statement is then being
 * cancelled (a cancel request sent from another thread, best effort: a
 * server that cannot answer cannot take a cancel either), and conn is of no
 * further use: the caller PQfinishes it. */
PGresult *db_exec(PGconn *conn, const char *sql, const struct timespec *deadline, char *errstr,
                  size_t errstr_size);
PGresult *db_prepare(PGconn *conn, const char *name, const char *sql, int n_params,
                     const struct timespec *deadline, char *errstr, size_t errstr_size);
PGresult *db_exec_prepared(PGconn *conn, const char *name, int n_params,
                           const char *const *vals, int result_format,
                           const struct timespec *deadline, char *errstr, size_t errstr_size);
/* One statement with text parameters $1..$n_params (vals; NULL is SQL NULL),
 * text results: PQexecParams with a time limit. */
PGresult *db_exec_params(PGconn *conn, const char *sql, int n_params, const char *const *vals,
                         const struct timespec *deadline, char *errstr, size_t errstr_size);

/* Where a database URL points, as traces name it (db.namespace,
 * server.address, server.port): its database, and its first host and
 * port (a list's first; libpq's defaults where the URL names none: the
 * user's name as the database, the local socket as the host, 5432). */
struct db_target {
	char name[128];
	char host[256];
	int port;
};

/* Fills out from p's URL (converted by db_url_convert) and user. */
void db_target_of(const struct db_params *p, struct db_target *out);

/* Copies libpq's last error for conn into errstr as one line. */
void db_error_line(const char *msg, char *errstr, size_t errstr_size);

#endif
