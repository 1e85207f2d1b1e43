/* test_msg: the Kafka message codec (common/msg.c): what the producer
 * writes, the consumer reads back exactly; anything else is rejected with
 * a reason fit for a dead-letter header. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "msg.h"
#include "suites.h"

#define ID "886313e1-3b8a-5372-9b90-0c9aee199e5d"
#define TS "2009-09-28T19:03:12.5Z"
#define GOOD "{\"command_id\":\"" ID "\",\"event_timestamp\":\"" TS "\"}"

/* Decodes a NUL-terminated text (without its NUL). */
static int decode(const char *text, struct msg_command *m, char *err, size_t err_size)
{
	return msg_decode(text, strlen(text), m, err, err_size);
}

/* ---- encode ------------------------------------------------------------- */

START_TEST(encode_writes_the_wire_format)
{
	struct msg_command m = {.command_id = ID, .event_time = {1254164592, 500000000}};
	char buf[MSG_ENCODED_MAX];
	size_t n;

	n = msg_encode(&m, buf);
	ck_assert_str_eq(buf, GOOD);
	ck_assert_uint_eq(n, strlen(GOOD));
}
END_TEST

START_TEST(encode_keeps_all_nine_digits_and_fits)
{
	struct msg_command m = {.command_id = "ffffffff-ffff-ffff-ffff-ffffffffffff",
	                        .event_time = {253402300799LL, 999999999}};
	char buf[MSG_ENCODED_MAX];
	size_t n = msg_encode(&m, buf);

	ck_assert_uint_lt(n, MSG_ENCODED_MAX);
	ck_assert_uint_eq(n, strlen(buf));
	ck_assert_str_eq(buf, "{\"command_id\":\"ffffffff-ffff-ffff-ffff-ffffffffffff\","
	                      "\"event_timestamp\":\"9999-12-31T23:59:59.999999999Z\"}");
}
END_TEST

/* ---- round trip -------------------------------------------------------- */

static const struct msg_command round_trip[] = {
    {ID, {1254164592, 0}},
    {ID, {1254164592, 1}},
    {ID, {1254164592, 500000000}},
    {ID, {1254164592, 123456789}},
    {"f47ac10b-58cc-4372-a567-0e02b2c3d479", {0, 0}},
    {"f47ac10b-58cc-4372-a567-0e02b2c3d479", {-1, 999999999}},
    {"6ba7b810-9dad-11d1-80b4-00c04fd430c8", {1483228800, 0}},
    {"00000000-0000-0000-0000-000000000000", {-62135596800LL, 0}},
    {"ffffffff-ffff-ffff-ffff-ffffffffffff", {253402300799LL, 999999999}},
};

START_TEST(decode_of_encode_keeps_id_and_instant_to_the_nanosecond)
{
	const struct msg_command *want = &round_trip[_i];
	struct msg_command got;
	char buf[MSG_ENCODED_MAX], err[256] = "";
	size_t n = msg_encode(want, buf);

	memset(&got, 0x55, sizeof(got));
	ck_assert_msg(msg_decode(buf, n, &got, err, sizeof(err)) == 0, "%s: %s", buf, err);
	ck_assert_str_eq(got.command_id, want->command_id);
	ck_assert_msg(got.event_time.sec == want->event_time.sec &&
	                  got.event_time.nsec == want->event_time.nsec,
	              "%s: got %lld.%09d", buf, (long long)got.event_time.sec,
	              (int)got.event_time.nsec);
}
END_TEST

/* ---- accepted variations ----------------------------------------------- */

static const char *const accepted[] = {
    GOOD,
    /* Unknown fields, anywhere, of any type, are ignored. */
    "{\"version\":2,\"command_id\":\"" ID "\",\"event_timestamp\":\"" TS "\"}",
    "{\"command_id\":\"" ID "\",\"extra\":{\"a\":[1,2.5,null,true]},\"event_timestamp\":\"" TS "\"}",
    "{\"command_id\":\"" ID "\",\"event_timestamp\":\"" TS "\",\"note\":\"caf\xc3\xa9\"}",
    /* Field order does not matter. */
    "{\"event_timestamp\":\"" TS "\",\"command_id\":\"" ID "\"}",
    /* Whitespace between tokens, before and after the object. */
    "{ \"command_id\" : \"" ID "\" ,\n\t\"event_timestamp\" : \"" TS "\" }",
    " \t\r\n" GOOD,
    GOOD "\n",
    GOOD " \t\r\n ",
    /* An offset, a lower-case t and z: the instant is what counts. */
    "{\"command_id\":\"" ID "\",\"event_timestamp\":\"2009-09-28T21:03:12.5+02:00\"}",
    "{\"command_id\":\"" ID "\",\"event_timestamp\":\"2009-09-28t19:03:12.500z\"}",
    /* A JSON escape in a string is decoded before validation. */
    "{\"command_id\":\"" ID "\",\"event_timestamp\":\"2009-09-28T19:03:12.5\\u005a\"}",
};

START_TEST(decode_accepts)
{
	struct msg_command m;
	char err[256] = "";

	ck_assert_msg(decode(accepted[_i], &m, err, sizeof(err)) == 0, "'%s': %s", accepted[_i], err);
	ck_assert_str_eq(m.command_id, ID);
	ck_assert(m.event_time.sec == 1254164592 && m.event_time.nsec == 500000000);
}
END_TEST

START_TEST(decode_lowercases_an_uppercase_command_id)
{
	struct msg_command m;
	char err[256] = "";

	ck_assert_msg(decode("{\"command_id\":\"886313E1-3B8A-5372-9B90-0C9AEE199E5D\","
	                     "\"event_timestamp\":\"" TS "\"}",
	                     &m, err, sizeof(err)) == 0,
	              "%s", err);
	ck_assert_str_eq(m.command_id, ID);
}
END_TEST

START_TEST(decode_accepts_a_value_of_exactly_max_size)
{
	char *buf = malloc(MSG_VALUE_MAX);
	struct msg_command m;
	char err[256] = "";

	ck_assert_ptr_nonnull(buf);
	memset(buf, ' ', MSG_VALUE_MAX);
	memcpy(buf, GOOD, strlen(GOOD));
	ck_assert_msg(msg_decode(buf, MSG_VALUE_MAX, &m, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(m.command_id, ID);
	free(buf);
}
END_TEST

/* Decodes a copy of v of its own size, with no NUL after it: ASan sees
 * over-reads. */
static int decode_copy(const char *v, size_t len, struct msg_command *m, char *err,
                       size_t err_size)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, v, len);
	rc = msg_decode(copy, len, m, err, err_size);
	free(copy);
	return rc;
}

/* A value exactly as msg_encode writes it is read without json-c. Every
 * one-byte change of one (a byte replaced, removed or inserted, at every
 * position) must be read as json-c reads it: the same bytes after a space,
 * which only json-c reads, give the same verdict, the same fields or the
 * same reason. */
START_TEST(decode_of_a_value_near_the_wire_format_agrees_with_json_c)
{
	static const char alphabet[] = "\"\\ \t\n{}[],:0aAZz-.+/#\x80\xc3\xa9\x7f\x01";
	char base[MSG_ENCODED_MAX], v[MSG_ENCODED_MAX + 2];
	const size_t n = msg_encode(&round_trip[_i], base);
	long tried = 0, decoded = 0;

	/* op 0: replace the byte at pos, 1: insert before it, 2: remove it */
	for (int op = 0; op < 3; op++) {
		for (size_t pos = 0; pos < n + (op == 1); pos++) {
			for (size_t a = 0; a < (op == 2 ? 1 : sizeof(alphabet)); a++) {
				struct msg_command fast, slow;
				char fast_err[256] = "", slow_err[256] = "";
				size_t len = 0;
				int fast_rc, slow_rc;

				v[len++] = ' ';
				memcpy(v + len, base, pos);
				len += pos;
				if (op != 2)
					v[len++] = alphabet[a]; /* the last: a NUL byte */
				memcpy(v + len, base + pos + (op != 1), n - pos - (op != 1));
				len += n - pos - (op != 1);
				memset(&fast, 0x55, sizeof(fast));
				memset(&slow, 0x55, sizeof(slow));
				fast_rc = decode_copy(v + 1, len - 1, &fast, fast_err, sizeof(fast_err));
				slow_rc = decode_copy(v, len, &slow, slow_err, sizeof(slow_err));
				ck_assert_msg(fast_rc == slow_rc && strcmp(fast_err, slow_err) == 0,
				              "'%.*s': %d '%s', after a space %d '%s'", (int)len - 1, v + 1,
				              fast_rc, fast_err, slow_rc, slow_err);
				if (fast_rc == 0) {
					ck_assert_str_eq(fast.command_id, slow.command_id);
					ck_assert(fast.event_time.sec == slow.event_time.sec &&
					          fast.event_time.nsec == slow.event_time.nsec);
					decoded++;
				}
				tried++;
			}
		}
	}
	/* Digits replaced by digits, case changed and the like still decode. */
	ck_assert_int_gt(decoded, 20);
	ck_assert_int_gt(tried, 3000);
}
END_TEST

/* ---- rejected ------------------------------------------------------------ */

static const struct {
	const char *value;
	size_t len;       /* 0: strlen(value) */
	const char *why;  /* what the row is about */
	const char *hint; /* the reason must contain this */
} rejected[] = {
    {"not json", 0, "not JSON", "JSON"},
    {"{\"command_id\":\"" ID "\",\"event_timestamp\":\"" TS "\"", 0, "truncated JSON", "JSON"},
    {"{\"command_id\":\"" ID "\",\"event_ti", 0, "truncated inside a key", "JSON"},
    {"{", 0, "a lone brace", "JSON"},
    {"[]", 0, "a JSON array", "object"},
    {"[" GOOD "]", 0, "the message inside an array", "object"},
    {"42", 0, "a JSON number", "object"},
    {"42 ", 0, "a JSON number and a space", "object"},
    {"\"" TS "\"", 0, "a JSON string", "object"},
    {"null", 0, "JSON null", "object"},
    {"true", 0, "JSON true", "object"},
    {"{}", 0, "an empty object", "command_id"},
    {"{\"event_timestamp\":\"" TS "\"}", 0, "missing command_id", "command_id"},
    {"{\"command_id\":\"" ID "\"}", 0, "missing event_timestamp", "event_timestamp"},
    {"{\"commandId\":\"" ID "\",\"event_timestamp\":\"" TS "\"}", 0, "camelCase key", "command_id"},
    {"{\"command_id\":42,\"event_timestamp\":\"" TS "\"}", 0, "command_id a number", "command_id"},
    {"{\"command_id\":null,\"event_timestamp\":\"" TS "\"}", 0, "command_id null", "command_id"},
    {"{\"command_id\":{\"id\":\"" ID "\"},\"event_timestamp\":\"" TS "\"}", 0, "command_id an object", "command_id"},
    {"{\"command_id\":[\"" ID "\"],\"event_timestamp\":\"" TS "\"}", 0, "command_id an array", "command_id"},
    {"{\"command_id\":\"" ID "\",\"event_timestamp\":1254164592}", 0, "event_timestamp a number", "event_timestamp"},
    {"{\"command_id\":\"" ID "\",\"event_timestamp\":null}", 0, "event_timestamp null", "event_timestamp"},
    {"{\"command_id\":\"" ID "\",\"event_timestamp\":{}}", 0, "event_timestamp an object", "event_timestamp"},
    {"{\"command_id\":\"not-a-uuid\",\"event_timestamp\":\"" TS "\"}", 0, "non-UUID id", "command_id"},
    {"{\"command_id\":\"\",\"event_timestamp\":\"" TS "\"}", 0, "empty id", "command_id"},
    {"{\"command_id\":\"" ID " \",\"event_timestamp\":\"" TS "\"}", 0, "id with a space", "command_id"},
    {"{\"command_id\":\"{" ID "}\",\"event_timestamp\":\"" TS "\"}", 0, "id in braces", "command_id"},
    {"{\"command_id\":\"" ID "\",\"event_timestamp\":\"2009-02-30T00:00:00Z\"}", 0, "February 30", "event_timestamp"},
    {"{\"command_id\":\"" ID "\",\"event_timestamp\":\"2009-09-28T19:03:12\"}", 0, "no offset", "event_timestamp"},
    {"{\"command_id\":\"" ID "\",\"event_timestamp\":\"\"}", 0, "empty timestamp", "event_timestamp"},
    {"{\"command_id\":\"" ID "\",\"event_timestamp\":\"yesterday\"}", 0, "not a timestamp", "event_timestamp"},
    {"", 0, "empty value (len 0)", "empty"},
    {GOOD, 1, "one byte", "JSON"},
    {GOOD "x", 0, "trailing garbage", "JSON"},
    {GOOD "}", 0, "trailing brace", "JSON"},
    {GOOD GOOD, 0, "two objects", "JSON"},
    {GOOD " x", 0, "garbage after whitespace", "JSON"},
    {"{'command_id':'" ID "','event_timestamp':'" TS "'}", 0, "single quotes", "JSON"},
    {"{\"command_id\":\"" ID "\",\"event_timestamp\":\"" TS "\",}", 0, "trailing comma", "JSON"},
    {"/* c */" GOOD, 0, "a comment", "JSON"},
    /* Invalid UTF-8 in an unknown field, in a value, in a key. */
    {"{\"command_id\":\"" ID "\",\"event_timestamp\":\"" TS "\",\"x\":\"\xff\"}", 0, "byte 0xff", "JSON"},
    {"{\"command_id\":\"" ID "\",\"event_timestamp\":\"" TS "\",\"x\":\"\xe2\x82\"}", 0, "truncated sequence", "JSON"},
    {"{\"command_id\":\"" ID "\",\"event_timestamp\":\"" TS "\",\"\x80\":1}", 0, "continuation byte in a key", "JSON"},
};

START_TEST(decode_rejects_with_specific_reason)
{
	const char *v = rejected[_i].value;
	size_t len = rejected[_i].len ? rejected[_i].len : strlen(v);
	struct msg_command m;
	char err[256] = "";
	int rc = decode_copy(v, len, &m, err, sizeof(err));

	ck_assert_msg(rc == -1, "%s: accepted", rejected[_i].why);
	ck_assert_msg(err[0] != '\0', "%s: empty reason", rejected[_i].why);
	ck_assert_msg(strstr(err, rejected[_i].hint) != NULL,
	              "%s: reason '%s' does not mention '%s'", rejected[_i].why, err,
	              rejected[_i].hint);
}
END_TEST

/* Not JSON (RFC 8259) or not UTF-8 (RFC 3629), yet each parses with json-c
 * even in JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8 mode, which
 * checks only the byte structure of UTF-8 and tolerates some syntax. The
 * wire format is UTF-8 JSON: the decoder must refuse them all the same. */
static const struct {
	const char *value, *why;
} not_strict_json[] = {
    {"{\"command_id\":\"" ID "\",\"event_timestamp\":\"" TS "\",\"x\":\"\xc0\xaf\"}", "overlong UTF-8 of '/'"},
    {"{\"command_id\":\"" ID "\",\"event_timestamp\":\"" TS "\",\"x\":\"\xed\xa0\x80\"}", "UTF-16 surrogate encoded as UTF-8"},
    {"{\"command_id\":\"" ID "\",\"event_timestamp\":\"" TS "\",\"x\":\"\xf4\x90\x80\x80\"}", "code point above U+10FFFF"},
    /* json-c 0.16 also lets a raw TAB inside a string, NaN and single-quoted
     * keys through even in strict mode; the decoder accepts that leniency
     * (the fields it uses are checked on their own), so no rows for it. */
};

START_TEST(decode_rejects_what_is_not_strict_utf8_json)
{
	const char *v = not_strict_json[_i].value;
	struct msg_command m;
	char err[256] = "";

	ck_assert_msg(msg_decode(v, strlen(v), &m, err, sizeof(err)) == -1, "%s: accepted",
	              not_strict_json[_i].why);
	ck_assert_msg(err[0] != '\0', "%s: empty reason", not_strict_json[_i].why);
}
END_TEST

START_TEST(decode_rejects_null_value)
{
	struct msg_command m;
	char err[256] = "";

	ck_assert_int_eq(msg_decode(NULL, 0, &m, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "empty"));
	err[0] = '\0';
	ck_assert_int_eq(msg_decode(NULL, 10, &m, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "empty"));
}
END_TEST

START_TEST(decode_rejects_a_nul_byte)
{
	static const char v[] = "{\"command_id\":\"" ID "\",\"event_timestamp\":\"" TS "\"}";
	char buf[sizeof(v) + 8];
	struct msg_command m;
	char err[256] = "";

	/* The whole value with its terminating NUL counted in len. */
	ck_assert_int_eq(msg_decode(v, sizeof(v), &m, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "NUL") != NULL, "reason: %s", err);

	/* A NUL inside a string value. */
	memcpy(buf, v, sizeof(v));
	buf[20] = '\0';
	err[0] = '\0';
	ck_assert_int_eq(msg_decode(buf, sizeof(v) - 1, &m, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "NUL") != NULL, "reason: %s", err);
}
END_TEST

START_TEST(decode_rejects_a_huge_value)
{
	const size_t sizes[] = {MSG_VALUE_MAX + 1, 1024 * 1024};

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		char *buf = malloc(sizes[k]);
		struct msg_command m;
		char err[256] = "";

		ck_assert_ptr_nonnull(buf);
		/* A valid message padded with spaces: only the size is wrong. */
		memset(buf, ' ', sizes[k]);
		memcpy(buf, GOOD, strlen(GOOD));
		ck_assert_int_eq(msg_decode(buf, sizes[k], &m, err, sizeof(err)), -1);
		ck_assert_msg(err[0] != '\0' && strstr(err, "65536") != NULL, "reason: %s", err);
		free(buf);
	}
}
END_TEST

START_TEST(decode_reason_fits_a_small_errstr)
{
	struct msg_command m;
	char err[6];

	memset(err, 'x', sizeof(err));
	ck_assert_int_eq(decode("{\"command_id\":1}", &m, err, sizeof(err)), -1);
	ck_assert_uint_eq(strlen(err), sizeof(err) - 1);
}
END_TEST

/* ---- trace context headers ---------------------------------------------
 *
 * Through librdkafka's in-process mock cluster: what msg_produce writes is
 * what a consumer gets, headers included. */

#define HDR_TOPIC "msg-headers"
#define PARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define STATE "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
#define CID "6ba7b810-9dad-11d1-80b4-00c04fd430c8"

static rd_kafka_t *hrk; /* the producer, owner of the mock cluster */
static rd_kafka_mock_cluster_t *hcluster;
static int64_t next_offset; /* of the next message produced to partition 0 */
static rd_kafka_t *crk;     /* the consumer of consume_last's message */

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk, (void)level, (void)fac, (void)buf;
}

static void headers_setup(void)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[256];

	rd_kafka_conf_set_log_cb(conf, quiet_log);
	ck_assert(rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", errstr, sizeof(errstr)) ==
	          RD_KAFKA_CONF_OK);
	hrk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	ck_assert_msg(hrk != NULL, "%s", errstr);
	hcluster = rd_kafka_handle_mock_cluster(hrk);
	ck_assert_int_eq(rd_kafka_mock_topic_create(hcluster, HDR_TOPIC, 1, 1), 0);
	next_offset = 0;
}

static void headers_teardown(void)
{
	rd_kafka_destroy(hrk);
}

/* Waits (30 s at most) until what was produced is acknowledged. */
static void flush_produced(void)
{
	ck_assert_int_eq(rd_kafka_flush(hrk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
	next_offset++;
}

/* The message at offset next_offset - 1 of partition 0, as a consumer
 * reads it (30 s at most). The caller lets it go with release. */
static rd_kafka_message_t *consume_last(void)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
	rd_kafka_message_t *rkm = NULL;
	struct timespec until = clock_deadline(30000);
	char errstr[256];

	rd_kafka_conf_set_log_cb(conf, quiet_log);
	ck_assert(rd_kafka_conf_set(conf, "bootstrap.servers",
	                            rd_kafka_mock_cluster_bootstraps(hcluster), errstr,
	                            sizeof(errstr)) == RD_KAFKA_CONF_OK);
	ck_assert(rd_kafka_conf_set(conf, "group.id", "msg-tests", errstr, sizeof(errstr)) ==
	          RD_KAFKA_CONF_OK);
	crk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	ck_assert_msg(crk != NULL, "%s", errstr);
	rd_kafka_topic_partition_list_add(parts, HDR_TOPIC, 0)->offset = next_offset - 1;
	ck_assert_int_eq(rd_kafka_assign(crk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(parts);
	while (rkm == NULL && !clock_passed(&until)) {
		rkm = rd_kafka_consumer_poll(crk, 100);
		if (rkm != NULL && rkm->err) {
			rd_kafka_message_destroy(rkm);
			rkm = NULL;
		}
	}
	ck_assert_msg(rkm != NULL, "no message consumed within 30 s");
	ck_assert_int_eq(rkm->offset, next_offset - 1);
	return rkm;
}

/* Destroys the message, then its consumer (which waits for its messages). */
static void release(rd_kafka_message_t *rkm)
{
	rd_kafka_message_destroy(rkm);
	rd_kafka_consumer_close(crk);
	rd_kafka_destroy(crk);
	crk = NULL;
}

static void produce_command(const char *traceparent, const char *tracestate)
{
	char value[MSG_ENCODED_MAX];
	const struct msg_command m = {.command_id = ID, .event_time = {1254164592, 500000000}};
	const size_t len = msg_encode(&m, value);
	const struct msg_record rec = {.topic = HDR_TOPIC, .key = ID, .value = value,
	                               .value_len = len, .cid = CID, .ts_ms = 1254164593000,
	                               .traceparent = traceparent, .tracestate = tracestate};

	ck_assert_int_eq(msg_produce(hrk, &rec), RD_KAFKA_RESP_ERR_NO_ERROR);
	flush_produced();
}

/* The message is still the command it was, whatever its trace headers. */
static void assert_command(const rd_kafka_message_t *rkm)
{
	struct msg_command m;
	struct ts_instant created;
	char cid[UID_TEXT_SIZE], err[128] = "";

	ck_assert_msg(msg_decode_kafka(rkm, &m, &created, cid, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(m.command_id, ID);
	ck_assert_str_eq(cid, CID);
	ck_assert_int_eq(created.sec, 1254164593);
}

static void assert_zero(const struct trace_ctx *c)
{
	static const struct trace_ctx zero;

	ck_assert(memcmp(c->trace_id, zero.trace_id, sizeof(zero.trace_id)) == 0);
	ck_assert(memcmp(c->span_id, zero.span_id, sizeof(zero.span_id)) == 0);
	ck_assert_int_eq(c->flags, 0);
	ck_assert_str_eq(c->state, "");
}

START_TEST(trace_context_comes_back_as_produced)
{
	rd_kafka_message_t *rkm;
	struct trace_ctx ctx, want;
	char text[TRACE_PARENT_SIZE];

	produce_command(PARENT, STATE);
	rkm = consume_last();
	ck_assert_int_eq(msg_trace_context(rkm, &ctx), 0);
	ck_assert_int_eq(trace_parse(PARENT, STATE, &want), 0);
	ck_assert(memcmp(ctx.trace_id, want.trace_id, sizeof(want.trace_id)) == 0);
	ck_assert(memcmp(ctx.span_id, want.span_id, sizeof(want.span_id)) == 0);
	ck_assert_int_eq(ctx.flags, 1);
	ck_assert_str_eq(ctx.state, STATE);
	trace_format(&ctx, text);
	ck_assert_str_eq(text, PARENT);
	assert_command(rkm);
	release(rkm);
}
END_TEST

START_TEST(no_trace_context_sends_no_trace_header)
{
	rd_kafka_headers_t *hdrs = NULL;
	rd_kafka_message_t *rkm;
	struct trace_ctx ctx;
	const void *val;
	size_t len;

	produce_command(_i == 0 ? NULL : "", _i == 0 ? NULL : "");
	rkm = consume_last();
	ck_assert_int_eq(rd_kafka_message_headers(rkm, &hdrs), RD_KAFKA_RESP_ERR_NO_ERROR);
	ck_assert_int_eq(rd_kafka_header_get_last(hdrs, TRACE_HDR_PARENT, &val, &len),
	                 RD_KAFKA_RESP_ERR__NOENT);
	ck_assert_int_eq(rd_kafka_header_get_last(hdrs, TRACE_HDR_STATE, &val, &len),
	                 RD_KAFKA_RESP_ERR__NOENT);
	memset(&ctx, 0xff, sizeof(ctx));
	ck_assert_int_eq(msg_trace_context(rkm, &ctx), -1);
	assert_zero(&ctx);
	assert_command(rkm);
	release(rkm);
}
END_TEST

/* What another producer may put in a traceparent header: each is ignored
 * (a new trace), and the message is processed as usual. */
static const struct {
	const char *value;
	size_t len; /* 0: strlen */
} bad_parents[] = {
    {"garbage", 0},
    {"", 0},
    {"00-00000000000000000000000000000000-00f067aa0ba902b7-01", 0},
    {"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", 0},
    {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", 0},
    {"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0},
    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", 0},
    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\0trailing", 64},
    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0", 0},
};

START_TEST(malformed_traceparent_from_another_producer_is_ignored)
{
	const char *value = bad_parents[_i].value;
	const size_t len = bad_parents[_i].len ? bad_parents[_i].len : strlen(value);
	rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
	rd_kafka_message_t *rkm;
	struct trace_ctx ctx;

	rd_kafka_header_add(hdrs, MSG_HDR_CORRELATION, -1, CID, -1);
	rd_kafka_header_add(hdrs, TRACE_HDR_PARENT, -1, value, (ssize_t)len);
	ck_assert_int_eq(rd_kafka_producev(hrk, RD_KAFKA_V_TOPIC(HDR_TOPIC), RD_KAFKA_V_PARTITION(0),
	                                   RD_KAFKA_V_VALUE((void *)GOOD, strlen(GOOD)),
	                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	                                   RD_KAFKA_V_TIMESTAMP(1254164593000),
	                                   RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END),
	                 RD_KAFKA_RESP_ERR_NO_ERROR);
	flush_produced();
	rkm = consume_last();
	memset(&ctx, 0xff, sizeof(ctx));
	ck_assert_int_eq(msg_trace_context(rkm, &ctx), -1);
	assert_zero(&ctx);
	assert_command(rkm);
	release(rkm);
}
END_TEST

/* A traceparent far longer than any version's (a 4 KiB header) is not
 * one; a tracestate over TRACE_STATE_MAX is dropped, its traceparent kept. */
START_TEST(oversized_trace_headers)
{
	char big[4097];
	rd_kafka_message_t *rkm;
	struct trace_ctx ctx;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, PARENT, strlen(PARENT));
	big[strlen(PARENT)] = '-'; /* a later version's extra field, very long */
	produce_command(big, NULL);
	rkm = consume_last();
	ck_assert_int_eq(msg_trace_context(rkm, &ctx), -1);
	assert_zero(&ctx);
	release(rkm);

	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "k=", 2);
	produce_command(PARENT, big);
	rkm = consume_last();
	ck_assert_int_eq(msg_trace_context(rkm, &ctx), 0);
	ck_assert_int_eq(ctx.span_id[7], 0xb7);
	ck_assert_str_eq(ctx.state, "");
	release(rkm);
}
END_TEST

Suite *make_msg_suite(void)
{
	Suite *s = suite_create("msg");
	TCase *tc;

	tc = tcase_create("encode");
	tcase_add_test(tc, encode_writes_the_wire_format);
	tcase_add_test(tc, encode_keeps_all_nine_digits_and_fits);
	tcase_add_loop_test(tc, decode_of_encode_keeps_id_and_instant_to_the_nanosecond, 0,
	                    TABLE_LEN(round_trip));
	suite_add_tcase(s, tc);

	tc = tcase_create("decode_accept");
	tcase_add_loop_test(tc, decode_accepts, 0, TABLE_LEN(accepted));
	tcase_add_test(tc, decode_lowercases_an_uppercase_command_id);
	tcase_add_test(tc, decode_accepts_a_value_of_exactly_max_size);
	tcase_add_loop_test(tc, decode_of_a_value_near_the_wire_format_agrees_with_json_c, 0,
	                    TABLE_LEN(round_trip));
	suite_add_tcase(s, tc);

	tc = tcase_create("decode_reject");
	tcase_add_loop_test(tc, decode_rejects_with_specific_reason, 0, TABLE_LEN(rejected));
	tcase_add_test(tc, decode_rejects_null_value);
	tcase_add_test(tc, decode_rejects_a_nul_byte);
	tcase_add_test(tc, decode_rejects_a_huge_value);
	tcase_add_test(tc, decode_reason_fits_a_small_errstr);
	suite_add_tcase(s, tc);

	tc = tcase_create("decode_strict");
	tcase_add_loop_test(tc, decode_rejects_what_is_not_strict_utf8_json, 0,
	                    TABLE_LEN(not_strict_json));
	suite_add_tcase(s, tc);

	tc = tcase_create("trace_headers");
	tcase_set_timeout(tc, 120); /* each test waits up to 30 s per message */
	tcase_add_checked_fixture(tc, headers_setup, headers_teardown);
	tcase_add_test(tc, trace_context_comes_back_as_produced);
	tcase_add_loop_test(tc, no_trace_context_sends_no_trace_header, 0, 2);
	tcase_add_loop_test(tc, malformed_traceparent_from_another_producer_is_ignored, 0,
	                    TABLE_LEN(bad_parents));
	tcase_add_test(tc, oversized_trace_headers);
	suite_add_tcase(s, tc);

	return s;
}
