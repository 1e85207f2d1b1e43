/* poison_test: the poison kinds integration/dlq_test.c does not produce —
 * an empty (not null) value, a 1 MB value, JSON without command_id, and
 * JSON with members of the wrong types — each produced straight into the
 * topic between two valid messages, all in one go. Each lands unchanged in
 * <topic>.dlq with headers saying why and where from; every valid message
 * around them becomes a row; none of the poison does.
 *
 * Then the messages that decode but cannot be rows: record timestamps past
 * year 9999 (created_at), and a row PostgreSQL refuses as data -- a CHECK
 * constraint the test adds refuses one id, as any constraint a DBA adds
 * would (SQLSTATE 23514). Each is dead-lettered with a reason naming the
 * range or the SQLSTATE, and consumption goes on past it. */
#include <check.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "fault.h"
#include "faults.h"
#include "msg.h"
#include "store.h"

#define PARTITION 0
#define BIG_VALUE 1000000 /* 1 MB: under the broker's default limit of 1 MiB per batch */
#define MAX_MESSAGE 2000000
#define DLQ_TIMEOUT_MS 20000

/* "%s" in fmt becomes a fresh UUID; big pads the value to BIG_VALUE. */
static const struct {
	const char *fmt, *what;
	bool big;
} poisons[] = {
    {"", "an empty value", false},
    {"{\"command_id\":\"%s\",\"event_timestamp\":\"2009-09-28T19:03:12Z\",\"pad\":\"", "a 1 MB value",
     true},
    {"{\"event_timestamp\":\"2009-09-28T19:03:12Z\"}", "JSON without command_id", false},
    {"{\"command_id\":12345,\"event_timestamp\":\"2009-09-28T19:03:12Z\"}",
     "command_id a number", false},
    {"{\"command_id\":null,\"event_timestamp\":\"2009-09-28T19:03:12Z\"}", "command_id null",
     false},
    {"{\"command_id\":[\"%s\"],\"event_timestamp\":\"2009-09-28T19:03:12Z\"}",
     "command_id an array", false},
    {"{\"command_id\":\"%s\",\"event_timestamp\":true}", "event_timestamp a boolean", false},
    {"{\"command_id\":\"%s\",\"event_timestamp\":{\"sec\":1254164592}}",
     "event_timestamp an object", false},
    {"\"%s\"", "a JSON string", false},
};

#define N_POISONS (sizeof(poisons) / sizeof(poisons[0]))

static char *values[N_POISONS];

static void setup(void)
{
	memset(values, 0, sizeof(values));
}

static void teardown(void)
{
	for (size_t i = 0; i < N_POISONS; i++) {
		free(values[i]);
		values[i] = NULL;
	}
	fault_teardown(NULL, 0);
}

/* A poison value made from fmt (a new string; *len its length). */
static char *make_value(size_t i, const char *id, size_t *len)
{
	const char *fmt = poisons[i].fmt, *at = strstr(fmt, "%s");
	char *v = malloc(BIG_VALUE + 1);
	int n;

	ck_assert_ptr_nonnull(v);
	if (at == NULL)
		n = snprintf(v, BIG_VALUE + 1, "%s", fmt);
	else
		n = snprintf(v, BIG_VALUE + 1, "%.*s%s%s", (int)(at - fmt), fmt, id, at + 2);
	*len = (size_t)n;
	if (poisons[i].big) { /* ...,"pad":"xxxx...x"} */
		memset(v + n, 'x', BIG_VALUE - (size_t)n - 2);
		memcpy(v + BIG_VALUE - 2, "\"}", 2);
		v[BIG_VALUE] = '\0';
		*len = BIG_VALUE;
	}
	return v;
}

START_TEST(poison_kinds)
{
	static struct msg_command valid[N_POISONS + 1];
	static char vbuf[N_POISONS + 1][MSG_ENCODED_MAX];
	struct topic_out out[2 * N_POISONS + 1];
	char keys[N_POISONS][64], ids[N_POISONS][UID_TEXT_SIZE], errstr[512];
	const char *hdrs[] = {"correlationId", "1b4e28ba-2fa1-11d2-883f-0016d3cca427", NULL};
	const struct ts_instant now = ts_now();
	const int64_t ts_ms = msg_ts_ms(now);
	size_t lens[N_POISONS];
	long started;

	fault_start(STACK_CONSUMER, NULL);
	fault_start(STACK_QUERY, NULL);

	/* valid, poison, valid, poison, ..., valid: all into one partition. */
	for (size_t i = 0; i <= N_POISONS; i++) {
		uid_v4(valid[i].command_id);
		valid[i].event_time = (struct ts_instant){.sec = 1254164592, .nsec = (int32_t)i};
		out[2 * i] = (struct topic_out){.key = valid[i].command_id, .value = vbuf[i],
		                                .value_len = msg_encode(&valid[i], vbuf[i]),
		                                .ts_ms = ts_ms, .partition = PARTITION};
		if (i == N_POISONS)
			break;
		uid_v4(ids[i]);
		snprintf(keys[i], sizeof(keys[i]), "fault-poison-%s", ids[i]);
		values[i] = make_value(i, ids[i], &lens[i]);
		out[2 * i + 1] = (struct topic_out){.key = keys[i], .value = values[i],
		                                    .value_len = lens[i], .ts_ms = ts_ms + 1 + (int64_t)i,
		                                    .partition = PARTITION, .headers = hdrs};
	}
	ck_assert_msg(topic_produce_max(stack.broker, stack.topic, out, 2 * N_POISONS + 1,
	                                MAX_MESSAGE, errstr, sizeof(errstr)) == 0,
	              "%s", errstr);
	started = clock_mono_ms();

	/* Consumption goes on past every one of them. */
	for (size_t i = 0; i <= N_POISONS; i++)
		json_object_put(get_record(valid[i].command_id));
	printf("  %zu valid messages around %zu poison ones: all rows within %.2f s\n",
	       N_POISONS + 1, N_POISONS, fault_secs(clock_mono_ms() - started));

	for (size_t i = 0; i < N_POISONS; i++) {
		struct topic_in found[2];
		const long deadline = clock_mono_ms() + DLQ_TIMEOUT_MS;
		const struct topic_in *d;
		char offset[32];
		size_t n = 0;
		long count = -1;

		for (;;) {
			ck_assert_msg(topic_find(stack.broker, stack.dlq_topic, keys[i], found, 2, &n,
			                         15000, errstr, sizeof(errstr)) == 0,
			              "reading %s: %s", stack.dlq_topic, errstr);
			if (n > 0 || clock_mono_ms() >= deadline)
				break;
			proc_sleep_ms(200);
		}
		ck_assert_msg(n == 1, "%s: %zu dead letters with key %s, want 1", poisons[i].what, n,
		              keys[i]);
		d = &found[0];
		ck_assert_msg(d->value != NULL, "%s: came back as a null value", poisons[i].what);
		ck_assert_msg(d->value_len == lens[i] && memcmp(d->value, values[i], lens[i]) == 0,
		              "%s: dead letter of %zu bytes differs from the %zu sent", poisons[i].what,
		              d->value_len, lens[i]);
		ck_assert_msg(d->ts_ms == out[2 * i + 1].ts_ms, "%s: timestamp %lld, sent %lld",
		              poisons[i].what, (long long)d->ts_ms, (long long)out[2 * i + 1].ts_ms);
		ck_assert_msg(topic_in_header(d, "correlationId") &&
		                  strcmp(topic_in_header(d, "correlationId"), hdrs[1]) == 0,
		              "%s: the original header is not kept", poisons[i].what);
		snprintf(offset, sizeof(offset), "%" PRId64, out[2 * i + 1].out_offset);
		ck_assert_msg(topic_in_header(d, "dlq.reason") && topic_in_header(d, "dlq.reason")[0],
		              "%s: no dlq.reason", poisons[i].what);
		ck_assert_msg(topic_in_header(d, "dlq.topic") &&
		                  strcmp(topic_in_header(d, "dlq.topic"), stack.topic) == 0,
		              "%s: dlq.topic '%s'", poisons[i].what, topic_in_header(d, "dlq.topic"));
		ck_assert_msg(topic_in_header(d, "dlq.partition") &&
		                  strcmp(topic_in_header(d, "dlq.partition"), "0") == 0,
		              "%s: dlq.partition '%s'", poisons[i].what,
		              topic_in_header(d, "dlq.partition"));
		ck_assert_msg(topic_in_header(d, "dlq.offset") &&
		                  strcmp(topic_in_header(d, "dlq.offset"), offset) == 0,
		              "%s: dlq.offset '%s', want %s", poisons[i].what,
		              topic_in_header(d, "dlq.offset"), offset);
		ck_assert_msg(store_count(stack.db_url, ids[i], &count, errstr, sizeof(errstr)) == 0, "%s",
		              errstr);
		ck_assert_msg(count == 0, "%s: the poison message became a row", poisons[i].what);
		printf("  %-26s -> %s (%zu bytes, offset %s): %s\n", poisons[i].what, stack.dlq_topic,
		       d->value_len, offset, topic_in_header(d, "dlq.reason"));
		topic_in_clear(&found[0]);
	}
}
END_TEST

#define REFUSE_CONSTRAINT "fault_poison_refuse"

/* Runs one statement on the test's database. Asserts. */
static void db_exec(const char *sql)
{
	PGconn *conn = PQconnectdb(stack.db_url);
	PGresult *res;

	ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s", PQerrorMessage(conn));
	res = PQexec(conn, sql);
	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s: %s", sql,
	              PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(conn);
}

static void unwritable_teardown(void)
{
	db_exec("ALTER TABLE timestamp_records DROP CONSTRAINT IF EXISTS " REFUSE_CONSTRAINT);
	fault_teardown(NULL, 0);
}

/* 10000-01-01T00:00:00Z in ms: the first instant RFC 3339 cannot write. */
#define YEAR_10000_MS 253402300800000LL

START_TEST(unwritable_records)
{
	static const struct {
		int64_t ts_ms; /* 0: now */
		bool refused;  /* by the CHECK constraint */
		const char *what, *reason; /* reason: in dlq.reason */
	} bad[] = {
	    {YEAR_10000_MS, false, "created_at in year 10000", "9999"},
	    {YEAR_10000_MS + 86400000LL * 366 * 1000, false, "created_at in year 11000", "9999"},
	    {INT64_MAX, false, "created_at INT64_MAX ms", "9999"},
	    {0, true, "a row refused by a CHECK constraint", "SQLSTATE 23514"},
	};
	enum { N_BAD = sizeof(bad) / sizeof(bad[0]) };
	static struct msg_command m[2 * N_BAD + 1];
	static char vbuf[2 * N_BAD + 1][MSG_ENCODED_MAX];
	struct topic_out out[2 * N_BAD + 1];
	char errstr[512], sql[1024];
	const struct ts_instant now = ts_now();
	const int64_t now_ms = msg_ts_ms(now);

	/* valid, bad, valid, bad, ..., valid: all into one partition. */
	for (size_t i = 0; i < 2 * N_BAD + 1; i++) {
		const bool is_bad = i % 2 == 1;
		uid_v4(m[i].command_id);
		m[i].event_time = (struct ts_instant){.sec = 1254164592, .nsec = (int32_t)i};
		out[i] = (struct topic_out){.key = m[i].command_id, .value = vbuf[i],
		                            .value_len = msg_encode(&m[i], vbuf[i]),
		                            .ts_ms = is_bad && bad[i / 2].ts_ms ? bad[i / 2].ts_ms : now_ms,
		                            .partition = PARTITION};
		if (is_bad && bad[i / 2].refused) {
			snprintf(sql, sizeof(sql),
			         "ALTER TABLE timestamp_records ADD CONSTRAINT " REFUSE_CONSTRAINT
			         " CHECK (id <> '%s') NOT VALID", m[i].command_id);
		}
	}
	fault_start(STACK_CONSUMER, NULL); /* it makes the table */
	fault_start(STACK_QUERY, NULL);
	db_exec(sql);
	ck_assert_msg(topic_produce(stack.broker, stack.topic, out, 2 * N_BAD + 1, errstr,
	                            sizeof(errstr)) == 0,
	              "%s", errstr);

	/* Consumption goes on past every one of them. */
	for (size_t i = 0; i < 2 * N_BAD + 1; i += 2)
		json_object_put(get_record(m[i].command_id));

	for (size_t i = 1; i < 2 * N_BAD + 1; i += 2) {
		const char *what = bad[i / 2].what, *reason;
		struct topic_in found[2];
		const long deadline = clock_mono_ms() + DLQ_TIMEOUT_MS;
		char offset[32];
		size_t n = 0;
		long count = -1;

		for (;;) {
			ck_assert_msg(topic_find(stack.broker, stack.dlq_topic, m[i].command_id, found, 2,
			                         &n, 15000, errstr, sizeof(errstr)) == 0,
			              "reading %s: %s", stack.dlq_topic, errstr);
			if (n > 0 || clock_mono_ms() >= deadline)
				break;
			proc_sleep_ms(200);
		}
		ck_assert_msg(n == 1, "%s: %zu dead letters, want 1", what, n);
		reason = topic_in_header(&found[0], "dlq.reason");
		snprintf(offset, sizeof(offset), "%" PRId64, out[i].out_offset);
		ck_assert_msg(found[0].value_len == out[i].value_len &&
		                  memcmp(found[0].value, out[i].value, out[i].value_len) == 0,
		              "%s: the dead letter differs from the message", what);
		ck_assert_msg(found[0].ts_ms == out[i].ts_ms, "%s: timestamp %lld, sent %lld", what,
		              (long long)found[0].ts_ms, (long long)out[i].ts_ms);
		ck_assert_msg(reason && strstr(reason, bad[i / 2].reason),
		              "%s: dlq.reason '%s' does not name '%s'", what, reason ? reason : "",
		              bad[i / 2].reason);
		ck_assert_msg(topic_in_header(&found[0], "dlq.offset") &&
		                  strcmp(topic_in_header(&found[0], "dlq.offset"), offset) == 0,
		              "%s: dlq.offset '%s', want %s", what,
		              topic_in_header(&found[0], "dlq.offset"), offset);
		ck_assert_msg(store_count(stack.db_url, m[i].command_id, &count, errstr,
		                          sizeof(errstr)) == 0,
		              "%s", errstr);
		ck_assert_msg(count == 0, "%s: became a row", what);
		printf("  %-36s -> %s (offset %s): %s\n", what, stack.dlq_topic, offset, reason);
		topic_in_clear(&found[0]);
	}
}
END_TEST

Suite *make_poison_suite(void)
{
	Suite *s = suite_create("poison");
	TCase *tc = tcase_create("kinds");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, poison_kinds);
	suite_add_tcase(s, tc);

	tc = tcase_create("unwritable");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, NULL, unwritable_teardown);
	tcase_add_test(tc, unwritable_records);
	suite_add_tcase(s, tc);
	return s;
}
