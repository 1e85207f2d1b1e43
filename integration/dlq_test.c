/* dlq_test: a message that cannot be decoded goes, unchanged, to
 * <topic>.dlq with headers saying why and where from, and consumption goes
 * on past it. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "checks.h"
#include "msg.h"
#include "store.h"
#include "suites.h"
#include "topic.h"
#include "uid.h"

#define PARTITION 0
#define DLQ_TIMEOUT_MS 15000

/* Poison values; "%s" is replaced by a fresh UUID where present. */
static const struct {
	const char *fmt, *what;
	int null_value;
} poisons[] = {
    {"this is not JSON", "not JSON", 0},
    {"{\"command_id\":\"%s\"}", "no event_timestamp", 0},
    {"{\"command_id\":\"not-a-uuid\",\"event_timestamp\":\"2009-09-28T19:03:12Z\"}",
     "command_id not a UUID", 0},
    {"{\"command_id\":\"%s\",\"event_timestamp\":\"2009-13-28T19:03:12Z\"}",
     "month 13 in event_timestamp", 0},
    {"{\"command_id\":\"%s\",\"event_timestamp\":1254164592}", "event_timestamp a number", 0},
    {"[\"%s\",\"2009-09-28T19:03:12Z\"]", "a JSON array", 0},
    {"{\"command_id\":\"%s\",\"event_timestamp\":\"2009-09-28T19:03:12Z\"", "truncated JSON", 0},
    {"", "a null value", 1},
};

#define N_POISONS ((int)(sizeof(poisons) / sizeof(poisons[0])))

/* Copies fmt into buf with its "%s", if any, replaced by id. (Not printf:
 * the formats are data.) */
static void substitute(char *buf, size_t size, const char *fmt, const char *id)
{
	const char *at = strstr(fmt, "%s");

	if (at == NULL)
		snprintf(buf, size, "%s", fmt);
	else
		snprintf(buf, size, "%.*s%s%s", (int)(at - fmt), fmt, id, at + 2);
}

/* A valid message for a fresh id into out (value in buf). */
static void valid_message(struct topic_out *out, struct msg_command *m, char *buf, int64_t ts_ms)
{
	uid_v4(m->command_id);
	m->event_time = (struct ts_instant){.sec = 1254164592, .nsec = 0};
	*out = (struct topic_out){.key = m->command_id, .value = buf,
	                          .value_len = msg_encode(m, buf), .ts_ms = ts_ms,
	                          .partition = PARTITION};
}

START_TEST(poison_dead_lettered)
{
	struct msg_command a, b;
	struct topic_out out[3];
	struct topic_in found[4];
	char va[MSG_ENCODED_MAX], vb[MSG_ENCODED_MAX], vp[256], key[64], poison_id[UID_TEXT_SIZE],
	    errstr[512], offset[32];
	const char *hdrs[] = {"correlationId", "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "origin",
	                      "integration-tests", NULL};
	struct ts_instant now = ts_now();
	const int64_t ts_ms = msg_ts_ms(now);
	const long deadline = clock_mono_ms() + DLQ_TIMEOUT_MS;
	size_t n = 0;
	long count = -1;
	const struct topic_in *d;

	uid_v4(poison_id);
	snprintf(key, sizeof(key), "poison-%s", poison_id);
	substitute(vp, sizeof(vp), poisons[_i].fmt, poison_id);
	valid_message(&out[0], &a, va, ts_ms);
	out[1] = (struct topic_out){.key = key, .value = poisons[_i].null_value ? NULL : vp,
	                            .value_len = strlen(vp), .ts_ms = ts_ms + 1,
	                            .partition = PARTITION, .headers = hdrs};
	valid_message(&out[2], &b, vb, ts_ms + 2);
	ck_assert_msg(topic_produce(stack.broker, stack.topic, out, 3, errstr, sizeof(errstr)) == 0,
	              "%s", errstr);
	ck_assert(out[1].out_offset == out[0].out_offset + 1 &&
	          out[2].out_offset == out[1].out_offset + 1);

	/* Consumption goes on: the valid messages on both sides land. */
	json_object_put(get_record(a.command_id));
	json_object_put(get_record(b.command_id));

	/* The dead letter is written after the batch's rows: poll for it. */
	for (;;) {
		ck_assert_msg(topic_find(stack.broker, stack.dlq_topic, key, found, 4, &n, 15000, errstr,
		                         sizeof(errstr)) == 0,
		              "reading %s: %s", stack.dlq_topic, errstr);
		if (n > 0 || clock_mono_ms() >= deadline)
			break;
		proc_sleep_ms(200);
	}
	ck_assert_msg(n == 1, "%s (%s): %zu dead letters with key %s in %s, want 1",
	              poisons[_i].what, vp, n, key, stack.dlq_topic);
	d = &found[0];

	/* Unchanged: value, key, timestamp, original headers. */
	if (poisons[_i].null_value) {
		ck_assert_msg(d->value == NULL, "a null value came back as '%s'", d->value);
	} else {
		ck_assert_msg(d->value != NULL && d->value_len == strlen(vp) &&
		                  memcmp(d->value, vp, d->value_len) == 0,
		              "dead letter value '%s', sent '%s'", d->value ? d->value : "(null)", vp);
	}
	ck_assert_msg(d->ts_ms == out[1].ts_ms, "dead letter timestamp %lld, sent %lld",
	              (long long)d->ts_ms, (long long)out[1].ts_ms);
	ck_assert_msg(topic_in_header(d, "correlationId") &&
	                  strcmp(topic_in_header(d, "correlationId"), hdrs[1]) == 0 &&
	                  topic_in_header(d, "origin") &&
	                  strcmp(topic_in_header(d, "origin"), hdrs[3]) == 0,
	              "the original headers are not kept");

	/* Why and where from. */
	snprintf(offset, sizeof(offset), "%" PRId64, out[1].out_offset);
	ck_assert_msg(topic_in_header(d, "dlq.reason") && topic_in_header(d, "dlq.reason")[0],
	              "no dlq.reason header");
	ck_assert_msg(topic_in_header(d, "dlq.topic") &&
	                  strcmp(topic_in_header(d, "dlq.topic"), stack.topic) == 0,
	              "dlq.topic '%s', want %s", topic_in_header(d, "dlq.topic"), stack.topic);
	ck_assert_msg(topic_in_header(d, "dlq.partition") &&
	                  strcmp(topic_in_header(d, "dlq.partition"), "0") == 0,
	              "dlq.partition '%s', want 0", topic_in_header(d, "dlq.partition"));
	ck_assert_msg(topic_in_header(d, "dlq.offset") &&
	                  strcmp(topic_in_header(d, "dlq.offset"), offset) == 0,
	              "dlq.offset '%s', want %s", topic_in_header(d, "dlq.offset"), offset);

	/* A poison message whose command_id looked fine is not a row. */
	ck_assert_msg(store_count(stack.db_url, poison_id, &count, errstr, sizeof(errstr)) == 0,
	              "%s", errstr);
	ck_assert_msg(count == 0, "%s: the poison message became a row", poisons[_i].what);
	topic_in_clear(&found[0]);
}
END_TEST

Suite *make_dlq_suite(void)
{
	Suite *s = suite_create("dlq");
	TCase *tc = tcase_create("poison");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, poison_dead_lettered, 0, N_POISONS);
	suite_add_tcase(s, tc);
	return s;
}
