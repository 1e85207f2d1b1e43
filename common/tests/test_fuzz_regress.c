/* test_fuzz_regress: inputs kept from fuzzing (fuzz/, `make fuzz`). Every
 * input that made a fuzz target fail becomes a row here, with the outcome the
 * contract asks for, so that `make test` (plain and under ASan/UBSan) keeps it
 * fixed; so do boundary inputs the fuzzers reached on their own. Inputs are
 * byte strings with explicit lengths: NULs and invalid UTF-8 stay.
 *
 * Found so far: fuzz_http, a good X-Correlation-ID beside a bad
 * correlationId (the "http" cases below). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "msg.h"
#include "suites.h"
#include "ts.h"
#include "uid.h"

/* A byte-string literal and its length, without the NUL C adds. */
#define BYTES(s) s, sizeof(s) - 1

/* ---- ts_parse_rfc3339 (fuzz/fuzz_ts.c) ---------------------------------- */

static const struct {
	const char *in;
	size_t len;
	int rc;       /* 0 accepted, -1 refused */
	int64_t sec;  /* when accepted */
	int32_t nsec;
	const char *why; /* part of the reason, when refused */
} ts_cases[] = {
    /* the edges of the range, reached through offsets and leap seconds */
    {BYTES("9999-12-31T23:59:59.999999999-00:00"), 0, 253402300799LL, 999999999, NULL},
    {BYTES("9999-12-31T23:59:60Z"), -1, 0, 0, "outside years"},
    {BYTES("9999-12-31T00:00:01+23:59"), 0, 253402128061LL, 0, NULL},
    {BYTES("0001-01-01T00:00:00+00:01"), -1, 0, 0, "outside years"},
    {BYTES("0001-01-01T00:00:00-23:59"), 0, -62135510460LL, 0, NULL},
    {BYTES("0001-01-01T00:00:60Z"), 0, -62135596740LL, 0, NULL},
    {BYTES("0000-12-31T23:59:59-00:01"), -1, 0, 0, "year"},
    {BYTES("1998-12-31T23:59:60Z"), 0, 915148800LL, 0, NULL},
    /* calendar */
    {BYTES("2004-02-29T11:00:00-23:59"), 0, 1078138740LL, 0, NULL},
    {BYTES("2000-02-29T00:00:00Z"), 0, 951782400LL, 0, NULL},
    {BYTES("1900-02-29T00:00:00Z"), -1, 0, 0, "day"},
    {BYTES("2005-02-29T11:00:00Z"), -1, 0, 0, "day"},
    {BYTES("2009-66-28T21:03:16Z"), -1, 0, 0, "month"},
    {BYTES("0001-01-00T00:00:00z"), -1, 0, 0, "day"},
    {BYTES("2009-09-28T38:03:12Z"), -1, 0, 0, "hour"},
    {BYTES("0001-01-01T00:00:80Z"), -1, 0, 0, "second"},
    /* fractions */
    {BYTES("2009-09-28t19:03:12.000000006z"), 0, 1254164592LL, 6, NULL},
    {BYTES("2009-09-28T19:03:12.1220347069"), -1, 0, 0, "9 fractional"},
    {BYTES("2009-09-28T21:03:12."), -1, 0, 0, "fraction"},
    {BYTES("2009-09-28t19:03:12.1234567)z"), -1, 0, 0, "offset"},
    /* offsets */
    {BYTES("2009-09-29T19:03:12+24:00"), -1, 0, 0, "offset"},
    {BYTES("2000-02-29T12:00:00-03:60"), -1, 0, 0, "offset"},
    {BYTES("2009-09-28T21:03:15+0:A00"), -1, 0, 0, "offset"},
    {BYTES("2005-02-29T11:00:00-"), -1, 0, 0, "offset"},
    /* bytes after the end, NULs, truncation */
    {BYTES("0001-01-01T00:00:00Z\\,"), -1, 0, 0, "after the offset"},
    {BYTES("2009-09-28T19:03:12Z\0"), -1, 0, 0, "after the offset"},
    {BYTES("2009-09-28T19:03:12\0Z"), -1, 0, 0, "offset"},
    {BYTES("2009-09-28T19:"), -1, 0, 0, "hh:mm:ss"},
    {BYTES(""), -1, 0, 0, "YYYY-MM-DD"},
    {BYTES("\xff"), -1, 0, 0, "YYYY-MM-DD"},
};

START_TEST(ts_kept_inputs)
{
	struct ts_instant t = {0, 0}, back;
	char err[128] = "", text[TS_TEXT_MAX];
	/* a copy of exactly len bytes, so that ASan sees any read beyond */
	char *in = malloc(ts_cases[_i].len ? ts_cases[_i].len : 1);
	int rc;

	ck_assert_ptr_nonnull(in);
	memcpy(in, ts_cases[_i].in, ts_cases[_i].len);
	rc = ts_parse_rfc3339(in, ts_cases[_i].len, &t, err, sizeof(err));
	ck_assert_msg(rc == ts_cases[_i].rc, "case %d: rc %d (%s)", _i, rc, err);
	if (rc != 0) {
		ck_assert_msg(strstr(err, ts_cases[_i].why) != NULL, "case %d: '%s'", _i, err);
	} else {
		ck_assert_int_eq(t.sec, ts_cases[_i].sec);
		ck_assert_int_eq(t.nsec, ts_cases[_i].nsec);
		/* the fuzz target's round trip: format(9) -> parse */
		size_t n = ts_format(&t, 9, text);
		ck_assert_int_eq(ts_parse_rfc3339(text, n, &back, err, sizeof(err)), 0);
		ck_assert_int_eq(back.sec, t.sec);
		ck_assert_int_eq(back.nsec, t.nsec);
	}
	free(in);
}
END_TEST

/* ---- msg_decode (fuzz/fuzz_msg.c) ----------------------------------------------- */

#define ID "886313e1-3b8a-5372-9b90-0c9aee199e5d"
#define GOOD "{\"command_id\":\"" ID "\",\"event_timestamp\":\"2009-09-28T19:03:12.5Z\"}"

static const struct {
	const char *in;
	size_t len;
	const char *why; /* NULL: decodes to ID at 1254164592.5 */
} msg_cases[] = {
    {BYTES(GOOD), NULL},
    {BYTES(" \r\n\t" GOOD " \r\n\t"), NULL},
    {BYTES("{\"command_id\":\"\\u0038\\u0038" "6313E1-3B8A-5372-9B90-0C9AEE199E5D\","
           "\"event_timestamp\":\"2009-09-28T19:03:12.5\\u005a\"}"), NULL},
    {BYTES("{\"x\":\"\\ud800\",\"command_id\":\"" ID "\","
           "\"event_timestamp\":\"2009-09-28T19:03:12.5Z\"}"), NULL},
    {BYTES(GOOD "x"), "not JSON"},
    {BYTES(GOOD GOOD), "not JSON"},
    {BYTES("{\"command_id\":\"" ID "\0\",\"event_timestamp\":\"2009-09-28T19:03:12.5Z\"}"),
     "NUL"},
    {BYTES("{\"command_id\":\"\\u0000" ID "\",\"event_timestamp\":\"2009-09-28T19:03:12.5Z\"}"),
     "not a UUID"},
    {BYTES("{\"command_id\":\"" ID "\",\"event_timestamp\":\"2009-09-28T19:03:12.5Z\\u0000\"}"),
     "RFC 3339"},
    {BYTES("{\"x\":\"\xc0\x80\"," GOOD "}"), "UTF-8"},
    {BYTES("{\"x\":\"\xed\xa0\x80\"}"), "UTF-8"},
    {BYTES("{\"x\":\"\xf4\x90\x80\x80\"}"), "UTF-8"},
    {BYTES("{\"x\":\"\xe2\x82\"}"), "UTF-8"},
    {BYTES("{\"command_id\":[\"" ID "\"],\"event_timestamp\":\"2009-09-28T19:03:12.5Z\"}"),
     "not a string"},
    {BYTES("{\"command_id\":\"" ID "\"}"), "missing field event_timestamp"},
    {BYTES("[" GOOD "]"), "not a JSON object"},
    {BYTES("{\"command_id\":\"" ID "\",/*c*/\"event_timestamp\":\"2009-09-28T19:03:12.5Z\"}"),
     "not JSON"},
    {BYTES("{"), "not JSON"},
    {BYTES("\"\\"), "not JSON"},
};

START_TEST(msg_kept_inputs)
{
	struct msg_command m, back;
	char err[256] = "", buf[MSG_ENCODED_MAX];
	char *in = malloc(msg_cases[_i].len);
	int rc;

	ck_assert_ptr_nonnull(in);
	memcpy(in, msg_cases[_i].in, msg_cases[_i].len);
	rc = msg_decode(in, msg_cases[_i].len, &m, err, sizeof(err));
	if (msg_cases[_i].why != NULL) {
		ck_assert_msg(rc == -1, "case %d decoded", _i);
		ck_assert_msg(strstr(err, msg_cases[_i].why) != NULL, "case %d: '%s'", _i, err);
	} else {
		ck_assert_msg(rc == 0, "case %d: %s", _i, err);
		ck_assert_str_eq(m.command_id, ID);
		ck_assert_int_eq(m.event_time.sec, 1254164592);
		ck_assert_int_eq(m.event_time.nsec, 500000000);
		/* the fuzz target's round trip: encode -> decode */
		size_t n = msg_encode(&m, buf);
		ck_assert_int_eq(msg_decode(buf, n, &back, err, sizeof(err)), 0);
		ck_assert_str_eq(back.command_id, m.command_id);
		ck_assert_int_eq(back.event_time.sec, m.event_time.sec);
		ck_assert_int_eq(back.event_time.nsec, m.event_time.nsec);
	}
	free(in);
}
END_TEST

/* Nesting far deeper than json-c's limit: refused, not a stack overflow. */
START_TEST(msg_deep_nesting_is_refused)
{
	enum { DEPTH = MSG_VALUE_MAX / 2 };
	struct msg_command m;
	char err[256];
	char *in = malloc(2 * DEPTH);

	ck_assert_ptr_nonnull(in);
	memset(in, '[', DEPTH);
	memset(in + DEPTH, ']', DEPTH);
	ck_assert_int_eq(msg_decode(in, 2 * DEPTH, &m, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not JSON"));
	free(in);
}
END_TEST

/* The largest value accepted: a good message padded with blanks. */
START_TEST(msg_value_max_is_the_limit)
{
	struct msg_command m;
	char err[256];
	char *in = malloc(MSG_VALUE_MAX + 1);

	ck_assert_ptr_nonnull(in);
	memset(in, ' ', MSG_VALUE_MAX + 1);
	memcpy(in, GOOD, strlen(GOOD));
	ck_assert_int_eq(msg_decode(in, MSG_VALUE_MAX, &m, err, sizeof(err)), 0);
	ck_assert_int_eq(msg_decode(in, MSG_VALUE_MAX + 1, &m, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "exceeds"));
	free(in);
}
END_TEST

/* ---- UUIDs and Idempotency-Key (fuzz/fuzz_uid.c) ---------------------------------- */

static const struct {
	const char *in;
	size_t len;
	bool uuid, key;
} uid_cases[] = {
    {BYTES(ID), true, true},
    {BYTES("886313E1-3B8A-5372-9B90-0C9AEE199E5D"), true, true},
    {BYTES("886313e1-3b8a-5372-9b90-0c9aee199e5\0"), false, false},
    {BYTES("886313e1-3b8a-5372-9b90-0c9aee199e5g"), false, true},
    {BYTES("886313e1+3b8a-5372-9b90-0c9aee199e5d"), false, true},
    {BYTES("886313e1-3b8a-5372-9b90-0c9aee199e5d "), false, false},
    {BYTES("~"), false, true},
    {BYTES("!\x7e"), false, true},
    {BYTES("a\x7f"), false, false},
    {BYTES("a b"), false, false},
    {BYTES("\xc3\xa9"), false, false},
    {BYTES(""), false, false},
};

START_TEST(uid_kept_inputs)
{
	char *in = malloc(uid_cases[_i].len ? uid_cases[_i].len : 1), out[UID_TEXT_SIZE];

	ck_assert_ptr_nonnull(in);
	memcpy(in, uid_cases[_i].in, uid_cases[_i].len);
	ck_assert_msg(uid_valid(in, uid_cases[_i].len) == uid_cases[_i].uuid, "case %d", _i);
	ck_assert_msg(uid_idempotency_key_valid(in, uid_cases[_i].len) == uid_cases[_i].key,
	              "case %d", _i);
	if (uid_cases[_i].key) {
		ck_assert_int_eq(uid_v5(UID_IDEMPOTENCY_NAMESPACE, in, uid_cases[_i].len, out), 0);
		ck_assert(uid_valid(out, strlen(out)) && out[14] == '5');
	}
	free(in);
}
END_TEST

/* Keys of 255 and 256 characters, and a namespace in capitals. */
START_TEST(uid_key_length_and_namespace_case)
{
	char key[256], a[UID_TEXT_SIZE], b[UID_TEXT_SIZE];

	memset(key, 'k', sizeof(key));
	ck_assert(uid_idempotency_key_valid(key, 255));
	ck_assert(!uid_idempotency_key_valid(key, 256));
	ck_assert_int_eq(uid_v5("5B8F6C1E-3F0A-4C57-9A55-2F6A7C1D9E40", key, 255, a), 0);
	ck_assert_int_eq(uid_v5(UID_IDEMPOTENCY_NAMESPACE, key, 255, b), 0);
	ck_assert_str_eq(a, b);
	ck_assert_int_eq(uid_v5("5b8f6c1e-3f0a-4c57-9a55-2f6a7c1d9e4", key, 1, a), -1);
}
END_TEST

/* ---- http_req_init (fuzz/fuzz_http.c), through a real server ----------------- */

/* fuzz_http's input: the raw path, then one "name:value" header per line.
 * Here it is sent as a GET over a socket to a server started in-process. */
static const struct {
	const char *in;
	int status;
	const char *cid; /* the reply's correlationId; NULL: a fresh one */
} http_cases[] = {
    /* found by fuzz_http: a good X-Correlation-ID beside a bad correlationId
     * gave a 400 carrying the good id; http.h promises a fresh one */
    {"/app\ncorrelationId:\nX-Correlation-ID:8E199E5D-3B8A-5372-9B90-0C9AEE199E5D", 400, NULL},
    {"/app\nX-Correlation-ID: 886313e1-3b8a-5372-9b90-0c9aee199e5d\ncorrelationId: nope", 400,
     NULL},
    /* both good: correlationId is the one echoed */
    {"/app\nX-Correlation-ID: 886313e1-3b8a-5372-9b90-0c9aee199e5d\n"
     "correlationId:  6BA7B810-9DAD-11D1-80B4-00C04FD430C8 ",
     200, "6BA7B810-9DAD-11D1-80B4-00C04FD430C8"},
    {"/%41pp%2B\ncorrelationId: 886313e1-3b8a-5372-9b90-0c9aee199e5d", 200,
     "886313e1-3b8a-5372-9b90-0c9aee199e5d"},
};

static int route(struct http_req *req, const char **route_name)
{
	*route_name = "regress";
	return http_send_json(req, 200, NULL, "{}");
}

static const struct http_routes routes = {.route = route};
static struct mg_context *ctx;
static int port;

static void server_start(void)
{
	char err[256] = "";

	log_setup("test", LOG_ERROR);
	signal(SIGPIPE, SIG_IGN);
	for (int attempt = 0; attempt < 20 && ctx == NULL; attempt++) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t sl = sizeof(sa);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
		close(fd);
		struct http_server_opts opts = {.address = "127.0.0.1", .port = ntohs(sa.sin_port),
		                                .threads = 2, .routes = &routes};
		ctx = http_start(&opts, err, sizeof(err));
		port = opts.port;
	}
	ck_assert_msg(ctx != NULL, "http_start: %s", err);
}

/* A socket connected to the server, or -1 (errno set) when it refused. */
static int try_connect(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 5};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static int connect_server(void)
{
	int fd = try_connect();

	ck_assert_msg(fd >= 0, "connect to 127.0.0.1:%d: %s", port, strerror(errno));
	return fd;
}

static _Atomic bool stopped;

static void *stop_thread(void *arg)
{
	mg_stop(arg);
	atomic_store(&stopped, true);
	return NULL;
}

/* mg_stop returns once civetweb's poll(2) wakes up: knock meanwhile. Once
 * mg_stop has closed the listener a knock is refused; that is expected. */
static void server_stop(void)
{
	pthread_t t;

	atomic_store(&stopped, false);
	ck_assert_int_eq(pthread_create(&t, NULL, stop_thread, ctx), 0);
	while (!atomic_load(&stopped)) {
		int fd = try_connect();

		if (fd >= 0)
			close(fd);
		usleep(20 * 1000);
	}
	pthread_join(t, NULL);
	ctx = NULL;
}

START_TEST(http_kept_inputs)
{
	char req[1024], resp[8192], cid[64] = "";
	const char *in = http_cases[_i].in, *nl = strchr(in, '\n'), *h;
	size_t pos = 0, len = 0;
	int fd = connect_server(), status = 0;
	ssize_t n;

	/* request line, then each header line with CRLF */
	pos = (size_t)snprintf(req, sizeof(req), "GET %.*s HTTP/1.1\r\nHost: x\r\n"
	                       "Connection: close\r\n", (int)(nl - in), in);
	for (h = nl + 1; *h && pos < sizeof(req) - 8; h++) {
		if (*h == '\n')
			req[pos++] = '\r';
		req[pos++] = *h;
	}
	pos += (size_t)snprintf(req + pos, sizeof(req) - pos, "\r\n\r\n");
	ck_assert_int_eq(write(fd, req, pos), (ssize_t)pos);
	while (len < sizeof(resp) - 1 && (n = read(fd, resp + len, sizeof(resp) - 1 - len)) > 0)
		len += (size_t)n;
	resp[len] = '\0';
	close(fd);

	ck_assert_msg(sscanf(resp, "HTTP/1.1 %d", &status) == 1, "case %d: '%s'", _i, resp);
	ck_assert_msg(status == http_cases[_i].status, "case %d: %d", _i, status);
	for (h = resp; (h = strstr(h, "\r\n")) != NULL; h += 2)
		if (strncasecmp(h + 2, "correlationId: ", 15) == 0)
			sscanf(h + 17, "%63[^\r]", cid);
	ck_assert_msg(uid_valid(cid, strlen(cid)), "case %d: reply correlationId '%s'", _i, cid);
	if (http_cases[_i].cid != NULL) {
		ck_assert_str_eq(cid, http_cases[_i].cid);
	} else {
		/* fresh: none of the ids the request carried */
		for (h = in; (h = strchr(h, ':')) != NULL; h++)
			ck_assert_msg(strncasecmp(cid, h + 1 + strspn(h + 1, " \t"), 36) != 0,
			              "case %d: the 400 carries the request's id %s", _i, cid);
	}
}
END_TEST

Suite *make_fuzz_regress_suite(void)
{
	Suite *s = suite_create("fuzz_regress");
	TCase *tc;

	tc = tcase_create("ts");
	tcase_add_loop_test(tc, ts_kept_inputs, 0, TABLE_LEN(ts_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("msg");
	tcase_add_loop_test(tc, msg_kept_inputs, 0, TABLE_LEN(msg_cases));
	tcase_add_test(tc, msg_deep_nesting_is_refused);
	tcase_add_test(tc, msg_value_max_is_the_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("uid");
	tcase_add_loop_test(tc, uid_kept_inputs, 0, TABLE_LEN(uid_cases));
	tcase_add_test(tc, uid_key_length_and_namespace_case);
	suite_add_tcase(s, tc);

	tc = tcase_create("http");
	tcase_add_checked_fixture(tc, server_start, server_stop);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, http_kept_inputs, 0, TABLE_LEN(http_cases));
	suite_add_tcase(s, tc);
	return s;
}
