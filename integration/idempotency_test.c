/* idempotency_test: one row per id whatever is replayed: an Idempotency-Key
 * retried through the command service, and a message duplicated straight in
 * the topic (at-least-once delivery). The first message for an id wins. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "msg.h"
#include "suites.h"
#include "topic.h"
#include "uid.h"

#define TS_PATH "/api/v1/timestamp"
#define SETTLE_MS 300

#define DUPLICATES "consumer_records_total{outcome=\"duplicate\"}"

/* The consumer's count of messages that found their id's row already
 * there (the primary key makes a second row impossible: the count is what
 * shows that the duplicates were seen, and only they). */
static double duplicates(void)
{
	char url[128];
	double n;

	stack_url(url, sizeof(url), STACK_CONSUMER, "/metrics");
	n = metric_value(url, DUPLICATES);
	ck_assert_msg(n >= 0, "no %s in %s", DUPLICATES, url);
	return n;
}

/* Waits until the consumer has handled everything up to now in every
 * partition, so that nothing sent before moves the count afterwards, and
 * returns the count. */
static double duplicates_settled(void)
{
	int64_t hi[64];
	int n = 0;
	char errstr[512];

	ck_assert_msg(topic_high_watermarks(stack.broker, stack.topic, hi, 64, &n, errstr,
	                                    sizeof(errstr)) == 0, "%s", errstr);
	for (int p = 0; p < n; p++)
		ck_assert_msg(stack_sentinel(p, READ_TIMEOUT_MS, NULL, errstr, sizeof(errstr)) == 0,
		              "%s", errstr);
	proc_sleep_ms(SETTLE_MS);
	return duplicates();
}

/* Waits until the consumer has handled everything up to now in partition
 * (a sentinel behind it is readable), lets it settle, and asserts that the
 * duplicate count moved by exactly want since before. */
static void check_duplicates(double before, int partition, int want)
{
	char errstr[512];
	double moved;

	ck_assert_msg(stack_sentinel(partition, READ_TIMEOUT_MS, NULL, errstr, sizeof(errstr)) == 0,
	              "%s", errstr);
	proc_sleep_ms(SETTLE_MS);
	moved = duplicates() - before;
	ck_assert_msg(moved == want, "%s moved by %.0f, want %d (one per duplicate message)",
	              DUPLICATES, moved, want);
}

START_TEST(key_retried_same_id)
{
	char key[64], hdr[96], want[UID_TEXT_SIZE], id1[UID_TEXT_SIZE], id2[UID_TEXT_SIZE],
	    id3[UID_TEXT_SIZE], errstr[512], fresh[UID_TEXT_SIZE];
	const char *headers[] = {hdr, NULL};
	struct topic_in found[4];
	size_t n = 0;
	json_object *rec;
	double before = duplicates_settled();

	uid_v4(fresh);
	snprintf(key, sizeof(key), "order-%s", fresh);
	snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", key);
	ck_assert(uid_v5(UID_IDEMPOTENCY_NAMESPACE, key, strlen(key), want) == 0);

	post_ticket(TS_PATH "/2001-01-01T00:00:00Z", headers, id1);
	post_ticket(TS_PATH "/2002-02-02T00:00:00Z", headers, id2);
	post_ticket("/app", headers, id3);
	ck_assert_msg(strcmp(id1, id2) == 0 && strcmp(id1, id3) == 0,
	              "one Idempotency-Key, three ids: %s %s %s", id1, id2, id3);
	ck_assert_msg(id1[14] == '5', "id %s is not a version 5 UUID", id1);
	ck_assert_msg(strcmp(id1, want) == 0, "id %s, want the UUIDv5 of the key: %s", id1, want);

	/* All three are in the topic, in one partition (the key is the id). */
	ck_assert_msg(topic_find(stack.broker, stack.topic, id1, found, 4, &n, 15000, errstr,
	                         sizeof(errstr)) == 0,
	              "%s", errstr);
	ck_assert_msg(n == 3, "%zu messages with key %s, want 3", n, id1);
	ck_assert(found[0].partition == found[1].partition &&
	          found[1].partition == found[2].partition);
	check_duplicates(before, found[0].partition, 2);

	/* The first message for the id is the one that landed. */
	rec = get_record(id1);
	ck_assert_msg(strcmp(json_str(rec, "event_timestamp"), "2001-01-01T00:00:00Z") == 0,
	              "event_timestamp %s: the first message must win",
	              json_str(rec, "event_timestamp"));
	json_object_put(rec);
	for (size_t i = 0; i < n; i++)
		topic_in_clear(&found[i]);
}
END_TEST

START_TEST(distinct_keys_distinct_ids)
{
	const char *h1[] = {"Idempotency-Key: a", NULL}, *h2[] = {"Idempotency-Key: A", NULL};
	char id1[UID_TEXT_SIZE], id2[UID_TEXT_SIZE], id3[UID_TEXT_SIZE];

	post_ticket("/app", h1, id1);
	post_ticket("/app", h2, id2);
	post_ticket("/app", NULL, id3);
	ck_assert_msg(strcmp(id1, id2) != 0, "keys 'a' and 'A' gave the same id %s", id1);
	ck_assert_msg(strcmp(id3, id1) != 0 && strcmp(id3, id2) != 0,
	              "a request without a key got a key's id");
}
END_TEST

/* Whitespace around a field value is not part of it (RFC 9110 5.5): the
 * key "k" sent as " k " is the same key. */
START_TEST(key_whitespace_trimmed)
{
	char fresh[UID_TEXT_SIZE], h1[96], h2[96], id1[UID_TEXT_SIZE], id2[UID_TEXT_SIZE];
	const char *headers1[] = {h1, NULL}, *headers2[] = {h2, NULL};

	uid_v4(fresh);
	snprintf(h1, sizeof(h1), "Idempotency-Key: ws-%s", fresh);
	snprintf(h2, sizeof(h2), "Idempotency-Key:   ws-%s  ", fresh);
	post_ticket("/app", headers1, id1);
	post_ticket("/app", headers2, id2);
	ck_assert_msg(strcmp(id1, id2) == 0, "key with surrounding whitespace: id %s, without: %s",
	              id2, id1);
}
END_TEST

/* Invalid keys: the header line sent. */
static const char *bad_keys[8];
static char long_key[300], tab_key[64];

static void bad_keys_init(void)
{
	memcpy(long_key, "Idempotency-Key: ", 17);
	memset(long_key + 17, 'k', 256); /* 256 characters */
	long_key[17 + 256] = '\0';
	snprintf(tab_key, sizeof(tab_key), "Idempotency-Key: a\tb");
	bad_keys[0] = long_key;
	bad_keys[1] = "Idempotency-Key: a b";
	bad_keys[2] = "Idempotency-Key;"; /* empty */
	bad_keys[3] = "Idempotency-Key: cl\xc3\xa9";
	bad_keys[4] = tab_key;
	bad_keys[5] = "Idempotency-Key: a\x7f";
}

#define N_BAD_KEYS 6

START_TEST(invalid_key_400)
{
	const char *paths[] = {TS_PATH "/2009-09-28T19:03:12Z", TS_PATH, "/app"};
	const char *headers[2];
	struct http_resp resp;
	char url[256];
	int64_t before;

	bad_keys_init();
	headers[0] = bad_keys[_i];
	headers[1] = NULL;
	before = topic_total();
	for (size_t p = 0; p < sizeof(paths) / sizeof(paths[0]); p++) {
		stack_url(url, sizeof(url), STACK_COMMAND, "%s", paths[p]);
		ck_assert_msg(http_post(url, headers, &resp) == 0, "POST %s: %s", url, resp.errstr);
		ck_assert_msg(resp.status == 400, "POST %s with '%.40s…' (%zu bytes): %ld %s",
		              paths[p], bad_keys[_i], strlen(bad_keys[_i]), resp.status,
		              resp.body ? resp.body : "");
		check_error(&resp, 400);
		http_resp_clear(&resp);
	}
	ck_assert_msg(topic_total() == before, "an invalid Idempotency-Key published a message");
}
END_TEST

START_TEST(longest_key_accepted)
{
	char hdr[300], fresh[UID_TEXT_SIZE], id[UID_TEXT_SIZE], want[UID_TEXT_SIZE];
	const char *headers[] = {hdr, NULL};

	uid_v4(fresh);
	memcpy(hdr, "Idempotency-Key: ", 17);
	memcpy(hdr + 17, fresh, 36);
	memset(hdr + 17 + 36, '~', 255 - 36); /* 255 visible characters */
	hdr[17 + 255] = '\0';
	post_ticket("/app", headers, id);
	ck_assert(uid_v5(UID_IDEMPOTENCY_NAMESPACE, hdr + 17, 255, want) == 0);
	ck_assert_str_eq(id, want);
	json_object_put(get_record(id));
}
END_TEST

/* A message for a fresh id at event time t (seconds). */
static void command_message(struct msg_command *m, int64_t sec, char *value, size_t *len)
{
	m->event_time.sec = sec;
	m->event_time.nsec = 0;
	*len = msg_encode(m, value);
}

START_TEST(duplicate_message_one_row)
{
	struct msg_command m;
	char value[MSG_ENCODED_MAX], errstr[512];
	const char *hdrs[] = {"correlationId", "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
	                      "content-type", "application/json", NULL};
	struct topic_out out[2];
	struct ts_instant now = ts_now();
	size_t len;
	json_object *rec;
	double before = duplicates_settled();

	uid_v4(m.command_id);
	command_message(&m, 1254164592, value, &len);
	for (int i = 0; i < 2; i++) {
		out[i] = (struct topic_out){.key = m.command_id, .value = value, .value_len = len,
		                            .ts_ms = msg_ts_ms(now),
		                            .partition = TOPIC_ANY_PARTITION, .headers = hdrs};
	}
	ck_assert_msg(topic_produce(stack.broker, stack.topic, out, 2, errstr, sizeof(errstr)) == 0,
	              "%s", errstr);
	ck_assert(out[0].out_partition == out[1].out_partition);
	ck_assert(out[1].out_offset == out[0].out_offset + 1);
	rec = get_record(m.command_id);
	ck_assert_str_eq(json_str(rec, "event_timestamp"), "2009-09-28T19:03:12Z");
	json_object_put(rec);
	check_duplicates(before, out[0].out_partition, 1);
}
END_TEST

START_TEST(first_message_wins)
{
	struct msg_command m;
	char v1[MSG_ENCODED_MAX], v2[MSG_ENCODED_MAX], errstr[512];
	struct topic_out out[2];
	struct ts_instant now = ts_now();
	size_t l1, l2;
	json_object *rec;
	double before = duplicates_settled();

	uid_v4(m.command_id);
	command_message(&m, 1000000000, v1, &l1); /* 2001-09-09T01:46:40Z */
	command_message(&m, 2000000000, v2, &l2); /* 2033-05-18T03:33:20Z */
	out[0] = (struct topic_out){.key = m.command_id, .value = v1, .value_len = l1,
	                            .ts_ms = msg_ts_ms(now),
	                            .partition = TOPIC_ANY_PARTITION};
	out[1] = out[0];
	out[1].value = v2;
	out[1].value_len = l2;
	out[1].ts_ms += 1;
	ck_assert_msg(topic_produce(stack.broker, stack.topic, out, 2, errstr, sizeof(errstr)) == 0,
	              "%s", errstr);
	check_duplicates(before, out[0].out_partition, 1);
	rec = get_record(m.command_id);
	ck_assert_msg(strcmp(json_str(rec, "event_timestamp"), "2001-09-09T01:46:40Z") == 0,
	              "event_timestamp %s: the first message must win",
	              json_str(rec, "event_timestamp"));
	json_object_put(rec);
}
END_TEST

Suite *make_idempotency_suite(void)
{
	Suite *s = suite_create("idempotency");
	TCase *tc;

	tc = tcase_create("key");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, key_retried_same_id);
	tcase_add_test(tc, distinct_keys_distinct_ids);
	tcase_add_loop_test(tc, invalid_key_400, 0, N_BAD_KEYS);
	tcase_add_test(tc, longest_key_accepted);
	tcase_add_test(tc, key_whitespace_trimmed);
	suite_add_tcase(s, tc);

	tc = tcase_create("duplicates");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, duplicate_message_one_row);
	tcase_add_test(tc, first_message_wins);
	suite_add_tcase(s, tc);
	return s;
}
