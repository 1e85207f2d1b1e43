/* test_trace: W3C trace context, sampling, configuration and the OTLP/HTTP
 * exporter, binary protobuf and JSON (common/trace.c). The exporter posts
 * to a small HTTP listener run by the test on 127.0.0.1 (an ephemeral port)
 * that records each request; json-c reads the JSON bodies back, and a
 * binary body is first read into the same JSON (body_json). */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "metrics.h"
#include "suites.h"
#include "trace.h"

#define TP_VALID "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define TRACE_HEX "4bf92f3577b34da6a3ce929d0e0e4736"
#define SPAN_HEX "00f067aa0ba902b7"

/* ---- traceparent -------------------------------------------------------- */

static const struct {
	const char *in;
	int rc;
	uint8_t flags;
} parents[] = {
    {TP_VALID, 0, 1},
    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", 0, 0},
    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09", 0, 9}, /* unknown flags kept */
    /* A later version: its first four fields, when followed by '-' or the end. */
    {"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0, 1},
    {"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds", 0, 1},
    {"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01extra", -1, 0},
    /* Version 00 has nothing after the flags. */
    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", -1, 0},
    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ", -1, 0},
    {"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", -1, 0}, /* invalid version */
    {"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", -1, 0},
    {"FF-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", -1, 0},
    {"0a-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0, 1},
    {"0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", -1, 0},
    /* Lowercase hex only. */
    {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", -1, 0},
    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01", -1, 0},
    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A", -1, 0},
    {"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", -1, 0},
    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", -1, 0},
    /* All-zero ids. */
    {"00-00000000000000000000000000000000-00f067aa0ba902b7-01", -1, 0},
    {"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", -1, 0},
    /* Wrong lengths and separators. */
    {"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", -1, 0},
    {"00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01", -1, 0},
    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01", -1, 0},
    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", -1, 0},
    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-001", -1, 0},
    {"0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", -1, 0},
    {"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", -1, 0},
    {"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01", -1, 0},
    {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01", -1, 0},
    {" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", -1, 0},
    {"", -1, 0},
    {"00", -1, 0},
};

START_TEST(traceparent_parses_per_w3c)
{
	struct trace_ctx c;
	char text[TRACE_ID_TEXT_SIZE];

	memset(&c, 0x5a, sizeof(c));
	ck_assert_msg(trace_parse(parents[_i].in, "k=v", &c) == parents[_i].rc, "'%s': rc", parents[_i].in);
	if (parents[_i].rc == 0) {
		trace_id_text(&c, text);
		ck_assert_str_eq(text, TRACE_HEX);
		ck_assert_uint_eq(c.span_id[0], 0x00);
		ck_assert_uint_eq(c.span_id[1], 0xf0);
		ck_assert_uint_eq(c.span_id[7], 0xb7);
		ck_assert_uint_eq(c.flags, parents[_i].flags);
		ck_assert_str_eq(c.state, "k=v");
	} else {
		/* Zeroed: the caller starts a new trace. */
		ck_assert(!trace_ctx_valid(&c));
		ck_assert_uint_eq(c.flags, 0);
		ck_assert_str_eq(c.state, "");
	}
}
END_TEST

START_TEST(missing_traceparent_is_invalid_and_drops_tracestate)
{
	struct trace_ctx c;

	ck_assert_int_eq(trace_parse(NULL, "k=v", &c), -1);
	ck_assert(!trace_ctx_valid(&c));
	ck_assert_str_eq(c.state, "");
}
END_TEST

START_TEST(format_gives_back_what_was_parsed)
{
	struct trace_ctx c;
	char buf[TRACE_PARENT_SIZE];

	ck_assert_int_eq(trace_parse(TP_VALID, NULL, &c), 0);
	trace_format(&c, buf);
	ck_assert_str_eq(buf, TP_VALID);
	ck_assert_uint_eq(strlen(buf), TRACE_PARENT_SIZE - 1);
	/* A later version is sent on as version 00. */
	ck_assert_int_eq(trace_parse("cc-" TRACE_HEX "-" SPAN_HEX "-00-more", NULL, &c), 0);
	trace_format(&c, buf);
	ck_assert_str_eq(buf, "00-" TRACE_HEX "-" SPAN_HEX "-00");
}
END_TEST

START_TEST(trace_id_text_is_empty_without_a_context)
{
	struct trace_ctx c;
	char text[TRACE_ID_TEXT_SIZE] = "junk";

	memset(&c, 0, sizeof(c));
	trace_id_text(&c, text);
	ck_assert_str_eq(text, "");
}
END_TEST

/* ---- tracestate --------------------------------------------------------- */

static char long_text[2048];

/* n copies of c, for keys and values at their length limits. */
static const char *rep(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

static const struct {
	const char *in;
	bool kept;
} states[] = {
    {"congo=t61rcWkgMzE", true},
    {"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", true},
    {"rojo=1 , congo=2", true},          /* blanks around members */
    {"rojo=1,,congo=2", true},           /* an empty member */
    {",, ,\t", false},                   /* only empty members: nothing to pass on */
    {"rojo=a b c", true},                /* blanks inside a value */
    {"fw529a3039@dt=abc", true},         /* multi-tenant key */
    {"1tenant@sys=v", true},             /* a tenant may start with a digit */
    {"a_-*/9=v", true},
    {"", true},
    {"Rojo=1", false},                   /* uppercase key */
    {"1rojo=1", false},                  /* a simple key starts with a letter */
    {"rojo=1,rojo=2", false},            /* a key twice */
    {"rojo", false},                     /* no value */
    {"rojo=", false},                    /* empty value */
    {"rojo=a=b", false},                 /* '=' in a value */
    {"rojo=a\tb", false},                /* tab in a value */
    {"rojo=caf\xc3\xa9", false},         /* non-ASCII */
    {"ro jo=1", false},
    {"tenant@=v", false},                /* empty system id */
    {"@sys=v", false},                   /* empty tenant id */
    {"tenant@1sys=v", false},            /* a system id starts with a letter */
    {"a@b@c=v", false},
};

static void check_state(const char *in, bool kept)
{
	struct trace_ctx c;

	ck_assert_int_eq(trace_parse(TP_VALID, in, &c), 0); /* never the traceparent's fault */
	ck_assert_msg(strcmp(c.state, kept ? in : "") == 0, "tracestate '%.60s': got '%.60s'", in, c.state);
}

START_TEST(tracestate_is_kept_or_dropped_per_w3c)
{
	check_state(states[_i].in, states[_i].kept);
}
END_TEST

START_TEST(tracestate_limits)
{
	char key[300], value[300], tenant[300], system[20];

	/* 32 members are kept, a 33rd drops the whole header. */
	size_t pos = 0;
	for (int i = 0; i < 33; i++) {
		if (i == 32) {
			check_state(long_text, true);
			long_text[pos++] = ',';
		} else if (i > 0) {
			long_text[pos++] = ',';
		}
		pos += (size_t)sprintf(long_text + pos, "k%d=v", i);
	}
	check_state(long_text, false);

	/* Keys up to 256, values up to 256, tenant 241, system 14. */
	snprintf(long_text, sizeof(long_text), "%s=v", rep(key, 'k', 256));
	check_state(long_text, true);
	snprintf(long_text, sizeof(long_text), "%s=v", rep(key, 'k', 257));
	check_state(long_text, false);
	snprintf(long_text, sizeof(long_text), "k=%s", rep(value, 'v', 256));
	check_state(long_text, true);
	snprintf(long_text, sizeof(long_text), "k=%s", rep(value, 'v', 257));
	check_state(long_text, false);
	snprintf(long_text, sizeof(long_text), "%s@%s=v", rep(tenant, 't', 241), rep(system, 's', 14));
	check_state(long_text, true);
	snprintf(long_text, sizeof(long_text), "%s@%s=v", rep(tenant, 't', 242), rep(system, 's', 14));
	check_state(long_text, false);
	snprintf(long_text, sizeof(long_text), "%s@%s=v", rep(tenant, 't', 241), rep(system, 's', 15));
	check_state(long_text, false);

	/* TRACE_STATE_MAX characters are kept, one more is dropped. */
	snprintf(long_text, sizeof(long_text), "a=%s,b=%s", rep(value, 'v', 254),
	         rep(key, 'w', TRACE_STATE_MAX - 254 - 4 - 1));
	ck_assert_uint_eq(strlen(long_text), TRACE_STATE_MAX);
	check_state(long_text, true);
	strcat(long_text, "w");
	check_state(long_text, false);
}
END_TEST

/* ---- the test's collector ----------------------------------------------- */

enum listener_mode {
	ANSWER_200,
	ANSWER_503_ONCE, /* 503 with Retry-After: 1, then 200 */
	ANSWER_NEVER,    /* reads the request, never answers */
	ANSWER_503_LONG, /* 503 with Retry-After: 3600, always */
};

#define REQUESTS_MAX 64

struct listener {
	int fd, port;
	enum listener_mode mode;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	int n;                         /* requests received */
	int conns;                     /* connections accepted */
	char *head[REQUESTS_MAX];      /* request line and headers */
	char *body[REQUESTS_MAX];      /* NUL-terminated, though a binary body may hold NULs */
	size_t body_len[REQUESTS_MAX];
};

static struct listener lis;

/* Reads one request from fd into the listener's records; false at EOF, an
 * error, or stop. */
static bool read_request(int fd)
{
	char *buf = NULL, *end;
	size_t len = 0, cap = 0, want = 0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t got;

		if (len + 4096 > cap) {
			char *bigger = realloc(buf, (cap = cap ? cap * 2 : 65536) + 1);
			ck_assert_ptr_nonnull(bigger);
			buf = bigger;
		}
		if (want == 0 && len > 0 && (end = memmem(buf, len, "\r\n\r\n", 4)) != NULL) {
			const char *cl;
			buf[len] = '\0';
			*end = '\0';
			cl = strcasestr(buf, "\r\nContent-Length:");
			want = (size_t)(end - buf) + 4 + (cl ? strtoul(cl + 17, NULL, 10) : 0);
			*end = '\r';
		}
		if (want > 0 && len >= want)
			break;
		pthread_mutex_lock(&lis.lock);
		bool stop = lis.stop;
		pthread_mutex_unlock(&lis.lock);
		if (stop || poll(&p, 1, 100) < 0)
			goto fail;
		if (!(p.revents & (POLLIN | POLLHUP)))
			continue;
		got = read(fd, buf + len, cap - len);
		if (got <= 0)
			goto fail;
		len += (size_t)got;
	}
	end = memmem(buf, len, "\r\n\r\n", 4);
	pthread_mutex_lock(&lis.lock);
	if (lis.n < REQUESTS_MAX) {
		lis.head[lis.n] = strndup(buf, (size_t)(end - buf));
		lis.body_len[lis.n] = want - (size_t)(end + 4 - buf);
		lis.body[lis.n] = malloc(lis.body_len[lis.n] + 1);
		ck_assert_ptr_nonnull(lis.body[lis.n]);
		memcpy(lis.body[lis.n], end + 4, lis.body_len[lis.n]);
		lis.body[lis.n][lis.body_len[lis.n]] = '\0';
		lis.n++;
	}
	pthread_cond_broadcast(&lis.cond);
	pthread_mutex_unlock(&lis.lock);
	free(buf);
	return true;
fail:
	free(buf);
	return false;
}

static void answer(int fd, const char *text)
{
	size_t n = strlen(text);
	ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
}

static void *listener_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p = {.fd = lis.fd, .events = POLLIN};
		int conn;

		pthread_mutex_lock(&lis.lock);
		bool stop = lis.stop;
		pthread_mutex_unlock(&lis.lock);
		if (stop)
			return NULL;
		if (poll(&p, 1, 100) <= 0 || (conn = accept(lis.fd, NULL, NULL)) < 0)
			continue;
		pthread_mutex_lock(&lis.lock);
		lis.conns++;
		pthread_mutex_unlock(&lis.lock);
		/* Requests on this connection (the exporter keeps it) until it closes. */
		while (read_request(conn)) {
			pthread_mutex_lock(&lis.lock);
			int n = lis.n;
			pthread_mutex_unlock(&lis.lock);
			if (lis.mode == ANSWER_NEVER)
				continue; /* the next read waits for stop or the client's close */
			if (lis.mode == ANSWER_503_LONG)
				answer(conn, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3600\r\n"
				             "Content-Length: 0\r\n\r\n");
			else if (lis.mode == ANSWER_503_ONCE && n == 1)
				answer(conn, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
				             "Content-Length: 0\r\n\r\n");
			else
				answer(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				             "Content-Length: 2\r\n\r\n{}");
		}
		close(conn);
	}
}

static void listener_start(enum listener_mode mode)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);

	memset(&lis, 0, sizeof(lis));
	lis.mode = mode;
	pthread_mutex_init(&lis.lock, NULL);
	ck_assert_int_eq(clock_cond_init(&lis.cond), 0);
	lis.fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(lis.fd, 0);
	ck_assert_int_eq(bind(lis.fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(lis.fd, 8), 0);
	ck_assert_int_eq(getsockname(lis.fd, (struct sockaddr *)&a, &alen), 0);
	lis.port = ntohs(a.sin_port);
	ck_assert_int_eq(pthread_create(&lis.thread, NULL, listener_main, NULL), 0);
}

static void listener_stop(void)
{
	pthread_mutex_lock(&lis.lock);
	lis.stop = true;
	pthread_mutex_unlock(&lis.lock);
	pthread_join(lis.thread, NULL);
	close(lis.fd);
	for (int i = 0; i < lis.n; i++) {
		free(lis.head[i]);
		free(lis.body[i]);
	}
}

/* Waits (up to 20 s: a loaded machine) for n requests; returns how many came. */
static int listener_wait(int n)
{
	struct timespec deadline = clock_deadline(20000);
	int got;

	pthread_mutex_lock(&lis.lock);
	while (lis.n < n && !clock_passed(&deadline))
		pthread_cond_timedwait(&lis.cond, &lis.lock, &deadline);
	got = lis.n;
	pthread_mutex_unlock(&lis.lock);
	return got;
}

/* ---- OTLP protobuf, read back ------------------------------------------ */

/* What the test knows of OTLP's messages (opentelemetry-proto's
 * trace_service.proto, trace.proto, common.proto, resource.proto), to read
 * a binary body into the JSON mapping the checks look at: ids in hex,
 * 64-bit integers as strings, enums and 32-bit counts as numbers. A field
 * the exporter should not send, a wrong wire type, a string that is not
 * UTF-8 or a field sent twice fails the test. */
enum pb_kind { K_MSG, K_STR, K_ID, K_U32, K_I64, K_BOOL, K_FIXED64 };

struct pb_field {
	unsigned num;
	const char *name;
	enum pb_kind kind;
	bool repeated;
	const struct pb_field *msg; /* K_MSG: its fields, up to one without a name */
};

static const struct pb_field pb_any_value[] = {
    {1, "stringValue", K_STR, false, NULL}, {2, "boolValue", K_BOOL, false, NULL},
    {3, "intValue", K_I64, false, NULL}, {0, NULL, 0, false, NULL}};
static const struct pb_field pb_key_value[] = {
    {1, "key", K_STR, false, NULL}, {2, "value", K_MSG, false, pb_any_value}, {0, NULL, 0, false, NULL}};
static const struct pb_field pb_link[] = {
    {1, "traceId", K_ID, false, NULL}, {2, "spanId", K_ID, false, NULL}, {0, NULL, 0, false, NULL}};
static const struct pb_field pb_status[] = {
    {2, "message", K_STR, false, NULL}, {3, "code", K_U32, false, NULL}, {0, NULL, 0, false, NULL}};
static const struct pb_field pb_span[] = {
    {1, "traceId", K_ID, false, NULL},
    {2, "spanId", K_ID, false, NULL},
    {3, "traceState", K_STR, false, NULL},
    {4, "parentSpanId", K_ID, false, NULL},
    {5, "name", K_STR, false, NULL},
    {6, "kind", K_U32, false, NULL},
    {7, "startTimeUnixNano", K_FIXED64, false, NULL},
    {8, "endTimeUnixNano", K_FIXED64, false, NULL},
    {9, "attributes", K_MSG, true, pb_key_value},
    {10, "droppedAttributesCount", K_U32, false, NULL},
    {13, "links", K_MSG, true, pb_link},
    {14, "droppedLinksCount", K_U32, false, NULL},
    {15, "status", K_MSG, false, pb_status},
    {0, NULL, 0, false, NULL}};
static const struct pb_field pb_scope[] = {
    {1, "name", K_STR, false, NULL}, {2, "version", K_STR, false, NULL}, {0, NULL, 0, false, NULL}};
static const struct pb_field pb_scope_spans[] = {
    {1, "scope", K_MSG, false, pb_scope}, {2, "spans", K_MSG, true, pb_span}, {0, NULL, 0, false, NULL}};
static const struct pb_field pb_resource[] = {
    {1, "attributes", K_MSG, true, pb_key_value}, {0, NULL, 0, false, NULL}};
static const struct pb_field pb_resource_spans[] = {
    {1, "resource", K_MSG, false, pb_resource}, {2, "scopeSpans", K_MSG, true, pb_scope_spans},
    {0, NULL, 0, false, NULL}};
static const struct pb_field pb_request[] = {
    {1, "resourceSpans", K_MSG, true, pb_resource_spans}, {0, NULL, 0, false, NULL}};

static uint64_t pb_read_varint(const unsigned char **p, const unsigned char *end)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 70; shift += 7) {
		ck_assert_msg(*p < end, "protobuf: a varint runs past its message");
		const unsigned char c = *(*p)++;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return v;
	}
	ck_abort_msg("protobuf: a varint of more than 10 bytes");
	return 0;
}

/* Well-formed UTF-8: no stray continuation byte, overlong form, surrogate
 * or code point past U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		const unsigned char c = s[i];
		size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2
		           : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
		uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1fu : len == 3 ? c & 0x0fu : c & 0x07u;

		if (len == 0 || i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3fu);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += len;
	}
	return true;
}

/* n bytes as lowercase hex into out[2n+1]. */
static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static json_object *pb_decode(const unsigned char *p, const unsigned char *end,
                              const struct pb_field *fields)
{
	json_object *o = json_object_new_object();

	while (p < end) {
		const uint64_t key = pb_read_varint(&p, end);
		const struct pb_field *f = fields;
		unsigned wire = (unsigned)(key & 7), want;
		json_object *v, *list;
		char text[24];

		while (f->name != NULL && f->num != key >> 3)
			f++;
		ck_assert_msg(f->name != NULL, "protobuf: unknown field %" PRIu64, key >> 3);
		want = f->kind == K_FIXED64 ? 1 : f->kind == K_MSG || f->kind == K_STR || f->kind == K_ID ? 2 : 0;
		ck_assert_msg(wire == want, "protobuf: %s has wire type %u, not %u", f->name, wire, want);
		if (wire == 0) {
			const uint64_t x = pb_read_varint(&p, end);
			if (f->kind == K_BOOL) {
				ck_assert_msg(x <= 1, "protobuf: %s is %" PRIu64, f->name, x);
				v = json_object_new_boolean(x == 1);
			} else if (f->kind == K_U32) {
				ck_assert_msg(x <= UINT32_MAX, "protobuf: %s is %" PRIu64, f->name, x);
				v = json_object_new_int64((int64_t)x);
			} else {
				snprintf(text, sizeof(text), "%" PRId64, (int64_t)x);
				v = json_object_new_string(text);
			}
		} else if (wire == 1) {
			uint64_t x = 0;
			ck_assert_msg(end - p >= 8, "protobuf: %s runs past its message", f->name);
			for (int i = 0; i < 8; i++)
				x |= (uint64_t)p[i] << (8 * i);
			p += 8;
			snprintf(text, sizeof(text), "%" PRIu64, x);
			v = json_object_new_string(text);
		} else {
			const uint64_t n = pb_read_varint(&p, end);
			ck_assert_msg(n <= (uint64_t)(end - p), "protobuf: %s runs past its message", f->name);
			if (f->kind == K_MSG) {
				v = pb_decode(p, p + n, f->msg);
			} else if (f->kind == K_STR) {
				ck_assert_msg(utf8_valid(p, n), "protobuf: %s is not UTF-8", f->name);
				v = json_object_new_string_len((const char *)p, (int)n);
			} else {
				char hexed[33];
				ck_assert_msg(n == 16 || n == 8, "protobuf: %s has %" PRIu64 " bytes", f->name, n);
				hex(p, (size_t)n, hexed);
				v = json_object_new_string(hexed);
			}
			p += n;
		}
		if (f->repeated) {
			if (!json_object_object_get_ex(o, f->name, &list)) {
				list = json_object_new_array();
				json_object_object_add(o, f->name, list);
			}
			json_object_array_add(list, v);
		} else {
			ck_assert_msg(!json_object_object_get_ex(o, f->name, NULL), "protobuf: %s twice", f->name);
			json_object_object_add(o, f->name, v);
		}
	}
	return o;
}

/* Request i's body as OTLP JSON (the caller puts it): read as JSON, or
 * from binary protobuf, as its Content-Type says. */
static json_object *body_json(int i)
{
	json_object *root;

	if (strcasestr(lis.head[i], "\r\nContent-Type: application/x-protobuf") != NULL)
		return pb_decode((const unsigned char *)lis.body[i],
		                 (const unsigned char *)lis.body[i] + lis.body_len[i], pb_request);
	ck_assert_ptr_nonnull(strcasestr(lis.head[i], "\r\nContent-Type: application/json"));
	root = json_tokener_parse(lis.body[i]);
	ck_assert_msg(root != NULL, "not JSON: %s", lis.body[i]);
	return root;
}

/* ---- setup helpers ------------------------------------------------------ */

static char endpoint[64];

/* The cfg defaults of TRACE_CFG_PARAMS, with a short schedule delay. */
static struct trace_config config(const char *url)
{
	return (struct trace_config){
	    .endpoint = url, .traces_endpoint = "", .protocol = "http/json", .headers = "",
	    .timeout_ms = 10000, .service_name = "", .resource_attributes = "",
	    .sampler = "parentbased_always_on", .sampler_arg = "", .disabled = "false",
	    .queue_max = 2048, .batch_max = 512, .delay_ms = 50,
	};
}

static void setup_ok(const struct trace_config *c)
{
	char err[256] = "";

	ck_assert_msg(trace_setup(c, "unit-svc", err, sizeof(err)) == 0, "trace_setup: %s", err);
}

static const char *listener_url(void)
{
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", lis.port);
	return endpoint;
}

/* The value of one series in /metrics (0 when absent). */
static long long metric_now(const char *series)
{
	size_t len;
	char *text = metrics_render(&len), *at;
	long long v = 0;
	size_t n = strlen(series);

	ck_assert_ptr_nonnull(text);
	for (at = text; (at = strstr(at, series)) != NULL; at += n) {
		if ((at == text || at[-1] == '\n') && at[n] == ' ') {
			v = strtoll(at + n + 1, NULL, 10);
			break;
		}
	}
	free(text);
	return v;
}

#define EXPORTED "trace_spans_total{result=\"exported\"}"
#define QUEUE_FULL "trace_spans_total{result=\"dropped_queue_full\"}"
#define EXPORT_FAILED "trace_spans_total{result=\"dropped_export_failed\"}"
#define REQ_OK "trace_export_requests_total{result=\"ok\"}"
#define REQ_ERROR "trace_export_requests_total{result=\"error\"}"

/* The counters are the process's: a test counts from where it found them
 * (so that the suite also passes with CK_FORK=no). */
static const char *const counted[] = {EXPORTED, QUEUE_FULL, EXPORT_FAILED, REQ_OK, REQ_ERROR};
static long long baseline[sizeof(counted) / sizeof(counted[0])];

static void take_baseline(void)
{
	for (size_t i = 0; i < sizeof(counted) / sizeof(counted[0]); i++)
		baseline[i] = metric_now(counted[i]);
}

/* What series has counted since the test began. */
static long long metric(const char *series)
{
	for (size_t i = 0; i < sizeof(counted) / sizeof(counted[0]); i++) {
		if (strcmp(counted[i], series) == 0)
			return metric_now(series) - baseline[i];
	}
	ck_abort_msg("%s is not a counted series", series);
	return 0;
}

/* ---- off ---------------------------------------------------------------- */

START_TEST(off_without_endpoint_passes_the_parent_on)
{
	struct trace_config c = config("");
	struct trace_ctx parent, ctx;
	char buf[TRACE_PARENT_SIZE];

	trace_shutdown(1000); /* never set up: nothing to do */
	setup_ok(&c);
	ck_assert(!trace_on());
	ck_assert_int_eq(trace_parse(TP_VALID, "k=v", &parent), 0);
	ck_assert_ptr_null(trace_start("x", TRACE_SERVER, &parent, &ctx));
	trace_format(&ctx, buf);
	ck_assert_str_eq(buf, TP_VALID);
	ck_assert_str_eq(ctx.state, "k=v");
	ck_assert_ptr_null(trace_start("x", TRACE_SERVER, NULL, &ctx));
	ck_assert(!trace_ctx_valid(&ctx));
	/* Every function takes the NULL span. */
	trace_attr_str(NULL, "k", "v");
	trace_attr_int(NULL, "k", 1);
	trace_attr_bool(NULL, "k", true);
	trace_link(NULL, &parent);
	trace_error(NULL, "x %d", 1);
	trace_end(NULL);
	trace_shutdown(1000);
	trace_shutdown(1000);
}
END_TEST

START_TEST(disabled_true_in_any_case_turns_tracing_off)
{
	struct trace_config c = config("http://127.0.0.1:9");

	c.disabled = "TRUE";
	setup_ok(&c);
	ck_assert(!trace_on());
	c.disabled = "False";
	setup_ok(&c);
	ck_assert(trace_on());
	trace_shutdown(1000);
	ck_assert(!trace_on());
}
END_TEST

/* ---- configuration errors ----------------------------------------------- */

static const struct {
	const char *field, *value, *error;
} bad_configs[] = {
    {"disabled", "yes", "OTEL_SDK_DISABLED: 'yes' is not true or false"},
    {"protocol", "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not supported: use http/protobuf or http/json"},
    {"protocol", "json", "OTEL_EXPORTER_OTLP_PROTOCOL: unknown protocol 'json' (use http/protobuf or http/json)"},
    {"protocol", "HTTP/JSON", "OTEL_EXPORTER_OTLP_PROTOCOL: unknown protocol 'HTTP/JSON' (use http/protobuf or http/json)"},
    {"protocol", "http/protobuf ", "OTEL_EXPORTER_OTLP_PROTOCOL: unknown protocol 'http/protobuf ' (use http/protobuf or http/json)"},
    {"sampler", "sometimes", "OTEL_TRACES_SAMPLER: unknown sampler 'sometimes' (always_on, always_off, "
                             "traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio)"},
    {"sampler", "jaeger_remote", "OTEL_TRACES_SAMPLER: unknown sampler 'jaeger_remote' (always_on, always_off, "
                                 "traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio)"},
    {"sampler_arg", "1.5", "OTEL_TRACES_SAMPLER_ARG: '1.5' is not a ratio from 0 to 1"},
    {"sampler_arg", "-0.1", "OTEL_TRACES_SAMPLER_ARG: '-0.1' is not a ratio from 0 to 1"},
    {"sampler_arg", "half", "OTEL_TRACES_SAMPLER_ARG: 'half' is not a ratio from 0 to 1"},
    {"sampler_arg", "0.5x", "OTEL_TRACES_SAMPLER_ARG: '0.5x' is not a ratio from 0 to 1"},
    {"sampler_arg", "nan", "OTEL_TRACES_SAMPLER_ARG: 'nan' is not a ratio from 0 to 1"},
    {"endpoint", "127.0.0.1:4318", "OTEL_EXPORTER_OTLP_ENDPOINT: '127.0.0.1:4318' is not an http:// or https:// URL"},
    {"endpoint", "ftp://collector", "OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://collector' is not an http:// or https:// URL"},
    {"endpoint", "http://", "OTEL_EXPORTER_OTLP_ENDPOINT: 'http://' is not an http:// or https:// URL"},
    {"traces_endpoint", "collector/v1/traces", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'collector/v1/traces' is not an http:// or https:// URL"},
    /* Not quoted: a header may be a secret. */
    {"headers", "Authorization: Bearer s3cret", "OTEL_EXPORTER_OTLP_HEADERS: member 1 is not key=value"},
    {"headers", "a=1,,b=2", "OTEL_EXPORTER_OTLP_HEADERS: member 2 is not key=value"},
    {"headers", "=v", "OTEL_EXPORTER_OTLP_HEADERS: member 1 is not key=value"},
    {"headers", "bad key=v", "OTEL_EXPORTER_OTLP_HEADERS: 'bad key' is not a header name"},
    {"headers", "k=a%0d%0aInjected: 1", "OTEL_EXPORTER_OTLP_HEADERS: the value of 'k' has a control character"},
    {"headers", "k=100%", "OTEL_EXPORTER_OTLP_HEADERS: the value of 'k' has a bad escape (%XX: two hex digits, not %00)"},
    {"resource_attributes", "team", "OTEL_RESOURCE_ATTRIBUTES: member 'team' is not key=value"},
    {"resource_attributes", "a=1, =2", "OTEL_RESOURCE_ATTRIBUTES: member ' =2' is not key=value"},
    {"resource_attributes", "a=%zz", "OTEL_RESOURCE_ATTRIBUTES: the value of 'a' has a bad escape (%XX: two hex digits, not %00)"},
    {"resource_attributes", "a=%00", "OTEL_RESOURCE_ATTRIBUTES: the value of 'a' has a bad escape (%XX: two hex digits, not %00)"},
    {"batch_max", "4096", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: 4096 is more than OTEL_BSP_MAX_QUEUE_SIZE (2048)"},
    {"timeout_ms", "0", "OTEL_EXPORTER_OTLP_TIMEOUT: must be at least 1"},
    {"queue_max", "0", "OTEL_BSP_MAX_QUEUE_SIZE: must be at least 1"},
    {"delay_ms", "0", "OTEL_BSP_SCHEDULE_DELAY: must be at least 1"},
};

START_TEST(bad_variable_is_named_in_the_error)
{
	struct trace_config c = config("http://127.0.0.1:9");
	const char *f = bad_configs[_i].field, *v = bad_configs[_i].value;
	char err[512] = "";

	if (strcmp(f, "disabled") == 0)
		c.disabled = v;
	else if (strcmp(f, "protocol") == 0)
		c.protocol = v;
	else if (strcmp(f, "sampler") == 0)
		c.sampler = v;
	else if (strcmp(f, "sampler_arg") == 0)
		c.sampler = "parentbased_traceidratio", c.sampler_arg = v;
	else if (strcmp(f, "endpoint") == 0)
		c.endpoint = v;
	else if (strcmp(f, "traces_endpoint") == 0)
		c.traces_endpoint = v;
	else if (strcmp(f, "headers") == 0)
		c.headers = v;
	else if (strcmp(f, "resource_attributes") == 0)
		c.resource_attributes = v;
	else if (strcmp(f, "batch_max") == 0)
		c.batch_max = atoi(v);
	else if (strcmp(f, "timeout_ms") == 0)
		c.timeout_ms = atoi(v);
	else if (strcmp(f, "queue_max") == 0)
		c.queue_max = atoi(v);
	else if (strcmp(f, "delay_ms") == 0)
		c.delay_ms = atoi(v);
	ck_assert_int_eq(trace_setup(&c, "unit-svc", err, sizeof(err)), -1);
	ck_assert_str_eq(err, bad_configs[_i].error);
	ck_assert(!trace_on());
}
END_TEST

/* A bad value is an error even with tracing off, so that it is found
 * before someone turns tracing on. */
START_TEST(bad_sampler_is_an_error_with_tracing_off_too)
{
	struct trace_config c = config("");
	char err[256] = "";

	c.sampler = "always";
	ck_assert_int_eq(trace_setup(&c, "unit-svc", err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, "OTEL_TRACES_SAMPLER: ", 21) == 0, "%s", err);
}
END_TEST

/* ---- sampling ----------------------------------------------------------- */

/* A sampled parent whose trace id ends in the 8 bytes low (big-endian). */
static struct trace_ctx parent_with_low(uint64_t low, bool sampled)
{
	struct trace_ctx p;

	memset(&p, 0, sizeof(p));
	p.trace_id[0] = 0x42;
	for (int i = 0; i < 8; i++)
		p.trace_id[15 - i] = (uint8_t)(low >> (8 * i));
	p.span_id[7] = 1;
	p.flags = sampled ? 1 : 0;
	return p;
}

static bool sampled_with(const char *sampler, const char *arg, const struct trace_ctx *parent)
{
	struct trace_config c = config("http://127.0.0.1:9");
	struct trace_ctx ctx;
	struct trace_span *s;

	c.sampler = sampler;
	c.sampler_arg = arg;
	setup_ok(&c);
	s = trace_start("s", TRACE_INTERNAL, parent, &ctx);
	ck_assert(trace_ctx_valid(&ctx));
	if (parent != NULL)
		ck_assert_mem_eq(ctx.trace_id, parent->trace_id, 16);
	ck_assert_uint_eq(ctx.flags, s != NULL ? 1 : 0); /* what is propagated says it */
	trace_end(s);
	trace_shutdown(0);
	return s != NULL;
}

START_TEST(ratio_sampler_compares_the_trace_ids_low_bytes)
{
	struct trace_ctx p;

	/* OTel (Go, Java): the low 8 bytes >> 1 below ratio * 2^63. The parent's
	 * sampled flag does not count for a sampler that is not parent-based. */
	p = parent_with_low(0x7fffffffffffffffu, false);
	ck_assert(sampled_with("traceidratio", "0.5", &p));
	p = parent_with_low(0x8000000000000000u, true);
	ck_assert(!sampled_with("traceidratio", "0.5", &p));
	p = parent_with_low(0, true);
	ck_assert(!sampled_with("traceidratio", "0", &p));
	p = parent_with_low(1, true);
	ck_assert(!sampled_with("traceidratio", "0", &p));
	p = parent_with_low(0xffffffffffffffffu, false);
	ck_assert(sampled_with("traceidratio", "1", &p));
	ck_assert(sampled_with("traceidratio", "", &p)); /* no argument: 1 */
	p = parent_with_low(0x3fffffffffffffffu, false);
	ck_assert(sampled_with("traceidratio", "0.25", &p));
	p = parent_with_low(0x4000000000000000u, false);
	ck_assert(!sampled_with("traceidratio", "0.25", &p));
}
END_TEST

START_TEST(parent_based_samplers_follow_the_parent)
{
	struct trace_ctx yes = parent_with_low(0xffffffffffffffffu, true);
	struct trace_ctx no = parent_with_low(0, false);

	ck_assert(sampled_with("parentbased_always_on", "", &yes));
	ck_assert(!sampled_with("parentbased_always_on", "", &no));
	ck_assert(sampled_with("parentbased_always_off", "", &yes));
	ck_assert(!sampled_with("parentbased_always_off", "", NULL));
	ck_assert(sampled_with("parentbased_always_on", "", NULL));
	/* The ratio would say no to yes and yes to no: the parent decides. */
	ck_assert(sampled_with("parentbased_traceidratio", "0.5", &yes));
	ck_assert(!sampled_with("parentbased_traceidratio", "0.5", &no));
	ck_assert(!sampled_with("parentbased_traceidratio", "0", NULL));
	ck_assert(sampled_with("parentbased_traceidratio", "1", NULL));
	ck_assert(sampled_with("always_on", "", &no));
	ck_assert(!sampled_with("always_off", "", &yes));
}
END_TEST

static int cmp_trace_id(const void *a, const void *b)
{
	return memcmp(((const struct trace_ctx *)a)->trace_id, ((const struct trace_ctx *)b)->trace_id, 16);
}

static int cmp_span_id(const void *a, const void *b)
{
	return memcmp(((const struct trace_ctx *)a)->span_id, ((const struct trace_ctx *)b)->span_id, 8);
}

START_TEST(ids_are_random_and_never_zero)
{
	struct trace_config c = config("http://127.0.0.1:9");
	static struct trace_ctx ctx[2000];
	struct trace_ctx parent;
	int ones = 0;

	c.sampler = "always_off"; /* ids are made all the same */
	setup_ok(&c);
	for (int i = 0; i < 2000; i++) {
		ck_assert_ptr_null(trace_start("s", TRACE_INTERNAL, NULL, &ctx[i]));
		ck_assert(trace_ctx_valid(&ctx[i]));
		ones += __builtin_popcount(ctx[i].trace_id[15]);
	}
	/* Distinct (sorted, no two neighbours equal), and the low byte the
	 * ratio sampler reads is not stuck: half its bits set, give or take
	 * far more than chance allows (mean 8000, sd 63). */
	qsort(ctx, 2000, sizeof(ctx[0]), cmp_trace_id);
	for (int i = 1; i < 2000; i++)
		ck_assert(memcmp(ctx[i].trace_id, ctx[i - 1].trace_id, 16) != 0);
	qsort(ctx, 2000, sizeof(ctx[0]), cmp_span_id);
	for (int i = 1; i < 2000; i++)
		ck_assert(memcmp(ctx[i].span_id, ctx[i - 1].span_id, 8) != 0);
	ck_assert_msg(ones > 7000 && ones < 9000, "%d bits set of 16000", ones);
	/* A child: the parent's trace, a new span id; also when ctx is the parent. */
	ck_assert_int_eq(trace_parse(TP_VALID, "k=v", &parent), 0);
	ck_assert_ptr_null(trace_start("s", TRACE_INTERNAL, &parent, &ctx[0]));
	ck_assert_mem_eq(ctx[0].trace_id, parent.trace_id, 16);
	ck_assert(memcmp(ctx[0].span_id, parent.span_id, 8) != 0);
	ck_assert_str_eq(ctx[0].state, "k=v");
	ctx[1] = parent;
	ck_assert_ptr_null(trace_start("s", TRACE_INTERNAL, &ctx[1], &ctx[1]));
	ck_assert_mem_eq(ctx[1].trace_id, parent.trace_id, 16);
	ck_assert(memcmp(ctx[1].span_id, parent.span_id, 8) != 0);
	ck_assert_str_eq(ctx[1].state, "k=v");
	trace_shutdown(0);
}
END_TEST

/* ---- the exporter ------------------------------------------------------- */

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no '%s' in %s", key,
	              json_object_to_json_string(o));
	return v;
}

static const char *get_str(json_object *o, const char *key)
{
	return json_object_get_string(get(o, key));
}

/* The value object of attribute key in an OTLP attribute array, or NULL. */
static json_object *attr(json_object *attrs, const char *key)
{
	for (size_t i = 0; i < json_object_array_length(attrs); i++) {
		json_object *a = json_object_array_get_idx(attrs, i);
		if (strcmp(get_str(a, "key"), key) == 0)
			return get(a, "value");
	}
	return NULL;
}

static const char *attr_str(json_object *attrs, const char *key)
{
	json_object *v = attr(attrs, key);

	ck_assert_msg(v != NULL, "no attribute %s", key);
	return get_str(v, "stringValue");
}

static json_object *span_named(json_object *spans, const char *name)
{
	for (size_t i = 0; i < json_object_array_length(spans); i++) {
		json_object *s = json_object_array_get_idx(spans, i);
		if (strcmp(get_str(s, "name"), name) == 0)
			return s;
	}
	ck_abort_msg("no span %s", name);
	return NULL;
}

/* The exporter's protocols: OTEL_EXPORTER_OTLP_PROTOCOL and the body's
 * Content-Type; unset is OTLP's default, binary protobuf. */
static const struct {
	const char *protocol, *content_type;
} protocols[] = {
    {"http/json", "application/json"},
    {"http/protobuf", "application/x-protobuf"},
    {"", "application/x-protobuf"},
};

/* U+FFFD, in UTF-8. */
#define FFFD "\xef\xbf\xbd"

START_TEST(exporter_posts_otlp_with_spans_and_resource)
{
	char content_type[64];
	struct trace_config c;
	struct trace_ctx parent, server, client, batch;
	struct trace_span *s;
	json_object *root, *rs, *res_attrs, *ss, *spans, *sp, *attrs, *links;
	char want[40];

	listener_start(ANSWER_200);
	c = config(listener_url());
	c.headers = " x-api-key = secret%20value , X-Tenant=t1";
	c.resource_attributes = "deployment.environment=test,team=a%2Cb,service.name=from-attrs,"
	                        "odd=caf%C3%A9%FF";
	c.protocol = protocols[_i].protocol;
	setup_ok(&c);
	ck_assert(trace_on());

	ck_assert_int_eq(trace_parse(TP_VALID, "rojo=00f067aa0ba902b7", &parent), 0);
	s = trace_start("POST /api/v1/timestamp/{timestamp}", TRACE_SERVER, &parent, &server);
	ck_assert_ptr_nonnull(s);
	ck_assert_mem_eq(server.trace_id, parent.trace_id, 16);
	ck_assert_uint_eq(server.flags, 1);
	trace_attr_str(s, "http.request.method", "POST");
	trace_attr_int(s, "http.response.status_code", 202);
	trace_attr_int(s, "min", INT64_MIN);
	trace_attr_int(s, "max", INT64_MAX);
	trace_attr_bool(s, "ok", true);
	trace_attr_bool(s, "bad", false);
	/* Not UTF-8: a stray byte, an overlong '/', a surrogate, a sequence cut
	 * short at the end; each of their bytes becomes U+FFFD. */
	trace_attr_str(s, "odd", "tab\there \"q\" \\ \n \x01 \x7f bad\xff caf\xc3\xa9 \xf0\x9f\x98\x80 end"
	                         " over\xc0\xaf sur\xed\xa0\x80 cut\xe2\x82");
	trace_attr_str(s, "http.request.method", "PUT"); /* a second set replaces */
	struct trace_span *child = trace_start("SELECT timestamp_records", TRACE_CLIENT, &server, &client);
	ck_assert_ptr_nonnull(child);
	trace_error(child, "connection %s", "refused");
	trace_end(child);
	trace_end(s);
	struct trace_span *b = trace_start("INSERT timestamp_records", TRACE_CLIENT, NULL, &batch);
	ck_assert_ptr_nonnull(b);
	trace_link(b, &server);
	trace_link(b, &client);
	trace_end(b);

	ck_assert_int_eq(listener_wait(1), 1);
	trace_shutdown(5000);
	ck_assert_int_eq(metric(EXPORTED), 3);
	ck_assert_int_eq(metric(REQ_OK), 1);

	/* The request. */
	ck_assert_msg(strncmp(lis.head[0], "POST /v1/traces HTTP/1.1\r\n", 26) == 0, "%s", lis.head[0]);
	snprintf(content_type, sizeof(content_type), "\r\nContent-Type: %s\r\n", protocols[_i].content_type);
	ck_assert_msg(strcasestr(lis.head[0], content_type) != NULL, "%s", lis.head[0]);
	ck_assert_ptr_nonnull(strstr(lis.head[0], "\r\nx-api-key: secret value"));
	ck_assert_ptr_nonnull(strstr(lis.head[0], "\r\nX-Tenant: t1"));

	root = body_json(0);
	rs = json_object_array_get_idx(get(root, "resourceSpans"), 0);
	res_attrs = get(get(rs, "resource"), "attributes");
	ck_assert_str_eq(attr_str(res_attrs, "service.name"), "from-attrs");
	ck_assert_str_eq(attr_str(res_attrs, "telemetry.sdk.language"), "c");
	ck_assert_str_eq(attr_str(res_attrs, "deployment.environment"), "test");
	ck_assert_str_eq(attr_str(res_attrs, "team"), "a,b");
	ck_assert_str_eq(attr_str(res_attrs, "odd"), "caf\xc3\xa9\xef\xbf\xbd");
	ck_assert_ptr_nonnull(attr(res_attrs, "service.version"));
	ss = json_object_array_get_idx(get(rs, "scopeSpans"), 0);
	ck_assert_str_eq(get_str(get(ss, "scope"), "name"), "timestamp-trio");
	spans = get(ss, "spans");
	ck_assert_int_eq(json_object_array_length(spans), 3);

	sp = span_named(spans, "POST /api/v1/timestamp/{timestamp}");
	ck_assert_str_eq(get_str(sp, "traceId"), TRACE_HEX);
	ck_assert_str_eq(get_str(sp, "parentSpanId"), SPAN_HEX);
	hex(server.span_id, 8, want);
	ck_assert_str_eq(get_str(sp, "spanId"), want);
	ck_assert_str_eq(get_str(sp, "traceState"), "rojo=00f067aa0ba902b7");
	ck_assert_int_eq(json_object_get_int(get(sp, "kind")), 2);
	ck_assert(json_object_is_type(get(sp, "startTimeUnixNano"), json_type_string));
	long long start = strtoll(get_str(sp, "startTimeUnixNano"), NULL, 10);
	long long end = strtoll(get_str(sp, "endTimeUnixNano"), NULL, 10);
	ck_assert(start > 1600000000000000000LL && end >= start);
	attrs = get(sp, "attributes");
	ck_assert_int_eq(json_object_array_length(attrs), 7);
	ck_assert_str_eq(attr_str(attrs, "http.request.method"), "PUT");
	ck_assert_str_eq(get_str(attr(attrs, "http.response.status_code"), "intValue"), "202");
	ck_assert_str_eq(get_str(attr(attrs, "min"), "intValue"), "-9223372036854775808");
	ck_assert_str_eq(get_str(attr(attrs, "max"), "intValue"), "9223372036854775807");
	ck_assert(json_object_get_boolean(get(attr(attrs, "ok"), "boolValue")));
	ck_assert(json_object_is_type(get(attr(attrs, "bad"), "boolValue"), json_type_boolean));
	ck_assert(!json_object_get_boolean(get(attr(attrs, "bad"), "boolValue")));
	ck_assert_str_eq(attr_str(attrs, "odd"),
	                 "tab\there \"q\" \\ \n \x01 \x7f bad\xef\xbf\xbd caf\xc3\xa9 \xf0\x9f\x98\x80 end"
	                 " over" FFFD FFFD " sur" FFFD FFFD FFFD " cut" FFFD FFFD);
	ck_assert(!json_object_object_get_ex(sp, "status", NULL));

	sp = span_named(spans, "SELECT timestamp_records");
	hex(server.span_id, 8, want);
	ck_assert_str_eq(get_str(sp, "parentSpanId"), want);
	ck_assert_str_eq(get_str(sp, "traceId"), TRACE_HEX);
	ck_assert_int_eq(json_object_get_int(get(sp, "kind")), 3);
	ck_assert_int_eq(json_object_get_int(get(get(sp, "status"), "code")), 2);
	ck_assert_str_eq(get_str(get(sp, "status"), "message"), "connection refused");

	sp = span_named(spans, "INSERT timestamp_records");
	ck_assert(!json_object_object_get_ex(sp, "parentSpanId", NULL)); /* a root */
	hex(batch.trace_id, 16, want);
	ck_assert_str_eq(get_str(sp, "traceId"), want);
	ck_assert_str_ne(want, TRACE_HEX);
	links = get(sp, "links");
	ck_assert_int_eq(json_object_array_length(links), 2);
	ck_assert_str_eq(get_str(json_object_array_get_idx(links, 0), "traceId"), TRACE_HEX);
	hex(server.span_id, 8, want);
	ck_assert_str_eq(get_str(json_object_array_get_idx(links, 0), "spanId"), want);
	hex(client.span_id, 8, want);
	ck_assert_str_eq(get_str(json_object_array_get_idx(links, 1), "spanId"), want);
	ck_assert(!json_object_object_get_ex(sp, "droppedLinksCount", NULL));

	json_object_put(root);
	listener_stop();
}
END_TEST

START_TEST(service_name_is_the_variable_then_the_program)
{
	struct trace_config c;
	struct trace_span *s;
	struct trace_ctx ctx;
	json_object *root, *res_attrs;

	listener_start(ANSWER_200);
	c = config(listener_url());
	c.service_name = "named";
	c.resource_attributes = "service.name=from-attrs";
	setup_ok(&c);
	trace_end(trace_start("a", TRACE_INTERNAL, NULL, &ctx));
	ck_assert_int_eq(listener_wait(1), 1);
	trace_shutdown(5000);
	c.service_name = "";
	c.resource_attributes = "";
	setup_ok(&c);
	s = trace_start("b", TRACE_INTERNAL, NULL, &ctx);
	trace_end(s);
	ck_assert_int_eq(listener_wait(2), 2);
	trace_shutdown(5000);

	root = json_tokener_parse(lis.body[0]);
	res_attrs = get(get(json_object_array_get_idx(get(root, "resourceSpans"), 0), "resource"), "attributes");
	ck_assert_str_eq(attr_str(res_attrs, "service.name"), "named");
	json_object_put(root);
	root = json_tokener_parse(lis.body[1]);
	res_attrs = get(get(json_object_array_get_idx(get(root, "resourceSpans"), 0), "resource"), "attributes");
	ck_assert_str_eq(attr_str(res_attrs, "service.name"), "unit-svc");
	json_object_put(root);
	listener_stop();
}
END_TEST

START_TEST(links_beyond_the_cap_are_counted_as_dropped)
{
	struct trace_config c;
	struct trace_ctx ctx, to;
	struct trace_span *s;
	json_object *root, *sp;

	listener_start(ANSWER_200);
	c = config(listener_url());
	c.protocol = protocols[_i].protocol;
	setup_ok(&c);
	ck_assert_int_eq(trace_parse(TP_VALID, NULL, &to), 0);
	s = trace_start("batch", TRACE_CLIENT, NULL, &ctx);
	for (int i = 0; i < 1030; i++)
		trace_link(s, &to);
	memset(&to, 0, sizeof(to));
	trace_link(s, &to); /* not a context: no link, not counted */
	trace_end(s);
	ck_assert_int_eq(listener_wait(1), 1);
	trace_shutdown(5000);
	root = body_json(0);
	sp = json_object_array_get_idx(
	    get(json_object_array_get_idx(get(json_object_array_get_idx(get(root, "resourceSpans"), 0),
	                                      "scopeSpans"), 0), "spans"), 0);
	ck_assert_int_eq(json_object_array_length(get(sp, "links")), 1024);
	ck_assert_int_eq(json_object_get_int(get(sp, "droppedLinksCount")), 6);
	json_object_put(root);
	listener_stop();
}
END_TEST

START_TEST(overloaded_collector_gets_one_retry)
{
	struct trace_config c;
	struct trace_ctx ctx;

	listener_start(ANSWER_503_ONCE);
	c = config(listener_url());
	setup_ok(&c);
	trace_end(trace_start("a", TRACE_INTERNAL, NULL, &ctx));
	ck_assert_int_eq(listener_wait(2), 2);
	trace_shutdown(5000);
	ck_assert_str_eq(lis.body[0], lis.body[1]);
	ck_assert_int_eq(metric(REQ_ERROR), 1);
	ck_assert_int_eq(metric(REQ_OK), 1);
	ck_assert_int_eq(metric(EXPORTED), 1);
	ck_assert_int_eq(metric(EXPORT_FAILED), 0);
	listener_stop();
}
END_TEST

START_TEST(down_collector_drops_and_counts)
{
	struct trace_config c;
	struct trace_ctx ctx;
	struct timespec deadline;

	/* A port nobody listens on: the listener's, closed. */
	listener_start(ANSWER_200);
	c = config(listener_url());
	listener_stop();
	setup_ok(&c);
	for (int i = 0; i < 3; i++)
		trace_end(trace_start("a", TRACE_INTERNAL, NULL, &ctx));
	deadline = clock_deadline(20000);
	while (metric(EXPORT_FAILED) < 3 && !clock_passed(&deadline))
		usleep(10000);
	ck_assert_int_eq(metric(EXPORT_FAILED), 3);
	ck_assert_int_ge(metric(REQ_ERROR), 1);
	ck_assert_int_eq(metric(EXPORTED), 0);
	trace_shutdown(1000);
}
END_TEST

START_TEST(frozen_collector_never_holds_up_trace_end_or_shutdown)
{
	struct trace_config c;
	struct trace_ctx ctx;
	struct timespec deadline;

	listener_start(ANSWER_NEVER);
	c = config(listener_url());
	c.timeout_ms = 500;
	setup_ok(&c);
	trace_end(trace_start("first", TRACE_INTERNAL, NULL, &ctx));
	ck_assert_int_eq(listener_wait(1), 1); /* the exporter now waits for an answer */
	for (int i = 0; i < 5; i++) /* each returns at once, or the test times out */
		trace_end(trace_start("more", TRACE_INTERNAL, NULL, &ctx));
	/* The first request times out: its span dropped and counted. */
	deadline = clock_deadline(20000);
	while (metric(EXPORT_FAILED) < 1 && !clock_passed(&deadline))
		usleep(10000);
	ck_assert_int_ge(metric(EXPORT_FAILED), 1);
	ck_assert_int_ge(metric(REQ_ERROR), 1);

	/* The five are in flight or queued: not exported by shutdown's deadline. */
	trace_shutdown(300);
	ck_assert_int_eq(metric(EXPORT_FAILED), 6);
	ck_assert_int_eq(metric(EXPORTED), 0);
	listener_stop();
}
END_TEST

START_TEST(full_queue_drops_and_counts)
{
	struct trace_config c;
	struct trace_ctx ctx;
	double t0, took;

	listener_start(ANSWER_NEVER);
	c = config(listener_url());
	c.queue_max = 2;
	c.batch_max = 1;
	c.timeout_ms = 60000;
	setup_ok(&c);
	trace_end(trace_start("in flight", TRACE_INTERNAL, NULL, &ctx));
	ck_assert_int_eq(listener_wait(1), 1); /* taken by the exporter, which waits */
	for (int i = 0; i < 10; i++)
		trace_end(trace_start("more", TRACE_INTERNAL, NULL, &ctx));
	ck_assert_int_eq(metric(QUEUE_FULL), 8);
	/* The request in flight may take a minute; shutdown stops it at its
	 * own deadline (and a second of grace to join the thread). */
	t0 = clock_mono_s();
	trace_shutdown(200);
	took = clock_mono_s() - t0;
	ck_assert_msg(took < 0.2 + 2.0, "trace_shutdown(200) took %.3f s", took);
	/* The one in flight and the two queued: not exported by the deadline. */
	ck_assert_int_eq(metric(EXPORT_FAILED), 3);
	/* After shutdown, spans are dropped. */
	ck_assert_ptr_null(trace_start("late", TRACE_INTERNAL, NULL, &ctx));
	listener_stop();
}
END_TEST

START_TEST(span_ended_after_shutdown_is_dropped_and_counted)
{
	struct trace_config c = config("http://127.0.0.1:9");
	struct trace_ctx ctx;
	struct trace_span *s;

	setup_ok(&c);
	s = trace_start("late", TRACE_INTERNAL, NULL, &ctx);
	ck_assert_ptr_nonnull(s);
	trace_shutdown(0);
	trace_end(s);
	ck_assert_int_eq(metric(QUEUE_FULL), 1);
}
END_TEST

START_TEST(span_limits_cut_and_count_what_does_not_fit)
{
	struct trace_config c;
	struct trace_ctx ctx, parent;
	struct trace_span *s;
	json_object *root, *sp, *attrs;
	char name[201], value[400], state[600];
	static const char *const keys[] = {"i0", "i1", "i2", "i3", "i4", "i5", "i6", "i7",
	                                   "i8", "i9", "i10", "i11", "i12", "i13", "i14"};

	listener_start(ANSWER_200);
	c = config(listener_url());
	setup_ok(&c);
	/* A tracestate over 256 bytes: propagated, not exported with the span. */
	snprintf(state, sizeof(state), "k=%s", rep(value, 'v', 256));
	strcat(state, ",l=");
	strcat(state, rep(value, 'w', 60));
	ck_assert_int_eq(trace_parse(TP_VALID, state, &parent), 0);
	s = trace_start(rep(name, 'n', 200), TRACE_INTERNAL, &parent, &ctx);
	ck_assert_str_eq(ctx.state, state);
	/* 'a' and 150 two-byte characters: cut at 256 bytes, inside the
	 * 128th character, so 255 bytes are kept. */
	strcpy(value, "a");
	for (int i = 0; i < 150; i++)
		strcat(value, "\xc3\xa9");
	trace_attr_str(s, "a", value);                  /* name 128 + 255 */
	trace_attr_str(s, "b", rep(value, 'b', 256));   /* 639 */
	trace_attr_str(s, "c", rep(value, 'c', 200));   /* does not fit: dropped */
	trace_attr_str(s, "d", rep(value, 'd', 100));   /* 739 */
	for (int i = 0; i < 15; i++)                    /* 13 fit in the 16 slots */
		trace_attr_int(s, keys[i], i);
	trace_attr_bool(s, "full", true);               /* dropped */
	trace_error(s, "%s", rep(value, 'e', 100));     /* no room: the code without it */
	trace_end(s);

	s = trace_start("error", TRACE_INTERNAL, NULL, &ctx);
	trace_error(s, "%s", rep(value, 'e', 300));
	trace_end(s);
	ck_assert_int_eq(listener_wait(1), 1);
	trace_shutdown(5000);

	/* Both spans may have gone in one request or two. */
	root = json_tokener_parse(lis.body[0]);
	ck_assert_ptr_nonnull(root);
	json_object *spans = get(json_object_array_get_idx(
	    get(json_object_array_get_idx(get(root, "resourceSpans"), 0), "scopeSpans"), 0), "spans");
	sp = json_object_array_get_idx(spans, 0);
	ck_assert_uint_eq(strlen(get_str(sp, "name")), 128);
	ck_assert(!json_object_object_get_ex(sp, "traceState", NULL));
	attrs = get(sp, "attributes");
	ck_assert_int_eq(json_object_array_length(attrs), 16);
	ck_assert_uint_eq(strlen(attr_str(attrs, "a")), 255);
	ck_assert_uint_eq(strlen(attr_str(attrs, "b")), 256);
	ck_assert_ptr_null(attr(attrs, "c"));
	ck_assert_uint_eq(strlen(attr_str(attrs, "d")), 100);
	ck_assert_str_eq(get_str(attr(attrs, "i12"), "intValue"), "12");
	ck_assert_ptr_null(attr(attrs, "i13"));
	ck_assert_int_eq(json_object_get_int(get(sp, "droppedAttributesCount")), 4);
	ck_assert_int_eq(json_object_get_int(get(get(sp, "status"), "code")), 2);
	ck_assert(!json_object_object_get_ex(get(sp, "status"), "message", NULL));
	if (json_object_array_length(spans) == 1) {
		json_object_put(root);
		ck_assert_int_eq(lis.n, 2);
		root = json_tokener_parse(lis.body[1]);
		ck_assert_ptr_nonnull(root);
		spans = get(json_object_array_get_idx(
		    get(json_object_array_get_idx(get(root, "resourceSpans"), 0), "scopeSpans"), 0), "spans");
		sp = json_object_array_get_idx(spans, 0);
	} else {
		sp = json_object_array_get_idx(spans, 1);
	}
	ck_assert_str_eq(get_str(sp, "name"), "error");
	ck_assert_uint_eq(strlen(get_str(get(sp, "status"), "message")), 255);
	json_object_put(root);
	listener_stop();
}
END_TEST

START_TEST(endpoint_gets_v1_traces_and_traces_endpoint_is_used_as_it_is)
{
	struct trace_config c;
	struct trace_ctx ctx;
	char url[128];

	listener_start(ANSWER_200);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/otlp/", lis.port);
	c = config(url);
	setup_ok(&c);
	trace_end(trace_start("a", TRACE_INTERNAL, NULL, &ctx));
	ck_assert_int_eq(listener_wait(1), 1);
	trace_shutdown(5000);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/custom/path", lis.port);
	c = config("http://127.0.0.1:9");
	c.traces_endpoint = url;
	setup_ok(&c);
	trace_end(trace_start("b", TRACE_INTERNAL, NULL, &ctx));
	ck_assert_int_eq(listener_wait(2), 2);
	trace_shutdown(5000);
	ck_assert_msg(strncmp(lis.head[0], "POST /otlp/v1/traces HTTP/1.1\r\n", 31) == 0, "%s", lis.head[0]);
	ck_assert_msg(strncmp(lis.head[1], "POST /custom/path HTTP/1.1\r\n", 28) == 0, "%s", lis.head[1]);
	listener_stop();
}
END_TEST

START_TEST(https_endpoint_is_accepted)
{
	struct trace_config c = config("HTTPS://collector.invalid:4318");

	setup_ok(&c);
	ck_assert(trace_on());
	trace_shutdown(0);
}
END_TEST

START_TEST(requests_hold_at_most_a_batch)
{
	struct trace_config c;
	struct trace_ctx ctx;
	size_t total = 0;
	json_object *root;

	listener_start(ANSWER_200);
	c = config(listener_url());
	c.batch_max = 2;
	c.delay_ms = 600000; /* a full batch, or shutdown, sends */
	setup_ok(&c);
	for (int i = 0; i < 5; i++)
		trace_end(trace_start("s", TRACE_INTERNAL, NULL, &ctx));
	ck_assert_int_ge(listener_wait(2), 2);
	trace_shutdown(5000);
	ck_assert_int_eq(metric(EXPORTED), 5);
	for (int i = 0; i < lis.n; i++) {
		root = json_tokener_parse(lis.body[i]);
		ck_assert_ptr_nonnull(root);
		size_t n = json_object_array_length(get(json_object_array_get_idx(
		    get(json_object_array_get_idx(get(root, "resourceSpans"), 0), "scopeSpans"), 0), "spans"));
		ck_assert_uint_le(n, 2);
		total += n;
		json_object_put(root);
	}
	ck_assert_uint_eq(total, 5);
	listener_stop();
}
END_TEST

/* Retry-After: 3600 waits 5 s at most, and there is one retry only. */
START_TEST(retry_after_is_bounded_and_there_is_one_retry)
{
	struct trace_config c;
	struct trace_ctx ctx;
	struct timespec deadline;

	listener_start(ANSWER_503_LONG);
	c = config(listener_url());
	setup_ok(&c);
	trace_end(trace_start("a", TRACE_INTERNAL, NULL, &ctx));
	ck_assert_int_eq(listener_wait(2), 2);
	deadline = clock_deadline(20000);
	while (metric(EXPORT_FAILED) < 1 && !clock_passed(&deadline))
		usleep(10000);
	ck_assert_int_eq(metric(EXPORT_FAILED), 1);
	ck_assert_int_eq(metric(REQ_ERROR), 2);
	trace_shutdown(5000);
	ck_assert_int_eq(lis.n, 2);
	listener_stop();
}
END_TEST

START_TEST(shutdown_cuts_the_wait_before_a_retry)
{
	struct trace_config c;
	struct trace_ctx ctx;
	double t0, took;

	listener_start(ANSWER_503_LONG);
	c = config(listener_url());
	setup_ok(&c);
	trace_end(trace_start("a", TRACE_INTERNAL, NULL, &ctx));
	ck_assert_int_eq(listener_wait(1), 1); /* the exporter now waits 5 s to retry */
	t0 = clock_mono_s();
	trace_shutdown(200);
	took = clock_mono_s() - t0;
	ck_assert_msg(took < 0.2 + 2.0, "trace_shutdown(200) took %.3f s", took);
	ck_assert_int_eq(metric(EXPORT_FAILED), 1);
	ck_assert_int_eq(metric(EXPORTED), 0);
	listener_stop();
}
END_TEST

/* ---- spans made later: trace_begin, trace_defer, trace_start_at ---- */

static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;

static atomic_bool holding; /* hold_job has started */

/* A job that waits until the test lets hold_lock go. */
static void hold_job(void *arg)
{
	(void)arg;
	atomic_store(&holding, true);
	pthread_mutex_lock(&hold_lock);
	pthread_mutex_unlock(&hold_lock);
}

static void noop_job(void *arg)
{
	(void)arg;
}

static void *shutdown_main(void *arg)
{
	(void)arg;
	trace_shutdown(5000);
	return NULL;
}

struct deferred {
	struct trace_ctx ctx;
	uint8_t parent_span[8];
	int64_t start_ns, end_ns;
	int spans;       /* to make */
	pthread_t ran_on;
	bool ran;
};

static void make_deferred(void *arg)
{
	struct deferred *d = arg;

	d->ran_on = pthread_self();
	d->ran = true;
	for (int i = 0; i < d->spans; i++) {
		struct trace_span *s = trace_start_at("later", TRACE_CONSUMER, &d->ctx, d->parent_span,
		                                      d->start_ns);
		trace_attr_int(s, "i", i);
		trace_end_at(s, d->end_ns);
	}
}

/* The span a deferred job makes has the context trace_begin decided on
 * the caller's thread, its parent and the times given; the job runs on
 * the exporter's thread, before the export it belongs to. */
START_TEST(deferred_span_has_the_context_begun_and_the_times_given)
{
	struct trace_config c;
	struct trace_ctx parent, root;
	struct deferred d = {.start_ns = 1700000000123456789, .end_ns = 1700000000123456789 + 2500000,
	                     .spans = 1};
	json_object *body, *sp;
	char want[40];

	listener_start(ANSWER_200);
	c = config(listener_url());
	c.protocol = protocols[_i].protocol;
	setup_ok(&c);
	ck_assert_int_eq(trace_parse(TP_VALID, "rojo=00f067aa0ba902b7", &parent), 0);
	ck_assert(trace_begin(&parent, &d.ctx));
	ck_assert_mem_eq(d.ctx.trace_id, parent.trace_id, 16);
	ck_assert_mem_ne(d.ctx.span_id, parent.span_id, 8);
	ck_assert_uint_eq(d.ctx.flags, 1);
	ck_assert_str_eq(d.ctx.state, "rojo=00f067aa0ba902b7");
	memcpy(d.parent_span, parent.span_id, 8);
	/* A root: a trace of its own. */
	ck_assert(trace_begin(NULL, &root));
	ck_assert_mem_ne(root.trace_id, parent.trace_id, 16);

	ck_assert_int_eq(trace_defer(make_deferred, &d, 1), 0);
	ck_assert_int_eq(listener_wait(1), 1);
	trace_shutdown(5000);
	ck_assert(d.ran);
	ck_assert_msg(!pthread_equal(d.ran_on, pthread_self()), "the job ran on the caller's thread");
	ck_assert_int_eq(metric(EXPORTED), 1);
	body = body_json(0);
	sp = json_object_array_get_idx(
	    get(json_object_array_get_idx(get(json_object_array_get_idx(get(body, "resourceSpans"), 0),
	                                      "scopeSpans"), 0), "spans"), 0);
	ck_assert_str_eq(get_str(sp, "name"), "later");
	ck_assert_str_eq(get_str(sp, "traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
	ck_assert_str_eq(get_str(sp, "parentSpanId"), "00f067aa0ba902b7");
	hex(d.ctx.span_id, 8, want);
	ck_assert_str_eq(get_str(sp, "spanId"), want);
	ck_assert_str_eq(get_str(sp, "traceState"), "rojo=00f067aa0ba902b7");
	ck_assert_str_eq(get_str(sp, "startTimeUnixNano"), "1700000000123456789");
	ck_assert_str_eq(get_str(sp, "endTimeUnixNano"), "1700000000125956789");
	json_object_put(body);
	listener_stop();
}
END_TEST

/* Jobs waiting hold at most the queue's size in spans (one job whatever
 * its size); one that does not fit is refused and its spans counted, and
 * the jobs taken still run, and export, when shutdown stops the exporter. */
START_TEST(deferred_jobs_are_bounded_and_run_at_shutdown)
{
	struct trace_config c;
	struct trace_ctx ctx, parent;
	struct deferred big = {.spans = 3, .start_ns = 1, .end_ns = 2}, over = big, fits = big;
	pthread_t stopper;

	listener_start(ANSWER_200);
	c = config(listener_url());
	c.queue_max = 4;
	c.batch_max = 4;
	c.delay_ms = 600000; /* no export before shutdown's */
	setup_ok(&c);
	ck_assert(trace_begin(NULL, &big.ctx));
	over.ctx = fits.ctx = big.ctx;
	fits.spans = 1;
	over.spans = 2;
	/* The exporter is held in a job until the three are queued. The
	 * exporter takes every job waiting at once: the three are queued only
	 * once it runs the first, or it could take big with it, and over
	 * would then be the only job waiting (taken whatever its size). */
	pthread_mutex_lock(&hold_lock);
	atomic_store(&holding, false);
	ck_assert_int_eq(trace_defer(hold_job, NULL, 0), 0);
	for (int i = 0; i < 5000 && !atomic_load(&holding); i++)
		usleep(1000);
	ck_assert_msg(atomic_load(&holding), "the exporter did not run the job within 5 s");
	ck_assert_int_eq(trace_defer(make_deferred, &big, 3), 0);
	ck_assert_int_eq(trace_defer(make_deferred, &over, 2), -1); /* 3 + 2 > 4 */
	ck_assert_int_eq(metric(QUEUE_FULL), 2);
	ck_assert_int_eq(trace_defer(make_deferred, &fits, 1), 0);
	/* The jobs run once shutdown has closed the queue: their spans are
	 * still queued and exported. */
	ck_assert_int_eq(pthread_create(&stopper, NULL, shutdown_main, NULL), 0);
	while (trace_defer(noop_job, NULL, 0) == 0)
		usleep(1000);
	pthread_mutex_unlock(&hold_lock);
	pthread_join(stopper, NULL);
	ck_assert(big.ran && fits.ran && !over.ran);
	ck_assert_int_eq(metric(EXPORTED), 4);
	/* Stopped: refused, counted, and the context passed on as with
	 * tracing off. */
	ck_assert_int_eq(trace_defer(make_deferred, &over, 2), -1);
	ck_assert_int_eq(metric(QUEUE_FULL), 4);
	ck_assert_int_eq(trace_parse(TP_VALID, NULL, &parent), 0);
	ck_assert(!trace_begin(&parent, &ctx));
	ck_assert_mem_eq(ctx.span_id, parent.span_id, 8);
	listener_stop();
}
END_TEST

#define THREADS 4
#define SPANS_PER_THREAD 500

static void *end_spans(void *arg)
{
	struct trace_ctx ctx;

	(void)arg;
	for (int i = 0; i < SPANS_PER_THREAD; i++)
		trace_end(trace_start("t", TRACE_INTERNAL, NULL, &ctx));
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(spans_from_many_threads_all_arrive_once)
{
	struct trace_config c;
	pthread_t threads[THREADS];
	static char *ids[THREADS * SPANS_PER_THREAD];
	size_t n = 0;
	json_object *roots[REQUESTS_MAX];

	listener_start(ANSWER_200);
	c = config(listener_url());
	c.queue_max = THREADS * SPANS_PER_THREAD;
	c.batch_max = 256;
	c.delay_ms = 600000; /* full batches, then shutdown's flush */
	setup_ok(&c);
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&threads[i], NULL, end_spans, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	trace_shutdown(20000);
	ck_assert_int_eq(metric(EXPORTED), THREADS * SPANS_PER_THREAD);
	ck_assert_int_eq(metric(QUEUE_FULL), 0);
	ck_assert_int_le(lis.n, REQUESTS_MAX);
	for (int r = 0; r < lis.n; r++) {
		json_object *spans;

		roots[r] = json_tokener_parse(lis.body[r]);
		ck_assert_ptr_nonnull(roots[r]);
		spans = get(json_object_array_get_idx(
		    get(json_object_array_get_idx(get(roots[r], "resourceSpans"), 0), "scopeSpans"), 0), "spans");
		for (size_t i = 0; i < json_object_array_length(spans); i++) {
			ck_assert_uint_lt(n, THREADS * SPANS_PER_THREAD);
			ids[n++] = (char *)get_str(json_object_array_get_idx(spans, i), "spanId");
		}
	}
	ck_assert_uint_eq(n, THREADS * SPANS_PER_THREAD);
	ck_assert_int_ge(lis.n, 8);
	ck_assert_int_eq(lis.conns, 1); /* every request on the one connection */
	qsort(ids, n, sizeof(ids[0]), cmp_str);
	for (size_t i = 1; i < n; i++)
		ck_assert_str_ne(ids[i], ids[i - 1]);
	for (int r = 0; r < lis.n; r++)
		json_object_put(roots[r]);
	listener_stop();
}
END_TEST

/* A body over the size the exporter keeps (60 spans of 1024 links: about
 * 5 MB), then another export: the buffer is let go and made again. */
START_TEST(export_after_a_very_large_body_still_works)
{
	struct trace_config c;
	struct trace_ctx ctx, to;
	struct trace_span *s;
	json_object *root;

	listener_start(ANSWER_200);
	c = config(listener_url());
	c.delay_ms = 600000; /* one batch: when it is full */
	c.batch_max = 60;
	setup_ok(&c);
	ck_assert_int_eq(trace_parse(TP_VALID, NULL, &to), 0);
	for (int i = 0; i < 60; i++) {
		s = trace_start("batch", TRACE_CLIENT, NULL, &ctx);
		for (int l = 0; l < 1024; l++)
			trace_link(s, &to);
		trace_end(s);
	}
	ck_assert_int_eq(listener_wait(1), 1);
	ck_assert_uint_gt(strlen(lis.body[0]), 4u << 20);
	trace_end(trace_start("after", TRACE_INTERNAL, NULL, &ctx));
	trace_shutdown(20000);
	ck_assert_int_eq(lis.n, 2);
	ck_assert_int_eq(metric(EXPORTED), 61);
	root = json_tokener_parse(lis.body[1]);
	ck_assert_ptr_nonnull(root);
	ck_assert_str_eq(get_str(json_object_array_get_idx(get(json_object_array_get_idx(
	    get(json_object_array_get_idx(get(root, "resourceSpans"), 0), "scopeSpans"), 0), "spans"), 0),
	                         "name"), "after");
	json_object_put(root);
	listener_stop();
}
END_TEST

Suite *make_trace_suite(void)
{
	Suite *s = suite_create("trace");
	TCase *tc = tcase_create("context");

	tcase_add_loop_test(tc, traceparent_parses_per_w3c, 0, TABLE_LEN(parents));
	tcase_add_test(tc, missing_traceparent_is_invalid_and_drops_tracestate);
	tcase_add_test(tc, format_gives_back_what_was_parsed);
	tcase_add_test(tc, trace_id_text_is_empty_without_a_context);
	tcase_add_loop_test(tc, tracestate_is_kept_or_dropped_per_w3c, 0, TABLE_LEN(states));
	tcase_add_test(tc, tracestate_limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("config");
	tcase_add_test(tc, off_without_endpoint_passes_the_parent_on);
	tcase_add_test(tc, disabled_true_in_any_case_turns_tracing_off);
	tcase_add_loop_test(tc, bad_variable_is_named_in_the_error, 0, TABLE_LEN(bad_configs));
	tcase_add_test(tc, bad_sampler_is_an_error_with_tracing_off_too);
	suite_add_tcase(s, tc);

	tc = tcase_create("sampling");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, ratio_sampler_compares_the_trace_ids_low_bytes);
	tcase_add_test(tc, parent_based_samplers_follow_the_parent);
	tcase_add_test(tc, ids_are_random_and_never_zero);
	suite_add_tcase(s, tc);

	/* Generous: a loaded machine, and a test that waits out a timeout. */
	tc = tcase_create("exporter");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, take_baseline, NULL);
	tcase_add_loop_test(tc, exporter_posts_otlp_with_spans_and_resource, 0, TABLE_LEN(protocols));
	tcase_add_test(tc, service_name_is_the_variable_then_the_program);
	tcase_add_loop_test(tc, links_beyond_the_cap_are_counted_as_dropped, 0, TABLE_LEN(protocols));
	tcase_add_test(tc, overloaded_collector_gets_one_retry);
	tcase_add_test(tc, down_collector_drops_and_counts);
	tcase_add_test(tc, frozen_collector_never_holds_up_trace_end_or_shutdown);
	tcase_add_test(tc, full_queue_drops_and_counts);
	tcase_add_test(tc, span_ended_after_shutdown_is_dropped_and_counted);
	tcase_add_test(tc, span_limits_cut_and_count_what_does_not_fit);
	tcase_add_test(tc, endpoint_gets_v1_traces_and_traces_endpoint_is_used_as_it_is);
	tcase_add_test(tc, https_endpoint_is_accepted);
	tcase_add_test(tc, requests_hold_at_most_a_batch);
	tcase_add_test(tc, retry_after_is_bounded_and_there_is_one_retry);
	tcase_add_test(tc, shutdown_cuts_the_wait_before_a_retry);
	tcase_add_test(tc, spans_from_many_threads_all_arrive_once);
	tcase_add_test(tc, export_after_a_very_large_body_still_works);
	tcase_add_loop_test(tc, deferred_span_has_the_context_begun_and_the_times_given, 0,
	                    TABLE_LEN(protocols));
	tcase_add_test(tc, deferred_jobs_are_bounded_and_run_at_shutdown);
	suite_add_tcase(s, tc);
	return s;
}
