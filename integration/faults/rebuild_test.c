/* rebuild_test: the blue-green rebuild (`consumer-service --rebuild`) against
 * the real broker and database, on a topic of its own whose projection is
 * the live table (dropped first, then filled by a consumer in a new group).
 *   - Under load: 20 readers GET known ids and writers POST for the whole
 *     rebuild and switch; not one answer for a known id is other than 200,
 *     every ticket is readable afterwards, the new table holds every row of
 *     the old one unchanged, the rebuild exits 0 and its row says live.
 *   - While it runs its row shows the progress; SIGKILLed half-way and
 *     started again, it resumes the same generation from its group's
 *     committed offsets and ends with identical rows.
 *   - A rebuild listens on no port; a second one while it runs is refused
 *     and changes nothing; the first, SIGTERMed, stays resumable and the
 *     next run finishes it. */
#include <check.h>
#include <curl/curl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "fault.h"
#include "faults.h"
#include "msg.h"
#include "store.h"
#include "topic.h"
#include "ts.h"

#define RB_TOPIC "timestamp.rebuild-test.v1"
#define SEED 20000
#define SEED_CHUNK 2000
#define KNOWN_EVERY 20 /* every 20th seeded id is read by the readers */
#define READERS 20
#define WRITERS 2
#define WRITER_PAUSE_MS 5
#define ROWS_MS 90000
#define REBUILD_MS 120000
#define REFUSE_MS 30000
#define KILL_MS 60000
#define READER_PAUSE_MS 5 /* 20 readers at most ~4,000 GETs/s: the machine is shared */
/* A rebuild slow enough to be caught half-way (one message a statement),
 * committing its offsets every 200 ms rather than every 5 s. */
#define SLOW_BATCH "CONSUMER_BATCH_SIZE=1"
#define FAST_COMMIT "KAFKA_PROPERTIES=auto.commit.interval.ms=200"

static struct svc rebuild[2];
static struct fault_load load;
static char (*seeded)[UID_TEXT_SIZE];
static char env_group[64];
static const char *env_live[] = {"KAFKA_PUBLISH_TOPIC=" RB_TOPIC, "KAFKA_CONSUMER_TOPIC=" RB_TOPIC,
                                 env_group, NULL};
static const char *env_slow[] = {"KAFKA_CONSUMER_TOPIC=" RB_TOPIC, env_group, SLOW_BATCH,
                                 FAST_COMMIT, NULL};

/* ---- the database, straight ---- */

static long sql_long(const char *sql)
{
	char v[64];

	fault_sql_value(sql, v, sizeof(v));
	return v[0] ? strtol(v, NULL, 10) : -1;
}

/* No rebuild left from an earlier test: its tables dropped, its row failed
 * (a row left replaying would be resumed). */
static void rebuilds_clear(void)
{
	char errstr[512];

	ck_assert_msg(store_exec(stack.db_url,
	                         "UPDATE timestamp_rebuilds SET state = 'failed', "
	                         "error = 'rebuild_test cleanup' "
	                         "WHERE state IN ('replaying', 'switching'); "
	                         "DO $$ DECLARE t text; BEGIN FOR t IN SELECT tablename FROM pg_tables "
	                         "WHERE tablename ~ '^timestamp_(records|counts)_(old_)?g[0-9]+$' LOOP "
	                         "EXECUTE format('DROP TABLE %I', t); END LOOP; END $$",
	                         errstr, sizeof(errstr)) == 0,
	              "cleanup: %s", errstr);
}

static void setup(void)
{
	char errstr[512];

	memset(rebuild, 0, sizeof(rebuild));
	memset(&load, 0, sizeof(load));
	for (int i = 0; i < 2; i++)
		rebuild[i].status = SVC_NOT_RUNNING;
	seeded = NULL;
	snprintf(env_group, sizeof(env_group), "KAFKA_GROUP_ID=rebuild-test-%ld", clock_mono_ms());
	/* Only this test's topic in the live table; the consumer makes it
	 * again (schema.sql), and timestamp_rebuilds, if need be. */
	ck_assert_msg(store_exec(stack.db_url, "DROP TABLE IF EXISTS timestamp_records, timestamp_counts",
	                         errstr, sizeof(errstr)) == 0,
	              "%s", errstr);
}

static void teardown(void)
{
	fault_load_stop(&load);
	fault_teardown(rebuild, 2);
	rebuilds_clear();
	free(seeded);
	if (load.log.a != NULL)
		fault_log_free(&load.log);
}

/* ---- the stack and the topic ---- */

/* Produces SEED commands straight into RB_TOPIC (their ids into seeded). */
static void seed(void)
{
	struct topic_out *out = calloc(SEED_CHUNK, sizeof(*out));
	char(*vals)[MSG_ENCODED_MAX] = calloc(SEED_CHUNK, MSG_ENCODED_MAX);
	char errstr[512];

	seeded = calloc(SEED, UID_TEXT_SIZE);
	ck_assert(out != NULL && vals != NULL && seeded != NULL);
	for (int done = 0; done < SEED; done += SEED_CHUNK) {
		const struct ts_instant now = ts_now();
		for (int i = 0; i < SEED_CHUNK; i++) {
			struct msg_command m;
			uid_v4(m.command_id);
			memcpy(seeded[done + i], m.command_id, UID_TEXT_SIZE);
			m.event_time = (struct ts_instant){.sec = 1254164592 + done + i, .nsec = i * 1000};
			out[i] = (struct topic_out){.key = seeded[done + i], .value = vals[i],
			                            .value_len = msg_encode(&m, vals[i]),
			                            .ts_ms = msg_ts_ms(now),
			                            .partition = TOPIC_ANY_PARTITION};
		}
		ck_assert_msg(topic_produce(stack.broker, RB_TOPIC, out, SEED_CHUNK, errstr,
		                            sizeof(errstr)) == 0,
		              "producing into %s: %s", RB_TOPIC, errstr);
	}
	free(out);
	free(vals);
}

/* The command service (it creates the topic), SEED messages, the consumer
 * in a new group (it replays them into the new live table), query-service;
 * returns once every seeded message is a row. */
static void live_start(void)
{
	long rows;

	fault_start(STACK_COMMAND, env_live);
	seed();
	fault_start(STACK_CONSUMER, env_live); /* it applies the schema */
	rebuilds_clear();
	fault_start(STACK_QUERY, NULL);
	rows = fault_wait_rows(seeded, SEED, ROWS_MS);
	ck_assert_msg(rows == SEED, "%ld of %d seeded messages are rows after %d ms", rows, SEED,
	              ROWS_MS);
}

/* Starts `consumer-service --rebuild` as rebuild[i] with env, logging to
 * consumer-rebuild.log. It listens nowhere: SERVER_PORT only has to be
 * valid. */
static void rebuild_start(int i, const char *const *env)
{
	static const char *const args[] = {"--rebuild", NULL};
	char errstr[1024];

	ck_assert_msg(stack_spawn_args(&rebuild[i], STACK_CONSUMER, fault_second_port(), "rebuild",
	                               "consumer-rebuild.log", args, env, errstr,
	                               sizeof(errstr)) == 0,
	              "%s", errstr);
}

/* Runs `consumer-service --verify` (as rebuild[i], with env) and asserts
 * that the live table and the topic agree (exit 0). */
static void verify_agrees(int i, const char *const *env)
{
	static const char *const args[] = {"--verify", NULL};
	const long until = clock_mono_ms() + REBUILD_MS;
	char errstr[1024];

	ck_assert_msg(stack_spawn_args(&rebuild[i], STACK_CONSUMER, fault_second_port(), "verify",
	                               "consumer-verify.log", args, env, errstr,
	                               sizeof(errstr)) == 0,
	              "%s", errstr);
	while (svc_alive(&rebuild[i]) && clock_mono_ms() < until)
		proc_sleep_ms(50);
	ck_assert_msg(!svc_alive(&rebuild[i]), "--verify still runs after %d ms", REBUILD_MS);
	ck_assert_msg(rebuild[i].status == 0, "--verify exited %d: table and topic differ (see %s)",
	              rebuild[i].status, rebuild[i].log_path);
}

/* Waits up to ms for rebuild[i] to exit; returns its status. */
static int rebuild_wait(int i, long ms)
{
	const long until = clock_mono_ms() + ms;

	while (svc_alive(&rebuild[i]) && clock_mono_ms() < until)
		proc_sleep_ms(50);
	ck_assert_msg(!svc_alive(&rebuild[i]), "--rebuild still runs after %ld ms (see %s)", ms,
	              rebuild[i].log_path);
	return rebuild[i].status;
}

/* Waits up to ms until the newest rebuild row is replaying with at least
 * min_done messages done (and, with committed, its group has committed
 * some offsets); returns its generation. */
static int wait_replaying(long min_done, bool committed, long ms)
{
	const long until = clock_mono_ms() + ms;
	char group[128], v[64];
	long done = -1, gen = -1;
	int64_t offs[6];

	while (clock_mono_ms() < until && svc_alive(&rebuild[0])) {
		fault_sql_value("SELECT records_done FROM timestamp_rebuilds WHERE state = 'replaying' "
		          "ORDER BY generation DESC LIMIT 1",
		          v, sizeof(v));
		done = v[0] ? strtol(v, NULL, 10) : -1;
		if (done >= min_done) {
			int64_t sum = 0;
			gen = sql_long("SELECT max(generation) FROM timestamp_rebuilds");
			fault_sql_value("SELECT group_id FROM timestamp_rebuilds ORDER BY generation DESC LIMIT 1",
			          group, sizeof(group));
			if (!committed)
				return (int)gen;
			if (topic_committed(stack.broker, RB_TOPIC, group, offs, 6, v, sizeof(v)) == 0) {
				for (int i = 0; i < 6; i++)
					sum += offs[i] > 0 ? offs[i] : 0;
				if (sum > 0)
					return (int)gen;
			}
		}
		proc_sleep_ms(50);
	}
	ck_abort_msg("no rebuild replaying with %ld messages done%s within %ld ms (last: %ld; see %s)",
	             min_done, committed ? " and offsets committed" : "", ms, done,
	             rebuild[0].log_path);
	return -1;
}

/* Asserts that generation gen is live, and that every row of its old
 * table is in the live one with the same event_timestamp and created_at
 * (and, with both_ways, the reverse). Returns the old table's row count. */
static long assert_switched(int gen, bool both_ways)
{
	char sql[512], state[32], old[64];
	long old_rows, missing, extra;

	snprintf(sql, sizeof(sql), "SELECT state FROM timestamp_rebuilds WHERE generation = %d", gen);
	fault_sql_value(sql, state, sizeof(state));
	ck_assert_msg(strcmp(state, "live") == 0, "generation %d is %s, not live", gen, state);
	snprintf(sql, sizeof(sql), "SELECT old_table FROM timestamp_rebuilds WHERE generation = %d",
	         gen);
	fault_sql_value(sql, old, sizeof(old));
	ck_assert_msg(strcmp(old, "timestamp_records_old_g") > 0 && strlen(old) < 40,
	              "old_table of generation %d: '%s'", gen, old);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", old);
	old_rows = sql_long(sql);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM %s o WHERE NOT EXISTS (SELECT 1 FROM timestamp_records n "
	         "WHERE n.id = o.id AND n.event_timestamp = o.event_timestamp AND "
	         "n.created_at = o.created_at)",
	         old);
	missing = sql_long(sql);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM timestamp_records n WHERE NOT EXISTS (SELECT 1 FROM %s o "
	         "WHERE n.id = o.id AND n.event_timestamp = o.event_timestamp AND "
	         "n.created_at = o.created_at)",
	         old);
	extra = sql_long(sql);
	printf("  generation %d live: old table %ld rows, %ld of them missing or different in the "
	       "new one, %ld rows only in the new one\n",
	       gen, old_rows, missing, extra);
	ck_assert_msg(old_rows >= SEED, "the old table has %ld rows, fewer than the %d seeded",
	              old_rows, SEED);
	ck_assert_msg(missing == 0, "%ld rows of the old table are missing or different in the new",
	              missing);
	if (both_ways)
		ck_assert_msg(extra == 0, "%ld rows are only in the new table", extra);
	fault_assert_counts("after the switch");
	return old_rows;
}

/* Keeps the done count of the first progress line ("... X of Y messages
 * (...") it sees. */
static void first_done(const char *line, void *arg)
{
	long long *done = arg;
	const char *p = strstr(line, "\"msg\":\"rebuild g");

	if (*done < 0 && p != NULL && (p = strstr(p, ": ")) != NULL &&
	    sscanf(p, ": %lld of ", done) != 1)
		*done = -1;
}

/* ---- readers ---- */

struct readers {
	char (*ids)[UID_TEXT_SIZE];
	size_t n;
	atomic_bool stop;
	atomic_long ok, failed;
	pthread_mutex_t mu;
	char first_failure[256];
	pthread_t tid[READERS];
	int started;
};

struct reader_arg {
	struct readers *r;
	int k;
};

static void *reader_main(void *arg)
{
	struct reader_arg *a = arg;
	struct readers *r = a->r;
	CURL *curl = curl_easy_init();
	struct http_resp resp;
	char url[160];

	for (size_t i = (size_t)a->k; curl != NULL && !atomic_load(&r->stop); i += READERS) {
		const char *id = r->ids[i % r->n];
		stack_url(url, sizeof(url), STACK_QUERY, "/api/v1/timestamp/%s", id);
		if (http_request(curl, "GET", url, NULL, NULL, 0, &resp) == 0 && resp.status == 200) {
			atomic_fetch_add(&r->ok, 1);
		} else {
			if (atomic_fetch_add(&r->failed, 1) == 0) {
				pthread_mutex_lock(&r->mu);
				snprintf(r->first_failure, sizeof(r->first_failure), "GET %s: %ld %.100s", id,
				         resp.status, resp.body ? resp.body : resp.errstr);
				pthread_mutex_unlock(&r->mu);
			}
		}
		http_resp_clear(&resp);
		proc_sleep_ms(READER_PAUSE_MS);
	}
	if (curl != NULL)
		curl_easy_cleanup(curl);
	free(a);
	return NULL;
}

static void readers_start(struct readers *r, char (*ids)[UID_TEXT_SIZE], size_t n)
{
	memset(r, 0, sizeof(*r));
	r->ids = ids;
	r->n = n;
	pthread_mutex_init(&r->mu, NULL);
	for (int k = 0; k < READERS; k++) {
		struct reader_arg *a = malloc(sizeof(*a));
		ck_assert_ptr_nonnull(a);
		*a = (struct reader_arg){r, k};
		ck_assert_int_eq(pthread_create(&r->tid[k], NULL, reader_main, a), 0);
		r->started++;
	}
}

static void readers_stop(struct readers *r)
{
	atomic_store(&r->stop, true);
	for (int k = 0; k < r->started; k++)
		pthread_join(r->tid[k], NULL);
	r->started = 0;
	pthread_mutex_destroy(&r->mu);
}

/* ---- the tests ---- */

START_TEST(zero_downtime_rebuild_under_load)
{
	const char *env[] = {"KAFKA_CONSUMER_TOPIC=" RB_TOPIC, env_group, "CONSUMER_BATCH_SIZE=200",
	                     NULL};
	char rebuild_log[1024];
	char(*known)[UID_TEXT_SIZE] = calloc(SEED / KNOWN_EVERY, UID_TEXT_SIZE);
	char(*tickets)[UID_TEXT_SIZE] = NULL;
	struct readers r;
	long log_from, ok_at_exit, rows;
	size_t n_tickets, readable;
	int status, gen;

	snprintf(rebuild_log, sizeof(rebuild_log), "%s/consumer-rebuild.log", stack.state_dir);
	live_start();
	for (int i = 0; i < SEED / KNOWN_EVERY; i++)
		memcpy(known[i], seeded[i * KNOWN_EVERY], UID_TEXT_SIZE);

	readers_start(&r, known, SEED / KNOWN_EVERY);
	fault_load_start(&load, WRITERS, WRITER_PAUSE_MS);
	proc_sleep_ms(500); /* reads and writes before the rebuild starts too */
	log_from = fault_file_size(rebuild_log);
	rebuild_start(0, env);
	status = rebuild_wait(0, REBUILD_MS);
	ok_at_exit = atomic_load(&r.ok);
	proc_sleep_ms(1000); /* and after the switch */
	fault_load_stop(&load);
	readers_stop(&r);

	printf("  rebuild under load: exit %d; readers: %ld answers 200, %ld other (%ld of them "
	       "before the rebuild exited); writers: %zu POSTs\n",
	       status, atomic_load(&r.ok), atomic_load(&r.failed), ok_at_exit,
	       fault_log_count(&load.log));
	ck_assert_msg(status == 0, "--rebuild exited %d (see %s)", status, rebuild_log);
	ck_assert_msg(fault_grep(rebuild_log, log_from, "switched in", NULL, NULL) > 0,
	              "--rebuild did not print its switch time (see %s)", rebuild_log);
	ck_assert_msg(atomic_load(&r.failed) == 0, "%ld reads of known ids failed; the first: %s",
	              atomic_load(&r.failed), r.first_failure);
	ck_assert_msg(ok_at_exit > 0 && atomic_load(&r.ok) > ok_at_exit,
	              "the readers did not read both during and after the rebuild (%ld, %ld)",
	              ok_at_exit, atomic_load(&r.ok));

	/* Every ticket the writers got is readable: the live consumer went on
	 * writing, into the new table. */
	tickets = fault_tickets(&load.log, &n_tickets);
	ck_assert_msg(n_tickets > 0, "no POST got a ticket");
	rows = fault_wait_rows(tickets, n_tickets, ROWS_MS);
	readable = fault_count_readable(tickets, n_tickets);
	printf("  %zu tickets: %ld rows, %zu readable\n", n_tickets, rows, readable);
	ck_assert_msg(rows == (long)n_tickets && readable == n_tickets,
	              "of %zu tickets %ld are rows and %zu readable", n_tickets, rows, readable);

	gen = (int)sql_long("SELECT max(generation) FROM timestamp_rebuilds");
	assert_switched(gen, false);
	verify_agrees(1, env); /* the new live table against the whole topic */
	free(tickets);
	free(known);
}
END_TEST

START_TEST(killed_rebuild_resumes)
{
	const char *env_fast[] = {"KAFKA_CONSUMER_TOPIC=" RB_TOPIC, env_group, NULL};
	char rebuild_log[1024], group[128], resuming[256], errstr[256], sql[256], progress[8];
	int64_t offs[6], committed = 0;
	long log_from, rows_before;
	long long resumed_at = -1;
	int gen, status;

	snprintf(rebuild_log, sizeof(rebuild_log), "%s/consumer-rebuild.log", stack.state_dir);
	live_start();
	rows_before = sql_long("SELECT count(*) FROM timestamp_records");

	rebuild_start(0, env_slow);
	gen = wait_replaying(SEED / 10, true, KILL_MS);
	/* Its row tells the progress while it runs (the live consumer serves
	 * it): the total taken at start, a rate, a recent updated_at. */
	snprintf(sql, sizeof(sql),
	         "SELECT records_total >= %d AND records_done <= records_total AND rate > 0 AND "
	         "updated_at > now() - interval '5 s' FROM timestamp_rebuilds WHERE generation = %d",
	         SEED, gen);
	fault_sql_value(sql, progress, sizeof(progress));
	ck_assert_msg(strcmp(progress, "t") == 0, "the row of generation %d does not show the "
	              "progress of the running rebuild", gen);
	ck_assert_msg(fault_grep(rebuild_log, 0, " messages (", NULL, NULL) > 0 &&
	                  fault_grep(rebuild_log, 0, "/s, ETA ", NULL, NULL) > 0,
	              "no progress line in %s", rebuild_log);
	ck_assert_int_eq(svc_stop(&rebuild[0], SIGKILL, 10000, NULL), 128 + SIGKILL);
	fault_sql_value("SELECT group_id FROM timestamp_rebuilds ORDER BY generation DESC LIMIT 1", group,
	          sizeof(group));
	ck_assert_msg(topic_committed(stack.broker, RB_TOPIC, group, offs, 6, errstr,
	                              sizeof(errstr)) == 0,
	              "%s", errstr);
	for (int i = 0; i < 6; i++)
		committed += offs[i] > 0 ? offs[i] : 0;
	printf("  rebuild g%d SIGKILLed with %lld messages committed by %s\n", gen,
	       (long long)committed, group);
	ck_assert_msg(committed > 0 && committed < SEED,
	              "killed with %lld of %d messages committed: not half-way", (long long)committed,
	              SEED);

	log_from = fault_file_size(rebuild_log);
	rebuild_start(1, env_fast);
	status = rebuild_wait(1, REBUILD_MS);
	ck_assert_msg(status == 0, "the resumed --rebuild exited %d (see %s)", status, rebuild_log);
	snprintf(resuming, sizeof(resuming), "rebuild g%d: resuming into timestamp_records_g%d as "
	         "group %s", gen, gen, group);
	ck_assert_msg(fault_grep(rebuild_log, log_from, resuming, NULL, NULL) == 1,
	              "the second run did not log \"%s\" (see %s)", resuming, rebuild_log);
	ck_assert_int_eq(sql_long("SELECT max(generation) FROM timestamp_rebuilds"), gen);
	fault_grep(rebuild_log, log_from, " messages (", first_done, &resumed_at);
	printf("  resumed at %lld messages done\n", resumed_at);
	ck_assert_msg(resumed_at >= committed, "the second run started at %lld messages done, "
	              "below the %lld committed", resumed_at, (long long)committed);
	ck_assert_msg(assert_switched(gen, true) == rows_before,
	              "the old table changed while nothing was written");
}
END_TEST

START_TEST(second_rebuild_is_refused)
{
	const char *env_fast[] = {"KAFKA_CONSUMER_TOPIC=" RB_TOPIC, env_group, NULL};
	const char *snapshot_sql =
	    "SELECT string_agg(generation || ' ' || table_name || ' ' || group_id || ' ' || state, "
	    "'; ' ORDER BY generation) || ' | ' || (SELECT string_agg(tablename, ',' ORDER BY "
	    "tablename) FROM pg_tables WHERE tablename LIKE 'timestamp_records%') "
	    "FROM timestamp_rebuilds WHERE state <> 'failed' OR error IS DISTINCT FROM "
	    "'rebuild_test cleanup'";
	char rebuild_log[1024], before[1024], after[1024], refusal[96], sql[160], state[32];
	char url[96];
	struct http_resp resp = {0};
	long log_from;
	int gen, status;

	snprintf(rebuild_log, sizeof(rebuild_log), "%s/consumer-rebuild.log", stack.state_dir);
	live_start();
	rebuild_start(0, env_slow);
	gen = wait_replaying(1, false, KILL_MS);
	fault_sql_value(snapshot_sql, before, sizeof(before));

	/* It listens nowhere: its SERVER_PORT stays free for a live consumer. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", fault_second_port());
	ck_assert_msg(http_request(NULL, "GET", url, NULL, NULL, 0, &resp) != 0 &&
	                  resp.curl_code == CURLE_COULDNT_CONNECT,
	              "a running --rebuild answers on its SERVER_PORT (%s: %ld)", url, resp.status);
	http_resp_clear(&resp);

	log_from = fault_file_size(rebuild_log);
	rebuild_start(1, env_slow);
	status = rebuild_wait(1, REFUSE_MS);
	fault_sql_value(snapshot_sql, after, sizeof(after));
	snprintf(refusal, sizeof(refusal), "another rebuild is running (generation %d)", gen);
	printf("  second rebuild: exit %d; state before: %s\n", status, before);
	ck_assert_msg(status == 1, "the second --rebuild exited %d, not 1 (see %s)", status,
	              rebuild_log);
	ck_assert_msg(fault_grep(rebuild_log, log_from, refusal, NULL, NULL) == 1,
	              "the second --rebuild did not say \"%s\" (see %s)", refusal, rebuild_log);
	ck_assert_msg(strstr(before, " replaying") != NULL, "no rebuild replaying: %s", before);
	ck_assert_msg(strcmp(before, after) == 0, "the refused rebuild changed things:\n"
	              "  before: %s\n  after:  %s", before, after);

	/* The first one was not disturbed: SIGTERMed, it leaves its
	 * generation resumable, and the next --rebuild finishes it. */
	ck_assert_msg(svc_alive(&rebuild[0]), "the first rebuild ended (see %s)", rebuild_log);
	ck_assert_int_eq(svc_stop(&rebuild[0], SIGTERM, 15000, NULL), 1);
	snprintf(sql, sizeof(sql), "SELECT state FROM timestamp_rebuilds WHERE generation = %d", gen);
	fault_sql_value(sql, state, sizeof(state));
	ck_assert_msg(strcmp(state, "replaying") == 0, "after SIGTERM generation %d is %s", gen,
	              state);
	ck_assert_msg(fault_grep(rebuild_log, log_from, "stopped by a signal", NULL, NULL) == 1,
	              "the SIGTERMed rebuild did not say why it stopped (see %s)", rebuild_log);
	rebuild_start(1, env_fast);
	ck_assert_int_eq(rebuild_wait(1, REBUILD_MS), 0);
	assert_switched(gen, true);
}
END_TEST

Suite *make_rebuild_suite(void)
{
	Suite *s = suite_create("rebuild");
	TCase *tc = tcase_create("blue-green");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, zero_downtime_rebuild_under_load);
	tcase_add_test(tc, killed_rebuild_resumes);
	tcase_add_test(tc, second_rebuild_is_refused);
	suite_add_tcase(s, tc);
	return s;
}
