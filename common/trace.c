/* trace: W3C trace context and spans, exported with OTLP/HTTP, binary
 * protobuf or JSON (see trace.h). */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "trace.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "clock.h"
#include "jsonw.h"
#include "metrics.h"
#include "ts.h"

#ifndef TS_VERSION
#define TS_VERSION "dev"
#endif

/* A span is one fixed-size allocation (about 1.3 KB): the attributes the
 * services set (at most 10 so far) live inline, their string values, the
 * name, the status message and a short tracestate in a small arena; no
 * allocation per attribute. What does not fit is counted as dropped (OTLP
 * droppedAttributesCount). */
#define SPAN_ATTRS_MAX 16
#define SPAN_ARENA_SIZE 768
#define SPAN_NAME_MAX 128     /* longer names are cut */
#define SPAN_VALUE_MAX 256    /* longer string values are cut */
#define SPAN_STATE_MAX 256    /* a longer tracestate is propagated, not exported */
#define SPAN_STATUS_MAX 256
/* A batch span links each message it wrote; a batch holds at most a few
 * thousand messages, and a collector shows no more than this usefully. */
#define SPAN_LINKS_MAX 1024

/* An export waits this long at most before a retry (the collector's
 * Retry-After, or 1 s when it gives none), and retries once. */
#define RETRY_AFTER_MAX_MS 5000
#define RETRY_DEFAULT_MS 1000
/* Connecting to a collector should take milliseconds; a longer wait means
 * it is down, and the batch is dropped sooner than at the full timeout. */
#define CONNECT_TIMEOUT_MAX_MS 2000
/* The request body's buffer is kept between exports up to this size (a full
 * batch of the services' spans is under 1 MB). */
#define BODY_KEEP_MAX (4u << 20)

enum attr_type { ATTR_STR, ATTR_INT, ATTR_BOOL };

/* A string in a span's arena. */
struct astr {
	uint16_t off, len;
	bool plain; /* nothing to escape in JSON: copied as it is */
};

struct attr {
	const char *key; /* static: a literal */
	enum attr_type type;
	union {
		int64_t i;
		bool b;
		struct astr s;
	} v;
};

struct link {
	uint8_t trace_id[16];
	uint8_t span_id[8];
};

struct trace_span {
	struct trace_span *next; /* in the export queue */
	uint8_t trace_id[16], span_id[8], parent_id[8];
	bool has_parent, error;
	uint8_t kind, n_attrs;
	uint32_t dropped_attrs;
	int64_t start_ns, end_ns; /* wall time, Unix epoch */
	int64_t start_mono;       /* clock_mono_ns at the start */
	struct astr name, state, status;
	uint16_t arena_used;
	uint32_t n_links, cap_links, dropped_links;
	struct link *links; /* malloc'd, grown by doubling up to SPAN_LINKS_MAX */
	struct attr attrs[SPAN_ATTRS_MAX];
	char arena[SPAN_ARENA_SIZE]; /* the name first */
};

enum sampler { SAMPLE_ALWAYS_ON, SAMPLE_ALWAYS_OFF, SAMPLE_RATIO };

static struct metrics_series spans_exported = METRICS_COUNTER_INIT(
    "trace_spans_total", "Spans ended, by what became of them.", "result=\"exported\"");
static struct metrics_series spans_queue_full = METRICS_COUNTER_INIT(
    "trace_spans_total", "Spans ended, by what became of them.", "result=\"dropped_queue_full\"");
static struct metrics_series spans_export_failed = METRICS_COUNTER_INIT(
    "trace_spans_total", "Spans ended, by what became of them.", "result=\"dropped_export_failed\"");
static struct metrics_series spans_no_memory = METRICS_COUNTER_INIT(
    "trace_spans_total", "Spans ended, by what became of them.", "result=\"dropped_no_memory\"");
static struct metrics_series exports_ok = METRICS_COUNTER_INIT(
    "trace_export_requests_total", "OTLP export requests, by outcome.", "result=\"ok\"");
static struct metrics_series exports_error = METRICS_COUNTER_INIT(
    "trace_export_requests_total", "OTLP export requests, by outcome.", "result=\"error\"");

/* Read on every trace_start: set by trace_setup, cleared by trace_shutdown. */
static _Atomic bool tracing;

/* The sampler: fixed at setup, read without a lock. */
static enum sampler sampler;
static bool sampler_parent_based;
static uint64_t ratio_bound; /* see ratio_sampled */

/* The queue between trace_end (any thread) and the exporter thread. The
 * lock is held for a few pointer moves only (the exporter takes the whole
 * list at once), so trace_end never waits for an export. */
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cond; /* made once, by clock_cond_init; never destroyed */
static struct trace_span *queue_head, **queue_tail = &queue_head;
static int queue_count;
static bool queue_open;      /* false: trace_end drops */
static bool stopping;        /* trace_shutdown asked the exporter to finish */
/* Work trace_defer handed to the exporter thread, and the spans it makes. */
struct job {
	struct job *next;
	void (*fn)(void *arg);
	void *arg;
};
static struct job *jobs, **jobs_tail = &jobs;
static int jobs_spans;
static struct timespec stop_deadline;
/* stop_deadline in ms of clock_mono_ms, for the transfer loop (0: none). */
static _Atomic long stop_at_ms;

/* Spans are reused: the exporter gives the ones it is done with back
 * here and trace_start takes them. A span is 1.3 KB, over glibc's
 * per-thread cache, and freed on another thread than the one that made
 * it, so each malloc and free took its arena's lock and slow path: a
 * fifth of consumer-service's loop with tracing on (perf). At most
 * OTEL_BSP_MAX_QUEUE_SIZE are kept (2.7 MB by default), the memory the
 * queue holds when full; the rest are freed. */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct trace_span *pool;
static int pool_count, pool_max; /* pool_max: set up, 0 once stopped */

/* Exporter settings and state: written by setup, then the exporter's own. */
static struct {
	int queue_max, batch_max, delay_ms, timeout_ms;
	char *url;
	bool protobuf;  /* http/protobuf, else http/json */
	char *resource; /* the Resource, serialised once in the protocol's encoding */
	size_t resource_len;
	struct curl_slist *headers;
	CURL *easy;
	CURLM *multi;
	pthread_t thread;
	bool thread_running;
	bool stuck; /* the exporter did not stop by trace_shutdown's deadline */
} ex;

/* ---- ids ---------------------------------------------------------------- */

/* xoshiro256** (Blackman and Vigna) per thread: ids need to be unique and
 * unpredictable enough to spread over the sampling range, not secret, and
 * a getrandom() per span would be a system call on the request path. */
static _Thread_local uint64_t rng[4];
static _Thread_local bool rng_seeded;

static uint64_t rotl(uint64_t x, int k)
{
	return x << k | x >> (64 - k);
}

static void rng_seed(void)
{
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(rng) &&
	       ((n = getrandom((char *)rng + got, sizeof(rng) - got, 0)) > 0 || errno == EINTR))
		got += n > 0 ? (size_t)n : 0;
	if (got < sizeof(rng)) { /* no getrandom: time and address, spread by splitmix64 */
		struct ts_instant t = ts_now();
		uint64_t z = ((uint64_t)t.sec * 1000000000u + (uint64_t)t.nsec) ^ (uint64_t)(uintptr_t)&rng;

		for (int i = 0; i < 4; i++) {
			z += 0x9e3779b97f4a7c15u;
			uint64_t x = z;
			x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
			x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
			rng[i] = x ^ (x >> 31);
		}
	}
	if ((rng[0] | rng[1] | rng[2] | rng[3]) == 0) /* the one state xoshiro cannot leave */
		rng[0] = 1;
	rng_seeded = true;
}

static uint64_t rng_next(void)
{
	uint64_t r, t;

	if (!rng_seeded)
		rng_seed();
	r = rotl(rng[1] * 5, 7) * 9;
	t = rng[1] << 17;
	rng[2] ^= rng[0];
	rng[3] ^= rng[1];
	rng[1] ^= rng[2];
	rng[0] ^= rng[3];
	rng[2] ^= t;
	rng[3] = rotl(rng[3], 45);
	return r;
}

/* n (8 or 16) random bytes, not all zero (W3C: an all-zero id is invalid). */
static void random_id(uint8_t *out, size_t n)
{
	uint64_t any;

	do {
		any = 0;
		for (size_t i = 0; i < n; i += 8) {
			uint64_t r = rng_next();
			memcpy(out + i, &r, 8);
			any |= r;
		}
	} while (any == 0);
}

/* ---- W3C trace context -------------------------------------------------- */

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f') /* W3C: lowercase only */
		return c - 'a' + 10;
	return -1;
}

/* n bytes from 2n lowercase hex digits; false on anything else. */
static bool hex_decode(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static char *hex_encode(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		*out++ = digits[in[i] >> 4];
		*out++ = digits[in[i] & 15];
	}
	return out;
}

static bool all_zero(const uint8_t *b, size_t n)
{
	uint8_t any = 0;

	for (size_t i = 0; i < n; i++)
		any |= b[i];
	return any == 0;
}

bool trace_ctx_valid(const struct trace_ctx *c)
{
	return !all_zero(c->trace_id, sizeof(c->trace_id)) && !all_zero(c->span_id, sizeof(c->span_id));
}

static bool lcalpha(char c)
{
	return c >= 'a' && c <= 'z';
}

static bool key_char(char c)
{
	return lcalpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' || c == '/';
}

/* W3C tracestate key: simple-key = lcalpha 0*255(key chars), or
 * multi-tenant-key = (lcalpha / DIGIT) 0*240(key chars) "@" lcalpha 0*13(key chars). */
static bool state_key_valid(const char *k, size_t len)
{
	const char *at = memchr(k, '@', len);

	if (at == NULL) {
		if (len < 1 || len > 256 || !lcalpha(k[0]))
			return false;
	} else {
		size_t tenant = (size_t)(at - k), system = len - tenant - 1;
		if (tenant < 1 || tenant > 241 || system < 1 || system > 14 ||
		    !(lcalpha(k[0]) || (k[0] >= '0' && k[0] <= '9')) || !lcalpha(at[1]))
			return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (k + i != at && !key_char(k[i]))
			return false;
	}
	return true;
}

/* value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr; nblk-chr = %x21-7E
 * except "," and "=". The caller has trimmed the blanks around it. */
static bool state_value_valid(const char *v, size_t len)
{
	if (len < 1 || len > 256 || v[len - 1] == ' ')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < 0x20 || v[i] > 0x7e || v[i] == ',' || v[i] == '=')
			return false;
	}
	return true;
}

static bool ows(char c)
{
	return c == ' ' || c == '\t';
}

/* A tracestate list: at most 32 members key=value, separated by commas with
 * optional blanks; empty members are allowed; no key twice. Returns the
 * number of members, or -1 when it is not valid. */
static int state_members(const char *s, size_t len)
{
	const char *keys[32];
	size_t key_lens[32];
	int n = 0;
	const char *p = s, *end = s + len;

	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *mend = comma ? comma : end;

		while (p < mend && ows(*p))
			p++;
		while (mend > p && ows(mend[-1]))
			mend--;
		if (p < mend) {
			const char *eq = memchr(p, '=', (size_t)(mend - p));
			if (n == 32 || eq == NULL || !state_key_valid(p, (size_t)(eq - p)) ||
			    !state_value_valid(eq + 1, (size_t)(mend - eq - 1)))
				return -1;
			for (int i = 0; i < n; i++) {
				if (key_lens[i] == (size_t)(eq - p) && memcmp(keys[i], p, key_lens[i]) == 0)
					return -1;
			}
			keys[n] = p;
			key_lens[n++] = (size_t)(eq - p);
		}
		if (comma == NULL)
			return n;
		p = comma + 1;
	}
}

/* "vv-" trace id "-" span id "-" flags: the fields' offsets and the length. */
enum { TP_TRACE = 3, TP_SPAN = 36, TP_FLAGS = 53, TP_LEN = 55 };

int trace_parse(const char *traceparent, const char *tracestate, struct trace_ctx *out)
{
	uint8_t version;
	size_t len;

	memset(out, 0, sizeof(*out));
	if (traceparent == NULL)
		return -1;
	len = strlen(traceparent);
	/* Version 00 is exactly 55 characters. A later version may append
	 * fields after a '-' and is read by the first four (W3C: "parse as
	 * version 00"); ff is invalid for ever. */
	if (len < TP_LEN || !hex_decode(traceparent, &version, 1) || version == 0xff ||
	    (version == 0 && len != TP_LEN) || (len > TP_LEN && traceparent[TP_LEN] != '-') ||
	    traceparent[TP_TRACE - 1] != '-' || traceparent[TP_SPAN - 1] != '-' ||
	    traceparent[TP_FLAGS - 1] != '-' ||
	    !hex_decode(traceparent + TP_TRACE, out->trace_id, sizeof(out->trace_id)) ||
	    !hex_decode(traceparent + TP_SPAN, out->span_id, sizeof(out->span_id)) ||
	    !hex_decode(traceparent + TP_FLAGS, &out->flags, 1) || !trace_ctx_valid(out)) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	if (tracestate != NULL) {
		size_t slen = strnlen(tracestate, TRACE_STATE_MAX + 1);
		/* Only empty members: nothing to pass on (W3C: avoid sending it). */
		if (slen <= TRACE_STATE_MAX && state_members(tracestate, slen) > 0)
			memcpy(out->state, tracestate, slen + 1);
	}
	return 0;
}

void trace_format(const struct trace_ctx *c, char buf[TRACE_PARENT_SIZE])
{
	char *p = buf;

	*p++ = '0';
	*p++ = '0';
	*p++ = '-';
	p = hex_encode(p, c->trace_id, sizeof(c->trace_id));
	*p++ = '-';
	p = hex_encode(p, c->span_id, sizeof(c->span_id));
	*p++ = '-';
	p = hex_encode(p, &c->flags, 1);
	*p = '\0';
}

void trace_id_text(const struct trace_ctx *c, char buf[TRACE_ID_TEXT_SIZE])
{
	if (!trace_ctx_valid(c)) {
		buf[0] = '\0';
		return;
	}
	*hex_encode(buf, c->trace_id, sizeof(c->trace_id)) = '\0';
}

/* ---- sampling ----------------------------------------------------------- */

/* TraceIdRatioBased as the OpenTelemetry SDKs (Go, Java) decide it: the
 * trace id's last 8 bytes, big-endian, shifted right by one (63 bits, so
 * that the bound ratio * 2^63 is exact up to ratio 1), sampled below the
 * bound. Every service decides alike for the same trace id. */
static bool ratio_sampled(const uint8_t trace_id[16])
{
	uint64_t x = 0;

	for (int i = 8; i < 16; i++)
		x = x << 8 | trace_id[i];
	return (x >> 1) < ratio_bound;
}

static bool sample(const uint8_t trace_id[16], bool has_parent, bool parent_sampled)
{
	if (sampler_parent_based && has_parent)
		return parent_sampled;
	switch (sampler) {
	case SAMPLE_ALWAYS_ON:
		return true;
	case SAMPLE_ALWAYS_OFF:
		return false;
	case SAMPLE_RATIO:
		return ratio_sampled(trace_id);
	}
	return false;
}

/* ---- spans -------------------------------------------------------------- */

static int64_t now_ns(void)
{
	struct ts_instant t = ts_now();

	return t.sec * 1000000000 + t.nsec;
}

/* Nothing to escape in a JSON string: not '"', '\\', a control or non-ASCII. */
static const bool json_plain[256] = {[0x20 ... 0x21] = true, [0x23 ... 0x5b] = true,
                                      [0x5d ... 0x7e] = true};

/* Copies up to max bytes of v into the arena, cut at a UTF-8 character
 * boundary, and notes whether it needs escaping (the exporter then copies
 * it as it is: looking at each byte again there was a sixth of an export's
 * time). Returns false when there is no room. One pass, by hand: strnlen
 * and the memcpy gcc inlines (rep movsq) were a third of a span's cost in
 * perf, for strings of a few dozen bytes. */
static bool arena_put(struct trace_span *s, const char *v, size_t max, struct astr *out)
{
	char *dst = s->arena + s->arena_used;
	size_t room = SPAN_ARENA_SIZE - s->arena_used, n = 0;
	bool plain = true;

	for (; n < max && v[n] != '\0'; n++) {
		if (n == room)
			return false;
		dst[n] = v[n];
		plain &= json_plain[(unsigned char)v[n]];
	}
	if (n == max && v[n] != '\0') {
		while (n > 0 && ((unsigned char)v[n] & 0xc0) == 0x80)
			n--;
	}
	out->off = s->arena_used;
	out->len = (uint16_t)n;
	out->plain = plain;
	s->arena_used = (uint16_t)(s->arena_used + n);
	return true;
}

bool trace_begin(const struct trace_ctx *parent, struct trace_ctx *ctx)
{
	const bool has_parent = parent != NULL && trace_ctx_valid(parent);

	if (!atomic_load_explicit(&tracing, memory_order_relaxed)) {
		if (!has_parent) {
			memset(ctx->trace_id, 0, sizeof(ctx->trace_id));
			memset(ctx->span_id, 0, sizeof(ctx->span_id));
			ctx->flags = 0;
			ctx->state[0] = '\0';
		} else if (ctx != parent) {
			memcpy(ctx, parent, offsetof(struct trace_ctx, state));
			memcpy(ctx->state, parent->state, strnlen(parent->state, TRACE_STATE_MAX) + 1);
		}
		return false;
	}
	if (has_parent) {
		if (ctx != parent) {
			memcpy(ctx->trace_id, parent->trace_id, sizeof(ctx->trace_id));
			ctx->flags = parent->flags;
			memcpy(ctx->state, parent->state, strnlen(parent->state, TRACE_STATE_MAX) + 1);
		}
	} else {
		random_id(ctx->trace_id, sizeof(ctx->trace_id));
		ctx->state[0] = '\0';
	}
	random_id(ctx->span_id, sizeof(ctx->span_id));
	ctx->flags = sample(ctx->trace_id, has_parent, has_parent && (ctx->flags & 1)) ? 1 : 0;
	return ctx->flags != 0;
}

/* A span (from the pool, else malloc'd) with ctx's ids and tracestate. */
static struct trace_span *span_new(const char *name, enum trace_kind kind,
                                   const struct trace_ctx *ctx, const uint8_t *parent_span)
{
	struct trace_span *s;

	pthread_mutex_lock(&pool_lock);
	if ((s = pool) != NULL) {
		pool = s->next;
		pool_count--;
	}
	pthread_mutex_unlock(&pool_lock);
	if (s == NULL && (s = malloc(sizeof(*s))) == NULL) {
		metrics_add(&spans_no_memory, 1);
		return NULL;
	}
	/* Everything but the attribute slots and the arena, which are
	 * written before they are read. */
	memset(s, 0, offsetof(struct trace_span, attrs));
	memcpy(s->trace_id, ctx->trace_id, sizeof(s->trace_id));
	memcpy(s->span_id, ctx->span_id, sizeof(s->span_id));
	if (parent_span != NULL) {
		memcpy(s->parent_id, parent_span, sizeof(s->parent_id));
		s->has_parent = true;
	}
	s->kind = (uint8_t)kind;
	arena_put(s, name != NULL ? name : "", SPAN_NAME_MAX, &s->name); /* the first: always fits */
	if (strnlen(ctx->state, SPAN_STATE_MAX + 1) <= SPAN_STATE_MAX)
		arena_put(s, ctx->state, SPAN_STATE_MAX, &s->state);
	return s;
}

struct trace_span *trace_start(const char *name, enum trace_kind kind,
                               const struct trace_ctx *parent, struct trace_ctx *ctx)
{
	const bool has_parent = parent != NULL && trace_ctx_valid(parent);
	uint8_t parent_span[8] = {0};
	struct trace_span *s;
	struct trace_ctx unused;

	if (ctx == NULL)
		ctx = &unused;
	/* ctx may be parent itself: take what is needed of parent first. */
	if (has_parent)
		memcpy(parent_span, parent->span_id, sizeof(parent_span));
	if (!trace_begin(parent, ctx) ||
	    (s = span_new(name, kind, ctx, has_parent ? parent_span : NULL)) == NULL)
		return NULL;
	s->start_ns = now_ns();
	s->start_mono = clock_mono_ns();
	return s;
}

struct trace_span *trace_start_at(const char *name, enum trace_kind kind,
                                  const struct trace_ctx *ctx, const uint8_t *parent_span,
                                  int64_t start_ns)
{
	struct trace_span *s = span_new(name, kind, ctx, parent_span);

	if (s != NULL) {
		s->start_ns = start_ns;
		s->start_mono = clock_mono_ns();
	}
	return s;
}

/* The slot for key: the one already set (OTel: a second set replaces the
 * value) or a new one; NULL when full (counted). Keys are literals, so the
 * same key is the same pointer (the linker merges equal literals); a strcmp
 * against every key set before was a fifth of a span's cost in perf. */
static struct attr *attr_slot(struct trace_span *s, const char *key)
{
	for (int i = 0; i < s->n_attrs; i++) {
		if (s->attrs[i].key == key)
			return &s->attrs[i];
	}
	if (s->n_attrs == SPAN_ATTRS_MAX) {
		s->dropped_attrs++;
		return NULL;
	}
	s->attrs[s->n_attrs].key = key;
	return &s->attrs[s->n_attrs++];
}

void trace_attr_str(struct trace_span *s, const char *key, const char *value)
{
	struct attr *a;
	struct astr v;

	if (s == NULL || value == NULL)
		return;
	if (!arena_put(s, value, SPAN_VALUE_MAX, &v)) {
		s->dropped_attrs++;
		return;
	}
	if ((a = attr_slot(s, key)) == NULL)
		return;
	a->type = ATTR_STR;
	a->v.s = v;
}

void trace_attr_int(struct trace_span *s, const char *key, int64_t value)
{
	struct attr *a;

	if (s == NULL || (a = attr_slot(s, key)) == NULL)
		return;
	a->type = ATTR_INT;
	a->v.i = value;
}

void trace_attr_bool(struct trace_span *s, const char *key, bool value)
{
	struct attr *a;

	if (s == NULL || (a = attr_slot(s, key)) == NULL)
		return;
	a->type = ATTR_BOOL;
	a->v.b = value;
}

void trace_link(struct trace_span *s, const struct trace_ctx *to)
{
	if (s == NULL || to == NULL || !trace_ctx_valid(to))
		return;
	if (s->n_links == s->cap_links) {
		uint32_t cap = s->cap_links ? s->cap_links * 2 : 16;
		struct link *bigger;

		if (cap > SPAN_LINKS_MAX)
			cap = SPAN_LINKS_MAX;
		if (cap == s->cap_links ||
		    (bigger = realloc(s->links, cap * sizeof(*bigger))) == NULL) {
			s->dropped_links++;
			return;
		}
		s->links = bigger;
		s->cap_links = cap;
	}
	memcpy(s->links[s->n_links].trace_id, to->trace_id, sizeof(to->trace_id));
	memcpy(s->links[s->n_links].span_id, to->span_id, sizeof(to->span_id));
	s->n_links++;
}

void trace_error(struct trace_span *s, const char *fmt, ...)
{
	char msg[SPAN_STATUS_MAX];
	va_list ap;

	if (s == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->error = true;
	if (!arena_put(s, msg, sizeof(msg) - 1, &s->status))
		s->status.len = 0; /* the ERROR code without its message */
}

/* Gives back n spans, list and those after it: to the pool while it has
 * room, the rest to free. Returns the span after the n-th. */
static struct trace_span *span_release(struct trace_span *list, int n)
{
	struct trace_span *keep = NULL, **tail = &keep, *rest;
	int room, kept = 0;

	pthread_mutex_lock(&pool_lock);
	room = pool_max - pool_count;
	pthread_mutex_unlock(&pool_lock);
	for (int i = 0; i < n; i++) {
		struct trace_span *next = list->next;

		free(list->links);
		if (kept < room) {
			*tail = list;
			tail = &list->next;
			kept++;
		} else {
			free(list);
		}
		list = next;
	}
	rest = list;
	if (kept > 0) {
		pthread_mutex_lock(&pool_lock);
		*tail = pool;
		pool = keep;
		pool_count += kept;
		pthread_mutex_unlock(&pool_lock);
	}
	return rest;
}

/* The pool's spans, freed when tracing stops. */
static void pool_free(void)
{
	pthread_mutex_lock(&pool_lock);
	while (pool != NULL) {
		struct trace_span *next = pool->next;
		free(pool);
		pool = next;
	}
	pool_count = pool_max = 0;
	pthread_mutex_unlock(&pool_lock);
}

/* The exporter thread while it runs a deferred job: its spans are queued
 * also while trace_shutdown stops the exporter, which waits for them. */
static _Thread_local bool in_job;

static void span_queue(struct trace_span *s)
{
	bool wake;

	s->next = NULL;
	pthread_mutex_lock(&queue_lock);
	if ((!queue_open && !in_job) || queue_count >= ex.queue_max) {
		pthread_mutex_unlock(&queue_lock);
		metrics_add(&spans_queue_full, 1);
		span_release(s, 1);
		return;
	}
	*queue_tail = s;
	queue_tail = &s->next;
	wake = ++queue_count == ex.batch_max;
	pthread_mutex_unlock(&queue_lock);
	if (wake)
		pthread_cond_signal(&queue_cond);
}

void trace_end(struct trace_span *s)
{
	if (s == NULL)
		return;
	/* The duration from the monotonic clock: a step of the wall clock
	 * (NTP) during the span neither stretches it nor makes it negative. */
	s->end_ns = s->start_ns + (clock_mono_ns() - s->start_mono);
	span_queue(s);
}

void trace_end_at(struct trace_span *s, int64_t end_ns)
{
	if (s == NULL)
		return;
	s->end_ns = end_ns > s->start_ns ? end_ns : s->start_ns;
	span_queue(s);
}

void trace_lost(int spans)
{
	if (spans > 0)
		metrics_add(&spans_no_memory, spans);
}

int trace_defer(void (*fn)(void *arg), void *arg, int spans)
{
	struct job *j;

	if (spans < 0)
		spans = 0;
	if ((j = malloc(sizeof(*j))) == NULL) {
		trace_lost(spans);
		return -1;
	}
	j->next = NULL;
	j->fn = fn;
	j->arg = arg;
	pthread_mutex_lock(&queue_lock);
	/* One job is taken whatever its size (its spans beyond the queue's
	 * room are dropped as they are made, as trace_end drops them). */
	if (!queue_open || (jobs != NULL && jobs_spans + spans > ex.queue_max)) {
		pthread_mutex_unlock(&queue_lock);
		metrics_add(&spans_queue_full, spans);
		free(j);
		return -1;
	}
	*jobs_tail = j;
	jobs_tail = &j->next;
	jobs_spans += spans;
	pthread_mutex_unlock(&queue_lock);
	pthread_cond_signal(&queue_cond);
	return 0;
}

/* Runs the deferred jobs; called and returns with queue_lock held. */
static void run_jobs(void)
{
	struct job *j = jobs;

	jobs = NULL;
	jobs_tail = &jobs;
	jobs_spans = 0;
	pthread_mutex_unlock(&queue_lock);
	in_job = true;
	while (j != NULL) {
		struct job *next = j->next;

		j->fn(j->arg);
		free(j);
		j = next;
	}
	in_job = false;
	pthread_mutex_lock(&queue_lock);
}

bool trace_on(void)
{
	return atomic_load_explicit(&tracing, memory_order_relaxed);
}

/* ---- OTLP JSON ---------------------------------------------------------- */

/* A growing buffer; after an allocation failure it only records it. */
struct buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static bool buf_reserve(struct buf *b, size_t n)
{
	if (b->failed)
		return false;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *bigger;

		while (cap < b->len + n + 1)
			cap *= 2;
		if ((bigger = realloc(b->p, cap)) == NULL) {
			b->failed = true;
			return false;
		}
		b->p = bigger;
		b->cap = cap;
	}
	return true;
}

/* Inlined, so that the length of a literal is known when compiling. */
static inline __attribute__((always_inline)) void buf_put(struct buf *b, const char *s)
{
	size_t n = strlen(s);

	if (buf_reserve(b, n)) {
		memcpy(b->p + b->len, s, n + 1);
		b->len += n;
	}
}

/* A decimal integer, quoted (OTLP JSON: 64-bit integers are strings) or
 * not. snprintf was a tenth of an export's time in perf. */
static void buf_int(struct buf *b, int64_t v, bool quoted)
{
	char tmp[24], *p = tmp + sizeof(tmp);
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	*--p = '\0';
	if (quoted)
		*--p = '"';
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--p = '-';
	if (quoted)
		*--p = '"';
	buf_put(b, p);
}

/* A JSON string: quotes, escapes, invalid UTF-8 replaced. Plain ASCII is
 * copied in the same pass that looks at it, the rest goes through jsonw one
 * character at a time (jsonw_escape over everything, with its memcpy per
 * character, was a fifth of an export's time in perf). */
static void buf_str(struct buf *b, const char *s, size_t n)
{
	char *o;

	if (!buf_reserve(b, n * 6 + 2))
		return;
	o = b->p + b->len;
	*o++ = '"';
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t seq, pos;

		if (json_plain[c]) {
			*o++ = (char)c;
			i++;
		} else if (c >= 0x80 && (seq = jsonw_utf8_seq((const unsigned char *)s + i, n - i)) > 0) {
			memcpy(o, s + i, seq); /* well-formed UTF-8 as it is */
			o += seq;
			i += seq;
		} else {
			pos = (size_t)(o - b->p);
			jsonw_escape(b->p, b->cap, &pos, s + i, 1);
			o = b->p + pos;
			i++;
		}
	}
	*o++ = '"';
	*o = '\0';
	b->len = (size_t)(o - b->p);
}

static void buf_hex(struct buf *b, const uint8_t *id, size_t n)
{
	if (!buf_reserve(b, n * 2 + 2))
		return;
	b->p[b->len++] = '"';
	b->len = (size_t)(hex_encode(b->p + b->len, id, n) - b->p);
	b->p[b->len++] = '"';
	b->p[b->len] = '\0';
}

static void buf_kv_str(struct buf *b, const char *key, const char *v, size_t n)
{
	buf_put(b, "{\"key\":");
	buf_str(b, key, strlen(key));
	buf_put(b, ",\"value\":{\"stringValue\":");
	buf_str(b, v, n);
	buf_put(b, "}}");
}

/* A string of the span's arena, copied as it is when it is plain. */
static void buf_astr(struct buf *b, const struct trace_span *s, const struct astr *a)
{
	if (!a->plain) {
		buf_str(b, s->arena + a->off, a->len);
	} else if (buf_reserve(b, (size_t)a->len + 2)) {
		b->p[b->len++] = '"';
		memcpy(b->p + b->len, s->arena + a->off, a->len);
		b->len += a->len;
		b->p[b->len++] = '"';
		b->p[b->len] = '\0';
	}
}

static void json_span(struct buf *b, const struct trace_span *s)
{
	buf_put(b, "{\"traceId\":");
	buf_hex(b, s->trace_id, sizeof(s->trace_id));
	buf_put(b, ",\"spanId\":");
	buf_hex(b, s->span_id, sizeof(s->span_id));
	if (s->has_parent) {
		buf_put(b, ",\"parentSpanId\":");
		buf_hex(b, s->parent_id, sizeof(s->parent_id));
	}
	if (s->state.len > 0) {
		buf_put(b, ",\"traceState\":");
		buf_astr(b, s, &s->state);
	}
	buf_put(b, ",\"name\":");
	buf_astr(b, s, &s->name);
	/* OTLP JSON: 64-bit integers are strings. */
	buf_put(b, ",\"kind\":");
	buf_int(b, s->kind, false);
	buf_put(b, ",\"startTimeUnixNano\":");
	buf_int(b, s->start_ns, true);
	buf_put(b, ",\"endTimeUnixNano\":");
	buf_int(b, s->end_ns, true);
	buf_put(b, ",\"attributes\":[");
	for (int i = 0; i < s->n_attrs; i++) {
		const struct attr *a = &s->attrs[i];

		if (i > 0)
			buf_put(b, ",");
		switch (a->type) {
		case ATTR_STR:
			buf_put(b, "{\"key\":");
			buf_str(b, a->key, strlen(a->key));
			buf_put(b, ",\"value\":{\"stringValue\":");
			buf_astr(b, s, &a->v.s);
			buf_put(b, "}}");
			break;
		case ATTR_INT:
			buf_put(b, "{\"key\":");
			buf_str(b, a->key, strlen(a->key));
			buf_put(b, ",\"value\":{\"intValue\":");
			buf_int(b, a->v.i, true);
			buf_put(b, "}}");
			break;
		case ATTR_BOOL:
			buf_put(b, "{\"key\":");
			buf_str(b, a->key, strlen(a->key));
			buf_put(b, a->v.b ? ",\"value\":{\"boolValue\":true}}"
			                  : ",\"value\":{\"boolValue\":false}}");
			break;
		}
	}
	buf_put(b, "]");
	if (s->dropped_attrs > 0)
	{
		buf_put(b, ",\"droppedAttributesCount\":");
		buf_int(b, s->dropped_attrs, false);
	}
	if (s->n_links > 0) {
		buf_put(b, ",\"links\":[");
		for (uint32_t i = 0; i < s->n_links; i++) {
			buf_put(b, i > 0 ? ",{\"traceId\":" : "{\"traceId\":");
			buf_hex(b, s->links[i].trace_id, sizeof(s->links[i].trace_id));
			buf_put(b, ",\"spanId\":");
			buf_hex(b, s->links[i].span_id, sizeof(s->links[i].span_id));
			buf_put(b, "}");
		}
		buf_put(b, "]");
	}
	if (s->dropped_links > 0)
	{
		buf_put(b, ",\"droppedLinksCount\":");
		buf_int(b, s->dropped_links, false);
	}
	if (s->error) {
		buf_put(b, ",\"status\":{\"code\":2");
		if (s->status.len > 0) {
			buf_put(b, ",\"message\":");
			buf_astr(b, s, &s->status);
		}
		buf_put(b, "}");
	}
	buf_put(b, "}");
}

/* The request body for the first n spans of list. */
static void json_request(struct buf *b, const struct trace_span *list, int n)
{
	b->len = 0;
	b->failed = false;
	buf_put(b, "{\"resourceSpans\":[{\"resource\":");
	buf_put(b, ex.resource);
	buf_put(b, ",\"scopeSpans\":[{\"scope\":{\"name\":\"timestamp-trio\",\"version\":");
	buf_str(b, TS_VERSION, strlen(TS_VERSION));
	buf_put(b, "},\"spans\":[");
	for (int i = 0; i < n; i++, list = list->next) {
		if (i > 0)
			buf_put(b, ",");
		json_span(b, list);
	}
	buf_put(b, "]}]}]}");
}

/* ---- OTLP protobuf ------------------------------------------------------ */

/* The binary encoding (http/protobuf, OTLP's default), with the field
 * numbers of opentelemetry-proto's collector/trace/v1/trace_service.proto,
 * trace/v1/trace.proto, common/v1/common.proto and resource/v1/resource.proto.
 * About half the bytes of the JSON for the services' spans, and no hex or
 * escaping. The w_* writers write at o, unchecked, and return the end: a
 * span reserves room for its largest encoding once (pb_span). A message's
 * length goes in front of it: computed beforehand for the small ones, put
 * there afterwards (a memmove of its bytes) for a span and the ones that
 * hold spans (pb_open, pb_close). */
enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2 };

static size_t pb_varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static inline uint8_t *w_varint(uint8_t *o, uint64_t v)
{
	while (v >= 0x80) {
		*o++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*o++ = (uint8_t)v;
	return o;
}

static inline uint8_t *w_tag(uint8_t *o, unsigned field, unsigned wire)
{
	return w_varint(o, (uint64_t)field << 3 | wire);
}

/* A bytes field, or a string that is UTF-8 as it is. */
static inline uint8_t *w_bytes(uint8_t *o, unsigned field, const void *p, size_t n)
{
	o = w_varint(w_tag(o, field, PB_LEN), n);
	memcpy(o, p, n);
	return o + n;
}

static inline uint8_t *w_fixed64(uint8_t *o, unsigned field, uint64_t v)
{
	o = w_tag(o, field, PB_I64);
	for (int i = 0; i < 8; i++)
		*o++ = (uint8_t)(v >> (8 * i));
	return o;
}

/* The bytes of the UTF-8 character at s, 0 when none starts there. */
static inline size_t utf8_seq(const char *s, size_t n)
{
	return (unsigned char)*s < 0x80 ? 1 : jsonw_utf8_seq((const unsigned char *)s, n);
}

/* A protobuf string must be UTF-8 (a receiver may refuse the whole request
 * otherwise): a byte that starts no well-formed sequence becomes U+FFFD,
 * as in the JSON. The length s[0..n) takes so; n when it is UTF-8 already
 * (plain: ASCII, known to be). */
static size_t pb_str_len(const char *s, size_t n, bool plain)
{
	size_t len = 0;

	if (plain)
		return n;
	for (size_t i = 0; i < n;) {
		const size_t seq = utf8_seq(s + i, n - i);

		len += seq ? seq : 3;
		i += seq ? seq : 1;
	}
	return len;
}

/* A string field of len bytes (pb_str_len). At most 3 n bytes of content. */
static uint8_t *w_str(uint8_t *o, unsigned field, const char *s, size_t n, size_t len)
{
	if (len == n) /* nothing replaced */
		return w_bytes(o, field, s, n);
	o = w_varint(w_tag(o, field, PB_LEN), len);
	for (size_t i = 0; i < n;) {
		const size_t seq = utf8_seq(s + i, n - i);

		if (seq == 0) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(o, s + i, seq);
			o += seq;
			i += seq;
		}
	}
	return o;
}

/* A KeyValue's start, as field: its tag and length, key = 1, and the tag
 * and length of value = 2, an AnyValue of any bytes. */
static uint8_t *w_kv_head(uint8_t *o, unsigned field, const char *key, size_t any)
{
	const size_t klen = strlen(key);
	const size_t len = 1 + pb_varint_size(klen) + klen + 1 + pb_varint_size(any) + any;

	o = w_varint(w_tag(o, field, PB_LEN), len);
	o = w_bytes(o, 1, key, klen);
	return w_varint(w_tag(o, 2, PB_LEN), any);
}

/* KeyValue{key = 1, value = 2: AnyValue{string_value = 1}} as field. At
 * most PB_KV_MAX + strlen(key) + 3 n bytes. */
#define PB_KV_MAX 24
static uint8_t *w_kv_str(uint8_t *o, unsigned field, const char *key, const char *v, size_t n,
                         bool plain)
{
	const size_t len = pb_str_len(v, n, plain);

	o = w_kv_head(o, field, key, 1 + pb_varint_size(len) + len);
	return w_str(o, 1, v, n, len);
}

/* KeyValue with AnyValue{int_value = 3} (int64: its two's complement) or
 * {bool_value = 2}. At most PB_KV_MAX + strlen(key) bytes. */
static uint8_t *w_kv_varint(uint8_t *o, unsigned field, const char *key, unsigned vfield,
                            uint64_t v)
{
	o = w_kv_head(o, field, key, 1 + pb_varint_size(v));
	return w_varint(w_tag(o, vfield, PB_VARINT), v);
}

/* A string of the span's arena. */
static uint8_t *w_astr(uint8_t *o, unsigned field, const struct trace_span *s, const struct astr *a)
{
	const char *v = s->arena + a->off;

	return w_str(o, field, v, a->len, pb_str_len(v, a->len, a->plain));
}

/* Room for n bytes more; o: where they go. */
static uint8_t *pb_room(struct buf *b, size_t n)
{
	return buf_reserve(b, n) ? (uint8_t *)b->p + b->len : NULL;
}

static void pb_done(struct buf *b, uint8_t *o)
{
	b->len = (size_t)((char *)o - b->p);
}

/* A nested message: pb_open writes its tag and returns where its bytes
 * begin; pb_close puts their length in front of them. */
static size_t pb_open(struct buf *b, unsigned field)
{
	uint8_t *o = pb_room(b, 2);

	if (o != NULL)
		pb_done(b, w_tag(o, field, PB_LEN));
	return b->len;
}

static void pb_close(struct buf *b, size_t start)
{
	const size_t n = b->len - start, k = pb_varint_size(n);

	if (b->failed || !buf_reserve(b, k))
		return;
	memmove(b->p + start + k, b->p + start, n);
	w_varint((uint8_t *)b->p + start, n);
	b->len += k;
}

/* Span (ScopeSpans.spans = 2). Its largest encoding: the fixed fields and
 * the framing of the name, tracestate and status under 160 bytes, their
 * strings and the attributes' values (all in the arena) at most three
 * times their bytes, an attribute's framing and key PB_KV_MAX + its key, a
 * link 30. */
static void pb_span(struct buf *b, const struct trace_span *s)
{
	size_t room = 160 + 3 * (size_t)s->arena_used + 30 * (size_t)s->n_links, start;
	uint8_t *o;

	for (int i = 0; i < s->n_attrs; i++)
		room += PB_KV_MAX + strlen(s->attrs[i].key);
	start = pb_open(b, 2);
	if ((o = pb_room(b, room)) == NULL)
		return;
	o = w_bytes(o, 1, s->trace_id, sizeof(s->trace_id));
	o = w_bytes(o, 2, s->span_id, sizeof(s->span_id));
	if (s->state.len > 0)
		o = w_astr(o, 3, s, &s->state);
	if (s->has_parent)
		o = w_bytes(o, 4, s->parent_id, sizeof(s->parent_id));
	o = w_astr(o, 5, s, &s->name);
	o = w_varint(w_tag(o, 6, PB_VARINT), s->kind);
	o = w_fixed64(o, 7, (uint64_t)s->start_ns);
	o = w_fixed64(o, 8, (uint64_t)s->end_ns);
	for (int i = 0; i < s->n_attrs; i++) {
		const struct attr *a = &s->attrs[i];

		switch (a->type) {
		case ATTR_STR:
			o = w_kv_str(o, 9, a->key, s->arena + a->v.s.off, a->v.s.len, a->v.s.plain);
			break;
		case ATTR_INT:
			o = w_kv_varint(o, 9, a->key, 3, (uint64_t)a->v.i);
			break;
		case ATTR_BOOL:
			o = w_kv_varint(o, 9, a->key, 2, a->v.b);
			break;
		}
	}
	if (s->dropped_attrs > 0)
		o = w_varint(w_tag(o, 10, PB_VARINT), s->dropped_attrs);
	for (uint32_t i = 0; i < s->n_links; i++) { /* Span.Link{trace_id = 1, span_id = 2} */
		o = w_varint(w_tag(o, 13, PB_LEN), 2 + 16 + 2 + 8);
		o = w_bytes(o, 1, s->links[i].trace_id, 16);
		o = w_bytes(o, 2, s->links[i].span_id, 8);
	}
	if (s->dropped_links > 0)
		o = w_varint(w_tag(o, 14, PB_VARINT), s->dropped_links);
	if (s->error) { /* Status{message = 2, code = 3: STATUS_CODE_ERROR (2)} */
		const char *msg = s->arena + s->status.off;
		const size_t len = pb_str_len(msg, s->status.len, s->status.plain);

		o = w_varint(w_tag(o, 15, PB_LEN), (len > 0 ? 1 + pb_varint_size(len) + len : 0) + 2);
		if (len > 0)
			o = w_str(o, 2, msg, s->status.len, len);
		o = w_varint(w_tag(o, 3, PB_VARINT), 2);
	}
	pb_done(b, o);
	pb_close(b, start);
}

/* KeyValue field, string valued, appended to b. */
static void pb_kv_str(struct buf *b, unsigned field, const char *key, const char *v)
{
	const size_t n = strlen(v);
	uint8_t *o = pb_room(b, PB_KV_MAX + strlen(key) + 3 * n);

	if (o != NULL)
		pb_done(b, w_kv_str(o, field, key, v, n, false));
}

/* The ExportTraceServiceRequest for the first n spans of list:
 * resource_spans = 1: ResourceSpans{resource = 1, scope_spans = 2:
 * ScopeSpans{scope = 1: InstrumentationScope{name = 1, version = 2},
 * spans = 2}}. */
static void pb_request(struct buf *b, const struct trace_span *list, int n)
{
	static const char name[] = "timestamp-trio", version[] = TS_VERSION;
	const size_t nlen = strlen(name), vlen = strlen(version);
	const size_t vout = pb_str_len(version, vlen, false);
	const size_t scope = 1 + pb_varint_size(nlen) + nlen + 1 + pb_varint_size(vout) + vout;
	size_t rs, ss;
	uint8_t *o;

	b->len = 0;
	b->failed = false;
	rs = pb_open(b, 1);
	if ((o = pb_room(b, ex.resource_len + 16)) == NULL)
		return;
	pb_done(b, w_bytes(o, 1, ex.resource, ex.resource_len));
	ss = pb_open(b, 2);
	if ((o = pb_room(b, scope + 16)) == NULL)
		return;
	o = w_varint(w_tag(o, 1, PB_LEN), scope);
	o = w_bytes(o, 1, name, nlen);
	pb_done(b, w_str(o, 2, version, vlen, vout));
	for (int i = 0; i < n; i++, list = list->next)
		pb_span(b, list);
	pb_close(b, ss);
	pb_close(b, rs);
}

/* ---- export ------------------------------------------------------------- */

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	(void)ptr;
	(void)arg;
	return size * nmemb;
}

/* POSTs body once. Returns the HTTP status, or 0 when there was none (no
 * connection, a timeout, trace_shutdown's deadline); *retry_ms is the
 * collector's Retry-After in ms (0: none). */
static long post(const struct buf *body, long *retry_ms)
{
	long status = 0, timeout = ex.timeout_ms, stop = atomic_load(&stop_at_ms);
	curl_off_t retry_after = 0;
	CURLcode result = CURLE_OK;
	int running = 1;

	*retry_ms = 0;
	/* Once shutting down, no request may outlive the deadline. */
	if (stop != 0 && stop - clock_mono_ms() < timeout)
		timeout = stop - clock_mono_ms();
	if (timeout <= 0)
		return 0;
	curl_easy_setopt(ex.easy, CURLOPT_POSTFIELDS, body->p);
	curl_easy_setopt(ex.easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
	curl_easy_setopt(ex.easy, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(ex.easy, CURLOPT_CONNECTTIMEOUT_MS,
	                 timeout < CONNECT_TIMEOUT_MAX_MS ? timeout : CONNECT_TIMEOUT_MAX_MS);
	if (curl_multi_add_handle(ex.multi, ex.easy) != CURLM_OK)
		return 0;
	/* The multi interface rather than curl_easy_perform, so that
	 * trace_shutdown can wake this loop (curl_multi_wakeup) and stop a
	 * transfer to a frozen collector at its deadline. */
	for (;;) {
		CURLMsg *msg;
		int left;

		if (curl_multi_perform(ex.multi, &running) != CURLM_OK)
			break;
		while ((msg = curl_multi_info_read(ex.multi, &left)) != NULL) {
			if (msg->msg == CURLMSG_DONE)
				result = msg->data.result;
		}
		if (running == 0)
			break;
		stop = atomic_load(&stop_at_ms);
		long wait = 1000;
		if (stop != 0) {
			wait = stop - clock_mono_ms();
			if (wait <= 0)
				break;
			if (wait > 1000)
				wait = 1000;
		}
		curl_multi_poll(ex.multi, NULL, 0, (int)wait, NULL);
	}
	if (running == 0 && result == CURLE_OK) {
		curl_easy_getinfo(ex.easy, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(ex.easy, CURLINFO_RETRY_AFTER, &retry_after);
	}
	curl_multi_remove_handle(ex.multi, ex.easy);
	*retry_ms = retry_after > RETRY_AFTER_MAX_MS / 1000 ? RETRY_AFTER_MAX_MS : (long)retry_after * 1000;
	return status;
}

/* Waits ms, or less when trace_shutdown's deadline comes first. */
static void pause_ms(long ms)
{
	struct timespec until = clock_deadline(ms);

	pthread_mutex_lock(&queue_lock);
	while (!clock_passed(&until) && !(stopping && clock_passed(&stop_deadline))) {
		const struct timespec *d = stopping && clock_cmp(&stop_deadline, &until) < 0
		                               ? &stop_deadline : &until;
		pthread_cond_timedwait(&queue_cond, &queue_lock, d);
	}
	pthread_mutex_unlock(&queue_lock);
}

/* Exports the first n spans of list, retrying once when the collector says
 * it is overloaded (429, 502, 503, 504); counts them as exported or
 * dropped. */
static void export_batch(const struct trace_span *list, int n, struct buf *body)
{
	long status = 0, retry_ms = 0;

	if (ex.protobuf)
		pb_request(body, list, n);
	else
		json_request(body, list, n);
	if (body->failed) {
		metrics_add(&spans_no_memory, n);
		return;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		if (attempt > 0)
			pause_ms(retry_ms > 0 ? retry_ms : RETRY_DEFAULT_MS);
		status = post(body, &retry_ms);
		metrics_add(status >= 200 && status < 300 ? &exports_ok : &exports_error, 1);
		if (status != 429 && status != 502 && status != 503 && status != 504)
			break;
	}
	metrics_add(status >= 200 && status < 300 ? &spans_exported : &spans_export_failed, n);
}

static void *exporter_main(void *arg)
{
	struct buf body = {0};

	(void)arg;
	pthread_setname_np(pthread_self(), "trace-export"); /* for top -H, perf */
	pthread_mutex_lock(&queue_lock);
	for (;;) {
		struct timespec due = clock_deadline(ex.delay_ms);
		struct trace_span *list;
		int n;

		/* Jobs make spans: a full batch is exported first, so that jobs
		 * coming fast do not fill the queue. At shutdown every job runs
		 * first: trace_shutdown waits for their spans too. */
		for (;;) {
			if (jobs != NULL && (stopping || queue_count < ex.batch_max))
				run_jobs();
			else if (stopping || queue_count >= ex.batch_max || clock_passed(&due))
				break;
			else
				pthread_cond_timedwait(&queue_cond, &queue_lock, &due);
		}
		if (queue_count == 0) {
			if (stopping)
				break;
			continue;
		}
		list = queue_head;
		n = queue_count;
		queue_head = NULL;
		queue_tail = &queue_head;
		queue_count = 0;
		pthread_mutex_unlock(&queue_lock);

		while (n > 0) {
			int batch = n < ex.batch_max ? n : ex.batch_max;
			long stop = atomic_load(&stop_at_ms);

			if (stop != 0 && clock_mono_ms() >= stop)
				metrics_add(&spans_export_failed, batch); /* past the deadline */
			else
				export_batch(list, batch, &body);
			list = span_release(list, batch);
			n -= batch;
		}
		/* A batch of spans with a thousand links each takes tens of MB;
		 * not kept for the life of the process. */
		if (body.cap > BODY_KEEP_MAX) {
			free(body.p);
			body = (struct buf){0};
		}
		pthread_mutex_lock(&queue_lock);
	}
	pthread_mutex_unlock(&queue_lock);
	free(body.p);
	return NULL;
}

/* ---- configuration ------------------------------------------------------ */

static void set_err(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *errstr, size_t errstr_size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errstr, errstr_size, fmt, ap);
	va_end(ap);
}

static int hex_any(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c - 'A' + 10;
}

/* Decodes the %XX escapes of s[0..n) into out (n + 1 bytes). Returns -1
 * for a '%' without two hex digits after it, or an encoded NUL (it would
 * cut the value short). */
static int percent_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			out[o++] = s[i];
			continue;
		}
		if (n - i < 3 || !isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2]))
			return -1;
		out[o] = (char)(hex_any(s[i + 1]) << 4 | hex_any(s[i + 2]));
		if (out[o++] == '\0')
			return -1;
		i += 2;
	}
	out[o] = '\0';
	return 0;
}

/* Calls each(arg, key, value) for every member of a "k=v,k=v" list (the
 * W3C Baggage form the OTel variables use: blanks around keys and values
 * ignored, values percent-decoded). Returns 0, or -1 with the reason in
 * errstr ("VAR: ..."), which quotes a malformed member unless secret (the
 * headers may hold an API key). */
static int kv_parse(const char *var, bool secret, const char *list,
                    int (*each)(void *arg, const char *key, const char *value, char *err, size_t errsz),
                    void *arg, char *errstr, size_t errstr_size)
{
	const char *p = list, *end = list + strlen(list);
	char *key = NULL, *value = NULL;
	int rc = 0, member = 0;

	if (*list == '\0')
		return 0;
	key = malloc(end - p + 1);
	value = malloc(end - p + 1);
	if (key == NULL || value == NULL) {
		set_err(errstr, errstr_size, "%s: out of memory", var);
		rc = -1;
		goto out;
	}
	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p)), *mend = comma ? comma : end;
		const char *eq = memchr(p, '=', (size_t)(mend - p));
		const char *k = p, *kend = eq ? eq : mend, *v = eq ? eq + 1 : mend, *vend = mend;
		char reason[160];

		member++;
		while (k < kend && isspace((unsigned char)*k))
			k++;
		while (kend > k && isspace((unsigned char)kend[-1]))
			kend--;
		while (v < vend && isspace((unsigned char)*v))
			v++;
		while (vend > v && isspace((unsigned char)vend[-1]))
			vend--;
		if (eq == NULL || k == kend) {
			if (secret)
				set_err(errstr, errstr_size, "%s: member %d is not key=value", var, member);
			else
				set_err(errstr, errstr_size, "%s: member '%.*s' is not key=value", var,
				        (int)(mend - p), p);
			rc = -1;
			goto out;
		}
		memcpy(key, k, (size_t)(kend - k));
		key[kend - k] = '\0';
		if (percent_decode(v, (size_t)(vend - v), value) < 0) {
			set_err(errstr, errstr_size,
			        "%s: the value of '%s' has a bad escape (%%XX: two hex digits, not %%00)", var, key);
			rc = -1;
			goto out;
		}
		reason[0] = '\0';
		if (each(arg, key, value, reason, sizeof(reason)) != 0) {
			set_err(errstr, errstr_size, "%s: %s", var, reason);
			rc = -1;
			goto out;
		}
		if (comma == NULL)
			break;
		p = comma + 1;
	}
out:
	free(key);
	free(value);
	return rc;
}

/* HTTP header names are tokens (RFC 9110). */
static bool header_name_valid(const char *k)
{
	for (; *k; k++) {
		if (!isalnum((unsigned char)*k) && strchr("!#$%&'*+-.^_`|~", *k) == NULL)
			return false;
	}
	return true;
}

static int header_add(void *arg, const char *key, const char *value, char *err, size_t errsz)
{
	struct curl_slist **headers = arg, *more;
	char *line;

	if (!header_name_valid(key)) {
		snprintf(err, errsz, "'%s' is not a header name", key);
		return -1;
	}
	/* A decoded CR or LF would end the header and start another. */
	for (const char *v = value; *v; v++) {
		if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f) {
			snprintf(err, errsz, "the value of '%s' has a control character", key);
			return -1;
		}
	}
	if ((line = malloc(strlen(key) + strlen(value) + 3)) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	sprintf(line, "%s: %s", key, value);
	more = curl_slist_append(*headers, line);
	free(line);
	if (more == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	*headers = more;
	return 0;
}

struct resource {
	struct buf attrs;   /* the user's attributes, each after a comma */
	struct buf pb;      /* and as Resource.attributes (protobuf) */
	char *service_name; /* service.name among them */
	bool has_version;   /* service.version among them */
};

static int resource_add(void *arg, const char *key, const char *value, char *err, size_t errsz)
{
	struct resource *r = arg;

	if (strcmp(key, "service.name") == 0) {
		free(r->service_name);
		if ((r->service_name = strdup(value)) == NULL) {
			snprintf(err, errsz, "out of memory");
			return -1;
		}
		return 0;
	}
	r->has_version |= strcmp(key, "service.version") == 0;
	buf_put(&r->attrs, ",");
	buf_kv_str(&r->attrs, key, value, strlen(value));
	pb_kv_str(&r->pb, 1, key, value);
	if (r->attrs.failed || r->pb.failed) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	return 0;
}

/* The resource object. service.name: OTEL_SERVICE_NAME, else the one in
 * OTEL_RESOURCE_ATTRIBUTES, else the program's name (the OTel order). */
static char *resource_json(const char *service_name, const char *program, const struct resource *r)
{
	const char *name = *service_name ? service_name : r->service_name ? r->service_name : program;
	struct buf b = {0};

	buf_put(&b, "{\"attributes\":[");
	buf_kv_str(&b, "service.name", name, strlen(name));
	buf_put(&b, ",");
	buf_kv_str(&b, "telemetry.sdk.language", "c", 1);
	buf_put(&b, ",");
	buf_kv_str(&b, "telemetry.sdk.name", "timestamp-trio", strlen("timestamp-trio"));
	buf_put(&b, ",");
	buf_kv_str(&b, "telemetry.sdk.version", TS_VERSION, strlen(TS_VERSION));
	if (!r->has_version) {
		buf_put(&b, ",");
		buf_kv_str(&b, "service.version", TS_VERSION, strlen(TS_VERSION));
	}
	if (r->attrs.len > 0)
		buf_put(&b, r->attrs.p);
	buf_put(&b, "]}");
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* The same as a Resource message (protobuf): attributes = 1. */
static char *resource_pb(const char *service_name, const char *program, const struct resource *r,
                         size_t *len)
{
	const char *name = *service_name ? service_name : r->service_name ? r->service_name : program;
	struct buf b = {0};
	uint8_t *o;

	pb_kv_str(&b, 1, "service.name", name);
	pb_kv_str(&b, 1, "telemetry.sdk.language", "c");
	pb_kv_str(&b, 1, "telemetry.sdk.name", "timestamp-trio");
	pb_kv_str(&b, 1, "telemetry.sdk.version", TS_VERSION);
	if (!r->has_version)
		pb_kv_str(&b, 1, "service.version", TS_VERSION);
	if (r->pb.len > 0 && (o = pb_room(&b, r->pb.len)) != NULL) {
		memcpy(o, r->pb.p, r->pb.len);
		pb_done(&b, o + r->pb.len);
	}
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}

/* The export URL (malloc'd) from the endpoint variables, NULL when neither
 * is set; -1 with errstr for one that is not an http(s) URL. */
static int export_url(const struct trace_config *c, char **url, char *errstr, size_t errstr_size)
{
	const char *var = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", *base = c->traces_endpoint;
	size_t len;
	CURLU *u;
	char *host = NULL;
	bool ok;

	*url = NULL;
	if (base == NULL || *base == '\0') {
		var = "OTEL_EXPORTER_OTLP_ENDPOINT";
		base = c->endpoint;
		if (base == NULL || *base == '\0')
			return 0;
	}
	len = strlen(base);
	if ((*url = malloc(len + sizeof("/v1/traces"))) == NULL) {
		set_err(errstr, errstr_size, "%s: out of memory", var);
		return -1;
	}
	memcpy(*url, base, len + 1);
	if (base == c->endpoint) { /* the signal's path is appended to the base URL */
		while (len > 0 && (*url)[len - 1] == '/')
			len--;
		memcpy(*url + len, "/v1/traces", sizeof("/v1/traces"));
	}
	u = curl_url();
	ok = u != NULL &&
	     (strncasecmp(*url, "http://", 7) == 0 || strncasecmp(*url, "https://", 8) == 0) &&
	     curl_url_set(u, CURLUPART_URL, *url, 0) == CURLUE_OK &&
	     curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && *host != '\0';
	curl_free(host);
	curl_url_cleanup(u);
	if (!ok) {
		set_err(errstr, errstr_size, "%s: '%s' is not an http:// or https:// URL", var, base);
		free(*url);
		*url = NULL;
		return -1;
	}
	return 0;
}

static const char *str_or_empty(const char *s)
{
	return s ? s : "";
}

/* The sampler variables into the sampler globals. */
static int sampler_parse(const struct trace_config *c, char *errstr, size_t errstr_size)
{
	static const struct {
		const char *name;
		enum sampler sampler;
		bool parent_based;
	} names[] = {
	    {"always_on", SAMPLE_ALWAYS_ON, false},
	    {"always_off", SAMPLE_ALWAYS_OFF, false},
	    {"traceidratio", SAMPLE_RATIO, false},
	    {"parentbased_always_on", SAMPLE_ALWAYS_ON, true},
	    {"parentbased_always_off", SAMPLE_ALWAYS_OFF, true},
	    {"parentbased_traceidratio", SAMPLE_RATIO, true},
	};
	const char *name = str_or_empty(c->sampler), *arg = str_or_empty(c->sampler_arg);
	double ratio = 1;
	size_t i;

	if (*name == '\0')
		name = "parentbased_always_on";
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i].name) == 0)
			break;
	}
	if (i == sizeof(names) / sizeof(names[0])) {
		set_err(errstr, errstr_size,
		        "OTEL_TRACES_SAMPLER: unknown sampler '%s' (always_on, always_off, traceidratio, "
		        "parentbased_always_on, parentbased_always_off or parentbased_traceidratio)", name);
		return -1;
	}
	/* The argument means something to the ratio samplers only (OTel: the
	 * others ignore it). */
	if (names[i].sampler == SAMPLE_RATIO && *arg != '\0') {
		char *end;

		errno = 0;
		ratio = strtod(arg, &end);
		if (errno != 0 || end == arg || *end != '\0' || !(ratio >= 0 && ratio <= 1)) {
			set_err(errstr, errstr_size, "OTEL_TRACES_SAMPLER_ARG: '%s' is not a ratio from 0 to 1",
			        arg);
			return -1;
		}
	}
	sampler = names[i].sampler;
	sampler_parent_based = names[i].parent_based;
	/* ratio * 2^63: at most 2^63, so the conversion is exact enough and
	 * never overflows; see ratio_sampled. */
	ratio_bound = (uint64_t)(ratio * 9223372036854775808.0);
	return 0;
}

static void ex_free(void)
{
	curl_multi_cleanup(ex.multi);
	curl_easy_cleanup(ex.easy);
	curl_slist_free_all(ex.headers);
	free(ex.url);
	free(ex.resource);
	memset(&ex, 0, sizeof(ex));
	pool_free();
}

/* Once per process: libcurl's global state (OpenSSL's, which is slow to
 * set up and not worth tearing down: a process sets up tracing once, tests
 * many times) and the queue's condition variable. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *once_failed;

static void setup_once(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		once_failed = "curl_global_init failed";
	else if (clock_cond_init(&queue_cond) != 0)
		once_failed = "pthread_cond_init failed";
}

int trace_setup(const struct trace_config *c, const char *program, char *errstr, size_t errstr_size)
{
	const char *disabled = str_or_empty(c->disabled), *protocol = str_or_empty(c->protocol);
	struct resource res = {0};
	struct curl_slist *headers = NULL;
	char *url = NULL;
	const char *failed = NULL;
	int rc = -1;

	if (trace_on() || ex.thread_running || ex.stuck) {
		set_err(errstr, errstr_size, "OTEL_EXPORTER_OTLP_ENDPOINT: tracing is already set up");
		return -1;
	}
	if (*disabled != '\0' && strcasecmp(disabled, "true") != 0 && strcasecmp(disabled, "false") != 0) {
		set_err(errstr, errstr_size, "OTEL_SDK_DISABLED: '%s' is not true or false", disabled);
		return -1;
	}
	if (strcmp(protocol, "grpc") == 0) {
		set_err(errstr, errstr_size,
		        "OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not supported: use http/protobuf or http/json");
		return -1;
	}
	if (*protocol != '\0' && strcmp(protocol, "http/protobuf") != 0 &&
	    strcmp(protocol, "http/json") != 0) {
		set_err(errstr, errstr_size,
		        "OTEL_EXPORTER_OTLP_PROTOCOL: unknown protocol '%s' (use http/protobuf or http/json)",
		        protocol);
		return -1;
	}
	if (sampler_parse(c, errstr, errstr_size) != 0)
		return -1;
	/* The struct may be filled by hand (tests): the bounds cfg.c enforces. */
	if (c->timeout_ms < 1 || c->queue_max < 1 || c->batch_max < 1 || c->delay_ms < 1) {
		set_err(errstr, errstr_size, "%s: must be at least 1",
		        c->timeout_ms < 1 ? "OTEL_EXPORTER_OTLP_TIMEOUT"
		        : c->queue_max < 1 ? "OTEL_BSP_MAX_QUEUE_SIZE"
		        : c->batch_max < 1 ? "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" : "OTEL_BSP_SCHEDULE_DELAY");
		return -1;
	}
	if (c->batch_max > c->queue_max) {
		set_err(errstr, errstr_size,
		        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: %d is more than OTEL_BSP_MAX_QUEUE_SIZE (%d)",
		        c->batch_max, c->queue_max);
		return -1;
	}
	if (kv_parse("OTEL_EXPORTER_OTLP_HEADERS", true, str_or_empty(c->headers), header_add, &headers,
	             errstr, errstr_size) != 0 ||
	    kv_parse("OTEL_RESOURCE_ATTRIBUTES", false, str_or_empty(c->resource_attributes), resource_add,
	             &res, errstr, errstr_size) != 0 ||
	    export_url(c, &url, errstr, errstr_size) != 0)
		goto out;
	if (strcasecmp(disabled, "true") == 0 || url == NULL) {
		rc = 0; /* valid, and off */
		goto out;
	}

	/* On: from here a failure is the machine's, not the configuration's. */
	/* OTLP's default is http/protobuf. */
	ex.protobuf = strcmp(protocol, "http/json") != 0;
	if (ex.protobuf)
		ex.resource = resource_pb(str_or_empty(c->service_name), program, &res, &ex.resource_len);
	else if ((ex.resource = resource_json(str_or_empty(c->service_name), program, &res)) != NULL)
		ex.resource_len = strlen(ex.resource);
	if (ex.resource == NULL) {
		failed = "out of memory";
		goto fail;
	}
	const char *type = ex.protobuf ? "Content-Type: application/x-protobuf"
	                               : "Content-Type: application/json";
	struct curl_slist *with_type = curl_slist_append(headers, type);
	if (with_type == NULL) { /* headers is still the list, freed at out */
		failed = "out of memory";
		goto fail;
	}
	ex.headers = with_type;
	headers = NULL;
	ex.url = url;
	url = NULL;
	ex.queue_max = c->queue_max;
	ex.batch_max = c->batch_max;
	pthread_mutex_lock(&pool_lock);
	pool_max = c->queue_max;
	pthread_mutex_unlock(&pool_lock);
	ex.delay_ms = c->delay_ms;
	ex.timeout_ms = c->timeout_ms;
	pthread_once(&once, setup_once);
	if ((failed = once_failed) != NULL)
		goto fail;
	if ((ex.easy = curl_easy_init()) == NULL || (ex.multi = curl_multi_init()) == NULL) {
		failed = "curl_easy_init failed";
		goto fail;
	}
	/* One handle for every request: its connection to the collector is
	 * kept and reused (the multi handle's cache). */
	curl_easy_setopt(ex.easy, CURLOPT_URL, ex.url);
	curl_easy_setopt(ex.easy, CURLOPT_HTTPHEADER, ex.headers);
	curl_easy_setopt(ex.easy, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(ex.easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(ex.easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(ex.easy, CURLOPT_USERAGENT, "timestamp-trio-otlp/" TS_VERSION);
	pthread_mutex_lock(&queue_lock);
	queue_open = true;
	stopping = false;
	pthread_mutex_unlock(&queue_lock);
	atomic_store(&stop_at_ms, 0);
	if (pthread_create(&ex.thread, NULL, exporter_main, NULL) != 0) {
		failed = "pthread_create failed";
		goto fail;
	}
	ex.thread_running = true;
	metrics_register(&spans_exported);
	metrics_register(&spans_queue_full);
	metrics_register(&spans_export_failed);
	metrics_register(&spans_no_memory);
	metrics_register(&exports_ok);
	metrics_register(&exports_error);
	atomic_store(&tracing, true);
	rc = 0;
	goto out;
fail:
	set_err(errstr, errstr_size, "OTEL_EXPORTER_OTLP_ENDPOINT: cannot start the exporter: %s", failed);
	pthread_mutex_lock(&queue_lock);
	queue_open = false;
	pthread_mutex_unlock(&queue_lock);
	ex_free();
out:
	curl_slist_free_all(headers);
	free(url);
	free(res.attrs.p);
	free(res.pb.p);
	free(res.service_name);
	return rc;
}

void trace_shutdown(int timeout_ms)
{
	struct timespec join_by;

	atomic_store(&tracing, false);
	if (!ex.thread_running)
		return;
	if (timeout_ms < 0)
		timeout_ms = 0;
	pthread_mutex_lock(&queue_lock);
	queue_open = false;
	stopping = true;
	stop_deadline = clock_deadline(timeout_ms);
	atomic_store(&stop_at_ms, clock_mono_ms() + timeout_ms + (timeout_ms == 0));
	pthread_cond_broadcast(&queue_cond);
	pthread_mutex_unlock(&queue_lock);
	curl_multi_wakeup(ex.multi); /* out of curl_multi_poll, to see the deadline */

	/* The exporter stops at the deadline (its transfers are bounded by
	 * it); a second more for it to notice and return. pthread_timedjoin_np
	 * takes the wall clock. */
	clock_gettime(CLOCK_REALTIME, &join_by);
	join_by.tv_sec += timeout_ms / 1000 + 1;
	join_by.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (join_by.tv_nsec >= 1000000000) {
		join_by.tv_sec++;
		join_by.tv_nsec -= 1000000000;
	}
	if (pthread_timedjoin_np(ex.thread, NULL, &join_by) != 0) {
		/* Stuck: leave it its memory rather than free what it uses,
		 * and refuse a new setup, which would reuse it. */
		pthread_detach(ex.thread);
		ex.thread_running = false;
		ex.stuck = true;
		return;
	}
	ex_free();
}
