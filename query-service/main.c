/* query-service: reads timestamp records back from PostgreSQL by id. */
#include <signal.h>
#include <stdio.h>

#include "api.h"
#include "cfg.h"
#include "counts.h"
#include "http.h"
#include "log.h"
#include "lookup.h"
#include "pool.h"
#include "range.h"

static const char summary[] =
    "Serves GET /api/v1/timestamp/{id}, /api/v1/timestamps (ranges) and\n"
    "/api/v1/timestamps/counts from PostgreSQL through a bounded pool of\n"
    "connections with prepared statements.";

int main(int argc, char **argv)
{
	struct db_params db = {.app_name = "query-service"};
	struct http_server_opts ho = {.routes = &api_routes};
	const char *db_url;
	enum log_level level;
	int pool_size, pool_timeout, rc;
	char errstr[512];
	struct mg_context *ctx;
	sigset_t sigs;
	const struct cfg_param params[] = {
	    HTTP_CFG_PARAMS(ho, "7082", "64"),
	    LOG_CFG_PARAM(level),
	    DB_CFG_PARAMS(db_url, db),
	    {"DB_POOL_SIZE", CFG_INT, &pool_size, "8", 1, 90,
	     "database connections shared by all HTTP threads"},
	    {"DB_POOL_TIMEOUT_MS", CFG_INT, &pool_timeout, "2000", 1, 60000,
	     "how long a request (or /ready) waits for the database in all — a free "
	     "connection, connecting, its statement — before 503 with Retry-After"},
	};

	if ((rc = cfg_args(argc, argv, "query-service", summary, params, CFG_COUNT(params))) >= 0)
		return rc;
	if (cfg_load(params, CFG_COUNT(params), errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "query-service: %s\n", errstr);
		return 2;
	}
	if (db_url_convert(db_url, db.url, sizeof(db.url), errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "query-service: DB_URL: %s\n", errstr);
		return 2;
	}
	log_setup("query-service", level);

	http_signals_block(&sigs); /* taken by http_serve_until_signal */

	if (pool_setup(&db, pool_size, api_statements, errstr, sizeof(errstr)) != 0) {
		log_error("database pool: %s", errstr);
		return 1;
	}
	lookup_setup(pool_size, pool_timeout);
	range_setup(pool_timeout);
	counts_setup(pool_timeout);
	ctx = http_start(&ho, errstr, sizeof(errstr));
	if (ctx == NULL) {
		log_error("http: %s", errstr);
		pool_shutdown();
		return 1;
	}
	log_info("listening on %s:%d, database pool of %d", ho.address, ho.port, pool_size);

	/* The reads in progress are answered: each has DB_POOL_TIMEOUT_MS. */
	http_serve_until_signal(ctx, &sigs, 5000);
	pool_shutdown();
	mg_exit_library();
	log_info("stopped");
	return 0;
}
