/* counts_test: the second projection, timestamp_counts (records per UTC
 * minute of event_timestamp), against the real broker and database, on a
 * topic of its own. The counts must equal
 *   SELECT date_trunc('minute', event_timestamp, 'UTC'), count(*)
 *   FROM timestamp_records GROUP BY 1
 * and the test's own tally of its distinct ids, after:
 *   - duplicates: every message produced straight into the topic three
 *     times (two copies side by side, one after the rows were written), and
 *     POSTs repeated with one Idempotency-Key;
 *   - a replay by a consumer in a new group over the rows already there;
 *   - TRUNCATE timestamp_records, timestamp_counts and a replay;
 *   - `consumer-service --rebuild` with the live consumer running: the
 *     counts switch with the rows, the live consumer goes on counting into
 *     the new table, listeners hear 'switch', and the indexes carry the
 *     schema's names (none added twice when the schema is applied again
 *     after the old tables are dropped);
 *   - a generation begun by a version without counts (its table half
 *     filled, no counts table) resumed by --rebuild.
 * Event times at the edges: a minute's first and last microsecond,
 * nanoseconds the table truncates (never rounded into the next minute),
 * before 1970, years 0001 and 9999. */
#include <check.h>
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

#define SPREAD 240    /* messages 20 s apart: 80 minutes of 3 */
#define N_EDGES 8
#define N_DIRECT (SPREAD + N_EDGES)
#define N_POSTS 20    /* Idempotency-Keys, each POSTed POST_TIMES times */
#define POST_TIMES 3
#define N_LATER 10    /* new commands after the rebuild */
#define MAX_IDS (N_DIRECT + N_POSTS + N_LATER)
#define ROWS_MS 90000
#define CONSUMED_MS 90000
#define REBUILD_MS 120000
#define NOTIFY_MS 10000
#define MAX_PARTITIONS 64
#define CANONICAL_INDEXES \
	"timestamp_counts_pkey,timestamp_records_event_key,timestamp_records_pkey," \
	"timestamp_records_seq_key"

/* A distinct command of the test: its id and event time. */
struct cmd {
	char id[UID_TEXT_SIZE];
	struct ts_instant event;
};

static struct cmd cmds[MAX_IDS];
static int n_cmds;
static struct svc extra; /* --rebuild */
static char topic[128], group[96], env_pub[160], env_sub[160], env_group[160];
static const char *env[] = {env_pub, env_sub, env_group, NULL};

/* ---- the database, straight ---- */

static void sql_exec(const char *sql)
{
	char errstr[512];

	ck_assert_msg(store_exec(stack.db_url, sql, errstr, sizeof(errstr)) == 0, "%s: %s", sql,
	              errstr);
}

/* The counts table as "<minute as epoch seconds>=<count>,..." in minute
 * order, into out. */
static void counts_text(const char *table, char *out, size_t size)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
	         "SELECT coalesce(string_agg(extract(epoch FROM minute)::bigint || '=' || count, ',' "
	         "ORDER BY minute), '') FROM %s",
	         table);
	fault_sql_value(sql, out, size);
}

/* The same from the test's own commands: each distinct id once, in the
 * minute that holds its event time (as the table keeps it: microseconds,
 * truncated, then floored to the minute, also before 1970). */
static int cmp_i64(const void *a, const void *b)
{
	const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void expected_text(char *out, size_t size)
{
	int64_t minutes[MAX_IDS] = {0};
	size_t len = 0;

	for (int i = 0; i < n_cmds; i++) {
		const int64_t s = cmds[i].event.sec; /* nsec only moves within the second */
		minutes[i] = (s >= 0 ? s / 60 : -((-s + 59) / 60)) * 60;
	}
	qsort(minutes, (size_t)n_cmds, sizeof(minutes[0]), cmp_i64);
	out[0] = '\0';
	for (int i = 0; i < n_cmds;) {
		int j = i;
		while (j < n_cmds && minutes[j] == minutes[i])
			j++;
		len += (size_t)snprintf(out + len, size - len, "%s%lld=%d", i > 0 ? "," : "",
		                        (long long)minutes[i], j - i);
		ck_assert_msg(len < size, "the expected counts do not fit");
		i = j;
	}
}

/* Asserts the counts against the rows' GROUP BY and against the test's
 * own tally of its distinct ids (when: what just happened). */
static void assert_counts(const char *when)
{
	static char want[MAX_IDS * 24], got[MAX_IDS * 24];

	ck_assert_int_eq(fault_assert_counts(when), n_cmds);
	expected_text(want, sizeof(want));
	counts_text("timestamp_counts", got, sizeof(got));
	ck_assert_msg(strcmp(want, got) == 0, "counts %s differ from the test's tally:\n"
	              "  want %.300s\n  got  %.300s", when, want, got);
}

/* The names of the live tables' indexes, in order. */
static void index_names(char *out, size_t size)
{
	fault_sql_value("SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes "
	          "WHERE schemaname = current_schema() AND "
	          "tablename IN ('timestamp_records', 'timestamp_counts')",
	          out, size);
}

/* ---- the topic ---- */

/* A new distinct command with this event time (its id made here). */
static struct cmd *cmd_add(int64_t sec, int32_t nsec)
{
	struct cmd *c = &cmds[n_cmds++];

	ck_assert_int_le(n_cmds, MAX_IDS);
	uid_v4(c->id);
	c->event = (struct ts_instant){.sec = sec, .nsec = nsec};
	return c;
}

/* Produces cmds[from, to) straight into the topic, each copies times in
 * a row (the copies side by side: likely in one batch). */
static void produce(int from, int to, int copies)
{
	const size_t n = (size_t)(to - from) * (size_t)copies;
	struct topic_out *out = calloc(n, sizeof(*out));
	char(*vals)[MSG_ENCODED_MAX] = calloc((size_t)(to - from), MSG_ENCODED_MAX);
	const int64_t now_ms = msg_ts_ms(ts_now());
	char errstr[512];
	size_t k = 0;

	ck_assert(out != NULL && vals != NULL);
	for (int i = from; i < to; i++) {
		struct msg_command m = {.event_time = cmds[i].event};
		size_t len;

		memcpy(m.command_id, cmds[i].id, UID_TEXT_SIZE);
		len = msg_encode(&m, vals[i - from]);
		for (int c = 0; c < copies; c++)
			out[k++] = (struct topic_out){.key = cmds[i].id, .value = vals[i - from],
			                              .value_len = len, .ts_ms = now_ms,
			                              .partition = TOPIC_ANY_PARTITION};
	}
	ck_assert_msg(topic_produce(stack.broker, topic, out, n, errstr, sizeof(errstr)) == 0,
	              "producing into %s: %s", topic, errstr);
	free(out);
	free(vals);
}

/* POSTs N_POSTS commands through the command service, each POST_TIMES
 * times with one Idempotency-Key: one ticket each. */
static void post_with_retries(long run)
{
	for (int i = 0; i < N_POSTS; i++) {
		struct cmd *c = &cmds[n_cmds++];
		char path[96], url[256], key[96];
		const char *headers[] = {key, NULL};
		struct http_resp resp = {0};
		json_object *jobj;

		/* 19:40:00, 19:40:29, 19:40:58, 19:41:27, ...: two or three a minute */
		c->event = (struct ts_instant){.sec = 1254166800 + i * 29};
		snprintf(path, sizeof(path), "/api/v1/timestamp/2009-09-28T%02d:%02d:%02dZ",
		         (int)(c->event.sec / 3600 % 24), (int)(c->event.sec / 60 % 60),
		         (int)(c->event.sec % 60));
		stack_url(url, sizeof(url), STACK_COMMAND, "%s", path);
		snprintf(key, sizeof(key), "Idempotency-Key: counts-test-%ld-%d", run, i);
		for (int t = 0; t < POST_TIMES; t++) {
			ck_assert_msg(http_request(NULL, "POST", url, headers, NULL, 0, &resp) == 0 &&
			                  resp.status == 200,
			              "POST %s: %ld %s", path, resp.status,
			              resp.body ? resp.body : resp.errstr);
			jobj = http_resp_json(&resp);
			ck_assert_msg(jobj != NULL && json_str(jobj, "id") != NULL, "POST %s: %s", path,
			              resp.body);
			if (t == 0)
				snprintf(c->id, sizeof(c->id), "%s", json_str(jobj, "id"));
			else
				ck_assert_msg(strcmp(c->id, json_str(jobj, "id")) == 0,
				              "the same Idempotency-Key got another id: %s, then %s", c->id,
				              json_str(jobj, "id"));
			json_object_put(jobj);
			http_resp_clear(&resp);
		}
	}
}

/* Waits until every command is a row. */
static void wait_rows(void)
{
	char(*ids)[UID_TEXT_SIZE] = calloc((size_t)n_cmds, UID_TEXT_SIZE);
	long rows;

	ck_assert_ptr_nonnull(ids);
	for (int i = 0; i < n_cmds; i++)
		memcpy(ids[i], cmds[i].id, UID_TEXT_SIZE);
	rows = fault_wait_rows(ids, (size_t)n_cmds, ROWS_MS);
	free(ids);
	ck_assert_msg(rows == n_cmds, "%ld of %d commands are rows after %d ms", rows, n_cmds,
	              ROWS_MS);
}

/* Waits until group g has committed the end of every partition that has
 * messages: then every message, the duplicates too, has gone through the
 * consumer's statement. */
static void wait_consumed(const char *g)
{
	const long until = clock_mono_ms() + CONSUMED_MS;
	int64_t hi[MAX_PARTITIONS], off[MAX_PARTITIONS];
	char errstr[512];
	int n, behind;

	ck_assert_msg(topic_high_watermarks(stack.broker, topic, hi, MAX_PARTITIONS, &n, errstr,
	                                    sizeof(errstr)) == 0,
	              "%s", errstr);
	do {
		proc_sleep_ms(500);
		ck_assert_msg(topic_committed(stack.broker, topic, g, off, n, errstr,
		                              sizeof(errstr)) == 0,
		              "%s", errstr);
		behind = 0;
		for (int p = 0; p < n; p++)
			behind += hi[p] > 0 && off[p] != hi[p];
	} while (behind > 0 && clock_mono_ms() < until);
	ck_assert_msg(behind == 0, "group %s: %d partitions not committed to their end within %d ms",
	              g, behind, CONSUMED_MS);
}

/* The live consumer in group suffix (a new group replays the topic). */
static void consumer_start(const char *suffix)
{
	snprintf(env_group, sizeof(env_group), "KAFKA_GROUP_ID=%s-%s", group, suffix);
	fault_start(STACK_CONSUMER, env);
}

static const char *current_group(void)
{
	return env_group + strlen("KAFKA_GROUP_ID=");
}

/* No rebuild left behind: its tables dropped, its row failed. */
static void rebuilds_clear(void)
{
	sql_exec("UPDATE timestamp_rebuilds SET state = 'failed', error = 'counts_test cleanup' "
	         "WHERE state IN ('replaying', 'switching'); "
	         "DO $$ DECLARE t text; BEGIN FOR t IN SELECT tablename FROM pg_tables "
	         "WHERE tablename ~ '^timestamp_(records|counts)_(old_)?g[0-9]+$' LOOP "
	         "EXECUTE format('DROP TABLE %I', t); END LOOP; END $$");
}

static void setup(void)
{
	const long run = clock_mono_ms();

	memset(&extra, 0, sizeof(extra));
	extra.status = SVC_NOT_RUNNING;
	n_cmds = 0;
	snprintf(topic, sizeof(topic), "timestamp.counts-test-%ld.v1", run);
	snprintf(group, sizeof(group), "counts-test-%ld", run);
	snprintf(env_pub, sizeof(env_pub), "KAFKA_PUBLISH_TOPIC=%s", topic);
	snprintf(env_sub, sizeof(env_sub), "KAFKA_CONSUMER_TOPIC=%s", topic);
}

static void teardown(void)
{
	fault_teardown(&extra, 1);
	rebuilds_clear();
}

/* Runs `consumer-service --rebuild` (the live consumer's environment) and
 * waits for it; returns its exit status. */
static int rebuild(void)
{
	static const char *const args[] = {"--rebuild", NULL};
	const long until = clock_mono_ms() + REBUILD_MS;
	char errstr[1024];

	ck_assert_msg(stack_spawn_args(&extra, STACK_CONSUMER, fault_second_port(), "rebuild",
	                               "consumer-counts-rebuild.log", args, env, errstr,
	                               sizeof(errstr)) == 0,
	              "%s", errstr);
	while (svc_alive(&extra) && clock_mono_ms() < until)
		proc_sleep_ms(50);
	ck_assert_msg(!svc_alive(&extra), "--rebuild still runs after %d ms (see %s)", REBUILD_MS,
	              extra.log_path);
	return extra.status;
}

/* Waits up to NOTIFY_MS for a notification whose payload starts with want
 * on conn; copies the payload into got[size]. */
static bool heard(PGconn *conn, const char *want, char *got, size_t size)
{
	const long until = clock_mono_ms() + NOTIFY_MS;

	while (clock_mono_ms() < until) {
		PGnotify *n;
		ck_assert_msg(PQconsumeInput(conn) == 1, "LISTEN: %s", PQerrorMessage(conn));
		while ((n = PQnotifies(conn)) != NULL) {
			const bool match = strncmp(n->extra, want, strlen(want)) == 0;
			if (match)
				snprintf(got, size, "%s", n->extra);
			PQfreemem(n);
			if (match)
				return true;
		}
		proc_sleep_ms(50);
	}
	return false;
}

START_TEST(counts_equal_group_by_after_duplicates_and_replays)
{
	static char before[MAX_IDS * 24], got[MAX_IDS * 24];
	const int64_t t0 = 1254164580; /* 2009-09-28T19:03:00Z */
	char names[512], gen[16], sql[256], old[64], payload[64], want[64];
	PGconn *listener;
	PGresult *res;
	char stmt[1024], rebuild_log[600];
	long log_from;
	int first_later;

	/* The command service creates the topic, the consumer the tables,
	 * which other suites share: emptied. */
	fault_start(STACK_COMMAND, env);
	consumer_start("a");
	sql_exec("TRUNCATE timestamp_records, timestamp_counts");

	for (int i = 0; i < SPREAD; i++)
		cmd_add(t0 + i * 20, (i % 7) * 1000);
	cmd_add(t0 + 3600, 0);                           /* a minute's first microsecond */
	cmd_add(t0 + 3659, 999999000);                   /* ... and its last */
	cmd_add(t0 + 3719, 999999999);                   /* truncated, not rounded up */
	cmd_add(-1, 500000000);                          /* 1969-12-31T23:59:59.5Z */
	cmd_add(-60, 0);                                 /* 1969-12-31T23:59:00Z */
	cmd_add(-62135596800, 0);                        /* 0001-01-01T00:00:00Z */
	cmd_add(253402300799, 999999000);                /* 9999-12-31T23:59:59.999999Z */
	cmd_add(253402300740, 0);                        /* 9999-12-31T23:59:00Z */
	ck_assert_int_eq(n_cmds, N_DIRECT);

	/* Duplicates: two copies side by side, POSTs repeated, and once the
	 * rows are there a third copy of each. */
	produce(0, N_DIRECT, 2);
	post_with_retries(clock_mono_ms());
	wait_rows();
	produce(0, N_DIRECT, 1);
	wait_consumed(current_group());
	assert_counts("after duplicates");
	counts_text("timestamp_counts", before, sizeof(before));

	/* A new group over the rows already there: nothing counted again. */
	fault_sigterm(&stack.svc[STACK_CONSUMER]);
	consumer_start("b");
	wait_consumed(current_group());
	assert_counts("after a replay by a new group over the rows");

	/* Both emptied, then a replay: every row counted once. */
	fault_sigterm(&stack.svc[STACK_CONSUMER]);
	sql_exec("TRUNCATE timestamp_records, timestamp_counts");
	consumer_start("c");
	wait_rows();
	wait_consumed(current_group());
	assert_counts("after TRUNCATE and a replay");

	/* The blue-green rebuild, the live consumer running. */
	listener = PQconnectdb(stack.db_url);
	ck_assert_msg(PQstatus(listener) == CONNECTION_OK, "%s", PQerrorMessage(listener));
	res = PQexec(listener, "LISTEN timestamp_records");
	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(res));
	PQclear(res);
	ck_assert_msg(rebuild() == 0, "--rebuild failed (see %s)", extra.log_path);
	ck_assert_msg(heard(listener, "switch", payload, sizeof(payload)),
	              "no 'switch' on channel timestamp_records within %d ms of the rebuild",
	              NOTIFY_MS);
	PQfinish(listener);
	/* switch:<n>, n the new table's largest seq at the switch: where a
	 * listener reads on (nothing is written meanwhile here). */
	fault_sql_value("SELECT 'switch:' || max(seq) FROM timestamp_records", want, sizeof(want));
	ck_assert_str_eq(payload, want);
	fault_sql_value("SELECT max(generation) FROM timestamp_rebuilds WHERE state = 'live'", gen,
	          sizeof(gen));
	assert_counts("after --rebuild");
	snprintf(old, sizeof(old), "timestamp_counts_old_g%s", gen);
	counts_text(old, got, sizeof(got));
	ck_assert_msg(strcmp(before, got) == 0, "the old counts table %s is not what was live", old);
	index_names(names, sizeof(names));
	printf("  generation %s live; indexes: %s\n", gen, names);
	ck_assert_str_eq(names, CANONICAL_INDEXES);

	/* The live consumer goes on counting, into the tables now live. */
	first_later = n_cmds;
	for (int i = 0; i < N_LATER; i++)
		cmd_add(t0 + 7200 + i * 13, 0);
	produce(first_later, n_cmds, 1);
	produce(0, N_LATER, 1); /* and old ones again */
	wait_rows();
	wait_consumed(current_group());
	assert_counts("after writes into the switched tables");

	/* The old tables dropped, the schema applied again (a consumer's
	 * start): the same indexes, none twice. */
	snprintf(sql, sizeof(sql), "DROP TABLE timestamp_records_old_g%s, timestamp_counts_old_g%s",
	         gen, gen);
	sql_exec(sql);
	fault_sigterm(&stack.svc[STACK_CONSUMER]);
	consumer_start("c");
	index_names(names, sizeof(names));
	ck_assert_str_eq(names, CANONICAL_INDEXES);
	fault_sql_value("SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE "
	          "contype = 'p' AND conrelid IN ('timestamp_records'::regclass, "
	          "'timestamp_counts'::regclass)",
	          names, sizeof(names));
	ck_assert_str_eq(names, "timestamp_counts_pkey,timestamp_records_pkey");

	/* A generation begun by a version without counts (its table half
	 * filled, no counts table), resumed: the counts table is made from
	 * the rows already there, and the replay over them counts none twice. */
	snprintf(sql, sizeof(sql), "SELECT %s + 1", gen);
	fault_sql_value(sql, gen, sizeof(gen));
	snprintf(stmt, sizeof(stmt),
	         "CREATE TABLE timestamp_records_g%s (LIKE timestamp_records INCLUDING ALL); "
	         "INSERT INTO timestamp_records_g%s (id, event_timestamp, created_at) SELECT id, "
	         "event_timestamp, created_at FROM timestamp_records ORDER BY id LIMIT %d; "
	         "INSERT INTO timestamp_rebuilds (generation, table_name, group_id, state) VALUES "
	         "(%s, 'timestamp_records_g%s', '%s.rebuild-g%s', 'replaying')",
	         gen, gen, n_cmds / 2, gen, gen, current_group(), gen);
	sql_exec(stmt);
	snprintf(rebuild_log, sizeof(rebuild_log), "%s/consumer-counts-rebuild.log", stack.state_dir);
	log_from = fault_file_size(rebuild_log);
	ck_assert_msg(rebuild() == 0, "the resumed --rebuild failed (see %s)", rebuild_log);
	snprintf(names, sizeof(names), "rebuild g%s: resuming into timestamp_records_g%s", gen, gen);
	ck_assert_msg(fault_grep(rebuild_log, log_from, names, NULL, NULL) == 1,
	              "the rebuild did not log \"%s\" (see %s)", names, rebuild_log);
	assert_counts("after resuming a rebuild begun without a counts table");
	index_names(names, sizeof(names));
	ck_assert_str_eq(names, CANONICAL_INDEXES);
}
END_TEST

Suite *make_counts_suite(void)
{
	Suite *s = suite_create("counts");
	TCase *tc = tcase_create("counts");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, counts_equal_group_by_after_duplicates_and_replays);
	suite_add_tcase(s, tc);
	return s;
}
