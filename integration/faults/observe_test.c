/* observe_test: what the live consumer shows an operator (issue 11).
 *
 * rebuild: the status of a blue-green rebuild, on GET /rebuild and as
 * rebuild_* on /metrics, follows the rows of timestamp_rebuilds, written
 * here directly as consumer-service --rebuild writes them: none yet,
 * replaying with progress, stalled, live, failed. With the database
 * stopped, then frozen, /rebuild answers 503 within its deadline while
 * /health answers 200 throughout.
 *
 * lag: with PostgreSQL stopped while tickets are posted,
 * consumer_lag_seconds (the age of the oldest message not yet written)
 * rises and keeps rising, /ready says the lag is over READY_MAX_LAG_S; once
 * the database is back and every ticket is a row, the lag is 0 on every
 * partition and /ready 200 again; /health is 200 throughout. And with the
 * database up but the table locked, so that a batch cannot be written,
 * /ready is 503 for the lag alone. And the lag of messages posted while the
 * consumer was stopped counts from their Kafka timestamps: the restarted
 * consumer, its first batch held by a row lock, shows at least the time it
 * was down, and 0 once the batch is written. */
#include <check.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "fault.h"
#include "faults.h"
#include "store.h"

#define STATUS_MS 15000    /* a change of the table shows past the 1 s cache */
#define STATEMENT_MS 1000  /* the consumer's DB_STATEMENT_TIMEOUT_MS and DB_CONNECT_TIMEOUT_MS here */
#define ANSWER_BOUND_MS (STATEMENT_MS + 1000 + 5000) /* its deadline, and room for a loaded machine */
#define READY_MAX_LAG 3    /* READY_MAX_LAG_S */
#define LAG_RISE_MS 60000  /* for the lag to pass READY_MAX_LAG + 1 */
#define AGING_MS 3000
#define ROWS_MS 90000
#define CAUGHT_UP_MS 60000

static struct fault_probe health, ready;
static struct fault_load load;

static void setup(void)
{
	memset(&health, 0, sizeof(health));
	memset(&ready, 0, sizeof(ready));
	memset(&load, 0, sizeof(load));
}

static void sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sql(const char *fmt, ...)
{
	char text[1024], errstr[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ck_assert_msg(store_exec(stack.db_url, text, errstr, sizeof(errstr)) == 0, "%s: %s", text,
	              errstr);
}

static void teardown(void)
{
	char errstr[512];

	fault_load_stop(&load);
	fault_probe_stop(&health);
	fault_probe_stop(&ready);
	fault_teardown(NULL, 0);
	/* The next suite finds no rebuild of ours. */
	if (store_exec(stack.db_url, "DELETE FROM timestamp_rebuilds", errstr, sizeof(errstr)) != 0)
		fprintf(stderr, "teardown: %s\n", errstr);
	fault_log_free(&health.log);
	fault_log_free(&ready.log);
	fault_log_free(&load.log);
}

static json_object *member(json_object *jobj, const char *key)
{
	json_object *v = NULL;

	ck_assert_msg(json_object_object_get_ex(jobj, key, &v), "/rebuild has no \"%s\": %s", key,
	              json_object_to_json_string(jobj));
	return v;
}

static double num(json_object *jobj, const char *key)
{
	json_object *v = member(jobj, key);

	ck_assert_msg(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double),
	              "/rebuild \"%s\" is not a number: %s", key, json_object_to_json_string(jobj));
	return json_object_get_double(v);
}

static bool is_null(json_object *jobj, const char *key)
{
	return json_object_is_type(member(jobj, key), json_type_null);
}

/* Polls GET /rebuild until it answers 200 with this state (and, if
 * stalled_too, "stalled": true) for generation (0: any). Returns the
 * document (the caller puts it). */
static json_object *wait_rebuild(const char *state, int generation, bool stalled_too)
{
	const long deadline = clock_mono_ms() + STATUS_MS;
	char url[256], last[2048] = "";
	struct http_resp resp;

	stack_url(url, sizeof(url), STACK_CONSUMER, "/rebuild");
	for (;;) {
		json_object *jobj = NULL, *v;
		bool match = false;

		if (http_get(url, NULL, &resp) == 0 && resp.status == 200)
			jobj = check_json_200(&resp);
		snprintf(last, sizeof(last), "%ld %s", resp.status, resp.body ? resp.body : resp.errstr);
		http_resp_clear(&resp);
		if (jobj != NULL) {
			const char *s = json_str(jobj, "state");
			match = s != NULL && strcmp(s, state) == 0;
			if (match && generation > 0)
				match = json_object_object_get_ex(jobj, "generation", &v) &&
				        json_object_get_int(v) == generation;
			if (match && stalled_too)
				match = json_object_object_get_ex(jobj, "stalled", &v) &&
				        json_object_get_boolean(v);
			if (match)
				return jobj;
			json_object_put(jobj);
		}
		ck_assert_msg(clock_mono_ms() < deadline, "/rebuild never showed state %s (generation "
		              "%d%s) within %d ms; last: %s", state, generation,
		              stalled_too ? ", stalled" : "", STATUS_MS, last);
		proc_sleep_ms(100);
	}
}

/* The consumer's series (name and labels) now; asserts that it is there. */
static double consumer_metric(const char *series)
{
	char url[256];
	double v;

	stack_url(url, sizeof(url), STACK_CONSUMER, "/metrics");
	v = fault_metric(url, series);
	ck_assert_msg(v >= 0, "no %s on the consumer's /metrics", series);
	return v;
}

static void assert_metric(const char *series, double want)
{
	const double got = consumer_metric(series);

	ck_assert_msg(got > want - 1e-9 && got < want + 1e-9, "%s is %.9g, want %.9g", series, got,
	              want);
}

START_TEST(rebuild_status_follows_the_table)
{
	json_object *jobj;

	fault_start(STACK_CONSUMER, NULL);
	sql("DELETE FROM timestamp_rebuilds");

	/* Never a rebuild: {"state":"none"} and nothing else; gauges at 0. */
	jobj = wait_rebuild("none", 0, false);
	ck_assert_int_eq(json_object_object_length(jobj), 1);
	json_object_put(jobj);
	assert_metric("rebuild_generation", 0);
	assert_metric("rebuild_running", 0);
	assert_metric("rebuild_last_switch_seconds", 0);

	/* Replaying: a quarter done at 50 messages/s, so 15 s to go. */
	sql("INSERT INTO timestamp_rebuilds (generation, table_name, group_id, state, started_at,"
	    " updated_at, records_total, records_done, rate) VALUES (7, 'timestamp_records_g7',"
	    " 'timestamp-consumer-service.rebuild-g7', 'replaying', now() - interval '10 seconds',"
	    " now(), 1000, 250, 50)");
	jobj = wait_rebuild("replaying", 7, false);
	ck_assert_str_eq(json_str(jobj, "table_name"), "timestamp_records_g7");
	ck_assert_str_eq(json_str(jobj, "group_id"), "timestamp-consumer-service.rebuild-g7");
	parse_ts(json_str(jobj, "started_at"));
	parse_ts(json_str(jobj, "updated_at"));
	ck_assert(is_null(jobj, "switched_at") && is_null(jobj, "old_table") &&
	          is_null(jobj, "switch_ms") && is_null(jobj, "error"));
	ck_assert_double_eq(num(jobj, "records_total"), 1000);
	ck_assert_double_eq(num(jobj, "records_done"), 250);
	ck_assert_double_eq(num(jobj, "percent_done"), 25);
	ck_assert_double_eq(num(jobj, "rate"), 50);
	ck_assert_double_eq(num(jobj, "eta_seconds"), 15);
	ck_assert(!json_object_get_boolean(member(jobj, "stalled")));
	json_object_put(jobj);
	assert_metric("rebuild_running", 1);
	assert_metric("rebuild_generation", 7);
	assert_metric("rebuild_records_done", 250);
	assert_metric("rebuild_records_planned", 1000);
	assert_metric("rebuild_rate", 50);
	assert_metric("rebuild_eta_seconds", 15);

	/* No progress report for longer than 30 s: stalled, not running. */
	sql("UPDATE timestamp_rebuilds SET updated_at = now() - interval '31 seconds'"
	    " WHERE generation = 7");
	jobj = wait_rebuild("replaying", 7, true);
	ck_assert_double_ge(num(jobj, "updated_seconds_ago"), 31);
	json_object_put(jobj);
	assert_metric("rebuild_running", 0);
	assert_metric("rebuild_rate", 0);
	assert_metric("rebuild_eta_seconds", 0);
	assert_metric("rebuild_records_done", 250);

	/* Switched: live, all done, the switch took 42.5 ms. */
	sql("UPDATE timestamp_rebuilds SET state = 'live', records_done = 1000, updated_at = now(),"
	    " switched_at = now(), switch_ms = 42.5, old_table = 'timestamp_records_g6'"
	    " WHERE generation = 7");
	jobj = wait_rebuild("live", 7, false);
	parse_ts(json_str(jobj, "switched_at"));
	ck_assert_str_eq(json_str(jobj, "old_table"), "timestamp_records_g6");
	ck_assert_double_eq(num(jobj, "switch_ms"), 42.5);
	ck_assert_double_eq(num(jobj, "percent_done"), 100);
	ck_assert_double_eq(num(jobj, "eta_seconds"), 0);
	ck_assert(!json_object_get_boolean(member(jobj, "stalled")));
	json_object_put(jobj);
	assert_metric("rebuild_running", 0);
	assert_metric("rebuild_records_done", 1000);
	assert_metric("rebuild_last_switch_seconds", 0.0425);

	/* A later generation that failed is the one shown; the last switch
	 * stays that of the last live generation. */
	sql("INSERT INTO timestamp_rebuilds (generation, table_name, group_id, state,"
	    " records_total, records_done, rate, error) VALUES (8, 'timestamp_records_g8',"
	    " 'timestamp-consumer-service.rebuild-g8', 'failed', 1000, 10, 0,"
	    " 'another rebuild holds the lock')");
	jobj = wait_rebuild("failed", 8, false);
	ck_assert_str_eq(json_str(jobj, "error"), "another rebuild holds the lock");
	ck_assert(is_null(jobj, "eta_seconds"));
	json_object_put(jobj);
	assert_metric("rebuild_generation", 8);
	assert_metric("rebuild_running", 0);
	assert_metric("rebuild_last_switch_seconds", 0.0425);
}
END_TEST

/* One GET /rebuild that must answer 503 (a JSON error with Retry-After)
 * within ANSWER_BOUND_MS. */
static void assert_rebuild_503(const char *what)
{
	char url[256];
	struct http_resp resp;
	long sent, took;

	stack_url(url, sizeof(url), STACK_CONSUMER, "/rebuild");
	sent = clock_mono_ms();
	ck_assert_msg(http_get(url, NULL, &resp) == 0, "/rebuild with the database %s: %s", what,
	              resp.errstr);
	took = clock_mono_ms() - sent;
	check_error(&resp, 503);
	ck_assert_msg(resp.retry_after[0] != '\0', "no Retry-After with the 503");
	ck_assert_msg(strstr(resp.body, "database") != NULL, "the 503 does not say why: %s",
	              resp.body);
	printf("  /rebuild with the database %s: 503 in %ld ms: %s\n", what, took, resp.body);
	ck_assert_msg(took <= ANSWER_BOUND_MS, "/rebuild took %ld ms with the database %s, over %d",
	              took, what, ANSWER_BOUND_MS);
	http_resp_clear(&resp);
}

START_TEST(rebuild_status_is_503_in_bounded_time_when_the_database_is_down)
{
	static const char *const env[] = {"DB_STATEMENT_TIMEOUT_MS=1000",
	                                  "DB_CONNECT_TIMEOUT_MS=1000", NULL};
	char url[256];
	size_t n_ok = 0;

	fault_start(STACK_CONSUMER, env);
	json_object_put(wait_rebuild("none", 0, false));
	stack_url(url, sizeof(url), STACK_CONSUMER, "/health");
	fault_probe_start(&health, url, 200, 5000);

	ck_assert_msg(fault_script("pg.sh", "stop") == 0, "scripts/pg.sh stop failed");
	proc_sleep_ms(1500); /* past the cached reading */
	assert_rebuild_503("stopped");
	/* /metrics still answers, with the last values read. */
	assert_metric("rebuild_running", 0);
	ck_assert_msg(fault_script("pg.sh", "start") == 0, "scripts/pg.sh start failed");
	json_object_put(wait_rebuild("none", 0, false));

	/* Frozen: the kernel takes the connection, nothing answers. */
	fault_db_pause(true);
	proc_sleep_ms(1500);
	assert_rebuild_503("frozen");
	fault_db_pause(false);
	json_object_put(wait_rebuild("none", 0, false));

	fault_probe_stop(&health);
	for (size_t i = 0; i < health.log.n; i++)
		n_ok += health.log.a[i].status == 200;
	printf("  /health: %zu of %zu probes answered 200\n", n_ok, health.log.n);
	ck_assert_msg(health.log.n >= 10, "only %zu /health probes", health.log.n);
	ck_assert_msg(n_ok == health.log.n, "%zu of %zu /health probes did not answer 200",
	              health.log.n - n_ok, health.log.n);
}
END_TEST

/* consumer_lag_seconds_max and the largest of the per-partition series,
 * from one scrape (both are computed at the same moment). */
static void lag_scrape(double *max, double *largest, int *partitions)
{
	char url[256];
	struct http_resp resp;
	static const char family[] = "consumer_lag_seconds{partition=\"";

	*max = -1;
	*largest = -1;
	*partitions = 0;
	stack_url(url, sizeof(url), STACK_CONSUMER, "/metrics");
	ck_assert_msg(http_get(url, NULL, &resp) == 0 && resp.status == 200 && resp.body,
	              "/metrics: %ld %s", resp.status, resp.errstr);
	for (const char *p = resp.body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		const char *sp = strchr(p, ' ');
		if (sp == NULL)
			continue;
		if (strncmp(p, "consumer_lag_seconds_max ", 25) == 0)
			*max = strtod(sp + 1, NULL);
		if (strncmp(p, family, sizeof(family) - 1) == 0) {
			const double v = strtod(sp + 1, NULL);
			ck_assert_msg(v >= 0, "a negative lag: %.40s", p);
			*largest = v > *largest ? v : *largest;
			(*partitions)++;
		}
	}
	http_resp_clear(&resp);
	ck_assert_msg(*max >= 0, "no consumer_lag_seconds_max on /metrics");
}

/* Polls until consumer_lag_seconds_max is over (above) or exactly 0 (!above
 * with 0). Returns it. */
static double wait_lag(bool above, double level, long timeout_ms)
{
	const long deadline = clock_mono_ms() + timeout_ms;
	double max, largest;
	int parts;

	for (;;) {
		lag_scrape(&max, &largest, &parts);
		if (above ? max > level : max == 0)
			return max;
		ck_assert_msg(clock_mono_ms() < deadline, "consumer_lag_seconds_max %.3f, not %s %.1f "
		              "within %ld ms", max, above ? "over" : "down to", level, timeout_ms);
		proc_sleep_ms(200);
	}
}

static size_t count_status(const struct fault_log *l, int status)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n; i++)
		n += l->a[i].status == status;
	return n;
}

START_TEST(lag_seconds_rise_while_the_database_is_down_and_fall_to_0_after)
{
	static const char *const env[] = {"READY_MAX_LAG_S=3", "DB_RETRY_MAX_MS=1000", NULL};
	char url[256], errstr[512], (*tickets)[UID_TEXT_SIZE];
	struct http_resp resp;
	double max, largest, aged, rose;
	int parts;
	long rows;
	size_t n;

	fault_start(STACK_CONSUMER, env);
	fault_start(STACK_COMMAND, NULL);
	wait_lag(false, 0, CAUGHT_UP_MS);
	lag_scrape(&max, &largest, &parts);
	ck_assert_msg(parts >= 1, "no consumer_lag_seconds{partition} series once assigned");
	stack_url(url, sizeof(url), STACK_CONSUMER, "/health");
	fault_probe_start(&health, url, 250, 5000);
	stack_url(url, sizeof(url), STACK_CONSUMER, "/ready");
	fault_probe_start(&ready, url, 250, 5000);

	ck_assert_msg(fault_script("pg.sh", "stop") == 0, "scripts/pg.sh stop failed");
	fault_load_start(&load, 2, 100);

	/* The batch the consumer holds keeps aging while it cannot be written. */
	rose = wait_lag(true, READY_MAX_LAG + 1, LAG_RISE_MS);
	proc_sleep_ms(AGING_MS);
	lag_scrape(&aged, &largest, &parts);
	printf("  database stopped: consumer_lag_seconds_max %.3f, %d ms later %.3f (largest "
	       "partition %.3f)\n", rose, AGING_MS, aged, largest);
	ck_assert_msg(aged >= rose + (AGING_MS - 1000) / 1000.0, "the lag did not keep rising: %.3f, "
	              "then %.3f %d ms later", rose, aged, AGING_MS);
	ck_assert_msg(largest == aged, "consumer_lag_seconds_max %.9g is not the largest partition's "
	              "%.9g", aged, largest);
	stack_url(url, sizeof(url), STACK_CONSUMER, "/ready");
	ck_assert_int_eq(http_get(url, NULL, &resp), 0);
	printf("  /ready: %ld %s\n", resp.status, resp.body);
	ck_assert_int_eq(resp.status, 503);
	ck_assert_msg(strstr(resp.body, "lag: consumer_lag_seconds_max") != NULL &&
	              strstr(resp.body, "exceeds READY_MAX_LAG_S 3") != NULL,
	              "/ready does not say the lag is over READY_MAX_LAG_S: %s", resp.body);
	http_resp_clear(&resp);

	fault_load_stop(&load);
	ck_assert_msg(fault_script("pg.sh", "start") == 0, "scripts/pg.sh start failed");
	tickets = fault_tickets(&load.log, &n);
	ck_assert_msg(n >= 10, "only %zu tickets accepted during the outage", n);
	rows = fault_wait_rows(tickets, n, ROWS_MS);
	free(tickets);
	ck_assert_msg(rows == (long)n, "%ld rows for the %zu tickets", rows, n);

	/* Caught up: 0 on every partition, and ready again. */
	wait_lag(false, 0, CAUGHT_UP_MS);
	lag_scrape(&max, &largest, &parts);
	ck_assert_msg(max == 0 && largest == 0, "caught up, but a lag of %.3f (largest partition "
	              "%.3f)", max, largest);
	ck_assert_msg(wait_ready(url, CAUGHT_UP_MS, &stack.svc[STACK_CONSUMER], errstr,
	                         sizeof(errstr)) == 0,
	              "/ready not 200 after catching up: %s", errstr);
	proc_sleep_ms(1000);
	fault_probe_stop(&health);
	fault_probe_stop(&ready);
	printf("  %zu tickets during the outage all rows; /ready 503 on %zu of %zu probes; /health "
	       "200 on %zu of %zu\n", n, count_status(&ready.log, 503), ready.log.n,
	       count_status(&health.log, 200), health.log.n);
	ck_assert_msg(count_status(&ready.log, 503) >= 4, "/ready was not 503 while lagging");
	ck_assert_msg(ready.log.n > 0 && ready.log.a[ready.log.n - 1].status == 200,
	              "the last /ready probe was not 200");
	ck_assert_msg(health.log.n >= 10 && count_status(&health.log, 200) == health.log.n,
	              "%zu of %zu /health probes did not answer 200",
	              health.log.n - count_status(&health.log, 200), health.log.n);
}
END_TEST

/* The database answers, but a transaction of the test holds the table
 * locked: the consumer's insert waits (DB_STATEMENT_TIMEOUT_MS is long), so
 * nothing is down and the replica is only stale. /ready says so, by the lag
 * alone, and is 200 again once the lock is gone and the row written. */
START_TEST(ready_is_503_for_the_lag_alone_while_writes_wait)
{
	static const char *const env[] = {"READY_MAX_LAG_S=3", "DB_STATEMENT_TIMEOUT_MS=120000", NULL};
	char url[256], errstr[512], id[UID_TEXT_SIZE];
	struct http_resp resp;
	PGconn *conn;
	PGresult *res;
	double lag;
	long count = 0;
	json_object *jobj;

	fault_start(STACK_CONSUMER, env);
	fault_start(STACK_COMMAND, NULL);
	wait_lag(false, 0, CAUGHT_UP_MS);
	conn = PQconnectdb(stack.db_url);
	ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s", PQerrorMessage(conn));
	res = PQexec(conn, "BEGIN; LOCK TABLE timestamp_records IN ACCESS EXCLUSIVE MODE");
	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(res));
	PQclear(res);

	post_ticket("/api/v1/timestamp", NULL, id);
	lag = wait_lag(true, READY_MAX_LAG + 1, LAG_RISE_MS);
	stack_url(url, sizeof(url), STACK_CONSUMER, "/ready");
	ck_assert_int_eq(http_get(url, NULL, &resp), 0);
	printf("  table locked: consumer_lag_seconds_max %.3f, /ready %ld %s\n", lag, resp.status,
	       resp.body);
	ck_assert_int_eq(resp.status, 503);
	jobj = http_resp_json(&resp);
	ck_assert_msg(json_str(jobj, "down") != NULL &&
	              strncmp(json_str(jobj, "down"), "lag: consumer_lag_seconds_max ", 30) == 0,
	              "/ready is not 503 for the lag alone: %s", resp.body);
	json_object_put(jobj);
	http_resp_clear(&resp);
	/* Liveness does not care. */
	stack_url(url, sizeof(url), STACK_CONSUMER, "/health");
	ck_assert_int_eq(http_get(url, NULL, &resp), 0);
	ck_assert_int_eq(resp.status, 200);
	http_resp_clear(&resp);

	res = PQexec(conn, "ROLLBACK");
	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(conn);
	wait_lag(false, 0, CAUGHT_UP_MS);
	stack_url(url, sizeof(url), STACK_CONSUMER, "/ready");
	ck_assert_msg(wait_ready(url, CAUGHT_UP_MS, &stack.svc[STACK_CONSUMER], errstr,
	                         sizeof(errstr)) == 0,
	              "/ready not 200 once the row is written: %s", errstr);
	ck_assert_msg(store_count(stack.db_url, id, &count, errstr, sizeof(errstr)) == 0, "%s",
	              errstr);
	ck_assert_msg(count == 1, "%ld rows for the ticket posted while the table was locked", count);
}
END_TEST

#define STOPPED_MS 9000
#define TICKETS 10
#define POLLED_MS 5000 /* for the restarted consumer to poll its first batch */

/* Stopped, the consumer shows nothing; restarted, it shows how old the
 * messages it missed are. The test holds an uncommitted row with the first
 * ticket's id, so the restarted consumer's first batch waits on it (ON
 * CONFLICT waits for the other transaction) and can be looked at. */
START_TEST(lag_seconds_count_the_time_the_consumer_was_stopped)
{
	static const char *const env[] = {"DB_STATEMENT_TIMEOUT_MS=120000", NULL};
	char ids[TICKETS][UID_TEXT_SIZE], errstr[512];
	const char *vals[1];
	PGconn *conn;
	PGresult *res;
	long first_ms, ready_ms, rows;
	double lag, largest, elapsed;

	fault_start(STACK_CONSUMER, env);
	fault_start(STACK_COMMAND, NULL);
	wait_lag(false, 0, CAUGHT_UP_MS);
	ck_assert_int_eq(stack_stop_service(STACK_CONSUMER, SIGTERM, 10000, NULL), 0);

	post_ticket("/api/v1/timestamp", NULL, ids[0]);
	first_ms = clock_mono_ms(); /* its Kafka timestamp is before this */
	for (int i = 1; i < TICKETS; i++) {
		proc_sleep_ms(STOPPED_MS / TICKETS);
		post_ticket("/api/v1/timestamp", NULL, ids[i]);
	}
	conn = PQconnectdb(stack.db_url);
	ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s", PQerrorMessage(conn));
	res = PQexec(conn, "BEGIN");
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	vals[0] = ids[0];
	res = PQexecParams(conn, "INSERT INTO timestamp_records (id, event_timestamp, created_at)"
	                         " VALUES ($1::uuid, now(), now())", 1, NULL, vals, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(res));
	PQclear(res);

	/* Within POLLED_MS of its restart the lag is as old as the first
	 * ticket (its Kafka timestamp), not as old as the fetch. */
	fault_start(STACK_CONSUMER, env);
	ready_ms = clock_mono_ms();
	for (;;) {
		int parts;
		lag_scrape(&lag, &largest, &parts);
		elapsed = (double)(clock_mono_ms() - first_ms) / 1000.0;
		if (lag >= elapsed - 0.5)
			break;
		ck_assert_msg(clock_mono_ms() - ready_ms < POLLED_MS, "consumer_lag_seconds_max %.3f "
		              "%.1f s after the first ticket the stopped consumer missed, %ld ms after its "
		              "restart: not counted from the message's timestamp", lag, elapsed,
		              clock_mono_ms() - ready_ms);
		proc_sleep_ms(100);
	}
	printf("  restarted after %.1f s stopped, %d tickets missed: consumer_lag_seconds_max %.3f "
	       "%ld ms after the restart\n", (double)(ready_ms - first_ms) / 1000.0, TICKETS, lag,
	       clock_mono_ms() - ready_ms);

	res = PQexec(conn, "ROLLBACK");
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	PQfinish(conn);
	rows = fault_wait_rows(ids, TICKETS, ROWS_MS);
	ck_assert_msg(rows == TICKETS, "%ld rows for the %d tickets", rows, TICKETS);
	wait_lag(false, 0, CAUGHT_UP_MS);
	ck_assert_msg(store_count(stack.db_url, ids[0], &rows, errstr, sizeof(errstr)) == 0, "%s",
	              errstr);
	ck_assert_int_eq(rows, 1);
}
END_TEST

Suite *make_observe_suite(void)
{
	Suite *s = suite_create("observe");
	TCase *tc = tcase_create("rebuild");

	tcase_set_timeout(tc, 180);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, rebuild_status_follows_the_table);
	tcase_add_test(tc, rebuild_status_is_503_in_bounded_time_when_the_database_is_down);
	suite_add_tcase(s, tc);
	tc = tcase_create("lag");
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, lag_seconds_rise_while_the_database_is_down_and_fall_to_0_after);
	tcase_add_test(tc, ready_is_503_for_the_lag_alone_while_writes_wait);
	tcase_add_test(tc, lag_seconds_count_the_time_the_consumer_was_stopped);
	suite_add_tcase(s, tc);
	return s;
}
