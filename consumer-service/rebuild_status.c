/* rebuild_status: the latest row of timestamp_rebuilds as GET /rebuild and
 * rebuild_* on /metrics.
 *
 * The row is read on demand, by the HTTP thread that asks, on a connection
 * opened for it and closed after: the sink's belongs to the consume loop,
 * and one kept open here would go stale across a database restart and fail
 * the next request. A reading is served for REBUILD_STATUS_CACHE_S, so a
 * scraper asking often costs at most one connection a second. Only one
 * thread reads at a time (a trylock): with the database frozen that one
 * waits out the statement deadline, and every other request answers at
 * once from the last reading, so /health and /metrics never queue behind
 * it for HTTP threads. */
#include "rebuild_status.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "jsonw.h"
#include "metrics.h"

static struct db_params params;

static pthread_mutex_t read_lock = PTHREAD_MUTEX_INITIALIZER;  /* one reader at a time */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER; /* what follows */
static struct rebuild_status cached;
static char cached_error[256];
static bool cached_ok;
static double cached_at = -1; /* clock_mono_s() of the reading; < 0: none yet */

static struct metrics_series m_running = METRICS_GAUGE_INIT("rebuild_running", "1 while a rebuild replays or switches and is not stalled.", "");
static struct metrics_series m_done = METRICS_GAUGE_INIT("rebuild_records_done", "Messages the latest rebuild has replayed.", "");
static struct metrics_series m_total = METRICS_GAUGE_INIT("rebuild_records_planned", "Messages the latest rebuild replays in all (its records_total: end offsets taken at its start).", "");
static struct metrics_series m_rate = METRICS_REAL_GAUGE_INIT("rebuild_rate", "Messages/s the running rebuild replays (0 when none runs).", "");
static struct metrics_series m_eta = METRICS_REAL_GAUGE_INIT("rebuild_eta_seconds", "Seconds the running rebuild still needs at its rate (-1: unknown, 0 when none runs).", "");
static struct metrics_series m_generation = METRICS_GAUGE_INIT("rebuild_generation", "Generation of the latest rebuild (0: none yet).", "");
static struct metrics_series m_switch = METRICS_REAL_GAUGE_INIT("rebuild_last_switch_seconds", "How long the last switch to a rebuilt table locked the live table (0: none yet).", "");

/* The latest generation, and the switch time of the latest live one. Times
 * as microseconds since the epoch, so that ts_format writes them as every
 * other time of the service. */
static const char select_sql[] =
    "SELECT generation, table_name, group_id, state,"
    " (extract(epoch FROM started_at) * 1000000)::bigint,"
    " (extract(epoch FROM updated_at) * 1000000)::bigint,"
    " (extract(epoch FROM switched_at) * 1000000)::bigint,"
    " records_total, records_done, rate, old_table, switch_ms, error,"
    " extract(epoch FROM now() - updated_at)::float8,"
    " (SELECT switch_ms FROM timestamp_rebuilds"
    "   WHERE state = 'live' AND switch_ms IS NOT NULL ORDER BY generation DESC LIMIT 1)"
    " FROM timestamp_rebuilds ORDER BY generation DESC LIMIT 1";

/* A number column: its value, or dflt when NULL or not finite (another
 * process writes the table: 'NaN' is a valid float8). */
static double col_num(const PGresult *res, int col, double dflt)
{
	double v;

	if (PQgetisnull(res, 0, col))
		return dflt;
	v = strtod(PQgetvalue(res, 0, col), NULL);
	return isfinite(v) ? v : dflt;
}

static void col_text(const PGresult *res, int col, char *buf, size_t size)
{
	snprintf(buf, size, "%s", PQgetisnull(res, 0, col) ? "" : PQgetvalue(res, 0, col));
}

/* A timestamp column (microseconds since the epoch) as RFC 3339, "" if NULL. */
static void col_time(const PGresult *res, int col, char *buf)
{
	long long us;
	struct ts_instant t;

	buf[0] = '\0';
	if (PQgetisnull(res, 0, col))
		return;
	us = strtoll(PQgetvalue(res, 0, col), NULL, 10);
	t.sec = us / 1000000;
	t.nsec = (int32_t)(us % 1000000) * 1000;
	if (t.nsec < 0) {
		t.sec--;
		t.nsec += 1000000000;
	}
	ts_format(&t, 6, buf);
}

void rebuild_status_derive(struct rebuild_status *st)
{
	const bool active = st->found && (strcmp(st->state, "replaying") == 0 ||
	                                  strcmp(st->state, "switching") == 0);
	const int64_t left = st->records_total - st->records_done;

	st->stalled = active && st->updated_ago_s > REBUILD_STALLED_S;
	st->running = active && !st->stalled;
	if (st->records_total <= 0)
		st->percent_done = 100; /* an empty topic: nothing to replay */
	else
		st->percent_done = 100.0 * (double)st->records_done / (double)st->records_total;
	st->percent_done = st->percent_done < 0 ? 0 : st->percent_done > 100 ? 100 : st->percent_done;
	if (!active)
		st->eta_s = strcmp(st->state, "live") == 0 ? 0 : -1;
	else if (left <= 0)
		st->eta_s = 0;
	else
		st->eta_s = st->rate > 0 ? (double)left / st->rate : -1;
	if (!isfinite(st->eta_s)) /* a rate too small to divide by */
		st->eta_s = -1;
}

/* Reads the table into *st. Returns 0, or -1 with errstr. */
static int status_read(struct rebuild_status *st, char *errstr, size_t errstr_size)
{
	const struct timespec deadline = db_statement_deadline(&params);
	PGconn *conn = db_connect_until(&params, &deadline, errstr, errstr_size);
	PGresult *res = NULL;
	int rc = -1;

	memset(st, 0, sizeof(*st));
	if (conn == NULL)
		return -1;
	res = db_exec(conn, select_sql, &deadline, errstr, errstr_size);
	if (res == NULL)
		goto done;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_error_line(PQresultErrorMessage(res), errstr, errstr_size);
		goto done;
	}
	rc = 0;
	if (PQntuples(res) == 0)
		goto done;
	st->found = true;
	st->generation = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	col_text(res, 1, st->table_name, sizeof(st->table_name));
	col_text(res, 2, st->group_id, sizeof(st->group_id));
	col_text(res, 3, st->state, sizeof(st->state));
	col_time(res, 4, st->started_at);
	col_time(res, 5, st->updated_at);
	col_time(res, 6, st->switched_at);
	st->records_total = strtoll(PQgetvalue(res, 0, 7), NULL, 10);
	st->records_done = strtoll(PQgetvalue(res, 0, 8), NULL, 10);
	st->rate = col_num(res, 9, 0);
	col_text(res, 10, st->old_table, sizeof(st->old_table));
	st->switch_ms = col_num(res, 11, -1);
	col_text(res, 12, st->error, sizeof(st->error));
	st->updated_ago_s = col_num(res, 13, 0);
	st->last_switch_ms = col_num(res, 14, -1);
	rebuild_status_derive(st);
done:
	PQclear(res);
	PQfinish(conn);
	return rc;
}

int rebuild_status_get(struct rebuild_status *st, char *errstr, size_t errstr_size)
{
	struct rebuild_status fresh;
	char why[256];
	bool ok;

	pthread_mutex_lock(&cache_lock);
	if (cached_at >= 0 && clock_mono_s() - cached_at < REBUILD_STATUS_CACHE_S)
		goto cached_answer;
	pthread_mutex_unlock(&cache_lock);

	if (pthread_mutex_trylock(&read_lock) != 0) {
		/* Another thread is reading: its answer is not awaited. */
		pthread_mutex_lock(&cache_lock);
		if (cached_at >= 0)
			goto cached_answer;
		pthread_mutex_unlock(&cache_lock);
		snprintf(errstr, errstr_size, "the rebuild status is being read; try again");
		return -1;
	}
	ok = status_read(&fresh, why, sizeof(why)) == 0;
	pthread_mutex_lock(&cache_lock);
	cached_ok = ok;
	if (ok)
		cached = fresh;
	else
		snprintf(cached_error, sizeof(cached_error), "%s", why);
	cached_at = clock_mono_s();
	pthread_mutex_unlock(&read_lock);

cached_answer:
	ok = cached_ok;
	if (ok)
		*st = cached;
	else
		snprintf(errstr, errstr_size, "%s", cached_error);
	pthread_mutex_unlock(&cache_lock);
	return ok ? 0 : -1;
}

static void json_string_or_null(char *buf, size_t size, size_t *pos, const char *key,
                                const char *v)
{
	jsonw_append(buf, size, pos, ",\"%s\":", key);
	if (v[0] == '\0') {
		jsonw_append(buf, size, pos, "null");
		return;
	}
	jsonw_append(buf, size, pos, "\"");
	jsonw_escape(buf, size, pos, v, (size_t)-1);
	jsonw_append(buf, size, pos, "\"");
}

int rebuild_status_json(const struct rebuild_status *st, char *buf, size_t size)
{
	size_t pos = 0;
	int rc = 0;

	if (!st->found)
		return jsonw_append(buf, size, &pos, "{\"state\":\"none\"}") == 0 ? (int)pos : -1;
	rc |= jsonw_append(buf, size, &pos, "{\"state\":\"");
	rc |= jsonw_escape(buf, size, &pos, st->state, (size_t)-1);
	rc |= jsonw_append(buf, size, &pos, "\",\"generation\":%d", st->generation);
	json_string_or_null(buf, size, &pos, "table_name", st->table_name);
	json_string_or_null(buf, size, &pos, "group_id", st->group_id);
	json_string_or_null(buf, size, &pos, "started_at", st->started_at);
	json_string_or_null(buf, size, &pos, "updated_at", st->updated_at);
	json_string_or_null(buf, size, &pos, "switched_at", st->switched_at);
	rc |= jsonw_append(buf, size, &pos,
	                   ",\"records_total\":%lld,\"records_done\":%lld,\"percent_done\":%.2f"
	                   ",\"rate\":%.9g,\"eta_seconds\":",
	                   (long long)st->records_total, (long long)st->records_done,
	                   st->percent_done, st->rate);
	rc |= st->eta_s < 0 ? jsonw_append(buf, size, &pos, "null")
	                    : jsonw_append(buf, size, &pos, "%.1f", st->eta_s);
	rc |= jsonw_append(buf, size, &pos, ",\"stalled\":%s,\"updated_seconds_ago\":%.1f",
	                   st->stalled ? "true" : "false", st->updated_ago_s);
	json_string_or_null(buf, size, &pos, "old_table", st->old_table);
	rc |= st->switch_ms < 0 ? jsonw_append(buf, size, &pos, ",\"switch_ms\":null")
	                        : jsonw_append(buf, size, &pos, ",\"switch_ms\":%.3f", st->switch_ms);
	json_string_or_null(buf, size, &pos, "error", st->error);
	rc |= jsonw_append(buf, size, &pos, "}");
	return rc == 0 ? (int)pos : -1;
}

int rebuild_status_serve(const struct http_req *req)
{
	struct rebuild_status st;
	char errstr[256], body[8192];

	if (strcmp(req->ri->request_method, "GET") != 0 &&
	    strcmp(req->ri->request_method, "HEAD") != 0)
		return http_method_not_allowed(req, "GET");
	if (rebuild_status_get(&st, errstr, sizeof(errstr)) != 0)
		return http_send_error(req, 503, "Retry-After: 1\r\n",
		                       "rebuild status unavailable: database: %s", errstr);
	if (rebuild_status_json(&st, body, sizeof(body)) < 0)
		return http_send_error(req, 500, NULL, "rebuild status too long to send");
	return http_send_json(req, 200, NULL, body);
}

/* At each scrape: the latest reading (the gauges keep the last good one
 * while the database cannot be asked). */
static void status_collect(void)
{
	struct rebuild_status st;
	char errstr[256];

	if (rebuild_status_get(&st, errstr, sizeof(errstr)) != 0)
		return;
	metrics_set(&m_running, st.running);
	metrics_set(&m_done, st.records_done);
	metrics_set(&m_total, st.records_total);
	metrics_set(&m_generation, st.generation);
	metrics_set_real(&m_rate, st.running ? st.rate : 0);
	metrics_set_real(&m_eta, st.running ? st.eta_s : 0);
	metrics_set_real(&m_switch, st.last_switch_ms >= 0 ? st.last_switch_ms / 1000.0 : 0);
}

void rebuild_status_setup(const struct db_params *db)
{
	params = *db;
	params.app_name = "consumer-service rebuild status";
	metrics_register(&m_running);
	metrics_register(&m_done);
	metrics_register(&m_total);
	metrics_register(&m_rate);
	metrics_register(&m_eta);
	metrics_register(&m_generation);
	metrics_register(&m_switch);
	metrics_add_collector(status_collect);
}
