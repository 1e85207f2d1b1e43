/* query-service: reads timestamp records back from PostgreSQL by id. */
#include <signal.h>
#include <stdio.h>

#include "api.h"
#include "cfg.h"
#include "counts.h"
#include "feed.h"
#include "http.h"
#include "log.h"
#include "lookup.h"
#include "pool.h"
#include "range.h"
#include "stream.h"
#include "trace.h"
#include "wait.h"

static const char summary[] =
    "Serves GET /api/v1/timestamp/{id} (waiting for a record with Prefer: wait),\n"
    "/api/v1/timestamps (ranges) and /api/v1/timestamps/counts from PostgreSQL\n"
    "through a bounded pool of connections with prepared statements, and the\n"
    "records as they are persisted as Server-Sent Events\n"
    "(GET /api/v1/timestamps/stream), from one LISTEN connection.";

static void shutdown_pools(void)
{
	if (pool_reads != pool_primary)
		pool_shutdown(pool_reads);
	pool_shutdown(pool_primary);
}

int main(int argc, char **argv)
{
	struct db_params db = {.app_name = "query-service"}, read_db, feed_db;
	struct http_server_opts ho = {.routes = &api_routes};
	const char *db_url, *read_url;
	enum log_level level;
	int pool_size, pool_timeout, lookup_statements, lookup_spread_ms, rc, wait_max_ms, ring_size;
	struct feed_opts fo = {.channel = "timestamp_records"};
	struct stream_opts so;
	struct trace_config tc;
	char errstr[512];
	struct mg_context *ctx;
	sigset_t sigs;
	const struct cfg_param params[] = {
	    HTTP_CFG_PARAMS(ho, "7082", "64"),
	    LOG_CFG_PARAM(level),
	    DB_CFG_PARAMS(db_url, db),
	    {"DB_READ_URL", CFG_STRING, &read_url, "", 0, 0,
	     "PostgreSQL URL for reads (e.g. standbys, target_session_attrs=prefer-standby); "
	     "a record missing there is looked for on DB_URL before a 404. Empty: reads use "
	     "DB_URL"},
	    {"DB_POOL_SIZE", CFG_INT, &pool_size, "8", 1, 90,
	     "database connections shared by all HTTP threads"},
	    /* GETs by id that arrive together are read in one statement, so
	     * a few statements serve a heavy load, and fewer backends compete
	     * for the cores. 2-core host, pool of 8, wrk at 32 connections,
	     * four 10-s rounds in turn: 1 statement 30,400-43,200 req/s,
	     * p99 1.8-2.6 ms; 2: 25,900-38,600, 2.5-3.4 ms; 8 (one per
	     * connection, as before): 20,000-29,900, 4.3-6.7 ms. Two, not
	     * one: a slow statement (pages read from disk, a connection
	     * being replaced) does not hold every GET behind it. But the
	     * second starts only when the first is slow (DB_LOOKUP_SPREAD_MS)
	     * or a full batch waits: while the database answers in time, one
	     * statement runs and takes larger batches. wrk as above, two
	     * statements, four rounds in turn: a second at once (0)
	     * 35,200-36,700 req/s, p99 2.6-2.8 ms, PostgreSQL 13.8-14.6 µs
	     * of CPU a GET; after 2 ms 40,900-41,500, 2.0-2.2 ms, 7.7-8.1 µs.
	     * (Two rounds each: after 0.5 ms 38,600-40,700; after 5 ms, or
	     * never, 39,900-41,300.) */
	    {"DB_LOOKUP_STATEMENTS", CFG_INT, &lookup_statements, "2", 1, 90,
	     "statements reading records by id at once, at most DB_POOL_SIZE; concurrent "
	     "GETs by id share them, many ids to a statement"},
	    {"DB_LOOKUP_SPREAD_MS", CFG_INT, &lookup_spread_ms, "2", 0, 60000,
	     "how long the newest statement reading by id runs without an answer before "
	     "another may start beside it (up to DB_LOOKUP_STATEMENTS; a full batch of 64 "
	     "waiting starts one at once); 0: at once"},
	    {"DB_POOL_TIMEOUT_MS", CFG_INT, &pool_timeout, "2000", 1, 60000,
	     "how long a request (or /ready) waits for the database in all — a free "
	     "connection, connecting, its statement — before 503 with Retry-After"},
	    /* Waits and streams hold their HTTP thread (civetweb cannot park a
	     * request): each has threads of its own on top of HTTP_THREADS. An
	     * idle thread costs about 20 KiB: 256 + 32 of them about 6 MiB. */
	    {"WAIT_MAX_MS", CFG_INT, &wait_max_ms, "30000", 0, 300000,
	     "longest wait granted to Prefer: wait / ?wait (ms); 0 turns waiting off"},
	    {"WAIT_MAX_WAITERS", CFG_INT, &fo.max_waiters, "256", 0, 10000,
	     "requests waiting for their record at once (more: 503); each has an HTTP "
	     "thread of its own"},
	    {"STREAM_MAX", CFG_INT, &fo.max_streams, "32", 0, 10000,
	     "event streams open at once (more: 503); each has an HTTP thread of its own"},
	    {"STREAM_HEARTBEAT_MS", CFG_INT, &so.heartbeat_ms, "15000", 100, 300000,
	     "an idle stream sends a comment this often (keeps proxies from closing it)"},
	    {"STREAM_MAX_AGE_MS", CFG_INT, &so.max_age_ms, "0", 0, 86400000,
	     "a stream ends after this long and its client resumes with Last-Event-ID "
	     "(spreads streams over replicas; 0: never)"},
	    {"STREAM_RING_SIZE", CFG_INT, &ring_size, "8192", 16, 1048576,
	     "recent records kept for the streams (80 bytes each); a stream that falls "
	     "further behind is cut off"},
	    TRACE_CFG_PARAMS(tc),
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
	read_db = db;
	if (read_url[0] != '\0' &&
	    db_url_convert(read_url, read_db.url, sizeof(read_db.url), errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "query-service: DB_READ_URL: %s\n", errstr);
		return 2;
	}
	log_setup("query-service", level);

	http_signals_block(&sigs); /* taken by http_serve_until_signal */
	if (trace_setup(&tc, "query-service", errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "query-service: %s\n", errstr);
		return 2;
	}

	/* The LISTEN feed needs the primary (a standby refuses LISTEN), and
	 * so does the confirmation of what a standby misses. Without
	 * DB_READ_URL the pool serves the reads and takes DB_URL as it is. */
	feed_db = db;
	feed_db.session_attrs = "primary";
	if (read_url[0] != '\0')
		db.session_attrs = "primary";
	pool_primary = pool_setup(POOL_PRIMARY, &db, pool_size, api_statements, errstr,
	                          sizeof(errstr));
	pool_reads = pool_primary;
	if (pool_primary != NULL && read_url[0] != '\0') {
		/* As large as the primary's: it takes every read; the
		 * primary's serves the streams and the confirmations. */
		pool_reads = pool_setup(POOL_READ, &read_db, pool_size, api_statements, errstr,
		                        sizeof(errstr));
	}
	if (pool_primary == NULL || pool_reads == NULL) {
		log_error("database pool: %s", errstr);
		pool_shutdown(pool_primary);
		trace_shutdown(0);
		return 1;
	}
	lookup_setup(lookup_statements < pool_size ? lookup_statements : pool_size, pool_timeout,
	             lookup_spread_ms);
	range_setup(pool_timeout);
	counts_setup(pool_timeout);
	fo.ring_size = ring_size;
	if (feed_setup(&feed_db, &fo, errstr, sizeof(errstr)) != 0) {
		log_error("feed: %s", errstr);
		shutdown_pools();
		trace_shutdown(0);
		return 1;
	}
	wait_setup(wait_max_ms);
	so.db_wait_ms = pool_timeout;
	stream_setup(&so);
	ho.reserve_threads = fo.max_waiters + fo.max_streams;
	ctx = http_start(&ho, errstr, sizeof(errstr));
	if (ctx == NULL) {
		log_error("http: %s", errstr);
		feed_shutdown();
		shutdown_pools();
		trace_shutdown(0);
		return 1;
	}
	log_info("listening on %s:%d, database pool of %d%s", ho.address, ho.port, pool_size,
	         pool_reads != pool_primary ? ", reads on DB_READ_URL (a pool of as many)" : "");

	/* The reads in progress are answered: each has DB_POOL_TIMEOUT_MS;
	 * waits and streams end at the signal (feed_stopping). */
	http_serve_until_signal(ctx, &sigs, 5000);
	feed_shutdown();
	shutdown_pools();
	trace_shutdown(2000); /* the last requests' spans */
	mg_exit_library();
	log_info("stopped");
	return 0;
}
