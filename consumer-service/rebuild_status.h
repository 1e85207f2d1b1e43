/* rebuild_status: what the live consumer tells about blue-green rebuilds
 * (consumer-service --rebuild, which keeps its row of timestamp_rebuilds
 * current): the latest generation as GET /rebuild, and rebuild_* on
 * /metrics. Read from the table on demand, at most once per
 * REBUILD_STATUS_CACHE_S, on a short-lived connection of its own: never
 * the consume loop's. */
#ifndef CONSUMER_REBUILD_STATUS_H
#define CONSUMER_REBUILD_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "http.h"
#include "ts.h"

/* How long one reading of the table is served before the next. */
#define REBUILD_STATUS_CACHE_S 1.0
/* A replaying or switching generation whose row has not been updated for
 * this long is stalled (the rebuild reports every 1-2 s). */
#define REBUILD_STALLED_S 30.0

/* The latest generation, as read. */
struct rebuild_status {
	bool found; /* false: there has never been a rebuild */
	int generation;
	char table_name[128], group_id[256], state[16];
	char started_at[TS_TEXT_MAX], updated_at[TS_TEXT_MAX], switched_at[TS_TEXT_MAX]; /* "": null */
	int64_t records_total, records_done;
	double rate;            /* messages/s */
	char old_table[128];    /* "": null */
	double switch_ms;       /* < 0: null */
	char error[512];        /* "": null */
	double updated_ago_s;   /* the server's now() - updated_at */
	double last_switch_ms;  /* switch_ms of the latest live generation; < 0: none */
	/* derived */
	bool running;           /* replaying or switching, and not stalled */
	bool stalled;           /* replaying or switching, updated_at older than REBUILD_STALLED_S */
	double percent_done;    /* records_done of records_total (100 when there is nothing to do) */
	double eta_s;           /* while replaying or switching: records left / rate; < 0 unknown */
};

/* Keeps a copy of db (the connection settings) and registers the rebuild_*
 * gauges, set at each scrape of /metrics. Call once, before the HTTP
 * server starts. */
void rebuild_status_setup(const struct db_params *db);

/* The status (from the cache if fresh). Returns 0, or -1 with errstr when
 * the table could not be read; bounded by the database's statement
 * deadline, and only one thread reads at a time: the others take the last
 * reading, or fail at once when there is none. Any thread. */
int rebuild_status_get(struct rebuild_status *st, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Derives running, stalled, percent_done and eta_s from the columns. */
void rebuild_status_derive(struct rebuild_status *st);

/* Writes the status as a JSON object into buf. Returns its length, or -1
 * when it does not fit. */
int rebuild_status_json(const struct rebuild_status *st, char *buf, size_t size);

/* GET /rebuild: 200 with the status as JSON ({"state":"none"} when there
 * has never been a rebuild), 503 with Retry-After when the database cannot
 * be asked. Returns the status sent. */
int rebuild_status_serve(const struct http_req *req);

#endif
