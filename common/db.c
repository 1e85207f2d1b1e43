/* db: PostgreSQL connection helpers. */
#include "db.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

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

PGconn *db_connect(const struct db_params *p, char *errstr, size_t errstr_size)
{
	const char *keys[8], *vals[8];
	int n = 0;
	PGconn *conn;

	keys[n] = "dbname", vals[n++] = p->url;
	if (p->user && *p->user)
		keys[n] = "user", vals[n++] = p->user;
	if (p->password && *p->password)
		keys[n] = "password", vals[n++] = p->password;
	keys[n] = "application_name", vals[n++] = p->app_name;
	keys[n] = "connect_timeout", vals[n++] = "5";
	keys[n] = "options", vals[n++] = "-c TimeZone=UTC";
	keys[n] = NULL, vals[n] = NULL;

	conn = PQconnectdbParams(keys, vals, 1);
	if (conn == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		db_error_line(PQerrorMessage(conn), errstr, errstr_size);
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, on_notice, NULL);
	return conn;
}
