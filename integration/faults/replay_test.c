/* replay_test: the operator's replay and consistency commands of the
 * consumer, against the real broker and database.
 *
 * replay: `consumer-service --reset-offsets` moves an idle group to a chosen
 * point. Commands with known record timestamps are produced straight into
 * partitions of a topic of the test's own (one partition left empty); a
 * consumer of the group reads them all; then to-datetime sets each
 * partition to its first message at or after the instant (the end where
 * there is none), checked against the delivery reports' offsets and
 * timestamps, and the consumer started again against an emptied table
 * writes exactly those messages' rows; --dry-run prints the plan and
 * leaves every committed offset as it was; to-offset sets the partitions
 * named and no other, and refuses an offset outside the log or a partition
 * that does not exist; the reset refuses while a consumer of the group
 * runs; bad arguments exit 2 with a line saying what is wrong.
 *
 * verify: `consumer-service --verify` agrees (exit 0) with a table the
 * consumer built from a topic holding poison messages and a command sent
 * twice, and names the id (exit 1) when a row is deleted, a row is added
 * that has no message, or a row's created_at is changed; and the minute
 * (exit 1) when timestamp_counts counts it otherwise than the rows, misses
 * it, or counts a minute with no rows. */
#include <check.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "faults.h"
#include "kafka.h"
#include "msg.h"
#include "store.h"

#define PARTITIONS 4      /* the last one stays empty */
#define PER_PARTITION 10
#define N_CMDS ((PARTITIONS - 1) * PER_PARTITION)
#define CLI_MS 60000      /* one run of the command, Kafka's round trips included */
#define CONSUMED_MS 90000 /* a consumer joins, writes and commits everything */
#define KAFKA_MS 10000
#define T0_MS 1614834367000LL /* 2021-03-04T05:06:07Z */
#define MINUTE_MS 60000
#define MINUTE0 "2021-03-03T05:06:00Z" /* the minute of T0's records' event_timestamp */

/* One command produced straight into the topic. */
struct cmd {
	char id[UID_TEXT_SIZE];
	int32_t partition;
	int64_t ts_ms;  /* its record timestamp (CreateTime): the created_at */
	int64_t offset; /* from the delivery report */
};

static struct cmd cmds[N_CMDS + 8];
static size_t n_cmds;
static struct svc cli; /* the command under test */
static char topic[128], env_topic[160], env_group[160], group[96];
static const char *env[] = {env_topic, env_group, NULL};
static char cli_log[600];

static void setup(void)
{
	memset(&cli, 0, sizeof(cli));
	cli.status = SVC_NOT_RUNNING;
	n_cmds = 0;
}

static void teardown(void)
{
	fault_teardown(&cli, 1);
}

/* A topic and a group of this test's own: what other tests left in a topic
 * would change which messages a reset replays. */
static void use_topic(const char *name, bool create)
{
	const long run = clock_mono_ms();
	char errstr[512];
	rd_kafka_t *rk;
	int rc;

	snprintf(topic, sizeof(topic), "timestamp.%s-%ld.v1", name, run);
	snprintf(group, sizeof(group), "%s-%ld", name, run);
	snprintf(env_topic, sizeof(env_topic), "KAFKA_CONSUMER_TOPIC=%s", topic);
	snprintf(env_group, sizeof(env_group), "KAFKA_GROUP_ID=%s", group);
	snprintf(cli_log, sizeof(cli_log), "%s/consumer-replay-cli.log", stack.state_dir);
	if (!create)
		return;
	rk = kafka_new(RD_KAFKA_PRODUCER, stack.broker, NULL, NULL, NULL, NULL, errstr,
	               sizeof(errstr));
	ck_assert_msg(rk != NULL, "%s", errstr);
	rc = kafka_ensure_topic(rk, topic, PARTITIONS, 1, NULL, KAFKA_MS, errstr, sizeof(errstr));
	rd_kafka_destroy(rk);
	ck_assert_msg(rc == 0, "%s", errstr);
}

/* Produces a valid command with record timestamp ts_ms into partition
 * (TOPIC_ANY_PARTITION: by key), its id again if again is not NULL. */
static void add_cmd(int32_t partition, int64_t ts_ms, const char *again)
{
	struct cmd *c = &cmds[n_cmds++];
	/* nanoseconds the table cannot keep: it stores microseconds */
	struct msg_command m = {.event_time = {.sec = ts_ms / 1000 - 86400, .nsec = 123456789}};
	char value[MSG_ENCODED_MAX], errstr[512];
	struct topic_out out = {.partition = partition, .ts_ms = ts_ms};

	if (again)
		snprintf(c->id, sizeof(c->id), "%s", again);
	else
		uid_v4(c->id);
	memcpy(m.command_id, c->id, UID_TEXT_SIZE);
	out.key = c->id;
	out.value = value;
	out.value_len = msg_encode(&m, value);
	ck_assert_msg(topic_produce(stack.broker, topic, &out, 1, errstr, sizeof(errstr)) == 0, "%s",
	              errstr);
	c->partition = out.out_partition;
	c->ts_ms = ts_ms;
	c->offset = out.out_offset;
}

/* Produces a raw value (poison) into partition. */
static void add_raw(int32_t partition, const char *value)
{
	struct topic_out out = {.partition = partition, .key = "poison", .value = value,
	                        .value_len = strlen(value)};
	char errstr[512];

	ck_assert_msg(topic_produce(stack.broker, topic, &out, 1, errstr, sizeof(errstr)) == 0, "%s",
	              errstr);
}

/* The group's committed offsets (-1001 where none) into off[PARTITIONS]. */
static void committed(int64_t *off)
{
	char errstr[512];

	ck_assert_msg(topic_committed(stack.broker, topic, group, off, PARTITIONS, errstr,
	                              sizeof(errstr)) == 0,
	              "%s", errstr);
}

/* Waits until the group has committed the end of every partition that
 * has messages: then every row of them is written. */
static void wait_consumed(void)
{
	const long until = clock_mono_ms() + CONSUMED_MS;
	int64_t hi[PARTITIONS], off[PARTITIONS];
	char errstr[512];
	int n, behind;

	ck_assert_msg(topic_high_watermarks(stack.broker, topic, hi, PARTITIONS, &n, errstr,
	                                    sizeof(errstr)) == 0 && n == PARTITIONS,
	              "%s", errstr);
	do {
		proc_sleep_ms(500);
		committed(off);
		behind = 0;
		for (int p = 0; p < PARTITIONS; p++)
			behind += hi[p] > 0 && off[p] != hi[p];
	} while (behind > 0 && clock_mono_ms() < until);
	ck_assert_msg(behind == 0, "group %s: %d partitions not committed to their end within %d ms",
	              group, behind, CONSUMED_MS);
}

/* A consumer of the group reads the whole topic, and stops. */
static void consume_all(void)
{
	fault_start(STACK_CONSUMER, env);
	wait_consumed();
	fault_sigterm(&stack.svc[STACK_CONSUMER]);
}

/* Runs consumer-service with args (the test's topic and group), its
 * output appended to cli_log from *from on. Returns its exit status. */
static int run_cli(const char *const *args, long *from)
{
	const long until = clock_mono_ms() + CLI_MS;
	char errstr[1024];

	*from = fault_file_size(cli_log);
	ck_assert_msg(stack_spawn_args(&cli, STACK_CONSUMER, fault_second_port(), "consumer-cli",
	                               "consumer-replay-cli.log", args, env, errstr,
	                               sizeof(errstr)) == 0,
	              "%s", errstr);
	while (svc_alive(&cli) && clock_mono_ms() < until)
		proc_sleep_ms(50);
	ck_assert_msg(!svc_alive(&cli), "%s %s did not end within %d ms", args[0],
	              args[1] ? args[1] : "", CLI_MS);
	return cli.status;
}

/* Asserts that the output since from holds needle. */
static void assert_said(long from, const char *needle)
{
	ck_assert_msg(fault_grep(cli_log, from, needle, NULL, NULL) > 0,
	              "the output lacks \"%s\" (see %s)", needle, cli_log);
}

static void truncate_table(void)
{
	char errstr[512];

	ck_assert_msg(store_exec(stack.db_url, "TRUNCATE timestamp_records, timestamp_counts", errstr,
	                         sizeof(errstr)) == 0,
	              "TRUNCATE: %s", errstr);
}

/* The plan's line of each partition, as printed. */
struct plan_line {
	bool seen;
	char committed[24], target[24];
	long long low, high, replay;
};

static void on_plan_line(const char *line, void *arg)
{
	struct plan_line *plan = arg, l = {.seen = true};
	int p;

	if (sscanf(line, " %d %23s %23s %lld %lld %lld", &p, l.committed, l.target, &l.low, &l.high,
	           &l.replay) == 6 &&
	    p >= 0 && p < PARTITIONS)
		plan[p] = l;
}

static void read_plan(long from, struct plan_line *plan)
{
	memset(plan, 0, PARTITIONS * sizeof(*plan));
	fault_grep(cli_log, from, NULL, on_plan_line, plan);
	for (int p = 0; p < PARTITIONS; p++)
		ck_assert_msg(plan[p].seen, "no plan line for partition %d (see %s)", p, cli_log);
}

/* ---- replay ---- */

START_TEST(to_datetime_replays_exactly_the_messages_from_that_instant)
{
	/* T0 + 5 min + 1 s, written with an offset: partition 1's sixth
	 * message has exactly this timestamp, and is replayed (>=). */
	static const char *const args[] = {"--reset-offsets",
	                                   "to-datetime=2021-03-04T07:11:08+02:00", NULL};
	const int64_t cut_ms = T0_MS + 5 * MINUTE_MS + 1000;
	int64_t want[PARTITIONS], off[PARTITIONS], hi[PARTITIONS] = {0};
	const char *replayed[N_CMDS];
	char errstr[512], said[96], *rows;
	size_t n_replayed = 0;
	long from, n_rows, count;

	use_topic("replay-datetime", true);
	/* partitions 0 and 1: one a minute from T0 (partition 1 a second
	 * later); partition 2: all a day before the instant; 3: empty */
	for (int i = 0; i < PER_PARTITION; i++) {
		add_cmd(0, T0_MS + i * MINUTE_MS, NULL);
		add_cmd(1, T0_MS + i * MINUTE_MS + 1000, NULL);
		add_cmd(2, T0_MS - 86400000 + i * 1000, NULL);
	}
	consume_all();

	/* What the delivery reports say: each partition's first offset at or
	 * after the instant, else its end. */
	for (int p = 0; p < PARTITIONS; p++)
		want[p] = -1;
	for (size_t i = 0; i < n_cmds; i++) {
		struct cmd *c = &cmds[i];
		if (c->offset + 1 > hi[c->partition])
			hi[c->partition] = c->offset + 1;
		if (c->ts_ms >= cut_ms) {
			if (want[c->partition] < 0 || c->offset < want[c->partition])
				want[c->partition] = c->offset;
			replayed[n_replayed++] = c->id;
		}
	}
	for (int p = 0; p < PARTITIONS; p++)
		if (want[p] < 0)
			want[p] = hi[p];
	ck_assert_int_eq(want[0], 6);
	ck_assert_int_eq(want[1], 5);
	ck_assert_int_eq(want[2], PER_PARTITION);
	ck_assert_int_eq(want[3], 0);

	truncate_table();
	ck_assert_int_eq(run_cli(args, &from), 0);
	snprintf(said, sizeof(said), "the group's next consumer replays %zu messages", n_replayed);
	assert_said(from, said);
	committed(off);
	for (int p = 0; p < PARTITIONS; p++)
		ck_assert_msg(off[p] == want[p], "partition %d: committed %lld after the reset, want %lld",
		              p, (long long)off[p], (long long)want[p]);

	fault_start(STACK_CONSUMER, env);
	wait_consumed();
	ck_assert_msg(store_count_ids(stack.db_url, replayed, n_replayed, &count, errstr,
	                              sizeof(errstr)) == 0,
	              "%s", errstr);
	ck_assert_msg(store_dump(stack.db_url, &rows, &n_rows, errstr, sizeof(errstr)) == 0, "%s",
	              errstr);
	free(rows);
	ck_assert_msg(count == (long)n_replayed && n_rows == (long)n_replayed,
	              "%ld rows, %ld of them of the %zu messages at or after the instant", n_rows,
	              count, n_replayed);
}
END_TEST

START_TEST(dry_run_changes_nothing_and_prints_the_plan)
{
	static const char *const dry[] = {"--reset-offsets", "earliest", "--dry-run", NULL};
	static const char *const dry_dt[] = {"--dry-run", "--reset-offsets=to-datetime=2021-03-04T05:09:07Z",
	                                     NULL};
	static const char *const wet[] = {"--reset-offsets", "earliest", NULL};
	int64_t before[PARTITIONS], after[PARTITIONS];
	struct plan_line plan[PARTITIONS];
	long from;

	use_topic("replay-dry", true);
	for (int i = 0; i < 5; i++)
		add_cmd(0, T0_MS + i * MINUTE_MS, NULL);
	for (int i = 0; i < 3; i++)
		add_cmd(1, T0_MS + i * MINUTE_MS, NULL);
	consume_all(); /* partitions 2 and 3 are empty: nothing committed there */
	committed(before);
	ck_assert_int_eq(before[0], 5);
	ck_assert_int_eq(before[1], 3);

	ck_assert_int_eq(run_cli(dry, &from), 0);
	assert_said(from, "dry run, nothing changed: 4 of 4 partitions would be set; the group's "
	                  "next consumer would replay 8 messages");
	read_plan(from, plan);
	ck_assert_str_eq(plan[0].committed, "5");
	ck_assert_str_eq(plan[0].target, "0");
	ck_assert_int_eq(plan[0].high, 5);
	ck_assert_int_eq(plan[0].replay, 5);
	ck_assert_str_eq(plan[1].committed, "3");
	ck_assert_int_eq(plan[1].replay, 3);
	ck_assert_str_eq(plan[2].committed, "none");
	ck_assert_int_eq(plan[2].replay, 0);
	committed(after);
	for (int p = 0; p < PARTITIONS; p++)
		ck_assert_msg(after[p] == before[p], "partition %d: %lld before the dry run, %lld after",
		              p, (long long)before[p], (long long)after[p]);

	/* T0 + 3 min: partition 0's fourth message, partition 1's end */
	ck_assert_int_eq(run_cli(dry_dt, &from), 0);
	read_plan(from, plan);
	ck_assert_str_eq(plan[0].target, "3");
	ck_assert_int_eq(plan[0].replay, 2);
	ck_assert_str_eq(plan[1].target, "3");
	ck_assert_int_eq(plan[1].replay, 0);
	committed(after);
	for (int p = 0; p < PARTITIONS; p++)
		ck_assert_msg(after[p] == before[p], "partition %d: %lld before the dry run, %lld after",
		              p, (long long)before[p], (long long)after[p]);

	/* the same without --dry-run does what the plan said */
	ck_assert_int_eq(run_cli(wet, &from), 0);
	committed(after);
	for (int p = 0; p < PARTITIONS; p++)
		ck_assert_msg(after[p] == 0, "partition %d: %lld after the reset to earliest", p,
		              (long long)after[p]);
}
END_TEST

START_TEST(to_offset_sets_exactly_those_partitions)
{
	static const char *const set[] = {"--reset-offsets", "to-offset=1:4,3:0", NULL};
	static const char *const beyond[] = {"--reset-offsets", "to-offset=1:3,0:11", NULL};
	static const char *const empty[] = {"--reset-offsets", "to-offset=2:1", NULL};
	static const char *const missing[] = {"--reset-offsets", "to-offset=4:0", NULL};
	static const char *const end[] = {"--reset-offsets", "to-offset=0:10", NULL};
	int64_t before[PARTITIONS], off[PARTITIONS];
	long from;

	use_topic("replay-offset", true);
	for (int i = 0; i < PER_PARTITION; i++) {
		add_cmd(0, T0_MS + i, NULL);
		add_cmd(1, T0_MS + i, NULL);
	}
	consume_all();
	committed(before);
	ck_assert_int_eq(before[0], PER_PARTITION);
	ck_assert_int_eq(before[1], PER_PARTITION);
	ck_assert_int_lt(before[2], 0);

	ck_assert_int_eq(run_cli(set, &from), 0);
	assert_said(from, "2 of 4 partitions set");
	committed(off);
	ck_assert_int_eq(off[0], PER_PARTITION); /* not named: as it was */
	ck_assert_int_eq(off[1], 4);
	ck_assert_int_lt(off[2], 0);
	ck_assert_int_eq(off[3], 0);

	/* past the end (the log holds 0 to 9, 10 is its end), in an empty
	 * partition, and a partition the topic does not have: refused, nothing
	 * changed, also where the offset named was fine */
	ck_assert_int_eq(run_cli(beyond, &from), 1);
	assert_said(from, "partition 0: offset 11 is outside its log, which holds offsets 0 to 9");
	ck_assert_int_eq(run_cli(empty, &from), 1);
	assert_said(from, "partition 2: offset 1 is outside its log, which is empty");
	ck_assert_int_eq(run_cli(missing, &from), 1);
	assert_said(from, "partition 4 does not exist: topic");
	committed(before);
	ck_assert_int_eq(before[0], PER_PARTITION);
	ck_assert_int_eq(before[1], 4);
	ck_assert_int_lt(before[2], 0);

	ck_assert_int_eq(run_cli(end, &from), 0);
	committed(off);
	ck_assert_int_eq(off[0], PER_PARTITION);
	ck_assert_int_eq(off[1], 4);
}
END_TEST

START_TEST(refused_while_a_consumer_of_the_group_runs)
{
	static const char *const reset[] = {"--reset-offsets", "earliest", NULL};
	static const char *const dry[] = {"--reset-offsets", "latest", "--dry-run", NULL};
	int64_t before[PARTITIONS], off[PARTITIONS];
	const long until = clock_mono_ms() + CLI_MS;
	char said[256];
	long from;
	int status;

	use_topic("replay-busy", true);
	add_cmd(0, T0_MS, NULL);
	add_cmd(0, T0_MS + 1, NULL);
	fault_start(STACK_CONSUMER, env);
	wait_consumed();
	committed(before);

	snprintf(said, sizeof(said), "group %s is not idle", group);
	ck_assert_int_eq(run_cli(reset, &from), 1);
	assert_said(from, said);
	assert_said(from, "1 member: ");
	ck_assert_int_eq(run_cli(dry, &from), 1);
	assert_said(from, said);
	committed(off);
	ck_assert_int_eq(off[0], before[0]);

	/* stopped, the group is idle: a member that just left may still be
	 * counted for a moment */
	fault_sigterm(&stack.svc[STACK_CONSUMER]);
	while ((status = run_cli(reset, &from)) == 1 && clock_mono_ms() < until)
		proc_sleep_ms(500);
	ck_assert_msg(status == 0, "the reset of the idle group: status %d (see %s)", status,
	              cli_log);
	committed(off);
	ck_assert_int_eq(off[0], 0);
}
END_TEST

START_TEST(bad_arguments_are_refused_with_usage)
{
	static const char *const bad[][4] = {
	    {"--reset-offsets", "sideways", NULL},
	    {"--reset-offsets", "to-datetime=yesterday", NULL},
	    {"--reset-offsets", "to-offset=0:-1", NULL},
	    {"--reset-offsets", "to-offset=0:1,0:2", NULL},
	    {"--reset-offsets", "earliest", "now", NULL},
	    {"--dry-run", NULL},
	    {"--verify", "--dry-run", NULL},
	    {"--verify", "now", NULL},
	};
	static const char *const why[] = {
	    "unknown position 'sideways'",
	    "to-datetime: 'yesterday' is not an RFC 3339 date-time",
	    "to-offset: offset '-1' of partition 0 is not a number",
	    "to-offset: partition 0 is named twice",
	    "unexpected argument 'now'",
	    "--dry-run needs --reset-offsets",
	    "unexpected argument '--verify'",
	    "--verify takes no other argument, not 'now'",
	};
	long from;

	/* no topic: nothing reaches Kafka */
	use_topic("replay-args", false);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(run_cli(bad[i], &from) == 2, "%s %s: status %d, want 2", bad[i][0],
		              bad[i][1] ? bad[i][1] : "", cli.status);
		assert_said(from, why[i]);
		assert_said(from, "usage: consumer-service");
	}
}
END_TEST

/* ---- verify ---- */

static PGconn *db(void)
{
	PGconn *conn = PQconnectdb(stack.db_url);

	ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s", PQerrorMessage(conn));
	return conn;
}

/* Runs one statement with one parameter, asserting it touched one row. */
static void sql1(PGconn *conn, const char *sql, const char *param)
{
	PGresult *res = PQexecParams(conn, sql, 1, NULL, &param, NULL, NULL, 0);

	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK && strcmp(PQcmdTuples(res), "1") == 0,
	              "%s (%s): %s %s", sql, param, PQcmdTuples(res), PQresultErrorMessage(res));
	PQclear(res);
}

/* Which heading of the report the line naming an id came under. */
struct finding {
	const char *id;
	char heading[256], line[512];
	char current[256];
};

static void on_report_line(const char *line, void *arg)
{
	struct finding *f = arg;

	if (strncmp(line, "verify: ", 8) == 0)
		snprintf(f->current, sizeof(f->current), "%s", line);
	else if (strstr(line, f->id) != NULL) {
		snprintf(f->heading, sizeof(f->heading), "%s", f->current);
		snprintf(f->line, sizeof(f->line), "%s", line);
	}
}

/* Runs --verify: asserts exit 1, that id is listed under a heading
 * holding kind, and that its line holds what (if not NULL). */
static void assert_reported(const char *id, const char *kind, const char *what)
{
	static const char *const args[] = {"--verify", NULL};
	struct finding f = {.id = id};
	long from;

	ck_assert_int_eq(run_cli(args, &from), 1);
	assert_said(from, "table and topic DIFFER");
	fault_grep(cli_log, from, NULL, on_report_line, &f);
	ck_assert_msg(strstr(f.heading, kind) != NULL, "%s: listed under \"%s\", not %s (see %s)",
	              id, f.heading, kind, cli_log);
	ck_assert_msg(what == NULL || strstr(f.line, what) != NULL, "%s: \"%s\" lacks %s", id,
	              f.line, what);
}

/* Runs --verify with timestamp_counts changed (the rows as they were):
 * asserts exit 1, that the rows still agree, that the counts differ, and
 * that the minute's line ("<minute>: <counted> counted, <rows> rows") is
 * listed under a heading holding kind. */
static void assert_counts_reported(const char *line, const char *kind)
{
	static const char *const args[] = {"--verify", NULL};
	struct finding f = {.id = line};
	long from;

	ck_assert_int_eq(run_cli(args, &from), 1);
	assert_said(from, "table and topic agree");
	assert_said(from, "verify: counts and table DIFFER");
	fault_grep(cli_log, from, NULL, on_report_line, &f);
	ck_assert_msg(strstr(f.heading, kind) != NULL, "\"%s\": listed under \"%s\", not %s (see %s)",
	              line, f.heading, kind, cli_log);
}

/* Runs --verify: asserts exit 0 and the verdict; *from (if not NULL)
 * where its output starts. */
static void assert_agree(long *from)
{
	static const char *const args[] = {"--verify", NULL};
	long at;

	ck_assert_int_eq(run_cli(args, &at), 0);
	assert_said(at, "table and topic agree");
	assert_said(at, "verify: counts and table agree");
	if (from != NULL)
		*from = at;
}

START_TEST(verify_agrees_and_names_each_difference)
{
	static const char *const del = "DELETE FROM timestamp_records WHERE id = $1::uuid";
	char extra_id[UID_TEXT_SIZE], said[128];
	const char *gone, *changed;
	PGresult *res;
	PGconn *conn;
	long from;

	use_topic("verify", true);
	/* the consumer makes the table, which other suites share: emptied */
	fault_start(STACK_CONSUMER, env);
	truncate_table();
	for (int i = 0; i < 12; i++)
		add_cmd(TOPIC_ANY_PARTITION, T0_MS + i * 1000, NULL);
	add_cmd(TOPIC_ANY_PARTITION, T0_MS, cmds[0].id); /* the same command twice: one row */
	add_raw(0, "not json");
	add_raw(1, "");
	add_raw(2, "{\"command_id\":\"nope\",\"event_timestamp\":\"2009-09-28T19:03:12Z\"}");
	wait_consumed();
	fault_sigterm(&stack.svc[STACK_CONSUMER]);

	assert_agree(&from);
	assert_said(from, "verify: 3 undecodable messages");
	snprintf(said, sizeof(said), "12 distinct ids in the topic (1 repeated messages count "
	                             "once), 12 of them with a row");
	assert_said(from, said);

	conn = db();
	/* a row deleted: missing; then put back as it was */
	gone = cmds[3].id;
	res = PQexecParams(conn, "DELETE FROM timestamp_records WHERE id = $1::uuid "
	                         "RETURNING event_timestamp::text, created_at::text",
	                   1, NULL, &gone, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1, "DELETE %s: %s",
	              gone, PQresultErrorMessage(res));
	assert_reported(gone, "MISSING", NULL);
	{
		const char *row[] = {gone, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1)};
		PGresult *ins = PQexecParams(conn, "INSERT INTO timestamp_records (id, event_timestamp, "
		                                   "created_at) VALUES ($1::uuid, $2::timestamptz, "
		                                   "$3::timestamptz)",
		                             3, NULL, row, NULL, NULL, 0);
		ck_assert_msg(PQresultStatus(ins) == PGRES_COMMAND_OK, "INSERT %s: %s", gone,
		              PQresultErrorMessage(ins));
		PQclear(ins);
	}
	PQclear(res);
	assert_agree(NULL);

	/* a row no message made */
	uid_v4(extra_id);
	sql1(conn, "INSERT INTO timestamp_records (id, event_timestamp, created_at) "
	           "VALUES ($1::uuid, now(), now())", extra_id);
	assert_reported(extra_id, "NOT IN THE TOPIC", NULL);
	sql1(conn, del, extra_id);
	assert_agree(NULL);

	/* created_at a microsecond off */
	changed = cmds[7].id;
	sql1(conn, "UPDATE timestamp_records SET created_at = created_at + interval '1 microsecond' "
	           "WHERE id = $1::uuid", changed);
	assert_reported(changed, "DIFFERENT", "created_at");
	sql1(conn, "UPDATE timestamp_records SET created_at = created_at - interval '1 microsecond' "
	           "WHERE id = $1::uuid", changed);
	assert_agree(NULL);

	/* the counts: the 12 rows are in one minute (a day before T0) */
	sql1(conn, "UPDATE timestamp_counts SET count = count + 1 WHERE minute = $1", MINUTE0);
	assert_counts_reported(MINUTE0 ": 13 counted, 12 rows", "COUNT DIFFERS");
	sql1(conn, "DELETE FROM timestamp_counts WHERE minute = $1", MINUTE0);
	assert_counts_reported(MINUTE0 ": 0 counted, 12 rows", "COUNT MISSING");
	sql1(conn, "INSERT INTO timestamp_counts VALUES ($1, 12)", MINUTE0);
	sql1(conn, "INSERT INTO timestamp_counts VALUES ($1, 2)", "2000-01-01T00:00:00Z");
	assert_counts_reported("2000-01-01T00:00:00Z: 2 counted, 0 rows", "COUNT EXTRA");
	sql1(conn, "DELETE FROM timestamp_counts WHERE minute = $1", "2000-01-01T00:00:00Z");
	assert_agree(NULL);
	PQfinish(conn);
}
END_TEST

Suite *make_replay_suite(void)
{
	Suite *s = suite_create("replay");
	TCase *tc = tcase_create("reset");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, to_datetime_replays_exactly_the_messages_from_that_instant);
	tcase_add_test(tc, dry_run_changes_nothing_and_prints_the_plan);
	tcase_add_test(tc, to_offset_sets_exactly_those_partitions);
	tcase_add_test(tc, refused_while_a_consumer_of_the_group_runs);
	tcase_add_test(tc, bad_arguments_are_refused_with_usage);
	suite_add_tcase(s, tc);
	return s;
}

Suite *make_verify_suite(void)
{
	Suite *s = suite_create("verify");
	TCase *tc = tcase_create("verify");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, verify_agrees_and_names_each_difference);
	suite_add_tcase(s, tc);
	return s;
}
