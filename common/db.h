/* db: PostgreSQL connection helpers: DB_URL (incl. the jdbc: form) and
 * connecting with the configured credentials. */
#ifndef COMMON_DB_H
#define COMMON_DB_H

#include <libpq-fe.h>
#include <stddef.h>

struct db_params {
	char url[1024];       /* libpq URI, converted from DB_URL */
	const char *user;     /* DB_USERNAME; "" leaves the URL's */
	const char *password; /* DB_PASSWORD; "" leaves the URL's */
	const char *app_name; /* application_name */
};

/* Configuration parameters of every service that uses the database (see
 * cfg.h); url_var gets DB_URL as given, for db_url_convert. */
#define DB_CFG_PARAMS(url_var, params)                                                   \
	{"DB_URL", CFG_STRING, &(url_var), "postgresql://127.0.0.1:5432/postgres", 0, 0,      \
	 "PostgreSQL URL (jdbc:postgresql://… accepted)"},                                  \
	{"DB_USERNAME", CFG_STRING, &(params).user, "postgres", 0, 0, "database user"},       \
	{"DB_PASSWORD", CFG_SECRET, &(params).password, NULL, 0, 0, "database password"}

/* Converts DB_URL into a libpq URI: "postgresql://…" and "postgres://…"
 * pass as they are, "jdbc:postgresql://…" loses its "jdbc:" prefix. Checks
 * that libpq can parse the result. Returns 0, or -1 with errstr. */
int db_url_convert(const char *db_url, char *out, size_t out_size, char *errstr,
                   size_t errstr_size) __attribute__((warn_unused_result));

/* Opens a connection (5 s connect timeout, TimeZone UTC). Returns NULL and
 * a one-line reason (never the password) in errstr on failure. */
PGconn *db_connect(const struct db_params *p, char *errstr, size_t errstr_size);

/* Copies libpq's last error for conn into errstr as one line. */
void db_error_line(const char *msg, char *errstr, size_t errstr_size);

#endif
